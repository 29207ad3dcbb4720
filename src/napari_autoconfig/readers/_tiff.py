"""TIFF, ImageJ and OME TIFF: axes, spacing and the plan (:class:`_TiffPlan`) that maps a series
to the presented array; raw memory-mappable series or page-by-page decoding.

Plain ImageJ hyperstacks are read from their first IFD (:mod:`._imagej`); everything else, and
every decoding of compressed pages, goes through tifffile, imported only then.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageReadError
from ._errors import _FIX_DAMAGED, _fail, _stream_damaged, _truncated
from ._header import ImageHeader
from ._imagej import ImageJStack, read_imagej_stack
from ._raw import _native, _Raw, _raw_chunks, _raw_take


@dataclass(frozen=True)
class _TiffPlan:
    """How a TIFF series maps to the presented array."""

    format: str
    series_shape: tuple[int, ...]
    n_lead: int  # leading series axes that index pages
    keep: tuple[int, ...]  # series axes kept (size > 1, or Y / X)
    perm: tuple[int, ...]  # transpose from kept axes to presented
    shape: tuple[int, ...]
    axes: str
    dtype: np.dtype
    sample_axis: int | None  # series axis of S, when inside the page
    dataoffset: int | None  # set when uncompressed and contiguous (memory-mappable)
    stored_dtype: np.dtype
    spacing_xyz: tuple[float, ...] | None
    unit: str | None
    physical_zyx: tuple[float, ...] | None = None  # OME PhysicalSize, for people (not biom3d)


_CHANNEL_LETTERS = "CS"


def _tiff_axes(path: Path, axes: str, shape: tuple[int, ...]):
    """Kept series axes and the transpose that puts them in presented C, Z, Y, X order."""
    keep = [i for i, (a, n) in enumerate(zip(axes, shape, strict=True)) if n > 1 or a in "YX"]
    chan = [i for i in keep if axes[i] in _CHANNEL_LETTERS]
    depth = [i for i in keep if axes[i] == "Z"]
    other = [i for i in keep if axes[i] not in "CSZYX"]
    if other and not depth and len(other) == 1:
        depth, other = other, []  # a plain stack (Q / I) or an ImageJ time series: its planes
    elif other and not depth and not chan and len(other) == 2:
        chan, depth, other = other[:1], other[1:], []  # plain 4D: keep the file's order
    if other or len(chan) > 1 or len(depth) > 1:
        raise _fail(
            path,
            f"its axes {axes} {shape} have more than channels and three spatial dimensions",
            "Save one (C, Z, Y, X) stack per file",
        )
    y, x = axes.index("Y"), axes.index("X")
    order = chan + depth + [y, x]
    letters = "C" * len(chan) + "Z" * len(depth) + "YX"
    perm = tuple(keep.index(i) for i in order)
    return tuple(keep), perm, letters


def _tiff_plan(path: Path, tif, size: int) -> _TiffPlan:
    """The plan of a TIFF opened with tifffile (any kind tifffile reads)."""
    series = tif.series[0]
    axes, shape = series.axes, tuple(int(n) for n in series.shape)
    if "Y" not in axes or "X" not in axes:
        raise _fail(path, f"unexpected TIFF axes {axes}", "Save the image as a plain stack")
    label_axes = axes
    if not (tif.is_imagej or tif.is_ome) and "S" in axes and axes.index("S") < axes.index("Y"):
        # Planar "RGB" from a plain stack of 3 or 4 planes (tifffile's default for such arrays):
        # biom3d's reader moves those planes last, a bug; they are planes in the file's order.
        label_axes = axes.replace("S", "Q")
    dataoffset = series.dataoffset
    stored_dtype = np.dtype(series.dtype).newbyteorder(tif.byteorder)
    if dataoffset is None:
        _check_pages(path, series.pages, _page_count(shape, series.keyframe.shape), size)
    fmt = "imagej-tiff" if tif.is_imagej else "ome-tiff" if tif.is_ome else "tiff"
    spacing, unit = None, None
    if tif.is_imagej:
        tags = tif.pages.first.tags
        resolution = tuple(
            tags[name].value if name in tags else None for name in ("XResolution", "YResolution")
        )
        spacing, unit = _imagej_spacing(tif.imagej_metadata, resolution)
    physical = None
    if tif.is_ome and spacing is None:
        physical, unit = _ome_physical_size(tif, "Z" in _tiff_axes(path, label_axes, shape)[2])
    return _make_plan(
        path,
        fmt,
        axes,
        label_axes,
        shape,
        series.keyframe.shape,
        stored_dtype,
        dataoffset,
        size,
        spacing=spacing,
        unit=unit,
        physical=physical,
    )


def _imagej_plan(path: Path, stack: ImageJStack, size: int) -> _TiffPlan:
    """The plan of an ImageJ hyperstack read from its first IFD (:mod:`._imagej`)."""
    spacing, unit = _imagej_spacing(stack.metadata, stack.resolution or (None, None))
    return _make_plan(
        path,
        "imagej-tiff",
        stack.axes,
        stack.axes,
        stack.shape,
        stack.shape[-2:],
        stack.dtype,
        stack.dataoffset,
        size,
        spacing=spacing,
        unit=unit,
    )


def _page_count(shape: tuple[int, ...], page_shape: tuple[int, ...]) -> int:
    return math.prod(shape) // max(math.prod(page_shape), 1)


def _check_pages(path: Path, pages, n_pages: int, size: int) -> None:
    """Every page of a series that is not one raw block is there and inside the file."""
    if len(pages) != n_pages or any(p is None for p in pages):
        raise _fail(
            path,
            f"it holds {len(pages)} readable pages where {n_pages} are expected",
            "The file is probably truncated; copy it again",
        )
    for page in pages:
        ends = [o + b for o, b in zip(page.dataoffsets, page.databytecounts, strict=False)]
        if ends and max(ends) > size:
            raise _truncated(path, size, max(ends))
        if not any(page.databytecounts):
            raise _fail(path, "a page has no pixel data", _FIX_DAMAGED)


def _make_plan(
    path: Path,
    fmt: str,
    axes: str,
    label_axes: str,
    shape: tuple[int, ...],
    page_shape: tuple[int, ...],
    stored_dtype: np.dtype,
    dataoffset: int | None,
    size: int,
    *,
    spacing: tuple[float, ...] | None,
    unit: str | None,
    physical: tuple[float, ...] | None = None,
) -> _TiffPlan:
    """The plan from the series' axes and shape, whoever read them."""
    keep, perm, letters = _tiff_axes(path, label_axes, shape)
    presented = tuple(shape[keep[p]] for p in perm)
    n_pages = _page_count(shape, page_shape)
    n_lead = 0
    while n_lead <= len(shape) and math.prod(shape[:n_lead]) != n_pages:
        n_lead += 1
    sample_axis = None
    if "S" in axes[n_lead:] and shape[axes.index("S")] > 1:
        sample_axis = axes.index("S")
    if dataoffset is not None:
        need = dataoffset + math.prod(shape) * stored_dtype.itemsize
        if size < need:
            raise _truncated(path, size, need)
    return _TiffPlan(
        fmt,
        shape,
        n_lead,
        keep,
        perm,
        presented,
        letters,
        _native(stored_dtype),
        sample_axis,
        dataoffset,
        stored_dtype,
        spacing,
        unit,
        physical,
    )


