"""OME-Zarr (NGFF 0.4 and 0.5) images, on disk or behind a URL, read from metadata and by chunks.

Shape, dtype, axes and spacing come from the group's metadata and the full-resolution array's
metadata alone: the ``multiscales`` entry (under ``ome`` in NGFF 0.5, zarr v3; at the top of the
attributes in 0.4, zarr v2), the axes' names, types and units, and the first dataset's ``scale``
transformation (times the multiscale's own, when given). Pixels are reached through zarr, which
fetches only the chunks holding the voxels asked for; a URL (``http(s)://``, ``s3://``, anything
fsspec knows) is read the same way, without downloading the image.

Presented order matches the TIFF readers: channel first, then z, y, x; axes of size 1 other than
y and x are dropped (a one-channel volume is (Z, Y, X), one plane is (Y, X)), and a time axis longer
than 1 is refused. Spacing is biom3d's (x, y, z), as an ImageJ TIFF of the same data gives it.

zarr (and fsspec for URLs) are optional: they are imported when an OME-Zarr image is met, with a
message saying what to install when they are missing.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import ImageReadError
from ._errors import _describe
from ._header import ImageHeader
from ._remote import chunk_bound, open_remote_store, remote_error

#: Suffixes of OME-Zarr images (folders), longest first.
ZARR_SUFFIXES = (".ome.zarr", ".zarr")

#: NGFF length units as the TIFF readers write them (so units agree across formats).
_UNITS = {
    "micrometer": "micron",
    "nanometer": "nm",
    "millimeter": "mm",
    "centimeter": "cm",
    "meter": "m",
}

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_INSTALL = 'Install the zarr extra: pip install "napari-autoconfig[zarr]" (zarr and fsspec)'


def is_url(location: object) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and _SCHEME.match(location) is not None


class Location(str):
    """A URL kept as text (a ``Path`` would fold its ``//``), with the ``name`` a path has."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """The last segment, without a trailing slash (``"a.ome.zarr"``)."""
        return self.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> Location:
        """The URL one segment up."""
        return Location(self.rstrip("/").rsplit("/", 1)[0])

    def __truediv__(self, other: str) -> Location:
        return Location(self.rstrip("/") + "/" + str(other).lstrip("/"))


def _zarr():
    try:
        import zarr
    except ImportError as exc:
        raise ImageReadError(
            f"Reading OME-Zarr images needs the zarr package. {_INSTALL}."
        ) from exc
    return zarr


@dataclass(frozen=True)
class _ZarrLayout:
    """Where the presented array lies: the full-resolution array and how its axes map."""

    location: str  # the image (group) path or URL
    array_path: str  # the full-resolution dataset inside the group
    file_shape: tuple[int, ...]
    presented_axes: tuple[int, ...]  # for each presented axis, the file axis it is


def _fail(location: object, what: str, fix: str) -> ImageReadError:
    return ImageReadError(f"Cannot read the OME-Zarr image {str(location)!r}: {what}. {fix}.")


@contextlib.contextmanager
def _open_group(location: str):
    """The image's zarr group and, for a URL, the caps of its answers (None on disk): a URL is
    read through a store whose reads time out and whose answers are capped (``_remote``), its
    connections closed on leaving."""
    zarr = _zarr()
    try:
        if not is_url(location):
            yield zarr.open_group(str(location), mode="r"), None
            return
        with open_remote_store(str(location)) as (store, caps):
            yield zarr.open_group(store, mode="r"), caps
    except ImportError as exc:  # fsspec or its protocol driver (aiohttp, s3fs...) missing
        raise ImageReadError(
            f"Reading {str(location)!r} needs a package that is missing ({exc}). {_INSTALL}, "
            "and for s3:// also s3fs."
        ) from exc


def _multiscale(attrs: dict, location: object) -> dict:
    ome = attrs.get("ome", attrs)  # NGFF 0.5 nests its metadata under "ome"
    multiscales = ome.get("multiscales") if isinstance(ome, dict) else None
    if not multiscales or not isinstance(multiscales, list):
        raise _fail(
            location,
            "its attributes have no 'multiscales' entry (not an OME-Zarr image)",
            "Write it as OME-Zarr (NGFF 0.4 or 0.5), e.g. with ome-zarr-py",
        )
    return multiscales[0]


def _scale(transforms: list | None, n: int, location: object) -> np.ndarray:
    """The product of the ``scale`` transformations, one entry per axis: a scale of another
    length, or with an entry that is not a number, is refused."""
    scale = np.ones(n)
    for transform in transforms or []:
        if not isinstance(transform, dict) or transform.get("type") != "scale":
            continue
        if "scale" in transform:
            given = transform["scale"]
            numbers = isinstance(given, list) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in given
            )
            if not numbers or len(given) != n:
                raise _fail(
                    location,
                    f"its scale {given!r} is not {n} numbers, one per axis",
                    "Write one positive voxel size per axis in the multiscales' scale",
                )
            scale = scale * np.asarray(given, dtype=float)
    return scale


