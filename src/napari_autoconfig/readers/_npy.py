"""``.npy`` files: header and raw pixel layout from numpy's own header reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._errors import _fail, _truncated
from ._header import ImageHeader
from ._raw import _native, _Raw


def _open_npy(path: Path, size: int) -> tuple[ImageHeader, _Raw]:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        offset = f.tell()
    if dtype.hasobject or dtype.fields is not None:
        raise _fail(path, f"it holds {dtype} values, not pixels", "Save a plain numeric array")
    axes = {2: "YX", 3: "ZYX", 4: "CZYX"}.get(len(shape))
    if axes is None:
        raise _fail(
            path,
            f"the array has {len(shape)} dimensions {shape}",
            "Save 2D (Y, X), 3D (Z, Y, X) or 4D (C, Z, Y, X) arrays",
        )
    need = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < need:
        raise _truncated(path, size, need)
    shape = tuple(int(s) for s in shape)
    header = ImageHeader(path, "npy", shape, axes, _native(dtype), None, None)
    stored = tuple(shape)[::-1] if fortran else tuple(shape)
    perm = tuple(range(len(shape)))[::-1] if fortran else None
    return header, _Raw(path, offset, dtype, stored, "C", perm)
