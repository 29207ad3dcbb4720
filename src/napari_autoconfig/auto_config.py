"""biom3d-compatible auto-configuration: the names, signatures and return types of
``biom3d.auto_config`` (0.1.x), without importing biom3d or torch.

This module is a thin face: the numbers come from :mod:`napari_autoconfig.planners.biom3d` and the
folder statistics from :mod:`napari_autoconfig.fingerprint`. Image sizes are numpy order
``(Z, Y, X)`` or ``(C, Z, Y, X)``; patch, pool and augmentation patch are ``(z, y, x)``; spacings
are biom3d's ``(x, y, z)``.

Where biom3d has a plain bug the documented behaviour is returned instead: no broadcasting crash
while growing the patch, an error (not a garbage median) for an empty folder, mixed numbers of
dimensions detected in :func:`data_fingerprint` too, and printed numbers are plain ints rather
than ``np.int64(..)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .planners import biom3d

__all__ = [
    "auto_config",
    "compute_median",
    "data_fingerprint",
    "display_info",
    "find_patch_pool_batch",
    "get_aug_patch",
    "parameters_return",
]


def find_patch_pool_batch(
    dims: Sequence[int],
    max_dims: Sequence[int] = (128, 128, 128),
    max_pool: int = 5,
    epsilon: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Given a median image size, compute the patch size, the number of poolings and the batch.

    See :func:`napari_autoconfig.planners.biom3d.find_patch_pool_batch` (same function) for the
    rules, and how biom3d's broadcasting crash on some medians is avoided.

    Returns
    -------
    patch, pool : numpy.ndarray
        Integer arrays ``(z, y, x)``.
    batch : int
        Not clamped.

    Raises
    ------
    AssertionError
        If ``dims`` has neither 3 nor 4 entries, has a non-positive entry, or if
        ``min(max_dims) // 2**max_pool < 1``.
    """
    return biom3d.find_patch_pool_batch(dims, max_dims, max_pool, epsilon)


def get_aug_patch(patch_size: Sequence[int] | np.ndarray) -> list[int]:
    """Return the augmentation patch size (the patch diagonal; anisotropic axis kept).

    See :func:`napari_autoconfig.planners.biom3d.get_aug_patch`. Returns a list of plain ints.
    """
    return biom3d.get_aug_patch(patch_size)


#: biom3d's sentence for a folder without images; its callers match on it, so it is kept here,
#: in the seed API only (the core says it in its own words).
_EMPTY = "List of sizes for median computation is empty"


def _fingerprint(img_path: str | Path, msk_path: str | Path | None, num_samples: int, seed: int):
    """The core's fingerprint, with its errors translated into biom3d's types and wording.

    biom3d raises ``AssertionError`` for an empty folder ("List of sizes for median computation is
    empty") and for mixed numbers of dimensions; the core raises :class:`EmptyDatasetError` and
    :class:`MixedDimensionsError` with messages for people. The translation keeps the core's
    message after biom3d's words, and the core's error as ``__cause__``.
    """
    # Imported here so that the planning functions work without the readers' dependencies.
    from .errors import EmptyDatasetError, MixedDimensionsError, SeedError
    from .fingerprint import fingerprint_dataset

    try:
        # biom3d's statistics over NaN / infinite voxels are NaN / infinite: kept as they are
        return fingerprint_dataset(
            img_path, msk_path, seed=seed, num_samples=num_samples, non_finite="keep"
        )
    except EmptyDatasetError as error:
        raise AssertionError(f"{_EMPTY}: {error}") from error
    except MixedDimensionsError as error:
        raise AssertionError(f"[Error] {error}") from error
    except SeedError as error:  # numpy's own exception, as biom3d's default_rng(seed) raises it
        raise error.__cause__ from None


def compute_median(
    path: str | Path, return_spacing: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray | list]:
    """Compute the median shape of a folder of images, and optionally their median spacing.

    Parameters
    ----------
    path : str or Path
        Folder of images (listed recursively).
    return_spacing : bool, default False
        Whether to also return the median spacing (biom3d's ``(x, y, z)`` order).

    Returns
    -------
    median : numpy.ndarray
        Integer median size, ``(Z, Y, X)`` or ``(C, Z, Y, X)``; a 2D image counts as ``(1, H, W)``.
    spacing : numpy.ndarray or list
        Only with ``return_spacing``: the per-axis median spacing of the images that have one, or
        an empty list (with a warning) when none has.

    Raises
    ------
    AssertionError
        "List of sizes for median computation is empty" for a folder without images (the core's
        ``EmptyDatasetError`` is its ``__cause__``); likewise for images with different numbers of
        dimensions (``MixedDimensionsError``).
    """
    fp = _fingerprint(path, None, num_samples=10000, seed=42)
    median = np.array(fp.median_size, dtype=int)
    if not return_spacing:
        return median
    if fp.median_spacing_xyz is None:
        warnings.warn(
            f"No image in {str(path)!r} has a voxel spacing in its metadata; the median spacing "
            "is an empty list.",
            UserWarning,
            stacklevel=2,
        )
        return median, []
    return median, np.array(fp.median_spacing_xyz, dtype=float)


