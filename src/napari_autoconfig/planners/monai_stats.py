"""MONAI Auto3DSeg's statistic operations (``monai/auto3dseg/operations.py``), torch-free.

Two kinds, as in MONAI 1.6.1:

- per case, over voxels (``SampleOperations`` on a float32 torch tensor): :func:`voxel_stats` from
  the distinct values and their counts (integer images: no sort of the volume) and
  :func:`voxel_stats_of` from the values themselves (float images: selection, no full sort).
  torch's arithmetic: the *lower* median (``torch.median``), the population standard deviation,
  linear percentiles 0.5 / 10 / 90 / 99.5 (``torch.quantile`` up to 1e6 voxels,
  ``np.percentile`` above: the same interpolation), every result a float32;
- across cases, over the per-case numbers (numpy arrays): :func:`sample_operations` (numpy's
  ``median``, and percentiles cast back to the array's dtype, so whole-number inputs give
  truncated whole-number percentiles, as MONAI's ``convert_to_dst_type`` does) and
  :func:`summary_operations` (max of maxes, min of mins, the mean of everything else).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .nnunet_statistics import lower_median_from_counts

#: MONAI's percentiles (``SampleOperations``), and the scalar keys it adds for them.
QUANTILES = (0.5, 10.0, 90.0, 99.5)
PERCENTILE_KEYS = ("percentile_00_5", "percentile_10_0", "percentile_90_0", "percentile_99_5")
#: ``SummaryOperations``' keys, in MONAI's order.
SUMMARY_KEYS = ("max", "mean", "median", "min", "stdev", *PERCENTILE_KEYS)


def _f32(value: float) -> float:
    # torch computes on float32 tensors: each per-case number is a float32, written as a float
    return float(np.float32(value))


def _dict(maximum, mean, median, minimum, std, percentiles) -> dict:
    out = {
        "max": _f32(maximum),
        "mean": _f32(mean),
        "median": _f32(median),
        "min": _f32(minimum),
        "stdev": _f32(std),
        "percentile": [_f32(p) for p in percentiles],
    }
    for key, value in zip(PERCENTILE_KEYS, out["percentile"]):
        out[key] = value
    return out


#: Up to this many voxels MONAI's percentiles are ``torch.quantile``'s (float32 arithmetic),
#: above it ``np.percentile``'s (pytorch#64947).
TORCH_QUANTILE_LIMIT = 1_000_000


def _quantiles(select, n: int) -> list[float]:
    """MONAI's percentiles of ``n`` voxels, ``select(ranks)`` giving the sorted voxels at
    ``ranks``: ``torch.quantile``'s float32 ranks and ``lerp`` up to 1e6 voxels, numpy's
    interpolation above (float32 differences, float64 weights)."""
    if n <= TORCH_QUANTILE_LIMIT:
        ranks = (np.asarray(QUANTILES) / 100.0).astype(np.float32) * np.float32(n - 1)
        below = np.floor(ranks).astype(np.int64)
        weight = (ranks - below.astype(np.float32)).astype(np.float32)
        low = select(below).astype(np.float32)
        high = select(np.ceil(ranks).astype(np.int64)).astype(np.float32)
        span = high - low
        one = np.float32(1)
        return np.where(weight < 0.5, low + weight * span, high - span * (one - weight)).tolist()
    positions = (n - 1) * np.asarray(QUANTILES) / 100.0
    below = np.floor(positions).astype(np.int64)
    gamma = positions - below
    low = select(below).astype(np.float32)
    high = select(np.minimum(below + 1, n - 1)).astype(np.float32)
    span = high - low
    return np.where(gamma >= 0.5, high - span * (1 - gamma), low + span * gamma).tolist()


def voxel_stats(values: np.ndarray, counts: np.ndarray) -> dict:
    """MONAI's per-case ``SampleOperations`` of the voxels whose distinct values (ascending)
    and counts are given.

    An empty sample is MONAI's ``[0.0]`` (its foreground stand-in).
    """
    values = np.asarray(values, dtype=np.float32)
    counts = np.asarray(counts, dtype=np.int64)
    keep = counts > 0
    values, counts = values[keep], counts[keep]
    if not values.size:
        values, counts = np.zeros(1, np.float32), np.ones(1, np.int64)
    running = np.cumsum(counts)
    total = int(running[-1])
    exact = values.astype(np.float64)
    mean = float(np.dot(exact, counts)) / total
    variance = float(np.dot((exact - mean) ** 2, counts)) / total

    def select(ranks: np.ndarray) -> np.ndarray:
        return values[np.searchsorted(running, ranks, side="right")]

    return _dict(
        values[-1],
        mean,
        lower_median_from_counts(values, running),
        values[0],
        np.sqrt(variance),
        _quantiles(select, total),
    )


def voxel_stats_of(values: np.ndarray) -> dict:
    """MONAI's per-case ``SampleOperations`` of the voxels ``values`` (any order), by selection.

    The values are partitioned (``np.partition``) at the few ranks the median and the
    percentiles need, not sorted.
    """
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    if not flat.size:
        flat = np.zeros(1, np.float32)
    n = flat.size
    positions = (n - 1) * np.asarray(QUANTILES) / 100.0
    ranks32 = (np.asarray(QUANTILES) / 100.0).astype(np.float32) * np.float32(n - 1)
    wanted = [np.floor(positions), np.floor(positions) + 1, np.floor(ranks32), np.ceil(ranks32)]
    middle = (n - 1) // 2
    ranks = np.unique(np.clip(np.concatenate([*wanted, [middle, 0, n - 1]]), 0, n - 1))
    ranks = ranks.astype(np.int64)
    chosen = np.partition(flat, ranks)
    mean = float(np.mean(flat, dtype=np.float64))
    std = float(np.std(flat, dtype=np.float64))
    return _dict(
        chosen[n - 1],
        mean,
        chosen[middle],
        chosen[0],
        std,
        _quantiles(lambda r: chosen[r], n),
    )


def sample_operations(array: np.ndarray, axis) -> dict:
    """MONAI's ``SampleOperations`` over a numpy array of per-case numbers (the summary's
    shapes, spacings, label shares...), along ``axis``; plain Python numbers and lists."""
    x = np.asarray(array)
    percentile = np.percentile(x, np.asarray(QUANTILES), axis=axis)
    # MONAI casts the percentiles back to the input's type: whole numbers stay whole (truncated)
    percentile = np.asarray(percentile).astype(x.dtype, copy=False)
    out = {
        "max": np.max(x, axis=axis),
        "mean": np.mean(x, axis=axis),
        "median": np.median(x, axis=axis),
        "min": np.min(x, axis=axis),
        "stdev": np.std(x, axis=axis),
        "percentile": percentile,
    }
    for index, key in enumerate(PERCENTILE_KEYS):
        out[key] = percentile[index]
    return {k: np.asarray(v).tolist() for k, v in out.items()}


def summary_operations(data: Mapping[str, np.ndarray]) -> dict:
    """MONAI's ``SummaryOperations`` (``average=True``): max of the maxes, min of the mins, and the
    mean of the per-case medians, deviations and percentiles too (not dataset quantiles)."""
    out = {}
    for key in SUMMARY_KEYS:
        if key not in data:
            continue
        x = np.asarray(data[key])
        value = np.max(x) if key == "max" else np.min(x) if key == "min" else np.mean(x)
        out[key] = np.asarray(value).tolist()
    return out
