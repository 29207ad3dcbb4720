"""Test data written to disk as users have it: the one module every test takes its writers from.

Every writer puts real files on disk (ImageJ TIFF, NIfTI/MetaImage/NRRD through SimpleITK, ``.npy``)
so the tests go through the real readers. Numpy order everywhere, (z, y, x); a name ending in
``_xyz`` is in SimpleITK's (x, y, z) order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

import biom3d_reference

# The shared anisotropic dataset of the widget tests: three ImageJ volumes whose per-axis median is
# (22, 66, 62), spacing z 2 µm, y/x 0.5 µm, each with a cuboid of foreground in its mask.
SHAPES_ZYX = ((20, 64, 60), (24, 70, 66), (22, 66, 62))
MEDIAN_ZYX = (22, 66, 62)
SPACING_ZYX = (2.0, 0.5, 0.5)


def write_imagej(path: Path, data: np.ndarray, spacing_zyx=SPACING_ZYX) -> Path:
    """Write a (Z, Y, X) ImageJ TIFF with its voxel spacing in microns."""
    z, y, x = spacing_zyx
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / x, 1 / y),
        metadata={"spacing": z, "unit": "micron", "axes": "ZYX"},
    )
    return Path(path)


def write_itk(
    path: Path, array: np.ndarray, spacing_xyz, vector: bool = False, compress: bool = False
) -> Path:
    """Write ``array`` (numpy order) with SimpleITK at the given (x, y, ...) spacing."""
    import SimpleITK as sitk  # only the tests that write ITK formats pay for it

    image = sitk.GetImageFromArray(array, isVector=vector)
    image.SetSpacing(tuple(float(s) for s in spacing_xyz))
    sitk.WriteImage(image, str(path), compress)
    return Path(path)


def read_itk(path: Path) -> np.ndarray:
    """Read a file whole with SimpleITK, as biom3d does (numpy order)."""
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def write_npy(path: Path, array: np.ndarray) -> Path:
    """Save ``array`` as ``.npy``, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return path


def write_image(path: Path, array: np.ndarray, spacing_zyx=SPACING_ZYX) -> Path:
    """Write ``array`` in the format its suffix names (.npy, .tif as ImageJ, else SimpleITK)."""
    path = Path(path)
    if path.suffix == ".npy":
        return write_npy(path, array)
    if path.suffix in (".tif", ".tiff"):
        return write_imagej(path, array, spacing_zyx)
    return write_itk(path, array, spacing_zyx[::-1], compress=path.name.endswith(".gz"))


def read_whole(path: Path) -> np.ndarray:
    """Decode a whole file (the baseline the sampled readers are checked against)."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix in (".tif", ".tiff"):
        return tifffile.imread(path)
    return read_itk(path)


def random_volume(shape, dtype=np.uint16, seed: int = 0, high: int = 200) -> np.ndarray:
    """Uniform random integers in [0, high) of ``dtype``."""
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(dtype)


def write_dataset(folder: Path, shapes=SHAPES_ZYX, seed: int = 0) -> tuple[Path, Path]:
    """Write images/ and masks/ (ImageJ TIFFs, one foreground cuboid each); return both folders."""
    rng = np.random.default_rng(seed)
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for number, shape in enumerate(shapes, start=1):
        image = rng.integers(50, 150, size=shape, dtype=np.uint16)
        mask = np.zeros(shape, dtype=np.uint8)
        z, y, x = (s // 4 for s in shape)
        mask[z : 3 * z, y : 3 * y, x : 3 * x] = 1
        image[mask > 0] += 100
        write_imagej(images / f"case_{number:02d}.tif", image)
        write_imagej(masks / f"case_{number:02d}.tif", mask)
    return images, masks


def biom3d_statistics(
    images: list[Path], masks: list[Path], num_samples: int = 10000, seed: int = 42
) -> tuple[float, float, float, float]:
    """biom3d's way (the benchmark's reference): decode whole, img[mask > 0], a fresh rng per
    image, choice with replacement; mean, std, 0.5 and 99.5 percentiles."""
    found = biom3d_reference.fingerprint(images, masks, seed, num_samples)
    return (found["mean"], found["std"], found["perc_005"], found["perc_995"])