def _open_zarr(location: str) -> tuple[ImageHeader, _ZarrLayout]:
    """Header and layout of an OME-Zarr image: from its metadata only, no chunk is read."""
    try:
        with _open_group(location) as (group, _):
            attrs = group.attrs.asdict()
            multiscale = _multiscale(attrs, location)
            datasets = multiscale.get("datasets") or []
            if not datasets:
                raise _fail(location, "its multiscales entry lists no dataset", "Rewrite it")
            array_path = str(datasets[0]["path"])
            array = group[array_path]
            file_shape = tuple(int(n) for n in array.shape)
            dtype = np.dtype(array.dtype)
    except ImageReadError:
        raise
    except Exception as exc:  # missing keys, damaged JSON, unreachable URL...
        raise _remote_or(location, exc) or _fail(
            location,
            f"its metadata cannot be read ({_describe(exc)})",
            "Check the path or URL and that it is a complete OME-Zarr image",
        ) from exc
    axes = multiscale.get("axes") or [{"name": a} for a in "tczyx"[-len(file_shape) :]]
    names = [(a["name"] if isinstance(a, dict) else str(a)).lower() for a in axes]
    if len(names) != len(file_shape):
        raise _fail(location, f"{len(names)} axes for a {len(file_shape)}-D array", "Rewrite it")
    for name, size in zip(names, file_shape, strict=True):
        if name not in "tczyx" or (name == "t" and size > 1):
            raise _fail(
                location,
                f"its axes {names} {file_shape} hold more than channels and z, y, x",
                "Save one time point per image",
            )
    if "y" not in names or "x" not in names:
        raise _fail(location, f"its axes {names} have no y and x", "Rewrite the image")
    kept = [i for i, (n, s) in enumerate(zip(names, file_shape, strict=True)) if s > 1 or n in "yx"]
    order = [i for letter in "czyx" for i in kept if names[i] == letter]
    shape = tuple(file_shape[i] for i in order)
    letters = "".join(names[i].upper() for i in order)
    n = len(file_shape)
    scale = _scale(datasets[0].get("coordinateTransformations"), n, location)
    scale = scale * _scale(multiscale.get("coordinateTransformations"), n, location)
    spatial = [names.index(a) for a in ("x", "y", "z") if a in names and names.index(a) in kept]
    spacing = tuple(float(scale[i]) for i in spatial)
    if not all(math.isfinite(v) and v > 0 for v in spacing):
        shown = ", ".join(f"{names[i]} {v:g}" for i, v in zip(spatial, spacing, strict=True))
        raise _fail(
            location,
            f"its voxel size ({shown}) is not positive and finite along every axis",
            "Write one positive voxel size per axis in the multiscales' scale",
        )
    units = {
        axis.get("unit") for axis in axes if isinstance(axis, dict) and axis.get("type") == "space"
    }
    unit = units.pop() if len(units) == 1 else None
    unit = _UNITS.get(unit, unit) if unit else None
    layout = _ZarrLayout(str(location), array_path, file_shape, tuple(order))
    fmt = "ome-zarr"
    header = ImageHeader(location, fmt, shape, letters, dtype.newbyteorder("="), spacing, unit)
    if 0 in shape:
        raise _fail(location, f"the image is empty (shape {shape})", "Remove it")
    return header, layout