def data_fingerprint(
    img_path: str | Path,
    msk_path: str | Path | None = None,
    num_samples: int = 10000,
    seed: int = 42,
) -> tuple[np.ndarray, np.ndarray | int, float, float, float, float]:
    """Compute the data fingerprint: median size and spacing, and foreground intensity statistics.

    Parameters
    ----------
    img_path : str or Path
        Folder of images.
    msk_path : str or Path, optional
        Folder of masks. With masks, each image contributes ``num_samples`` values drawn (with
        replacement, fresh ``numpy.random.default_rng(seed)`` per image) among its voxels where the
        mask is > 0; without masks the four statistics are 0.
    num_samples : int, default 10000
    seed : int, default 42

    Returns
    -------
    median_size : numpy.ndarray
        Integer median size (as :func:`compute_median`).
    median_spacing : numpy.ndarray or int
        Median spacing ``(x, y, z)``; ``0`` when no image has one.
    mean, std, perc_005, perc_995 : float
        Mean, population standard deviation and 0.5 / 99.5 percentiles of the drawn values (0 when
        nothing was drawn).

    Raises
    ------
    AssertionError
        Empty folder, or images with different numbers of dimensions (biom3d misses the latter
        here; it is detected as in :func:`compute_median`).
    ValueError, TypeError
        With masks, a seed numpy's ``default_rng`` refuses (``seed=-1``: ValueError), numpy's own
        exception, as biom3d raises it; before any file is read here.

    Notes
    -----
    NaN or infinite voxels inside the masks make the four statistics NaN (or infinite), as in
    biom3d: this function keeps its numbers. The command line and the widget leave such values
    out and say so.
    """
    fp = _fingerprint(img_path, msk_path, num_samples=num_samples, seed=seed)
    median_size = np.array(fp.median_size, dtype=int)
    spacing = 0 if fp.median_spacing_xyz is None else np.array(fp.median_spacing_xyz, dtype=float)
    if not any(record.samples.size for record in fp.records):
        return median_size, spacing, 0, 0, 0, 0
    return median_size, spacing, fp.mean, fp.std, fp.perc_005, fp.perc_995


def _ints(values: Sequence[int] | np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(values).ravel()]


def _floats(values) -> list[float] | None:
    if values is None:
        return None
    return [float(v) for v in np.asarray(values, dtype=float).ravel()]


def display_info(
    patch: Sequence[int] | np.ndarray, pool: Sequence[int] | np.ndarray, batch: int
) -> None:
    """Print the batch, patch, augmentation patch and poolings as biom3d config lines.

    The four ``KEY = value`` lines can be pasted into a biom3d config file; numbers are plain
    ints. Lists are ``(z, y, x)``.
    """
    rule = "*" * 20
    print(rule, "Auto-configuration: paste the lines below into your biom3d config", rule)
    print("BATCH_SIZE =", int(batch))
    print("PATCH_SIZE =", _ints(patch))
    print("AUG_PATCH_SIZE =", get_aug_patch(_ints(patch)))
    print("NUM_POOLS =", _ints(pool))


def parameters_return(
    patch: Sequence[int] | np.ndarray,
    pool: Sequence[int] | np.ndarray,
    batch: int,
    config_path: str | Path,
    median_spacing: Sequence[float] | np.ndarray | None = None,
) -> None:
    """Print, one per line: batch, patch, augmentation patch, poolings, median spacing, config path.

    This is the machine-readable output biom3d's remote mode prints; numbers are plain Python
    numbers, spacing ``(x, y, z)`` (``None`` when not given).
    """
    print(int(batch))
    print(_ints(patch))
    print(get_aug_patch(_ints(patch)))
    print(_ints(pool))
    print(_floats(median_spacing))
    print(config_path)


def auto_config(
    img_path: str | Path | None = None,
    median: Sequence[int] | None = None,
    max_dims: Sequence[int] = (128, 128, 128),
    max_batch: int = 16,
    min_batch: int = 2,
) -> tuple[int, list[int], np.ndarray, np.ndarray]:
    """Given an image collection (or its median size), return batch, aug patch, patch and pool.

    Parameters
    ----------
    img_path : str or Path, optional
        Folder of images; its median size is computed when ``median`` is not given.
    median : sequence of int, optional
        Median image size; used as is (no folder read), which is much faster.
    max_dims : sequence of int, default (128, 128, 128)
        Its product is the patch voxel budget.
    max_batch : int, default 16
        The batch is capped at ``max_batch`` (biom3d's preprocessing passes
        ``number_of_images // 20``).
    min_batch : int, default 2
        ... then raised to ``min_batch`` (biom3d's docs say 16 by mistake; the default is 2).

    Returns
    -------
    batch : int
    aug_patch : list of int
    patch, pool : numpy.ndarray
        ``(z, y, x)``.

    Raises
    ------
    AssertionError
        If both ``img_path`` and ``median`` are None, and as :func:`compute_median` and
        :func:`find_patch_pool_batch`.
    """
    if img_path is None and median is None:  # raised, not asserted: holds under python -O
        raise AssertionError(
            "[Error] Please provide either an image collection path or a median shape."
        )
    if median is None:
        median = compute_median(path=img_path)
    patch, pool, batch = find_patch_pool_batch(dims=median, max_dims=max_dims)
    aug_patch = get_aug_patch(patch)
    batch = biom3d.clamp_batch(batch, max_batch, min_batch)
    return batch, aug_patch, patch, pool
