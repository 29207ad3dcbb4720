"""Synthetic datasets for the benchmark, written to disk the way users have them.

Smooth random structures plus noise (so files compress like microscopy), masks with 10-30 %
foreground and a second label inside, ImageJ spacing in TIFF and the same spacing in NIfTI; one copy
per format (``tif``: uncompressed ImageJ TIFF, ``tif-zlib``, ``nii.gz``: gzip level 1, nibabel's
default). Big volumes are written slab by slab so the generator stays lean.
"""

from __future__ import annotations

import gzip
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SPACING_XYZ = (0.5, 0.5, 2.0)  # micrometres; exact in float32 so TIFF and NIfTI agree
FORMATS = ("tif", "tif-zlib", "nii.gz")
SUFFIX = {"tif": ".tif", "tif-zlib": ".tif", "nii.gz": ".nii.gz"}
MB = 2**20


def _field(
    shape_zyx: tuple[int, int, int], seed: int, z0: int, z1: int, step: int = 1
) -> np.ndarray:
    """Smooth random structures of the whole volume, planes ``z0:z1`` (every ``step``-th voxel).

    A sum of a few separable cosines with random frequencies: each plane is computed from its
    absolute coordinates, so slabs written one after the other join seamlessly.
    """
    nz, ny, nx = shape_zyx
    prng = np.random.default_rng([seed, 7])
    z = np.arange(z0, z1, step, dtype=np.float32)
    y = np.arange(0, ny, step, dtype=np.float32)
    x = np.arange(0, nx, step, dtype=np.float32)
    out = np.zeros((len(z), len(y), len(x)), np.float32)
    for _ in range(4):
        fz, fy, fx = prng.uniform(1.0, 6.0, 3) * 2 * np.pi / np.array([nz, ny, nx])
        pz, py, px = prng.uniform(0.0, 2 * np.pi, 3)
        zy = (np.cos(fz * z + pz)[:, None] * np.cos(fy * y + py)[None, :]).astype(np.float32)
        out += zy[:, :, None] * np.cos(fx * x + px).astype(np.float32)[None, None, :]
    return out


def thresholds(shape_zyx: tuple[int, int, int], seed: int) -> tuple[float, float]:
    """Field levels giving this volume's foreground fraction (10-30 %) and a second label inside."""
    fraction = np.random.default_rng([seed, 11]).uniform(0.10, 0.30)
    coarse = _field(shape_zyx, seed, 0, shape_zyx[0], step=4)
    low, high = np.quantile(coarse, [1.0 - fraction, 1.0 - fraction / 4])
    return float(low), float(high)


