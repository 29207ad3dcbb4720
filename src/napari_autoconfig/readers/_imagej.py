"""ImageJ hyperstacks read from their first IFD alone.

Almost every 3D TIFF a biologist has is an uncompressed ImageJ hyperstack (what ImageJ / Fiji and
``tifffile.imwrite(..., imagej=True)`` write): one sample per pixel, every plane stored back to
back after the first page's data offset, the shape in the ImageJ description. Its header is the
first IFD: about a dozen tags read here with :mod:`struct` in a few tens of microseconds, where
opening the file with tifffile takes ten times longer, holds the interpreter lock all along (two
threads reading headers then run slower than one) and costs importing tifffile on a cold start.

The series is what tifffile's ImageJ series gives (``TiffFile._series_imagej``, ``czt`` order, no
virtual-stack subtleties). Anything else (another tag, compression, samples, tiles, an order other
than ``czt``, pages not stored after the data, a description tifffile would read differently)
returns ``None``, and tifffile reads the file. A test holds both readings side by side.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._errors import _truncated

#: Bytes read from the start of the file: the first IFD and the values it points to sit there in
#: files written by ImageJ and tifffile; a first page lying further returns None.
_HEAD_BYTES = 16384

#: The tags an ImageJ hyperstack's first page holds; any other means the file is something more.
_KNOWN_TAGS = {
    254,  # NewSubfileType
    256,  # ImageWidth
    257,  # ImageLength
    258,  # BitsPerSample
    259,  # Compression
    262,  # PhotometricInterpretation
    270,  # ImageDescription
    273,  # StripOffsets
    277,  # SamplesPerPixel
    278,  # RowsPerStrip
    279,  # StripByteCounts
    282,  # XResolution
    283,  # YResolution
    284,  # PlanarConfiguration
    296,  # ResolutionUnit
    305,  # Software
    306,  # DateTime
    339,  # SampleFormat
    50838,  # IJMetadataByteCounts
    50839,  # IJMetadata
}

#: (SampleFormat, BitsPerSample) -> numpy kind and size.
_DTYPES = {
    (1, 8): "u1",
    (1, 16): "u2",
    (1, 32): "u4",
    (1, 64): "u8",
    (2, 8): "i1",
    (2, 16): "i2",
    (2, 32): "i4",
    (2, 64): "i8",
    (3, 32): "f4",
    (3, 64): "f8",
}

#: TIFF field types: struct letter per value.
_FIELDS = {1: "B", 2: "s", 3: "H", 4: "I", 5: "II", 6: "b", 7: "B", 8: "h", 9: "i", 10: "ii"}
_FIELD_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8}


@dataclass(frozen=True)
class ImageJStack:
    """What the first IFD of an ImageJ hyperstack says.

    Attributes
    ----------
    axes : str
        tifffile's squeezed series axes, e.g. ``"ZYX"``, ``"ZCYX"``, ``"YX"``.
    shape : tuple of int
        The series shape, in ``axes`` order.
    dtype : numpy.dtype
        Stored dtype, with the file's byte order.
    dataoffset : int
        Where the first plane starts; every plane follows it.
    metadata : dict
        The ImageJ description's entries, typed as tifffile types them.
    resolution : tuple or None
        ((x numerator, x denominator), (y numerator, y denominator)) of XResolution / YResolution,
        or None when either is missing.
    """

    axes: str
    shape: tuple[int, ...]
    dtype: np.dtype
    dataoffset: int
    metadata: dict
    resolution: tuple[tuple[int, int], tuple[int, int]] | None


def imagej_description_metadata(description: str) -> dict | None:
    """The ``key=value`` entries of an ImageJ description, typed (int, float, bool, str) the way
    tifffile types them; None when it is not an ImageJ description."""
    result: dict = {}
    for line in description.splitlines():
        key, equal, value = line.partition("=")
        if not equal:
            continue
        key, value = key.strip(), value.strip()
        result[key] = _typed(value)
    return result if "ImageJ" in result else None


def _typed(value: str):
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    lowered = value.lower()
    return {"true": True, "false": False}.get(lowered, value)


class _Truncated(Exception):
    """The description promises more planes than the file holds."""

    def __init__(self, need: int):
        super().__init__(need)
        self.need = need


def read_imagej_stack(path: Path, size: int) -> ImageJStack | None:
    """The series of an uncompressed ImageJ hyperstack from its first IFD, or None when the file
    is anything else (tifffile then reads it).

    Raises
    ------
    ImageReadError
        When the file ends before the planes its description promises.
    """
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)
    try:
        return _parse(head, size)
    except _Truncated as short:
        raise _truncated(path, size, short.need) from None
    except (struct.error, IndexError, KeyError, ValueError, UnicodeDecodeError):
        return None  # an unusual or damaged file: tifffile reads it, and says what is wrong


def _parse(head: bytes, size: int) -> ImageJStack | None:
    if head[:4] == b"II*\x00":
        order = "<"
    elif head[:4] == b"MM\x00*":
        order = ">"
    else:
        return None  # BigTIFF or not a TIFF
    (ifd,) = struct.unpack_from(order + "I", head, 4)
    (entries,) = struct.unpack_from(order + "H", head, ifd)
    tags: dict[int, tuple] = {}
    fields = struct.unpack_from(order + "HHI4s" * entries, head, ifd + 2)  # one call for all
    for i in range(entries):
        code, kind, count, value_or_offset = fields[4 * i : 4 * i + 4]
        if code not in _KNOWN_TAGS or code in tags or kind not in _FIELDS:
            return None
        nbytes = count * _FIELD_BYTES[kind]
        if nbytes <= 4:
            raw = value_or_offset[:nbytes]
        else:
            (offset,) = struct.unpack(order + "I", value_or_offset)
            if offset + nbytes > len(head):
                return None
            raw = head[offset : offset + nbytes]
        if kind == 2:  # text up to the first NUL, as tifffile reads it (not UTF-8: tifffile)
            tags[code] = (raw.split(b"\x00", 1)[0].decode("utf-8"),)
        else:
            tags[code] = struct.unpack(order + _FIELDS[kind] * count, raw)
    (next_ifd,) = struct.unpack_from(order + "I", head, ifd + 2 + 12 * entries)

    def one(code: int, default: int | None = None) -> int:
        values = tags.get(code, (default,))
        if len(values) != 1 or values[0] is None:
            raise KeyError(code)
        return int(values[0])

    description = tags.get(270, ("",))[0]
    if not description.startswith("ImageJ="):
        return None
    metadata = imagej_description_metadata(description)
    if metadata is None:
        return None
    bits = tags[258]
    if len(set(bits)) != 1 or one(277, 1) != 1 or one(259, 1) != 1 or one(254, 0) != 0:
        return None
    kind = _DTYPES.get((one(339, 1), bits[0]))
    if kind is None:
        return None
    dtype = np.dtype(order + kind)
    width, length = one(256), one(257)
    offsets, counts = tags[273], tags[279]
    plane_bytes = width * length * dtype.itemsize
    if len(offsets) != len(counts) or not offsets or width < 1 or length < 1:
        return None
    if len(offsets) > 1:
        # tifffile's contiguous page: strips back to back, adding up to the plane
        if sum(counts) != plane_bytes:
            return None
        for i in range(len(offsets) - 1):
            if counts[i] == 0 or offsets[i] + counts[i] != offsets[i + 1]:
                return None
    series = _imagej_series(metadata, length, width, next_ifd != 0)
    if series is None:
        return None
    axes, shape, images = series
    dataoffset = offsets[0]
    if dataoffset + images * plane_bytes > size:
        # whether its planes are one block or not, the file ends before the last one: tifffile
        # would warn in the log and read the first page alone, a silently wrong image
        raise _Truncated(dataoffset + images * plane_bytes)
    if next_ifd != 0 and images > 1 and dataoffset + images * plane_bytes > next_ifd:
        return None  # the pages are not stored after the data: not one block
    resolution = None
    if 282 in tags and 283 in tags:
        resolution = (tuple(tags[282]), tuple(tags[283]))
    return ImageJStack(axes, shape, dtype, dataoffset, metadata, resolution)


def _imagej_series(
    metadata: dict, length: int, width: int, multipage: bool
) -> tuple[str, tuple[int, ...], int] | None:
    """tifffile's ImageJ axes and shape (squeezed) for one sample per pixel, and the planes."""
    if str(metadata.get("order", "czt")).lower() not in ("czt", "default"):
        return None
    counts = [metadata.get(key, 1) for key in ("frames", "slices", "channels")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in counts):
        return None
    images = metadata.get("images", 1)
    if not isinstance(images, int) or isinstance(images, bool) or images < 1:
        return None
    frames, slices, channels = counts
    images = frames * slices * channels  # what tifffile takes for one sample per pixel
    if images == 1 and multipage:
        return None  # tifffile counts the pages
    shape = (frames, slices, channels, length, width)
    axes = "TZC" + "YX"
    kept = [(a, n) for a, n in zip(axes, shape, strict=True) if n > 1 or a in "YX"]
    return "".join(a for a, _ in kept), tuple(n for _, n in kept), images
