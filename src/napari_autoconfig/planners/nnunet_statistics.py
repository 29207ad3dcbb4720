"""nnU-Net's statistics of the foreground draws: value counts, percentiles, per-channel intensities.

A case's draws are kept as their distinct values and counts (:func:`summarize_draws`), so the
dataset's statistics (:func:`channel_intensities`) are nnU-Net's ``np.mean`` / ``np.std`` /
``np.percentile`` over the concatenated draws without holding them: min, max and the 0.5 / 50 /
99.5 percentiles to the bit, the mean too (its float32 pairwise sum replayed,
:mod:`.float32_sum`). The standard deviation is computed from the exact draws in float64
(nnU-Net sums float32 squares pairwise: the two differ by float32 rounding, about 1e-7 relative).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .float32_sum import joined_sum, split_sum
from .nnunet_records import ChannelDraws, ChannelIntensities, NnUNetCaseRecord


def summarize_draws(native: np.ndarray, start: int, total: int) -> ChannelDraws:
    """The draws of one case and channel (in the image's dtype), placed at ``start`` of
    ``total`` concatenated draws."""
    values, counts = _value_counts(native)
    return ChannelDraws(values, counts, split_sum(native, start, total))


def _float32(values: np.ndarray) -> np.ndarray:
    # nnU-Net's readers cast every image to float32 before anything else
    return values.astype(np.float32, copy=False)


def _small_integers(values: np.ndarray) -> bool:
    return values.dtype.kind in "ui" and values.dtype.itemsize <= 2


def _value_counts(native: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct float32 values (ascending) and their counts; integers by counting (fast)."""
    if _small_integers(native):
        # 8 / 16-bit integers: one count per possible value (signed ones shifted, order kept)
        offset = 0
        if native.dtype.kind == "i":
            unsigned = np.dtype(f"u{native.dtype.itemsize}")
            offset = 1 << (8 * native.dtype.itemsize - 1)
            native = native.view(unsigned) ^ unsigned.type(offset)
        counts = np.bincount(native)
        present = np.flatnonzero(counts)
        return (present - offset).astype(np.float32), counts[present]
    draws = _float32(native)
    if draws.size and np.all(draws == np.rint(draws)):
        low, high = float(draws.min()), float(draws.max())
        if high - low < 2**20:
            counts = np.bincount((draws - low).astype(np.int64), minlength=int(high - low) + 1)
            present = np.flatnonzero(counts)
            return (present + low).astype(np.float32), counts[present]
    values, counts = np.unique(draws, return_counts=True)
    return values, counts


def _percentiles(values: np.ndarray, running: np.ndarray, q: Sequence[float]) -> list[float]:
    """``np.percentile(draws, q)`` (linear) from the distinct values and their running counts,
    with numpy's arithmetic: float32 differences, float64 interpolation."""
    count = int(running[-1])
    virtual = (count - 1) * np.true_divide(q, 100)
    previous = np.clip(np.floor(virtual), 0, count - 1).astype(np.intp)
    following = np.minimum(previous + 1, count - 1)
    gamma = virtual - previous
    low = values[np.searchsorted(running, previous, side="right")]
    high = values[np.searchsorted(running, following, side="right")]
    span = high - low
    result = np.add(low, span * gamma)
    np.subtract(high, span * (1 - gamma), out=result, where=gamma >= 0.5)
    return [float(v) for v in result]


def channel_intensities(records: Sequence[NnUNetCaseRecord], channel: int) -> ChannelIntensities:
    """nnU-Net's statistics of one channel over every case's draws."""
    drawing = [r for r in records if r.channels]
    merged_values = np.concatenate([r.channels[channel].values for r in drawing])
    merged_counts = np.concatenate([r.channels[channel].counts for r in drawing])
    values, inverse = np.unique(merged_values, return_inverse=True)
    counts = np.bincount(inverse, weights=merged_counts, minlength=values.size).astype(np.int64)
    total = int(counts.sum())
    running = np.cumsum(counts)
    low, median, high = _percentiles(values, running, (0.5, 50.0, 99.5))
    exact = values.astype(np.float64)
    if len(drawing) == len(records):
        # float32 draws: numpy's float32 pairwise sum replayed, divided by the count in float64
        # (numpy divides by an intp) and rounded to float32, as np.mean and np.std do
        pieces = [r.channels[channel].sum for r in drawing]
        mean32 = np.float32(float(joined_sum(pieces, total)) / total)
        mean = float(mean32)
        deviation = (values - mean32).astype(np.float32)
        squares = (deviation * deviation).astype(np.float64)
        variance = np.float32(float(np.dot(squares, counts)) / total)
        std = float(np.sqrt(variance))
    else:
        # a case without foreground adds an empty float64 list: nnU-Net's statistics are float64
        mean = float(np.dot(exact, counts) / total)
        std = float(math.sqrt(float(np.dot((exact - mean) ** 2, counts)) / total))
    return ChannelIntensities(
        mean=mean,
        median=median,
        std=std,
        min=float(values[0]),
        max=float(values[-1]),
        percentile_99_5=high,
        percentile_00_5=low,
    )
