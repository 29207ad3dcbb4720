"""Per-format image facts (shape, dtype, spacing) from headers, and lean pixel access.

Data enters the package here. :func:`read_header` opens a file and reads only its header; it never
decodes pixels, so scanning a folder of large volumes costs milliseconds per file.
:func:`iter_chunks` and :func:`take` then reach the pixels in bounded memory: memory maps where the
pixels lie raw in the file (``.npy``, uncompressed TIFF, ``.nii``, raw MetaImage / NRRD), page by
page decoding for compressed TIFF, and one sequential pass of the decompressor for ``.nii.gz`` and
zlib/gzip MetaImage / NRRD.

Array order presented to the rest of the package (numpy C order, channel first):

- 3D ``(Z, Y, X)``, 2D ``(Y, X)``, with channels ``(C, Z, Y, X)`` / ``(C, Y, X)``.
- ImageJ and OME TIFF: the file's axes reordered channel first (a ZCYX hyperstack is presented as
  CZYX, which is what biom3d's ``tif_read_imagej`` gives). A single-channel ImageJ stack is
  ``(Z, Y, X)``; biom3d reads it as ``(1, Z, Y, X)``, which plans the same: the channel count is
  reported instead.
- Plain TIFF (tifffile "shaped" or generic): the file's own order, except contiguous RGB samples
  (YXS), which are moved first like channels. A stack of 3 or 4 planes that tifffile stored as one
  planar "RGB" page stays a (Z, Y, X) stack: biom3d's reader moves those planes last, a bug.
- NIfTI / MetaImage / NRRD: SimpleITK's ``GetArrayFromImage`` order (z, y, x); a 4D NIfTI is read
  by biom3d as (C, Z, Y, X) with the 4th axis as channels, and so it is here; vector pixels
  (components > 1, which SimpleITK puts last) are presented first, as channels.
- ``.npy``: the array as saved; 2, 3 and 4 dimensions mean YX, ZYX and CZYX.
- OME-Zarr (``.zarr`` / ``.ome.zarr`` folders, or a URL): channel first, then z, y, x, from the
  axes' names; spacing from the full-resolution level's scale (``_zarr``).
- One image over several single-channel files (nnU-Net's ``case_0000``...): give
  :func:`read_header` the tuple of files; it is presented as (C, ...) (``_channels``).

Spacing follows biom3d, in (x, y, z) order: SimpleITK's ``GetSpacing()`` as Python floats for
NIfTI / MetaImage / NRRD (a float32 0.8 in a NIfTI reads 0.800000011920929: no rounding), and
``(1/XResolution, 1/YResolution, spacing)`` for an ImageJ TIFF with a ``spacing`` entry, each
resolution computed as denominator / numerator of the TIFF rational, as biom3d does. Other TIFFs
and ``.npy`` have none. 2D images have two entries.

Fallbacks (documented; memory is then not bounded): vector NIfTI, NRRD / MetaImage with an
encoding other than raw / gzip / zlib (bzip2, ascii, file lists), compressed vector MetaImage and
NRRD, and NIfTI whose stored type SimpleITK converts without a scale factor are read whole through
SimpleITK. A scaled NIfTI (scl_slope / scl_inter) is streamed and scaled the way ITK does (cast to
the output float type, then slope and intercept in double precision).

This module holds the public API and the dispatch by suffix; the per-format work lives in private
modules: ``_header`` (:class:`ImageHeader`), ``_errors`` (the ImageReadError messages), ``_raw``
(raw pixels: sequential reads, memory maps), ``_stream`` (gzip / zlib streams),
``_npy``, ``_tiff`` (TIFF, ImageJ, OME) and ``_itk`` (NIfTI, MetaImage, NRRD via their own headers
and SimpleITK, which is imported only for the files that need it: a TIFF run never loads it).
Pixel layouts (``_Raw``, ``_Stream``, ``_TiffPlan``, ``_Whole``) say how the presented array lies
in the file; they stay private and are re-derived from the path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import ImageReadError
from ._channels import _Channels, _channels_chunks, _channels_take, _open_channels
from ._errors import _FIX_DAMAGED, _describe, _fail, _stream_damaged, shrank_error
from ._header import ImageHeader
from ._itk import _itk_layout, _open_itk, _read_whole_sitk
from ._npy import _open_npy
from ._raw import (
    _flat_map,
    _mapping_of,
    _native,
    _Raw,
    _raw_chunks,
    _raw_take,
    _release,
    _view_blocks,
)
from ._remote import remote_timeout, set_remote_timeout
from ._stream import _STREAM_BLOCK, _Stream, _stream_blocks, _stream_take
from ._tiff import _open_tiff, _tiff_chunks, _tiff_raw, _tiff_take, _TiffPlan
from ._zarr import (
    ZARR_SUFFIXES,
    Location,
    _open_zarr,
    _zarr_chunks,
    _zarr_take,
    _zarr_whole,
    _ZarrLayout,
    is_url,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "ZARR_SUFFIXES",
    "ImageHeader",
    "Location",
    "drop_pages",
    "flat_view",
    "image_suffix",
    "is_url",
    "iter_chunks",
    "read_array",
    "read_header",
    "remote_timeout",
    "set_remote_timeout",
    "shrank_error",
    "take",
    "tiff_series",
]

IMAGE_SUFFIXES: tuple[str, ...] = (
    ".ome.tiff",
    ".ome.tif",
    ".tiff",
    ".tif",
    ".nii.gz",
    ".nii",
    ".mha",
    ".mhd",
    ".nrrd",
    ".nhdr",
    ".npy",
    *ZARR_SUFFIXES,
)

_FORMAT_OF_SUFFIX = {
    ".ome.tiff": "tiff",
    ".ome.tif": "tiff",
    ".tiff": "tiff",
    ".tif": "tiff",
    ".nii.gz": "nifti",
    ".nii": "nifti",
    ".mha": "metaimage",
    ".mhd": "metaimage",
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
    ".npy": "npy",
    ".ome.zarr": "zarr",
    ".zarr": "zarr",
}


#: Longest first, so that ``.ome.tif`` wins over ``.tif`` and ``.nii.gz`` over ``.gz``.
_SUFFIXES_LONGEST_FIRST = tuple(sorted(IMAGE_SUFFIXES, key=len, reverse=True))


def image_suffix(path: str | os.PathLike) -> str | None:
    """Return the image suffix a reader claims for ``path`` (longest match, any case), else None."""
    # the name by string: a Path per call cost more than the rest of a header read's bookkeeping
    name = os.path.basename(os.fspath(path).rstrip("/" + os.sep)).lower()
    for suffix in _SUFFIXES_LONGEST_FIRST:
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return None


# --------------------------------------------------------------------------------------------
# Public API


def read_header(path: str | os.PathLike | tuple) -> ImageHeader:
    """Read shape, dtype, spacing and unit of an image from its header, without decoding pixels.

    Parameters
    ----------
    path : str or PathLike, or tuple of them
        An image file with one of :data:`IMAGE_SUFFIXES`; or a tuple of single-channel files of
        one shape, the channels of one image in order (nnU-Net's ``case_0000``, ``case_0001``...),
        presented as one (C, ...) image whose ``path`` is the first file.

    Returns
    -------
    ImageHeader

    Raises
    ------
    ImageReadError
        Missing, zero-byte, garbage, truncated (raw pixels shorter than the header says) or
        zero-size images, and suffixes no reader claims.
    """
    if isinstance(path, (tuple, list)):
        return _open_channels(tuple(Path(p) for p in path), read_header)[0]
    if is_url(path):  # OME-Zarr behind a URL: metadata only, through fsspec
        header, layout = _open_zarr(Location(path))
        return replace(header, layout=layout)
    path = Path(path)
    header, _ = _open(path)
    return header


def iter_chunks(
    header: ImageHeader, max_bytes: int = 64 * 2**20, reuse: bool = False
) -> Iterator[np.ndarray]:
    """Yield consecutive C-order pieces of the presented array, each at most ~``max_bytes``.

    Concatenating ``[c.ravel() for c in chunks]`` equals ``read_array(header).ravel()``. A piece is
    never larger than ``max_bytes`` except that a TIFF piece holds at least one plane; compressed
    streams are yielded in blocks of at most 4 MB. With ``reuse``, raw and compressed streams may
    read every piece into the same buffer: use each piece before asking for the next (fresh
    buffers cost a page fault per 4 KB).

    Raises
    ------
    ImageReadError
        When the pixel data turns out damaged or truncated while reading.
    """
    max_bytes = max(int(max_bytes), header.dtype.itemsize)
    layout = _layout(header)
    if isinstance(layout, _Channels):
        yield from _channels_chunks(layout, header.dtype, max_bytes, iter_chunks)
    elif isinstance(layout, _ZarrLayout):
        yield from _zarr_chunks(header, layout, max_bytes)
    elif isinstance(layout, _Raw):
        yield from _raw_chunks(layout, max_bytes, reuse)
    elif isinstance(layout, _Stream):
        for _, block in _stream_blocks(layout, min(max_bytes, _STREAM_BLOCK), reuse):
            yield block
    elif isinstance(layout, _TiffPlan):
        yield from _tiff_chunks(header.path, layout, max_bytes)
    else:
        arr = _read_whole_sitk(layout.file)
        yield from (np.array(b) for b in _view_blocks(arr, max_bytes))


def take(header: ImageHeader, flat_indices: np.ndarray) -> np.ndarray:
    """Return the values at C-order flat indices of the presented array.

    Parameters
    ----------
    header : ImageHeader
    flat_indices : numpy.ndarray
        int64 indices into ``read_array(header).ravel()``, sorted ascending, repeats allowed
        (unsorted input is accepted, at the cost of a sort).

    Returns
    -------
    numpy.ndarray
        ``header.dtype`` values, one per index, in the order given.
    """
    idx = np.asarray(flat_indices, dtype=np.int64).ravel()
    if idx.size == 0:
        return np.empty(0, dtype=header.dtype)
    if idx.size > 1 and np.any(idx[1:] < idx[:-1]):
        order = np.argsort(idx, kind="stable")
        out = np.empty(idx.size, dtype=header.dtype)
        out[order] = take(header, idx[order])
        return out
    total = int(np.prod(header.shape, dtype=np.int64))
    if idx[0] < 0 or idx[-1] >= total:  # sorted: the ends are the extremes
        raise IndexError(f"take: indices outside 0..{total - 1} for '{header.path}'")
    layout = _layout(header)
    if isinstance(layout, _Channels):
        return _channels_take(layout, header.dtype, idx, take)
    if isinstance(layout, _ZarrLayout):
        return _zarr_take(header, layout, idx)
    if isinstance(layout, _Raw):
        return _raw_take(layout, header.shape, idx)
    if isinstance(layout, _Stream):
        return _stream_take(layout, idx, header.dtype)
    if isinstance(layout, _TiffPlan):
        return _tiff_take(header.path, layout, idx)
    return _read_whole_sitk(layout.file).ravel()[idx]


def flat_view(header: ImageHeader) -> np.ndarray | None:
    """The presented array as a flat read-only view over a memory map, when the file allows it.

    Only where the pixels lie raw in the file in presented C order, native byte order and
    unscaled (uncompressed contiguous TIFF, ``.nii``, C-order ``.npy``, raw MetaImage / NRRD);
    ``None`` otherwise. Nothing is read until the view is; pages it touched stay mapped until
    :func:`drop_pages`.
    """
    layout = _layout(header)
    if isinstance(layout, _TiffPlan):
        layout = _tiff_raw(header.path, layout) if layout.dataoffset is not None else None
    if not isinstance(layout, _Raw) or layout.perm is not None or layout.scale is not None:
        return None
    if not layout.dtype.isnative:
        return None
    return _flat_map(layout)


def drop_pages(view: np.ndarray) -> None:
    """Let go of the file pages a :func:`flat_view` touched (clean pages: nothing is lost)."""
    _release(_mapping_of(view))


def tiff_series(header: ImageHeader) -> tuple[tuple[int, ...], bool] | None:
    """The shape ``tifffile.imread`` gives a TIFF (its first series), and whether the presented
    array is that array's voxels in the same order (only axes of size 1 dropped); None for
    other formats.

    nnU-Net's TIFF readers see that shape: ``Tiff3DIO`` takes any 3-axis array for a volume,
    ``NaturalImage2DIO`` a 2-axis one, or 3 axes ending in 3 or 4 RGB(A) samples. The order is
    False where the package reorders (an ImageJ ZCYX hyperstack presented CZYX, RGB samples
    moved first).
    """
    plan = _layout(header) if header.format in ("tiff", "ome-tiff", "imagej-tiff") else None
    if not isinstance(plan, _TiffPlan):
        return None
    return tuple(plan.series_shape), tuple(plan.perm) == tuple(range(len(plan.perm)))


def read_array(header: ImageHeader) -> np.ndarray:
    """Decode the whole array at once, the way biom3d does, in the presented order.

    This is the whole-decode baseline (and the reader for sample data): SimpleITK's
    ``ReadImage`` for NIfTI / MetaImage / NRRD, tifffile's ``series.asarray`` for TIFF and
    ``numpy.load`` for ``.npy``. It shares no code with :func:`iter_chunks` / :func:`take`, so
    each checks the other. Not bounded in memory.
    """
    path = header.path
    if isinstance(header.layout, _Channels):
        return np.stack([read_array(h) for h in header.layout.headers]).astype(header.dtype)
    if header.format == "ome-zarr":
        return _zarr_whole(header, _layout(header))
    try:
        if header.format == "npy":
            arr = np.load(path, allow_pickle=False)
        elif header.format.endswith("tiff"):
            layout = _layout(header)
            import tifffile

            with tifffile.TiffFile(path) as tif:
                arr = tif.series[0].asarray()
            kept = tuple(layout.series_shape[i] for i in layout.keep)
            arr = arr.reshape(kept).transpose(layout.perm)
        else:
            arr = _read_whole_sitk(path)
    except ImageReadError:
        raise
    except Exception as exc:
        raise _stream_damaged(path, exc) from exc
    arr = np.ascontiguousarray(arr)
    return arr if arr.dtype.isnative else arr.astype(_native(arr.dtype))


# --------------------------------------------------------------------------------------------
# Dispatch


def _open(path: Path) -> tuple[ImageHeader, object]:
    """Header and pixel layout of ``path``; every failure becomes an ImageReadError."""
    suffix = image_suffix(path)
    if suffix is None:
        raise _fail(
            path, "no reader claims this file name", f"Use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    try:
        info = os.stat(path)
    except OSError as exc:
        raise _fail(
            path,
            f"the file cannot be opened ({exc.strerror or exc})",
            "Check that it exists and that you may read it",
        ) from exc
    size = info.st_size
    kind = _FORMAT_OF_SUFFIX[suffix]
    if kind == "zarr":  # a folder: metadata files and chunks, read through zarr
        header, layout = _open_zarr(path)
        return replace(header, layout=layout), layout
    if not stat.S_ISREG(info.st_mode):
        raise _fail(path, "it is not a file", "Remove it from the image folder")
    if size == 0:
        raise _fail(path, "the file is empty (0 bytes)", _FIX_DAMAGED)
    try:
        if kind == "tiff":
            header, layout = _open_tiff(path, size)
        elif kind == "npy":
            header, layout = _open_npy(path, size)
        else:
            header, layout = _open_itk(path, kind, suffix, size)
    except ImageReadError:
        raise
    except Exception as exc:  # garbage makes every library raise its own type
        raise _fail(
            path, f"it is not a readable {kind} image ({_describe(exc)})", _FIX_DAMAGED
        ) from exc
    if 0 in header.shape:
        raise _fail(
            path,
            f"the image is empty (shape {header.shape})",
            "Remove this zero-size image from the folder",
        )
    return replace(header, layout=layout), layout


def _layout(header: ImageHeader):
    """Where the pixels of a header's file lie: kept from the header read, or re-derived."""
    if header.layout is not None:
        return header.layout
    if header.format == "ome-zarr":
        return _open_zarr(header.path)[1]
    if header.format in ("nifti", "metaimage", "nrrd"):
        try:
            size = header.path.stat().st_size
            return _itk_layout(header, image_suffix(header.path) or "", size)[0]
        except ImageReadError:
            raise
        except Exception as exc:
            raise _stream_damaged(header.path, exc) from exc
    return _open(header.path)[1]
