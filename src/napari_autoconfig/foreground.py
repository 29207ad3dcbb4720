"""biom3d's foreground draw from one read of a mask: how many voxels are foreground, and where
the drawn ones are.

biom3d draws, per image, with a fresh ``default_rng(seed)``,
``rng.choice(image[mask > 0], num_samples, replace=True)``, which is
``values[rng.integers(0, len(values), num_samples)]``. Only the number of foreground voxels and the
positions of the drawn ones are needed, never the ``image[mask > 0]`` array. The mask is read once:

- a mask whose pixels lie raw in its file (uncompressed TIFF, ``.nii``, ``.npy``, raw MetaImage /
  NRRD) is looked at through a memory map, keeping only a count per block of 128 voxels; the drawn
  ranks are then found by going back to the few blocks that hold them;
- a compressed mask is streamed once, keeping one bit per voxel and a count per 128 voxels.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .errors import NonIntegerMaskError
from .readers import ImageHeader, drop_pages, flat_view, iter_chunks


@dataclass(frozen=True)
class ForegroundDraw:
    """What a mask gives biom3d's intensity draw.

    Attributes
    ----------
    count : int
        Voxels where the mask is > 0.
    largest : int
        The largest label value (0 for an empty mask).
    sorted_positions : numpy.ndarray
        int64 flat C-order positions (in the presented array) of the drawn foreground voxels,
        ascending (the order readers read in); empty when the mask is empty or nothing is drawn.
    order : numpy.ndarray
        Where each sorted position goes in draw order: ``positions[order] = sorted_positions``.
    """

    count: int
    largest: int
    sorted_positions: np.ndarray
    order: np.ndarray

    @property
    def positions(self) -> np.ndarray:
        """The drawn positions in draw order (biom3d's sample order)."""
        positions = np.empty_like(self.sorted_positions)
        positions[self.order] = self.sorted_positions
        return positions


def draw_foreground(mask: ImageHeader, seed: int = 42, num_samples: int = 10000) -> ForegroundDraw:
    """Count a mask's foreground and draw ``num_samples`` of its voxels the way biom3d does.

    Parameters
    ----------
    mask : ImageHeader
        The mask's header (from :func:`~napari_autoconfig.readers.read_header`).
    seed : int
        Seed of the fresh ``numpy.random.default_rng`` (biom3d's rule: one per image).
    num_samples : int
        Number of voxels drawn, with replacement.

    Returns
    -------
    ForegroundDraw
        ``image.ravel()[draw.positions]`` equals biom3d's
        ``default_rng(seed).choice(image[mask > 0], num_samples, replace=True)``.

    Raises
    ------
    NonIntegerMaskError
        If a float mask holds non-integer values.
    ImageReadError
        If the mask's pixels turn out damaged while reading.
    """
    view = flat_view(mask)
    if view is not None:
        counts, largest = _mapped_counts(view, mask)
        count = int(counts.sum())
    else:
        chunks = _foreground_chunks(mask)
        count = sum(chunk.count for chunk in chunks)
        largest = max((chunk.largest for chunk in chunks), default=0)
    largest = max(largest, 0)
    if count == 0 or num_samples <= 0:
        if view is not None:
            drop_pages(view)
        none = np.empty(0, dtype=np.int64)
        return ForegroundDraw(count, largest, none, none)
    ranks = np.random.default_rng(seed).integers(0, count, num_samples)
    order = np.argsort(ranks)  # equal ranks are the same voxel: any order among them will do
    if view is not None:
        positions = _mapped_positions(view, counts, ranks[order])
    else:
        positions = _draw_positions(chunks, ranks[order])
    return ForegroundDraw(count, largest, positions, order)


def _check_integer(piece: np.ndarray, mask: ImageHeader) -> None:
    if not np.array_equal(piece, np.trunc(piece)):
        raise NonIntegerMaskError(
            f"The mask {str(mask.path)!r} holds non-integer values (dtype {mask.dtype}). Masks "
            "must be label images (0 = background); save it as an integer image."
        )


def _needs_integer_check(dtype: np.dtype) -> bool:
    return not np.issubdtype(dtype, np.integer) and dtype != np.bool_


#: Voxels per block of the foreground index: one count per 128 voxels (16 packed bytes).
_BLOCK = 128
_BLOCK_BYTES = _BLOCK // 8


# --------------------------------------------------------------------------------------------
# Masks read through a memory map: a count per block of 128 voxels, then back to the drawn blocks

#: Bytes of mask examined per step: the foreground flags of a step stay in the CPU cache while
#: they are counted.
_PASS_BYTES = 1024 * 2**10
#: Bytes of mask between two releases of the mapped pages: resident memory stays bounded on a
#: huge mask, and the release (a system call over the mapping) stays rare.
_RELEASE_BYTES = 8 * 2**20
_LANES = np.uint64(0x0101010101010101)  # times a word of byte lanes: their sum in the top byte
_TOP_BYTE = np.uint64(56)


def _flags_per_word(flags: np.ndarray) -> np.ndarray:
    """Set flags (0/1 bytes) per 8-byte word, as uint8."""
    words = flags.view(np.uint64)
    if hasattr(np, "bitwise_count"):  # numpy >= 2: one hardware popcount per word
        return np.bitwise_count(words)
    return ((words * _LANES) >> _TOP_BYTE).astype(np.uint8)


def _counts_per_block(flags: np.ndarray) -> np.ndarray:
    """Set flags per block of 128 (``len(flags)`` a multiple of 128), as uint8.

    Summing 16 words per block with ``reshape(-1, 16).sum(axis=1)`` costs 4x more than reading
    the mask; instead the per-word counts are packed 8 to a word, pairs of those words added (each
    byte lane at most 16) and the 8 lanes summed by one multiplication.
    """
    packed = _flags_per_word(flags).view(np.uint64)
    pairs = packed[0::2] + packed[1::2]
    return ((pairs * _LANES) >> _TOP_BYTE).astype(np.uint8)


def _mapped_counts(view: np.ndarray, mask: ImageHeader) -> tuple[np.ndarray, int]:
    """Foreground voxels per block of ``_BLOCK`` voxels (the last may be shorter), and the
    largest value, from one pass over the mapped mask."""
    n = view.size
    counts = np.empty(-(-n // _BLOCK), dtype=np.uint8)
    step = max(1, _PASS_BYTES // (view.itemsize * _BLOCK)) * _BLOCK
    release_every = max(1, _RELEASE_BYTES // (step * view.itemsize))
    flags = np.empty(step, dtype=np.bool_)
    check_integer = _needs_integer_check(view.dtype)
    largest = 0
    for i, start in enumerate(range(0, n, step)):
        piece = view[start : start + step]
        if check_integer:
            _check_integer(piece, mask)
        largest = max(largest, piece.max().item())
        foreground = flags[: piece.size]
        np.greater(piece, 0, out=foreground)
        whole = piece.size // _BLOCK * _BLOCK
        first = start // _BLOCK
        if whole:
            counts[first : first + whole // _BLOCK] = _counts_per_block(foreground[:whole])
        if whole < piece.size:
            counts[-1] = np.count_nonzero(foreground[whole:])
        if (i + 1) % release_every == 0:
            drop_pages(view)
    # the pages stay mapped for the draw, which goes back to some of them (dropped after it)
    return counts, int(largest)


#: Blocks per group of the two-level search for a rank's block.
_GROUP = 8


def _group_counts(counts: np.ndarray) -> np.ndarray:
    """Foreground per group of ``_GROUP`` blocks (``counts`` zero-padded to whole groups)."""
    words = counts.view(np.uint64)  # 8 block counts (each <= 128) per word
    low = np.uint64(0x00FF00FF00FF00FF)
    pairs = (words & low) + ((words >> np.uint64(8)) & low)  # 4 lanes of 16 bits, each <= 256
    return ((pairs * np.uint64(0x0001000100010001)) >> np.uint64(48)).astype(np.int64)


def _find_blocks(counts: np.ndarray, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The block holding each (sorted) rank, and the foreground before that block.

    Two levels: a cumulative count over groups of 8 blocks finds the group (8x fewer sums and a
    search in a table 8x smaller than over every block), then the 8 counts of each rank's group.
    """
    padded = np.zeros(-(-counts.size // _GROUP) * _GROUP, dtype=np.uint8)
    padded[: counts.size] = counts
    group_total = np.cumsum(_group_counts(padded))
    group = np.searchsorted(group_total, ranks, side="right")
    before = group_total[group] - padded.view(np.uint64)[group].view(np.uint8).reshape(
        -1, _GROUP
    ).sum(axis=1, dtype=np.int64)
    in_group = np.ascontiguousarray(padded.reshape(-1, _GROUP)[group].T, dtype=np.int64)
    step = np.zeros(ranks.size, dtype=np.int64)
    ends = before.copy()
    for column in in_group[: _GROUP - 1]:
        ends += column  # foreground up to the end of this block of the group
        passed = ends <= ranks
        step += passed
        before = np.where(passed, ends, before)
    return group * _GROUP + step, before


def _gather_blocks(view: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The foreground flags of the (sorted) wanted blocks, shape (len(wanted), 128).

    Read in spans of at most ``_RELEASE_BYTES`` of mask, the mapped pages dropped after each, so
    that going back to 10,000 blocks spread over a huge mask keeps little of it resident.
    """
    rows = np.zeros((wanted.size, _BLOCK), dtype=np.bool_)
    whole_blocks = view.size // _BLOCK
    blocks = view[: whole_blocks * _BLOCK].reshape(-1, _BLOCK)
    inside = int(np.searchsorted(wanted, whole_blocks))  # the shorter last block comes last
    span = wanted[:inside] * (_BLOCK * view.itemsize) // _RELEASE_BYTES
    edges = [0, *(np.flatnonzero(np.diff(span)) + 1).tolist(), inside]
    for start, stop in itertools.pairwise(edges):
        np.greater(blocks[wanted[start:stop]], 0, out=rows[start:stop])
        drop_pages(view)
    if inside < wanted.size:
        tail = view[whole_blocks * _BLOCK :]
        rows[-1, : tail.size] = tail > 0
        drop_pages(view)
    return rows


def _mapped_positions(view: np.ndarray, counts: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Flat positions of the foreground voxels with the given (sorted) ranks.

    Only the blocks holding a drawn rank are read again; in each, the byte of packed flags that
    holds the wanted voxel, then the bit, are found by table look-ups.
    """
    block, before = _find_blocks(counts, ranks)
    # ranks are sorted, so their blocks are too: the distinct ones without a sort
    starts = np.flatnonzero(np.diff(block, prepend=-1))
    wanted = block[starts]
    inverse = np.repeat(np.arange(wanted.size), np.diff(np.append(starts, block.size)))
    rows = _gather_blocks(view, wanted)
    bits = np.packbits(rows, axis=1)[inverse]  # (draws, 16): each draw's block
    wanted_rank = ranks - before  # 0..127 inside its block
    # the byte holding the wanted voxel: how many bytes of the block end at or before its rank
    # (a loop over the 16 bytes, each step over all draws: 2x faster than a cumsum along rows)
    popcounts = np.ascontiguousarray(_BYTE_POPCOUNT[bits].T, dtype=np.int16)
    rank16 = wanted_rank.astype(np.int16)
    byte = np.zeros(ranks.size, dtype=np.int16)
    running = np.zeros(ranks.size, dtype=np.int16)
    for column in popcounts[: _BLOCK_BYTES - 1]:
        running += column
        byte += running <= rank16
    draws = np.arange(ranks.size)
    held = bits[draws, byte]
    before_byte = (
        np.take_along_axis(np.cumsum(popcounts, axis=0), byte[None, :].astype(np.intp), axis=0)[0]
        - _BYTE_POPCOUNT[held]
    )
    in_byte = rank16 - before_byte
    return block.astype(np.int64) * _BLOCK + byte * 8 + _BIT_SELECT[held, in_byte]


# --------------------------------------------------------------------------------------------
# Streamed masks: one bit per voxel and a count per 128 voxels

#: Bytes of mask read at a time: small pieces keep peak memory near the bits kept (measured on
#: 96x512x512 TIFF masks: 61 MB peak instead of 113 MB with 64 MB pieces, and faster).
_MASK_CHUNK_BYTES = 8 * 2**20
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)  # packbits order
_BYTE_POPCOUNT = _BYTE_BITS.sum(axis=1, dtype=np.uint8)
#: _BIT_SELECT[v, j]: where the j-th set bit of byte v is (0 = most significant, packbits order);
#: a stable sort puts the set bits' places first, in order.
_BIT_SELECT = np.argsort(1 - _BYTE_BITS, axis=1, kind="stable").astype(np.uint8)


@dataclass(frozen=True)
class _ForegroundChunk:
    """One mask chunk as a bit set: packed foreground bits and the cumulative count per block."""

    bits: np.ndarray  # uint8, packbits of (mask > 0), zero-padded to whole blocks
    cumulative: np.ndarray  # foreground voxels up to the end of each block
    size: int  # voxels in the chunk
    largest: int  # the largest label value in the chunk

    @property
    def count(self) -> int:
        return int(self.cumulative[-1]) if self.cumulative.size else 0


def _block_counts(bits: np.ndarray) -> np.ndarray:
    """Set bits per block of ``_BLOCK_BYTES`` bytes (at most 128: fits uint8)."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2: a hardware popcount over 64-bit words
        words = np.bitwise_count(bits.view(np.uint64)).reshape(-1, 2)
        return words[:, 0] + words[:, 1]
    return _BYTE_POPCOUNT[bits].reshape(-1, _BLOCK_BYTES).sum(axis=1, dtype=np.uint8)


def _foreground_chunks(mask: ImageHeader) -> list[_ForegroundChunk]:
    """Stream a mask once, keeping one bit per voxel and a running count per block of 128 voxels.

    That is all that is needed to find the n-th foreground voxel later, at an eighth of a uint8
    mask's memory for the bits and a 32nd for the counts, whatever the mask's dtype.
    """
    chunks = []
    check_integer = _needs_integer_check(mask.dtype)
    for chunk in iter_chunks(mask, max_bytes=_MASK_CHUNK_BYTES):
        flat = chunk.ravel()
        if check_integer:
            _check_integer(flat, mask)
        packed = np.packbits(flat > 0)
        bits = np.zeros(-(-flat.size // _BLOCK) * _BLOCK_BYTES, dtype=np.uint8)
        bits[: packed.size] = packed
        count_type = np.uint32 if flat.size < 2**32 else np.int64
        cumulative = np.cumsum(_block_counts(bits), dtype=count_type)
        largest = int(flat.max()) if flat.size else 0
        chunks.append(_ForegroundChunk(bits, cumulative, flat.size, largest))
    return chunks


def _select_in_chunk(chunk: _ForegroundChunk, ranks: np.ndarray) -> np.ndarray:
    """Positions in the chunk of the foreground voxels with the given ranks (0-based, sorted)."""
    block = np.searchsorted(chunk.cumulative, ranks, side="right")
    before = np.where(block > 0, chunk.cumulative[block - 1], 0).astype(np.int64)
    # inside the block: the byte holding the wanted bit, then the bit, by table look-ups
    block_bytes = chunk.bits.reshape(-1, _BLOCK_BYTES)[block]
    running = np.cumsum(_BYTE_POPCOUNT[block_bytes], axis=1, dtype=np.int64)
    wanted = ranks - before
    byte = np.argmax(running > wanted[:, None], axis=1)
    rows = np.arange(ranks.size)
    in_byte = wanted - (running[rows, byte] - _BYTE_POPCOUNT[block_bytes[rows, byte]])
    return block * _BLOCK + byte * 8 + _BIT_SELECT[block_bytes[rows, byte], in_byte]


def _draw_positions(chunks: list[_ForegroundChunk], ranks: np.ndarray) -> np.ndarray:
    """Flat C-order positions of the foreground voxels with the given (sorted) ranks."""
    positions = np.empty(ranks.size, dtype=np.int64)
    rank_edges = np.concatenate([[0], np.cumsum([c.count for c in chunks])])
    voxel_offsets = np.concatenate([[0], np.cumsum([c.size for c in chunks])])
    bounds = np.searchsorted(ranks, rank_edges)
    for i, chunk in enumerate(chunks):
        lo, hi = bounds[i], bounds[i + 1]
        if lo < hi:
            local = _select_in_chunk(chunk, ranks[lo:hi] - rank_edges[i])
            positions[lo:hi] = voxel_offsets[i] + local
    return positions
