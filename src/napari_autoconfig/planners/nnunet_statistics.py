"""nnU-Net's statistics of the foreground draws: value counts, percentiles, per-channel intensities.

A case's draws are kept as their distinct values and counts (:func:`summarize_draws`), so the
dataset's statistics (:func:`channel_intensities`) are nnU-Net's ``np.mean`` / ``np.std`` /
``np.percentile`` over the concatenated draws without holding them: min, max and the 0.5 / 50 /
99.5 percentiles to the bit, the mean too (its float32 pairwise sum replayed,
:mod:`.float32_sum`). The standard deviation's deviations and squares are numpy's (float32);
their sum is taken in float64 from the counts, where numpy adds float32 squares pairwise (about
1e-7 relative apart). When a case has no foreground, nnU-Net's draws are float64: then the
percentiles and the mean are float64 too (the mean exact where the draws are whole numbers), and
the standard deviation's sum again comes from the counts.
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
    values, counts = value_counts(native)
    return ChannelDraws(values, counts, split_sum(native, start, total))


def _float32(values: np.ndarray) -> np.ndarray:
    # nnU-Net's readers cast every image to float32 before anything else
    return values.astype(np.float32, copy=False)


def _small_integers(values: np.ndarray) -> bool:
    return values.dtype.kind in "ui" and values.dtype.itemsize <= 2


def value_counts(native: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct float32 values (ascending) and their counts; integers by counting (fast)."""
    if _small_integers(native):
        # 8 / 16-bit integers: one count per possible value (signed ones shifted, order kept)
        from .._compiled import loops

        # in the machine's byte order: a big-endian view as native bytes would count wrong values
        native = native.astype(native.dtype.newbyteorder("="), copy=False)
        offset = 0
        if native.dtype.kind == "i":
            offset = 1 << (8 * native.dtype.itemsize - 1)
        if loops is not None:
            # counted in one pass, where bincount first copies the draws as intp (8x their size)
            counts = np.zeros(1 << (8 * native.dtype.itemsize), np.int64)
            loops.tally(np.ascontiguousarray(native), counts, native.dtype.itemsize, offset > 0)
        else:
            if offset:
                unsigned = np.dtype(f"u{native.dtype.itemsize}")
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


def percentiles_from_counts(
    values: np.ndarray, running: np.ndarray, q: Sequence[float]
) -> list[float]:
    """``np.percentile(draws, q)`` (linear) from the distinct values and their running counts,
    with numpy's arithmetic: float32 differences, float64 interpolation (also MONAI's
    ``torch.quantile``, :mod:`.monai_stats`)."""
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


def lower_median_from_counts(values: np.ndarray, running: np.ndarray) -> float:
    """The lower of the two middle values (``torch.median``'s median) from the distinct values
    (ascending) and their running counts."""
    middle = (int(running[-1]) - 1) // 2
    return float(values[np.searchsorted(running, middle, side="right")])


def merge_counts(
    merged: tuple[np.ndarray, np.ndarray] | None, values: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (ascending) and counts of two such tallies together.

    Each tally is sorted: a stable sort of the two joined runs merges them in linear time, so
    tallies can be merged as cases finish, keeping one tally for the dataset rather than one per
    case.
    """
    if merged is None:
        return values, counts.astype(np.int64, copy=False)
    joined = np.concatenate([merged[0], values])
    order = np.argsort(joined, kind="stable")
    joined = joined[order]
    tallies = np.concatenate([merged[1], counts])[order]
    starts = np.flatnonzero(np.concatenate([[True], joined[1:] != joined[:-1]]))
    return joined[starts], np.add.reduceat(tallies, starts).astype(np.int64, copy=False)


def channel_intensities(
    records: Sequence[NnUNetCaseRecord],
    channel: int,
    tally: tuple[np.ndarray, np.ndarray] | None = None,
) -> ChannelIntensities:
    """nnU-Net's statistics of one channel over every case's draws.

    ``tally``: the draws' distinct values and counts, merged as the cases finished
    (:func:`merge_counts`); None: merged here from the records' own.
    """
    drawing = [r for r in records if r.channels]
    if tally is None:
        for r in drawing:
            draws = r.channels[channel]
            tally = merge_counts(tally, draws.values, draws.counts)
    values, counts = tally  # type: ignore[misc]
    total = int(counts.sum())
    running = np.cumsum(counts)
    if len(drawing) == len(records):
        low, median, high = percentiles_from_counts(values, running, (0.5, 50.0, 99.5))
        # float32 draws: numpy's float32 pairwise sum replayed, divided by the count in float64
        # (numpy divides by an intp) and rounded to float32, as np.mean and np.std do
        pieces = [r.channels[channel].sum for r in drawing]
        mean32 = np.float32(float(joined_sum(pieces, total)) / total)
        mean = float(mean32)
        # the deviations and their squares in float32, as numpy's; their sum in float64 from
        # the counts (numpy adds float32 squares pairwise: about 1e-7 relative apart)
        deviation = (values - mean32).astype(np.float32)
        squares = (deviation * deviation).astype(np.float64)
        variance = np.float32(float(np.dot(squares, counts)) / total)
        std = float(np.sqrt(variance))
    else:
        # a case without foreground adds an empty float64 list: nnU-Net's draws are then
        # float64, and so is every statistic, the percentiles' differences included
        exact = values.astype(np.float64)
        low, median, high = percentiles_from_counts(exact, running, (0.5, 50.0, 99.5))
        mean = _exact_sum(exact, counts) / total
        # the deviations and squares are numpy's, elementwise; their sum is taken from the
        # counts (numpy adds them pairwise one by one: equal, or apart in the last bits)
        std = math.sqrt(float(np.dot((exact - mean) ** 2, counts)) / total)
    return ChannelIntensities(
        mean=mean,
        median=median,
        std=std,
        min=float(values[0]),
        max=float(values[-1]),
        percentile_99_5=high,
        percentile_00_5=low,
    )


def _exact_sum(values: np.ndarray, counts: np.ndarray) -> float:
    """The sum of ``values`` repeated ``counts`` times, rounded once to float64.

    numpy's pairwise float64 sum of float32 draws is exact where the draws are whole numbers
    (every integer image), so this is its sum there; a float image's may differ in the last bit.
    """
    whole = bool(np.all(values == np.rint(values)))
    if whole and float(np.abs(values).max(initial=0)) * float(counts.sum()) < 2**62:
        return float(int(np.dot(values.astype(np.int64), counts)))
    # each product is exact (a float32 value times a count below 2**29 fits in 53 bits)
    return math.fsum((values * counts).tolist())


#: The former private name (tests and the benchmark import it).
_value_counts = value_counts