def synth_slab(
    shape_zyx: tuple[int, int, int],
    dtype: np.dtype,
    seed: int,
    z0: int,
    z1: int,
    thresholds: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Planes ``z0:z1`` of one synthetic image and its mask (labels 0, 1, 2; uint8)."""
    smooth = _field(shape_zyx, seed, z0, z1)
    mask = (smooth > thresholds[0]).astype(np.uint8)
    mask += smooth > thresholds[1]
    dtype = np.dtype(dtype)
    scale = 0.2 if dtype.itemsize == 1 else 1.0  # keep 8-bit images in range
    image = np.where(mask > 0, smooth * 300 + 1000, smooth * 50 + 200).astype(np.float32)
    noise = np.random.default_rng([seed, z0, 3]).standard_normal(image.shape, dtype=np.float32)
    image += noise * 30
    image *= scale
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        np.clip(image, info.min, info.max, out=image)
    return image.astype(dtype), mask


def _nifti_header(shape_zyx: tuple[int, ...], dtype: np.dtype) -> bytes:
    """A single-file NIfTI-1 header (with its 4-byte extension flag) for a (Z, Y, X) array."""
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(tuple(reversed(shape_zyx)))  # NIfTI is (x, y, z), stored x fastest
    affine = np.diag([*SPACING_XYZ[: len(shape_zyx)], *([1.0] * (4 - len(shape_zyx)))])
    header.set_zooms(SPACING_XYZ[: len(shape_zyx)])
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header["vox_offset"] = 352
    return header.binaryblock + b"\0" * 4


class _SlabWriter:
    """Writes one (Z, Y, X) volume plane-slab by plane-slab: uncompressed ImageJ TIFF or .nii.gz.

    Only one slab is ever in memory. The ImageJ TIFF is laid out by ``tifffile.memmap`` (contiguous
    data, truncated ImageJ layout above 4 GB, as ImageJ does), then filled with plain writes; the
    NIfTI goes through gzip level 1, nibabel's default.
    """

    def __init__(self, path: Path, fmt: str, shape_zyx: tuple[int, ...], dtype: np.dtype):
        import tifffile

        if fmt == "tif":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "truncating ImageJ file" above 4 GB: intended
                layout = tifffile.memmap(
                    path, shape=shape_zyx, dtype=dtype, **_imagej_kwargs(len(shape_zyx))
                )
                offset = layout.offset
                del layout
            self._file = open(path, "r+b")  # closed in close()
            self._file.seek(offset)
        elif fmt == "nii.gz":
            self._file = gzip.open(path, "wb", compresslevel=1)
            self._file.write(_nifti_header(shape_zyx, np.dtype(dtype)))
        else:
            raise ValueError(f"no slab writer for {fmt}")

    def write(self, slab: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(slab).data)

    def close(self) -> None:
        self._file.close()


def _imagej_kwargs(ndim: int) -> dict:
    """ImageJ TIFF metadata for a 2D or 3D array: resolution, spacing entry, axes."""
    return {
        "imagej": True,
        "resolution": (1 / SPACING_XYZ[0], 1 / SPACING_XYZ[1]),
        "metadata": {"spacing": SPACING_XYZ[2], "unit": "micron", "axes": "ZYX"[3 - ndim :]},
    }


def write_case(
    root: Path,
    index: int,
    shape_zyx: tuple[int, int, int],
    dtype: str,
    formats: tuple[str, ...],
    masks: bool,
) -> None:
    """One image (and its mask), in every format, as ``root/FORMAT/{images,masks}/case_NNN.EXT``."""
    import tifffile

    seed = 1000 + index
    image, mask = synth_slab(
        shape_zyx, np.dtype(dtype), seed, 0, shape_zyx[0], thresholds(shape_zyx, seed)
    )
    if len(shape_zyx) == 3 and shape_zyx[0] == 1:
        image, mask = image[0], mask[0]  # a 2D image
    pairs = [("images", image)] + ([("masks", mask)] if masks else [])
    for fmt in formats:
        for kind, array in pairs:
            path = root / fmt / kind / f"case_{index:04d}{SUFFIX[fmt]}"
            if fmt == "tif-zlib":
                tifffile.imwrite(path, array, compression="zlib", **_imagej_kwargs(array.ndim))
            else:
                writer = _SlabWriter(path, fmt, array.shape, array.dtype)
                writer.write(array)
                writer.close()


def write_dataset(
    root: Path,
    count: int,
    shape_zyx: tuple[int, int, int],
    dtype: str,
    formats: tuple[str, ...],
    masks: bool,
    workers: int,
) -> None:
    for fmt in formats:
        for kind in ("images", "masks") if masks else ("images",):
            (root / fmt / kind).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers) as pool:
        jobs = [
            pool.submit(write_case, root, i, shape_zyx, dtype, formats, masks) for i in range(count)
        ]
        for job in jobs:
            job.result()


def big_shape(gigabytes: float, dtype: np.dtype) -> tuple[int, int, int]:
    """(Z, Y, X) of about ``gigabytes`` GiB: 2048x2048 planes for 4 GiB of uint16 (512 planes)."""
    voxels = int(gigabytes * 2**30 / np.dtype(dtype).itemsize)
    side = max(8, min(2048, int((voxels / 16) ** 0.5)))
    return (max(1, voxels // (side * side)), side, side)


def write_big(
    root: Path, shape_zyx: tuple[int, int, int], dtype: str, formats: tuple[str, ...]
) -> None:
    """One big image and mask per format, generated slab by slab (bounded memory)."""
    seed = 99
    levels = thresholds(shape_zyx, seed)
    writers = []
    for fmt in formats:
        for kind, kind_dtype in (("images", np.dtype(dtype)), ("masks", np.dtype(np.uint8))):
            folder = root / fmt / kind
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"big{SUFFIX[fmt]}"
            writers.append((kind, _SlabWriter(path, fmt, shape_zyx, kind_dtype)))
    planes = max(1, (64 * MB) // (shape_zyx[1] * shape_zyx[2] * 4))
    for z0 in range(0, shape_zyx[0], planes):
        z1 = min(z0 + planes, shape_zyx[0])
        image, mask = synth_slab(shape_zyx, np.dtype(dtype), seed, z0, z1, levels)
        for kind, writer in writers:
            writer.write(image if kind == "images" else mask)
    for _, writer in writers:
        writer.close()


def warm(folder: Path) -> None:
    """Read every file once so the timings see a warm file cache."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                while f.read(16 * MB):
                    pass
