"""numpy's float32 sum of a long sequence, replayed from pieces of it summed apart.

nnU-Net takes the mean of 1e8 float32 foreground draws with ``np.mean``: numpy's pairwise
summation, in float32. Its rounding depends on how numpy groups the values, so a float64 sum (or
a sum in another order) differs in the last bits. numpy sums at most 128 consecutive values in one
loop, with eight running sums; a longer run is split at its half (rounded down to a multiple of 8)
and the two halves' sums added. The groups depend only on the length, so each case can sum the
blocks that lie wholly in its own draws (:func:`split_sum`), keep the few values at its ends, and
the dataset's sum is rebuilt from the pieces (:func:`joined_sum`), bit for bit.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: numpy's pairwise summation sums blocks of at most this many values in one loop.
_BLOCK = 128
#: Blocks summed per vectorised step (their index arrays stay near 8 MB).
_BLOCKS_AT_ONCE = 8192


@dataclass(frozen=True)
class PartialSum:
    """One stretch of the sequence: the sums of the blocks wholly inside it, and its ends.

    Attributes
    ----------
    block_sums : numpy.ndarray
        float32 sums of the blocks that lie wholly in the stretch, in order.
    head, tail : numpy.ndarray
        The float32 values before the first and after the last such block (they share blocks
        with the neighbouring stretches).
    size : int
        Values in the stretch.
    """

    block_sums: np.ndarray = field(repr=False)
    head: np.ndarray = field(repr=False)
    tail: np.ndarray = field(repr=False)
    size: int = 0


@functools.lru_cache(maxsize=8)
def summation_blocks(n: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The blocks numpy sums in one loop when it sums ``n`` values, and how it adds them up.

    Returns the blocks' starts and lengths, in order, and per level of the split from the top:
    which runs split, and the starts of the runs that did not (blocks).
    """
    starts, lengths = np.array([0], np.int64), np.array([n], np.int64)
    levels = []
    block_starts, block_lengths = [], []
    while starts.size:
        split = lengths > _BLOCK
        levels.append((split, starts[~split]))
        block_starts.append(starts[~split])
        block_lengths.append(lengths[~split])
        half = lengths[split] // 2
        half -= half % 8
        first, length = starts[split], lengths[split]
        starts = np.empty(2 * first.size, np.int64)
        starts[0::2], starts[1::2] = first, first + half
        lengths = np.empty(2 * first.size, np.int64)
        lengths[0::2], lengths[1::2] = half, length - half
    all_starts = np.concatenate(block_starts)
    order = np.argsort(all_starts, kind="stable")
    return all_starts[order], np.concatenate(block_lengths)[order], tuple(levels)


def block_sums(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """numpy's float32 sum of each block ``values[start:start + length]`` (length <= 128)."""
    out = np.empty(starts.size, np.float32)
    for first in range(0, starts.size, _BLOCKS_AT_ONCE):  # bounded index arrays
        batch = slice(first, first + _BLOCKS_AT_ONCE)
        for length in np.unique(lengths[batch]):
            which = first + np.flatnonzero(lengths[batch] == length)
            out[which] = _rows_sum(values[starts[which, None] + np.arange(length)])
    return out


def _rows_sum(block: np.ndarray) -> np.ndarray:
    """Row sums of a (rows, L) float32 array, L <= 128, added as numpy's loop adds them."""
    length = block.shape[1]
    if length < 8:
        res = np.zeros(block.shape[0], np.float32)
        for i in range(length):
            res += block[:, i]
        return res
    r = block[:, :8].copy()
    whole = length - length % 8
    for i in range(8, whole, 8):
        r += block[:, i : i + 8]
    res = ((r[:, 0] + r[:, 1]) + (r[:, 2] + r[:, 3])) + ((r[:, 4] + r[:, 5]) + (r[:, 6] + r[:, 7]))
    for i in range(whole, length):
        res += block[:, i]
    return res


def split_sum(values: np.ndarray, start: int, total: int) -> PartialSum:
    """The stretch ``values`` of a sequence of ``total`` values, placed at ``start``.

    ``values`` may be 8- or 16-bit integers (they are summed as their float32 casts): a block's
    partial sums are then integers below 2**24, exact in float32, so the block's float32 sum is
    its integer sum, found without a float32 copy.
    """
    starts, lengths, _ = summation_blocks(total)
    first = int(np.searchsorted(starts, start))
    last = int(np.searchsorted(starts + lengths, start + values.size, side="right"))
    inner = slice(first, max(first, last))
    starts, lengths = starts[inner] - start, lengths[inner]
    if not starts.size:
        empty = np.empty(0, np.float32)
        return PartialSum(empty, _float32(values).copy(), empty, values.size)
    end = int(starts[-1] + lengths[-1])
    if values.dtype.kind in "ui" and values.dtype.itemsize <= 2:
        sums = np.add.reduceat(values, starts, dtype=np.int64)[: starts.size]
        sums[-1] = values[starts[-1] : end].sum(dtype=np.int64)  # reduceat's last runs to the end
        sums = sums.astype(np.float32)
    else:
        sums = block_sums(_float32(values), starts, lengths)
    head = _float32(values[: starts[0]]).copy()
    tail = _float32(values[end:]).copy()
    return PartialSum(sums, head, tail, values.size)


def joined_sum(pieces: Sequence[PartialSum], total: int) -> np.float32:
    """``np.add.reduce`` of the float32 sequence the pieces make, in order, bit for bit."""
    starts, lengths, levels = summation_blocks(total)
    sums = np.empty(starts.size, np.float32)
    done = np.zeros(starts.size, bool)
    loose = []
    pos = 0
    for piece in pieces:
        first = int(np.searchsorted(starts, pos + piece.head.size))
        sums[first : first + piece.block_sums.size] = piece.block_sums
        done[first : first + piece.block_sums.size] = True
        loose.extend((piece.head, piece.tail))
        pos += piece.size
    rest = np.flatnonzero(~done)
    if rest.size:  # the blocks shared by neighbouring pieces, from their loose values in order
        joined = np.concatenate(loose)
        offsets = np.concatenate([[0], np.cumsum(lengths[rest])[:-1]])
        sums[rest] = block_sums(joined, offsets, lengths[rest])
    below = None
    for split, here in reversed(levels):  # add the halves back up, deepest level first
        node = np.empty(split.size, np.float32)
        node[~split] = sums[np.searchsorted(starts, here)]
        if below is not None:
            node[split] = below[0::2] + below[1::2]
        below = node
    return below[0]


def _float32(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32, copy=False)