def _imagej_spacing(meta: dict | None, resolution: tuple):
    """biom3d's ImageJ spacing: (1/XResolution, 1/YResolution, spacing entry), else None.

    Three values whenever the ImageJ description has a ``spacing`` entry, 2D images included:
    biom3d reads it that way, and its ``MEDIAN_SPACING`` then has three values.
    """
    if not meta or "spacing" not in meta:
        return None, None
    try:
        xres, yres = resolution
        # denominator / numerator of the rationals, exactly as biom3d computes 1/resolution
        sx, sy = xres[1] / xres[0], yres[1] / yres[0]
        sz = float(meta["spacing"])
    except (KeyError, ZeroDivisionError, TypeError, ValueError, IndexError):
        return None, None
    unit = meta.get("unit")
    unit = str(unit) if unit else None
    return (float(sx), float(sy), sz), unit


#: OME length units as people write them next to a spacing.
_OME_UNITS = {"µm": "micron", "um": "micron", "nm": "nm", "mm": "mm", "cm": "cm", "m": "m"}


def _ome_physical_size(tif, is_3d: bool):
    """OME ``PhysicalSizeZ/Y/X`` of the first image, (z, y, x) or (y, x), and its unit.

    biom3d reads no spacing from OME-TIFF; this is for the napari scale and the per-image table
    only (a missing size along an axis counts as 1, as OME's default).
    """
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.fromstring(tif.ome_metadata or "")
    except ElementTree.ParseError:
        return None, None
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None, None
    axes = ("Z", "Y", "X") if is_3d else ("Y", "X")
    if not any(f"PhysicalSize{a}" in pixels.attrib for a in axes):
        return None, None
    try:
        sizes = tuple(float(pixels.attrib.get(f"PhysicalSize{a}", 1.0)) for a in axes)
    except ValueError:
        return None, None
    unit = pixels.attrib.get(f"PhysicalSize{axes[-1]}Unit", "µm")
    return sizes, _OME_UNITS.get(unit, unit)


