"""NIfTI, MetaImage and NRRD: the header, the pixel layout from the file's own binary (NIfTI) or
text (MetaImage, NRRD) header, and the whole-array SimpleITK fallback (:class:`_Whole`).

SimpleITK is imported only when a file needs it (about 0.1 s): a plain NIfTI-1 header is parsed
here with ITK's numbers (the float32 ``pixdim`` as a double, so a stored 0.8 reads
0.800000011920929); anything unusual (units other than mm, scaling, intents, NIfTI-2, ANALYZE),
MetaImage and NRRD headers go through SimpleITK's ``ReadImageInformation``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageReadError
from ._errors import _FIX_DAMAGED, _fail, _stream_damaged, _truncated
from ._header import ImageHeader
from ._raw import _native, _Raw
from ._stream import _gzip_open, _Stream


@dataclass(frozen=True)
class _Whole:
    """Fallback: SimpleITK reads the whole array."""

    file: Path


@functools.cache
def _sitk():
    """SimpleITK, imported on first use, and its pixel types as numpy dtypes."""
    import SimpleITK as sitk

    dtypes = {
        sitk.sitkUInt8: np.uint8,
        sitk.sitkInt8: np.int8,
        sitk.sitkUInt16: np.uint16,
        sitk.sitkInt16: np.int16,
        sitk.sitkUInt32: np.uint32,
        sitk.sitkInt32: np.int32,
        sitk.sitkUInt64: np.uint64,
        sitk.sitkInt64: np.int64,
        sitk.sitkFloat32: np.float32,
        sitk.sitkFloat64: np.float64,
        sitk.sitkVectorUInt8: np.uint8,
        sitk.sitkVectorInt8: np.int8,
        sitk.sitkVectorUInt16: np.uint16,
        sitk.sitkVectorInt16: np.int16,
        sitk.sitkVectorUInt32: np.uint32,
        sitk.sitkVectorInt32: np.int32,
        sitk.sitkVectorUInt64: np.uint64,
        sitk.sitkVectorInt64: np.int64,
        sitk.sitkVectorFloat32: np.float32,
        sitk.sitkVectorFloat64: np.float64,
    }
    return sitk, dtypes


def _open_itk(path: Path, kind: str, suffix: str, size: int):
    if kind == "nifti":
        try:
            found = _open_plain_nifti(path, suffix, size)
        except ImageReadError:
            raise
        except Exception:  # SimpleITK below names what is wrong with a damaged header
            found = None
        if found is not None:
            return found
    sitk, sitk_dtypes = _sitk()
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()  # header only (checked: 3 ms for a 50 MB .nii.gz)
    dtype = sitk_dtypes.get(reader.GetPixelID())
    if dtype is None:
        raise _fail(
            path,
            f"pixel type {sitk.GetPixelIDValueAsString(reader.GetPixelID())} is not supported",
            "Convert it to a scalar integer or float image",
        )
    dtype = np.dtype(dtype)
    size_xyz = tuple(int(s) for s in reader.GetSize())
    spacing = tuple(float(s) for s in reader.GetSpacing())
    comps = int(reader.GetNumberOfComponents())
    dim = len(size_xyz)
    spatial = tuple(reversed(size_xyz))
    if dim == 4 and comps == 1:  # biom3d reads the 4th NIfTI axis as channels
        shape, axes, spacing = spatial, "CZYX", spacing[:3]
    elif dim in (2, 3):
        shape, axes = spatial, "ZYX"[3 - dim :]
        if comps > 1:
            shape, axes = (comps, *spatial), "C" + axes
    else:
        raise _fail(
            path,
            f"{dim}D images with {comps} components per pixel are not supported",
            "Save 2D or 3D images (optionally with channels)",
        )
    unit = "mm"  # ITK's convention: NIfTI spacing is converted to mm, MetaImage / NRRD assume it
    header = ImageHeader(path, kind, shape, axes, dtype, spacing, unit)
    layout, file_unit = _itk_layout(header, suffix, size)
    if file_unit:
        header = dataclasses.replace(header, unit=file_unit)
    return header, layout


def _itk_layout(header: ImageHeader, suffix: str, size: int):
    """Pixel layout (and a unit the file states) of a NIfTI / MetaImage / NRRD, given its header.

    Parses the small text / binary header directly (no SimpleITK call), so the pixel functions
    pay no second ``ReadImageInformation``.
    """
    if header.format == "nifti":
        return _nifti_layout(header.path, suffix, size, header.shape, header.dtype), None
    if header.format == "metaimage":
        return _metaimage_layout(header.path, size, header.shape, header.dtype), None
    return _nrrd_layout(header.path, size, header.shape, header.dtype)


_NIFTI_DTYPES = {
    2: "u1",
    4: "i2",
    8: "i4",
    16: "f4",
    64: "f8",
    256: "i1",
    512: "u2",
    768: "u4",
    1024: "i8",
    1280: "u8",
}


#: NIfTI-1 units codes (xyzt_units & 7) for which ITK's spacing is pixdim unchanged: unknown, mm.
_NIFTI_UNITS_AS_IS = (0, 2)


def _open_plain_nifti(path: Path, suffix: str, size: int):
    """Header and layout of a plain NIfTI-1 file without SimpleITK, or None to ask SimpleITK.

    Plain: the NIfTI-1 magic, 2 or 3 dimensions, no intent, a scalar type, no scaling, spacing
    in mm (or unitless) and positive. ITK's spacing is then ``pixdim[1..n]``, float32 values
    widened to double, exactly what ``GetSpacing()`` returns.
    """
    opener = _gzip_open if suffix == ".nii.gz" else open
    with opener(path, "rb") as f:
        head = f.read(348)
    if len(head) < 348 or head[344:348] not in (b"n+1\0", b"ni1\0"):
        return None
    order = next((o for o in "<>" if struct.unpack(o + "i", head[:4])[0] == 348), None)
    if order is None:
        return None
    dims = struct.unpack(order + "8h", head[40:56])
    intent, code = struct.unpack(order + "2h", head[68:72])
    pixdim = struct.unpack(order + "8f", head[76:108])
    slope, inter = struct.unpack(order + "2f", head[112:120])
    units = head[123] & 7
    ndim = dims[0]
    if ndim not in (2, 3) or intent != 0 or code not in _NIFTI_DTYPES:
        return None
    if units not in _NIFTI_UNITS_AS_IS or any(d < 1 for d in dims[1 : ndim + 1]):
        return None
    spacing = tuple(float(v) for v in pixdim[1 : ndim + 1])
    if not all(np.isfinite(v) and v > 0 for v in spacing):
        return None
    if np.isfinite(slope) and slope != 0 and (slope != 1 or inter != 0):
        return None  # scaled: SimpleITK says which float type it presents
    shape = tuple(int(d) for d in dims[ndim:0:-1])
    dtype = _native(np.dtype(_NIFTI_DTYPES[code]))
    header = ImageHeader(path, "nifti", shape, "ZYX"[3 - ndim :], dtype, spacing, "mm")
    return header, _nifti_layout(path, suffix, size, shape, dtype)


def _nifti_layout(path: Path, suffix: str, size: int, shape, out_dtype: np.dtype):
    opener = _gzip_open if suffix == ".nii.gz" else open
    with opener(path, "rb") as f:
        head = f.read(540)
    if len(head) < 348:
        raise _fail(path, "the NIfTI header is incomplete", _FIX_DAMAGED)
    for order in "<>":
        sizeof_hdr = struct.unpack(order + "i", head[:4])[0]
        if sizeof_hdr in (348, 540):
            break
    else:
        raise _fail(path, "it does not start with a NIfTI header", _FIX_DAMAGED)
    if sizeof_hdr == 348:
        dims = struct.unpack(order + "8h", head[40:56])
        code = struct.unpack(order + "h", head[70:72])[0]
        vox_offset = struct.unpack(order + "f", head[108:112])[0]
        slope, inter = struct.unpack(order + "2f", head[112:120])
    else:
        code = struct.unpack(order + "h", head[12:14])[0]
        dims = struct.unpack(order + "8q", head[16:80])
        vox_offset = struct.unpack(order + "q", head[168:176])[0]
        slope, inter = struct.unpack(order + "2d", head[176:192])
    ndim = dims[0]
    count = int(np.prod([max(int(d), 1) for d in dims[1 : ndim + 1]], dtype=np.int64))
    code_dtype = _NIFTI_DTYPES.get(code)
    if suffix == ".nii.gz" and code_dtype is not None:  # cheap: the gzip trailer's size
        _gzip_complete(path, 0, int(vox_offset) + count * np.dtype(code_dtype).itemsize)
    # Vector pixels (dim[5]) and a 4th axis are the slowest axes on disk: the stored C order is
    # already the presented channel-first order. RGB24 and odd types: SimpleITK knows best.
    if code_dtype is None or count != int(np.prod(shape, dtype=np.int64)):
        return _Whole(path)
    stored = np.dtype(code_dtype).newbyteorder(order)
    scale = None
    if np.isfinite(slope) and slope != 0 and (slope != 1 or inter != 0):
        scale = (float(slope), float(inter) if np.isfinite(inter) else 0.0)
    elif _native(stored) != out_dtype:
        return _Whole(path)
    offset = int(vox_offset)
    if suffix == ".nii.gz":
        return _Stream(path, "gzip", 0, offset, stored, count, scale, out_dtype)
    need = offset + count * stored.itemsize
    if size < need:
        raise _truncated(path, size, need)
    return _Raw(path, offset, stored, tuple(shape), "C", None, scale, out_dtype)


_MET_DTYPES = {
    "MET_UCHAR": "u1",
    "MET_CHAR": "i1",
    "MET_USHORT": "u2",
    "MET_SHORT": "i2",
    "MET_UINT": "u4",
    "MET_INT": "i4",
    "MET_ULONG_LONG": "u8",
    "MET_LONG_LONG": "i8",
    "MET_FLOAT": "f4",
    "MET_DOUBLE": "f8",
}


def _read_text_header(path: Path, stop, limit: int = 2**20) -> tuple[list[str], int]:
    """Lines of a text header up to and including the line ``stop(line)`` accepts; data offset."""
    lines = []
    with open(path, "rb") as f:
        while f.tell() < limit:
            raw = f.readline(65536)
            if not raw:
                break
            line = raw.decode("latin-1").rstrip("\r\n")
            lines.append(line)
            if stop(line):
                return lines, f.tell()
    return lines, -1


def _with_perm(path, offset, dtype, spatial, comps, size, scale=None, out=None) -> _Raw:
    count = int(np.prod(spatial, dtype=np.int64)) * comps
    if offset < 0:  # data at the end of the file (MetaImage HeaderSize = -1, NRRD byte skip -1)
        offset = size - count * dtype.itemsize
    need = offset + count * dtype.itemsize
    if offset < 0 or size < need:
        raise _truncated(path, size, max(need, count * dtype.itemsize))
    if comps > 1:  # interleaved components: stored (..., C), presented (C, ...)
        nd = len(spatial)
        return _Raw(path, offset, dtype, (*spatial, comps), "C", (nd, *range(nd)), scale, out)
    return _Raw(path, offset, dtype, tuple(spatial), "C", None, scale, out)


def _metaimage_layout(path: Path, size: int, shape, out_dtype: np.dtype):
    lines, end = _read_text_header(path, lambda s: s.strip().lower().startswith("elementdatafile"))
    fields = {}
    for line in lines:
        if "=" in line:
            key, value = line.split("=", 1)
            fields[key.strip().lower()] = value.strip()
    code = _MET_DTYPES.get(fields.get("elementtype", "").upper())
    data_file = fields.get("elementdatafile", "")
    try:
        spatial = tuple(int(n) for n in fields.get("dimsize", "").split())[::-1]
        comps = int(fields.get("elementnumberofchannels", "1"))
    except ValueError:
        return _Whole(path)
    if ((comps,) if comps > 1 else ()) + spatial != tuple(shape):
        return _Whole(path)
    if code is None or end < 0 or data_file.upper() == "LIST" or "%" in data_file:
        return _Whole(path)
    msb = any(
        fields.get(k, "").lower() == "true"
        for k in ("binarydatabyteordermsb", "elementbyteordermsb")
    )
    stored = np.dtype(code).newbyteorder(">" if msb else "<")
    if _native(stored) != out_dtype:
        return _Whole(path)
    compressed = fields.get("compresseddata", "false").lower() == "true"
    if data_file.upper() == "LOCAL":
        data_path, offset = path, end
    else:
        data_path = path.parent / data_file
        data_size = data_path.stat().st_size if data_path.is_file() else 0
        if data_size == 0:
            raise _fail(
                path,
                f"its pixel file '{data_file}' is missing or empty",
                "Keep the .mhd and its data file together",
            )
        header_size = int(fields.get("headersize", "0"))
        size, offset = data_size, header_size
    count = int(np.prod(spatial, dtype=np.int64)) * comps
    if compressed:
        if comps > 1:  # SimpleITK inflates it whole: first, could the data hold it?
            available = (path.stat().st_size if data_path == path else size) - offset
            _check_capacity(path, "zlib", available, count, stored.itemsize)
            return _Whole(path)
        return _Stream(data_path, "zlib", offset, 0, stored, count, None, out_dtype)
    return _with_perm(data_path, offset, stored, spatial, comps, size)


_NRRD_TYPES = {
    "u1": ("uchar", "unsigned char", "uint8", "uint8_t"),
    "i1": ("signed char", "int8", "int8_t"),
    "i2": ("short", "short int", "signed short", "signed short int", "int16", "int16_t"),
    "u2": ("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"),
    "i4": ("int", "signed int", "int32", "int32_t"),
    "u4": ("uint", "unsigned int", "uint32", "uint32_t"),
    "i8": (
        "longlong",
        "long long",
        "long long int",
        "signed long long",
        "signed long long int",
        "int64",
        "int64_t",
    ),
    "u8": ("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"),
    "f4": ("float",),
    "f8": ("double",),
}
_NRRD_DTYPES = {name: code for code, names in _NRRD_TYPES.items() for name in names}


def _nrrd_layout(path: Path, size: int, shape, out_dtype: np.dtype):
    lines, end = _read_text_header(path, lambda s: s == "")
    fields = {}
    for line in lines[1:]:
        if line.startswith("#") or ":=" in line or ":" not in line:
            continue
        key, value = line.split(":", 1)
        fields[key.strip().lower().replace(" ", "")] = value.strip()
    unit = None
    units = re.findall(r'"([^"]*)"', fields.get("spaceunits", ""))
    if units and all(u == units[0] for u in units) and units[0]:
        unit = units[0]
    code = _NRRD_DTYPES.get(fields.get("type", "").lower())
    encoding = fields.get("encoding", "").lower()
    sizes = [int(s) for s in fields.get("sizes", "").split()]
    _check_nrrd_capacity(path, fields, encoding, sizes, code, size, end)
    if code is None or encoding not in ("raw", "gzip", "gz"):
        return _Whole(path), unit
    shape = tuple(shape)
    kinds = fields.get("kinds", "").lower().split()
    if (
        len(sizes) == len(shape)
        and sizes[0] == shape[0]
        and tuple(sizes[:0:-1]) == shape[1:]
        and not (kinds and kinds[0] in ("domain", "space"))
    ):
        comps, spatial = sizes[0], shape[1:]  # vector axis first (fastest) on disk
    elif tuple(sizes[::-1]) == shape:
        comps, spatial = 1, shape
    else:
        return _Whole(path), unit
    stored = np.dtype(code).newbyteorder(">" if fields.get("endian") == "big" else "<")
    if _native(stored) != out_dtype:
        return _Whole(path), unit
    data_file = fields.get("datafile")
    line_skip = int(fields.get("lineskip", "0"))
    byte_skip = int(fields.get("byteskip", "0"))
    if data_file is None:
        if end < 0:
            raise _fail(path, "the NRRD header never ends", _FIX_DAMAGED)
        data_path, offset = path, end
        if line_skip:
            return _Whole(path), unit
    else:
        if data_file.startswith("LIST") or len(data_file.split()) > 1:
            return _Whole(path), unit
        data_path = path.parent / data_file
        if not data_path.is_file() or data_path.stat().st_size == 0:
            raise _fail(
                path,
                f"its pixel file '{data_file}' is missing or empty",
                "Keep the .nhdr and its data file together",
            )
        size, offset = data_path.stat().st_size, 0
        if line_skip:
            with open(data_path, "rb") as f:
                for _ in range(line_skip):
                    f.readline()
                offset = f.tell()
    count = int(np.prod(spatial, dtype=np.int64)) * comps
    if encoding == "raw":
        return _with_perm(
            data_path, -1 if byte_skip == -1 else offset + byte_skip, stored, spatial, comps, size
        ), unit
    if comps > 1 or byte_skip < 0:
        return _Whole(path), unit
    _gzip_complete(data_path, offset, byte_skip + count * stored.itemsize)  # its trailer's size
    return _Stream(data_path, "gzip", offset, byte_skip, stored, count, None, out_dtype), unit


#: The most one byte of each encoding can stand for, decoded: deflate's (gzip, zlib) limit is
#: 1032 to 1; bzip2 reached 1.2 million to 1 on zeros here (its runs and Huffman stages), given
#: room to spare; text (ascii) needs at least one character per value.
_MOST_DECODED_PER_BYTE = {
    "gzip": 1032,
    "gz": 1032,
    "zlib": 1032,
    "bzip2": 2**22,
    "bz2": 2**22,
    "raw": 1,
    "hex": 0.5,
}
_TEXT_ENCODINGS = ("ascii", "text", "txt")


def _check_capacity(path: Path, encoding: str, available: int, count: int, itemsize: int):
    """Refuse a header that declares more voxels than its data could hold, before anything is
    allocated for them (a 300-byte NRRD declaring 1024^3 voxels made SimpleITK allocate 1 GB).

    ``available`` is the bytes of encoded data the file has; ``count`` the values declared.
    """
    if encoding in _TEXT_ENCODINGS:
        need, most = count, available  # a value takes one character at least
        unit = "values"
    elif encoding in _MOST_DECODED_PER_BYTE:
        need, most = count * itemsize, available * _MOST_DECODED_PER_BYTE[encoding]
        unit = "bytes"
    else:
        return
    if need > most:
        raise _fail(
            path,
            f"its header declares {count} voxels, but its {available} bytes of {encoding} data "
            f"can hold at most {int(most)} {unit}",
            "The file is truncated or its header is wrong; copy or export it again",
        )


def _check_nrrd_capacity(path, fields, encoding, sizes, code, size, end) -> None:
    """:func:`_check_capacity` for a NRRD header (data in the file, or in one detached file)."""
    data_file = fields.get("datafile")
    if data_file is None:
        if end < 0:
            return  # "the header never ends" is said later
        available = size - end
    elif data_file.startswith("LIST") or len(data_file.split()) > 1:
        return  # several data files: SimpleITK checks each
    else:
        data_path = path.parent / data_file
        available = data_path.stat().st_size if data_path.is_file() else 0
    count = int(np.prod(sizes, dtype=np.int64)) if sizes else 0
    itemsize = np.dtype(code).itemsize if code else 1
    _check_capacity(path, encoding, available, count, itemsize)


def _gzip_complete(path: Path, offset: int, need: int) -> None:
    """Refuse a gzip stream (from ``offset`` to the end of ``path``) cut short: its trailer's
    ISIZE (the inflated size modulo 2**32) must be the ``need`` bytes the header declares.

    A file of several gzip members (bgzip) carries only its last member's size there: the
    stream is then inflated once to count its bytes, in bounded memory.
    """
    with open(path, "rb") as f:
        f.seek(0, 2)
        end = f.tell()
        if end - offset < 18:  # a gzip header and trailer are 18 bytes at least
            raise _truncated(path, end, offset + 18)
        f.seek(end - 4)
        isize = int.from_bytes(f.read(4), "little")
        if isize == need % 2**32:
            return
        f.seek(offset)
        got = 0
        try:
            with _gzip_open(f) as stream:
                while got < need:
                    block = stream.read(min(2**22, need - got))
                    if not block:
                        break
                    got += len(block)
        except (EOFError, OSError, ValueError) as exc:
            raise _stream_damaged(path, exc) from exc
    if got < need:
        raise _fail(
            path,
            f"the compressed pixel data is truncated (it inflates to {got} bytes, the header "
            f"declares {need})",
            "The copy or download was probably interrupted; copy the file again",
        )


def _read_whole_sitk(path: Path) -> np.ndarray:
    sitk = _sitk()[0]
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise _stream_damaged(path, exc) from exc
    arr = sitk.GetArrayFromImage(image)
    if image.GetNumberOfComponentsPerPixel() > 1:
        arr = np.moveaxis(arr, -1, 0)
    return np.ascontiguousarray(arr)
