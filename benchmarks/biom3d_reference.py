"""biom3d 0.1.2's auto-configuration computed the straightforward way: the one reference.

The benchmark's baselines time it, and the tests take their oracles from it (``pythonpath`` in
``pyproject.toml`` puts this folder on the tests' path), so both check napari-autoconfig against
the same plain reading of biom3d:

- :func:`read_whole`: decode a file whole with biom3d's libraries (``tifffile``, ``SimpleITK``,
  ``numpy.load``) and take its spacing (x, y, z) as biom3d does;
- :func:`scan` / :func:`fingerprint`: median size and spacing, and with masks
  ``default_rng(seed).choice(image[mask > 0], num_samples)`` per image, then mean, std and
  percentiles over every draw (``data_fingerprint``);
- :func:`patch_pool_batch`: the planning steps (``find_patch_pool_batch``) written out plainly,
  numpy broadcasting and all.

It imports nothing from napari-autoconfig.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SEED = 42
NUM_SAMPLES = 10000


def read_whole(path: str | Path) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """Decode the whole file, as biom3d does; return (array in numpy order, spacing (x, y, z)).

    TIFF: ``tifffile``; the spacing of an ImageJ file with a ``spacing`` entry is
    (1 / XResolution, 1 / YResolution, spacing), each resolution the rational's numerator over its
    denominator. NIfTI / MetaImage / NRRD: SimpleITK's ``GetSpacing()``. ``.npy``: no spacing.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".npy"):
        return np.load(path), None
    if name.endswith((".tif", ".tiff")):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            array = tif.asarray()
            meta = tif.imagej_metadata or {}
            spacing = None
            if "spacing" in meta:
                tags = tif.pages.first.tags
                xn, xd = tags["XResolution"].value
                yn, yd = tags["YResolution"].value
                spacing = (1 / (xn / xd), 1 / (yn / yd), float(meta["spacing"]))[: array.ndim]
        return array, spacing
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), tuple(image.GetSpacing())


def _size(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1, *shape) if len(shape) == 2 else tuple(shape)


def median_size(shapes: Sequence[tuple[int, ...]]) -> list[int]:
    """biom3d's median size: per-axis numpy median (2D counts as Z = 1), truncated to int."""
    return [int(v) for v in np.median(np.array([_size(s) for s in shapes]), axis=0).astype(int)]


def median_spacing(spacings: Sequence[tuple[float, ...] | None]) -> list[float] | None:
    """Per-axis median of the spacings the images have, (x, y, z); None when none has one."""
    known = [s for s in spacings if s]
    return [float(v) for v in np.median(np.array(known), axis=0)] if known else None


def draw(
    image: np.ndarray, mask: np.ndarray, seed: int = SEED, num_samples: int = NUM_SAMPLES
) -> np.ndarray:
    """biom3d's draw for one image: a fresh generator, ``choice`` with replacement."""
    values = image[mask > 0]
    if not values.size:
        return values
    return np.random.default_rng(seed).choice(values, num_samples, replace=True)


def statistics(samples: Sequence[np.ndarray]) -> dict:
    """Mean, std and the 0.5 / 99.5 percentiles of every draw (0.0 without any), and a hash of
    the draws themselves so that two computations can be compared sample by sample."""
    drawn = [s for s in samples if s.size]
    if not drawn:
        return {"mean": 0.0, "std": 0.0, "perc_005": 0.0, "perc_995": 0.0, "samples_sha1": None}
    values = np.concatenate(drawn)
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "perc_005": float(np.percentile(values, 0.5)),
        "perc_995": float(np.percentile(values, 99.5)),
        "samples_sha1": hashlib.sha1(values.tobytes()).hexdigest(),
    }


def _files(folder: str | Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())


def scan(images: str | Path | Sequence[Path]) -> dict:
    """Median size and spacing of a folder (or list) of images, each decoded whole."""
    paths = _files(images) if isinstance(images, (str, Path)) else list(images)
    shapes, spacings = [], []
    for path in paths:
        array, spacing = read_whole(path)
        shapes.append(array.shape)
        spacings.append(spacing)
    return {"median_size": median_size(shapes), "median_spacing_xyz": median_spacing(spacings)}


def fingerprint(
    images: str | Path | Sequence[Path],
    masks: str | Path | Sequence[Path],
    seed: int = SEED,
    num_samples: int = NUM_SAMPLES,
) -> dict:
    """``data_fingerprint`` with masks: one image (and mask) in memory at a time, as biom3d."""
    image_paths = _files(images) if isinstance(images, (str, Path)) else list(images)
    mask_paths = _files(masks) if isinstance(masks, (str, Path)) else list(masks)
    shapes, spacings, samples = [], [], []
    for image_path, mask_path in zip(image_paths, mask_paths, strict=True):
        image, spacing = read_whole(image_path)
        mask, _ = read_whole(mask_path)
        shapes.append(image.shape)
        spacings.append(spacing)
        samples.append(draw(image, mask, seed, num_samples))
        del image, mask
    return {
        "median_size": median_size(shapes),
        "median_spacing_xyz": median_spacing(spacings),
        **statistics(samples),
    }


def patch_pool_batch(median, max_dims=(128, 128, 128), max_pool=5, eps=1e-3):
    """biom3d's ``find_patch_pool_batch`` steps, written out plainly, numpy broadcasting and all.

    Raises ValueError exactly where biom3d does (flag tuple longer than the values left), and
    RuntimeError where biom3d's shrinking loop would never end.
    """
    median = list(median)
    if len(median) == 4:
        median = median[1:]
    ori = np.array(median)
    d = ori.copy()
    m = np.array(max_dims)
    fm = min(max_dims) // 2**max_pool
    if np.prod(d) > np.prod(m):
        lb = (np.log(d).sum() - np.log(m).sum()) / np.log(1 + eps)
        r = lb / len(d)
        ub = np.log(d) / np.log(1 + eps)
        mask = r > ub
        rounds = 0
        while np.any(mask):
            rounds += 1
            if rounds > 100:
                raise RuntimeError("biom3d's loop would not end")
            r_small = (lb - (ub * mask).sum()) / (~mask).sum()
            r = np.where(mask, ub, r_small)
            mask = r > ub
        d = d / (1 + eps) ** r
    d = np.maximum(np.floor(d).astype(int), 1)
    pool = np.clip(np.floor(np.log2(d / fm)).astype(int), 0, max_pool)
    step = 2**pool
    patch = (d // step) * step
    n = len(np.unique(patch))
    for flags in list(itertools.product([True, False], repeat=n))[:-1]:
        values = sorted(np.unique(patch), reverse=True)
        grow = np.isin(patch, values * np.array(flags))  # list * array: numpy broadcasting
        while np.prod(patch + step * grow) <= np.prod(m) and np.any((patch < ori) * grow):
            patch = patch + step * grow
    patch = np.where(ori == 1, 1, patch)
    pool = np.clip(np.floor(np.log2(patch / fm)).astype(int), 0, max_pool)
    batch = max(2 * int(np.floor(np.prod(m) / np.prod(patch))), 2)
    return patch.tolist(), pool.tolist(), batch