def _open_tiff(path: Path, size: int) -> tuple[ImageHeader, _TiffPlan]:
    stack = read_imagej_stack(path, size)
    if stack is not None:
        plan = _imagej_plan(path, stack, size)
    else:
        import tifffile  # only for what the ImageJ first-page reading leaves (tens of ms to import)

        with tifffile.TiffFile(path) as tif:
            plan = _tiff_plan(path, tif, size)
    header = ImageHeader(
        path,
        plan.format,
        plan.shape,
        plan.axes,
        plan.dtype,
        plan.spacing_xyz,
        plan.unit,
        physical_spacing_zyx=plan.physical_zyx,
    )
    return header, plan


def _tiff_planes(plan: _TiffPlan) -> tuple[np.ndarray, np.ndarray]:
    """For each presented plane (C order over C, Z): its page index and sample index (-1: none)."""
    outer = plan.shape[:-2]
    n = int(np.prod(outer, dtype=np.int64))
    multi = np.unravel_index(np.arange(n), outer) if outer else ()
    full = [np.zeros(n, dtype=np.int64) for _ in plan.series_shape]
    for j, m in enumerate(multi):
        full[plan.keep[plan.perm[j]]] = m
    lead = plan.series_shape[: plan.n_lead]
    pages = np.ravel_multi_index(full[: plan.n_lead], lead) if lead else np.zeros(n, np.int64)
    samples = full[plan.sample_axis] if plan.sample_axis is not None else np.full(n, -1)
    return np.asarray(pages, dtype=np.int64), np.asarray(samples, dtype=np.int64)


#: Bytes of compressed-TIFF planes decoded at a time by ``take``: a few planes, so that memory
#: stays small per worker (64 MB cost 2-3x the memory for no speed).
_TAKE_DECODE_BYTES = 8 * 2**20


def _decode_planes(tif, plan: _TiffPlan, pages: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Decode the pages holding the given planes; return the planes, shape (n, Y, X)."""
    unique = np.unique(pages)
    page_shape = plan.series_shape[plan.n_lead :]
    data = tif.asarray(key=[int(p) for p in unique], series=0)
    data = data.reshape((len(unique), *page_shape))
    rows = np.searchsorted(unique, pages)
    if plan.sample_axis is None:
        # planes asked for in page order (the usual case) need no reordering copy
        in_order = len(unique) == len(pages) and np.array_equal(unique, pages)
        planes = data if in_order else data[rows]
    else:
        s = plan.sample_axis - plan.n_lead + 1  # axis of S in ``data``
        planes = np.moveaxis(data, s, 1)[rows, samples]
    planes = planes.reshape((len(pages), *plan.shape[-2:]))
    return planes if planes.dtype.isnative else planes.astype(plan.dtype)


def _tiff_raw(path: Path, plan: _TiffPlan) -> _Raw:
    """The raw layout of an uncompressed, contiguous TIFF series."""
    kept = tuple(plan.series_shape[i] for i in plan.keep)
    perm = None if plan.perm == tuple(range(len(plan.perm))) else plan.perm
    return _Raw(path, plan.dataoffset, plan.stored_dtype, kept, "C", perm)


def _tiff_chunks(path: Path, plan: _TiffPlan, max_bytes: int) -> Iterator[np.ndarray]:
    if plan.dataoffset is not None:
        yield from _raw_chunks(_tiff_raw(path, plan), max_bytes)
        return
    pages, samples = _tiff_planes(plan)
    plane_bytes = int(np.prod(plan.shape[-2:], dtype=np.int64)) * plan.dtype.itemsize
    step = max(1, max_bytes // plane_bytes)
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            for i in range(0, len(pages), step):
                yield _decode_planes(tif, plan, pages[i : i + step], samples[i : i + step])
    except ImageReadError:
        raise
    except Exception as exc:
        raise _stream_damaged(path, exc) from exc


def _tiff_take(path: Path, plan: _TiffPlan, idx: np.ndarray) -> np.ndarray:
    if plan.dataoffset is not None:
        return _raw_take(_tiff_raw(path, plan), plan.shape, idx)
    pages, samples = _tiff_planes(plan)
    plane_len = int(np.prod(plan.shape[-2:], dtype=np.int64))
    plane_of = idx // plane_len
    needed = np.unique(plane_of)
    plane_bytes = plane_len * plan.dtype.itemsize
    step = max(1, _TAKE_DECODE_BYTES // plane_bytes)
    out = np.empty(idx.size, dtype=plan.dtype)
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            for i in range(0, len(needed), step):
                group = needed[i : i + step]
                planes = _decode_planes(tif, plan, pages[group], samples[group]).reshape(
                    len(group), -1
                )
                lo = np.searchsorted(plane_of, group[0], side="left")
                hi = np.searchsorted(plane_of, group[-1], side="right")
                rows = np.searchsorted(group, plane_of[lo:hi])
                out[lo:hi] = planes[rows, idx[lo:hi] % plane_len]
    except ImageReadError:
        raise
    except Exception as exc:
        raise _stream_damaged(path, exc) from exc
    return out