@contextlib.contextmanager
def _array(layout: _ZarrLayout):
    """The full-resolution array; behind a URL, each of its keys capped at what it declares.
    Its failures are said in one line naming the image (see :func:`_reading`)."""
    with _open_group(layout.location) as (group, caps):
        array = _reading(layout.location, lambda: group[layout.array_path])
        if caps is not None:
            caps.chunk = chunk_bound(array)
        yield array


def _remote_or(location: object, exc: BaseException) -> ImageReadError | None:
    """The one line for a URL that timed out or over-sent, else None."""
    return remote_error(str(location), exc) if is_url(location) else None


def _reading(location: object, read):
    """``read()`` of pixels, its failures in one line naming the image (a damaged chunk, a
    stalled or over-sending server)."""
    try:
        return read()
    except ImageReadError:
        raise
    except Exception as exc:
        raise _remote_or(location, exc) or _fail(
            location,
            f"its pixel data cannot be read ({_describe(exc)})",
            "Check that the image is complete (a chunk may be damaged or missing)",
        ) from exc


def _read_presented(
    array, layout: _ZarrLayout, leading: tuple[int, ...], part: slice
) -> np.ndarray:
    """The presented array's block ``[*leading, part, ...]``: zarr reads the chunks it spans."""
    selection: list = [0] * len(layout.file_shape)  # dropped axes (size 1) are indexed out
    for axis in layout.presented_axes:
        selection[axis] = slice(None)
    for j, index in enumerate(leading):
        selection[layout.presented_axes[j]] = int(index)
    selection[layout.presented_axes[len(leading)]] = part
    block = np.asarray(array[tuple(selection)])
    remaining = list(layout.presented_axes[len(leading) :])  # block axes, presented order
    in_file = sorted(remaining)  # block axes as zarr returns them
    block = block.transpose([in_file.index(a) for a in remaining])
    return block if block.dtype.isnative else block.astype(block.dtype.newbyteorder("="))


def _zarr_whole(header: ImageHeader, layout: _ZarrLayout) -> np.ndarray:
    """The whole presented array (the baseline reader, and the npe2 reader's way)."""
    with _array(layout) as array:
        return _reading(
            layout.location,
            lambda: np.ascontiguousarray(_read_presented(array, layout, (), slice(None))),
        )


def _zarr_chunks(header: ImageHeader, layout: _ZarrLayout, max_bytes: int) -> Iterator[np.ndarray]:
    """Consecutive C-order pieces of the presented array, each read through zarr's chunks."""
    shape = header.shape
    itemsize = header.dtype.itemsize
    k = 0  # the first axis whose slabs fit the budget
    while k < len(shape) - 1 and int(np.prod(shape[k + 1 :])) * itemsize > max_bytes:
        k += 1
    step = max(1, max_bytes // (int(np.prod(shape[k + 1 :])) * itemsize))
    with _array(layout) as array:
        for outer in np.ndindex(*shape[:k]):
            for start in range(0, shape[k], step):
                part = slice(start, start + step)
                yield _reading(
                    layout.location, lambda o=outer, p=part: _read_presented(array, layout, o, p)
                )


def _zarr_take(header: ImageHeader, layout: _ZarrLayout, idx: np.ndarray) -> np.ndarray:
    """Values at sorted flat indices: zarr reads only the chunks that hold them."""
    presented = np.unravel_index(idx, header.shape)
    coords = [np.zeros(idx.size, dtype=np.int64) for _ in layout.file_shape]
    for j, axis in enumerate(layout.presented_axes):
        coords[axis] = presented[j]
    with _array(layout) as array:
        values = _reading(
            layout.location, lambda: np.asarray(array.get_coordinate_selection(tuple(coords)))
        )
    return values.astype(header.dtype, copy=False)
