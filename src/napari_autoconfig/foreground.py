"""biom3d's foreground draw from one read of a mask: how many voxels are foreground, and where
the drawn ones are.

biom3d draws, per image, with a fresh ``default_rng(seed)``,
``rng.choice(image[mask > 0], num_samples, replace=True)``, which is
``values[rng.integers(0, len(values), num_samples)]``. Only the number of foreground voxels and the
positions of the drawn ones are needed, never the ``image[mask > 0]`` array.

The mask is read once, piece by piece, whatever its format: through a memory map when its pixels
lie raw in the file (uncompressed TIFF, ``.nii``, ``.npy``, raw MetaImage / NRRD), else streamed.
What is kept is a bit set: one bit per voxel (voxel ``i`` in bit ``i % 8`` of byte ``i // 8``),
the set bits per 64-bit word and the running count per superblock of 1,024 voxels. The n-th
foreground voxel is then found from the superblocks' running count, then inside the superblock's
16 words and the word's 64 bits.

Two sets of loops do this, with the same numbers. The compiled ones (:mod:`._loops`, built with
the package where a C compiler is found) read each piece once, the largest label, the bits and the
word counts together, and find each drawn voxel without a branch. numpy's take two passes over
each piece, small enough to stay in the CPU cache (``max``, then ``packbits``), and find the drawn
voxels for all draws at once with lane arithmetic.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from . import _compiled
from .errors import NonIntegerMaskError
from .readers import ImageHeader, drop_pages, flat_view, iter_chunks, shrank_error


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
    # the index lives in this thread's reused buffers: it never leaves this function
    return draw_from_index(_build_index(mask, reuse=True), seed, num_samples)


def draw_from_index(index: ForegroundIndex, seed: int, num_samples: int) -> ForegroundDraw:
    """biom3d's draw (:func:`draw_foreground`) from a mask's index already made."""
    if index.count == 0 or num_samples <= 0:
        none = np.empty(0, dtype=np.int64)
        return ForegroundDraw(index.count, index.largest, none, none)
    ranks = np.random.default_rng(seed).integers(0, index.count, num_samples)
    sorted_ranks, order = _sort_with_order(ranks)
    return ForegroundDraw(index.count, index.largest, index.select(sorted_ranks), order)


def padded_bits_bytes(voxels: int) -> int:
    """Bytes of a mask's bit set as :class:`ForegroundIndex` keeps it: one bit per voxel,
    zero-padded to whole superblocks of 1,024 voxels."""
    return -(-int(voxels) // _SUPER) * (_SUPER // 8)


def index_from_bits(bits: np.ndarray, largest: int) -> ForegroundIndex:
    """A mask's :class:`ForegroundIndex` from its ``> 0`` bits, for a caller that read the mask
    itself (:mod:`.one_pass`, where nnU-Net's pass streams it).

    ``bits`` is ``packbits(mask.ravel() > 0, bitorder="little")`` zero-padded to
    :func:`padded_bits_bytes`; ``largest`` the mask's largest label (0 for an empty mask).
    """
    word_counts = _popcount(bits.view(np.uint64))
    running = np.zeros(word_counts.size // _WORDS + 1, dtype=np.int64)
    per_superblock = word_counts.reshape(-1, _WORDS).sum(axis=1, dtype=np.int64)
    np.cumsum(per_superblock, out=running[1:])
    return ForegroundIndex(bits, word_counts, running, max(int(largest), 0))


def _sort_with_order(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` sorted, and where each came from (equal values in any order).

    Each value and its place are packed into one int64 and sorted: 3x faster than ``argsort``.
    """
    shift = max(1, int(values.size - 1).bit_length())
    if values.size == 0 or int(values.max()) >= 1 << (62 - shift):
        order = np.argsort(values)
        return values[order], order
    keys = np.sort((values << shift) | np.arange(values.size))
    return keys >> shift, keys & ((1 << shift) - 1)


# --------------------------------------------------------------------------------------------
# The bit set of a mask's foreground, and finding its n-th set bit

#: Voxels per superblock: 16 words of 64 bits, 128 bytes of packed flags.
_SUPER = 1024
_WORDS = _SUPER // 64
#: Voxels looked at per piece by numpy: with max and packbits on the same piece in turn, the
#: second pass reads it from the CPU cache (256 KB pieces were the fastest of 64 KB to 4 MB
#: here). A multiple of the superblock, so that every piece but the last fills whole superblocks.
_PIECE = 2**18
#: Bytes per piece for the compiled loop, which reads each voxel once: the fewer calls the better
#: (each holds the interpreter lock a moment); 4 MB ran as fast as 8 MB, both 1.3x faster than
#: 256 KB on two threads.
_COMPILED_PIECE_BYTES = 4 * 2**20
#: Bytes of a compressed mask inflated at a time, into one reused buffer: 4 MB ran the .nii.gz
#: dataset 8% faster than 8 MB (the inflater's output then stays in the cache), 2 MB no faster.
_STREAM_CHUNK_BYTES = 4 * 2**20
#: Bytes of mask between two releases of the mapped pages: resident memory stays bounded on a
#: huge mask and small on every one (8, 64 and 2 MB ran equally fast here).
_RELEASE_BYTES = 8 * 2**20
#: Draws looked for at a time: temporaries stay small enough for malloc to serve them from memory
#: it already has (fresh pages cost a fault per 4 KB), yet the numpy calls stay few (4,096 was
#: the fastest of 1,024 to 10,000 on two threads).
_BATCH = 4096
#: Largest bit set kept (bytes; 256M voxels): a bigger mask keeps only its counts (a 64th of a
#: byte per voxel), and its drawn words are read again: from the mapping, or by inflating a
#: compressed mask once more (masks compress well: a second or so per GB of voxels).
_KEEP_BITS_BYTES = 32 * 2**20
#: Bytes of each buffer a thread keeps from one mask to the next, at most: fresh ones cost a fault
#: per 4 KB page written, a fifth of the work on a 96x512x512 mask.
_REUSE_BYTES = 32 * 2**20

_ONES8 = np.uint64(0x0101010101010101)  # times a word of 8 byte lanes: their running sums
_ONES16 = np.uint64(0x0001000100010001)  # the same for 4 lanes of 16 bits
_LOW_BYTES = np.uint64(0x00FF00FF00FF00FF)
#: Bit j of byte v, j = 0 the least significant: voxel order in the bit set ("little" bit order,
#: which makes the compiled loop's vector compares give the bits in place).
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little")
_BYTE_POPCOUNT = _BYTE_BITS.sum(axis=1, dtype=np.uint8)
#: _BIT_SELECT[8 * v + j]: where the j-th set bit of byte v is (0 = least significant, voxel
#: order); a stable sort puts the set bits' places first, in order.
_BIT_SELECT = np.argsort(1 - _BYTE_BITS, axis=1, kind="stable").astype(np.uint8).ravel()

_thread_buffers = threading.local()


def _buffer(name: str, size: int, dtype, reuse: bool) -> np.ndarray:
    """A 1-D array of ``size`` items: this thread's kept one when ``reuse`` and small enough."""
    dtype = np.dtype(dtype)
    if not reuse or size * dtype.itemsize > _REUSE_BYTES:
        return np.empty(size, dtype=dtype)
    kept = getattr(_thread_buffers, name, None)
    if kept is None or kept.size < size:
        kept = np.empty(size, dtype=dtype)
        setattr(_thread_buffers, name, kept)
    return kept[:size]


def _popcount(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Set bits per element of an unsigned array, as uint8."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2: a hardware popcount
        return np.bitwise_count(values, out=out)
    per_byte = _BYTE_POPCOUNT[values.view(np.uint8)]
    if values.itemsize > 1:
        lanes = per_byte.view(np.uint64)  # 8 byte counts per word: their sum in the top byte
        per_byte = ((lanes * _ONES8) >> np.uint64(56)).astype(np.uint8).reshape(values.shape)
    if out is None:
        return per_byte
    out[...] = per_byte
    return out


@dataclass(frozen=True)
class ForegroundIndex:
    """A mask's foreground as a bit set, with the counts that find its n-th voxel quickly.

    Attributes
    ----------
    bits : numpy.ndarray or None
        uint8, ``packbits(mask > 0, bitorder="little")`` of the flattened mask (voxel ``i`` in
        bit ``i % 8`` of byte ``i // 8``), zero-padded to whole superblocks of
        1,024 voxels; None for a huge mask, whose drawn words are read again from ``source``.
    word_counts : numpy.ndarray
        uint8, set bits per 64-bit word of ``bits``.
    running : numpy.ndarray
        int64, set bits before each superblock, then the total: ``running[i]`` counts the
        superblocks ``0..i-1``.
    largest : int
        The largest label value (0 for an empty mask).
    source : numpy.ndarray, ImageHeader or None
        Where the drawn words are read again when ``bits`` is None: the flat memory-mapped mask,
        or the header of a compressed one (inflated once more).
    path : Path or None
        The mask's file, named when reading it again fails.
    """

    bits: np.ndarray | None
    word_counts: np.ndarray
    running: np.ndarray
    largest: int
    source: np.ndarray | ImageHeader | None = None
    path: object = None

    @property
    def count(self) -> int:
        """Foreground voxels."""
        return int(self.running[-1])

    def select(self, ranks: np.ndarray) -> np.ndarray:
        """Flat positions of the foreground voxels with the given ranks.

        Parameters
        ----------
        ranks : numpy.ndarray
            0-based ranks among the foreground voxels, ascending, each below :attr:`count`.

        Returns
        -------
        numpy.ndarray
            int64 flat C-order positions, ascending.
        """
        loops = _compiled.loops
        if loops is not None and self.bits is not None:
            positions = np.empty(ranks.size, dtype=np.int64)
            loops.select(
                np.ascontiguousarray(ranks, dtype=np.int64),
                self.running,
                self.word_counts,
                self.bits,
                positions,
            )
            return positions
        words = np.empty(ranks.size, dtype=np.int64)
        in_word = np.empty(ranks.size, dtype=np.uint8)
        for start in range(0, ranks.size, _BATCH):
            batch = slice(start, start + _BATCH)
            words[batch], in_word[batch] = self._find_words(ranks[batch])
        held = self._held_words(words)  # one read for all draws when the bits are not kept
        positions = np.empty(ranks.size, dtype=np.int64)
        for start in range(0, ranks.size, _BATCH):
            batch = slice(start, start + _BATCH)
            positions[batch] = words[batch] * 64 + _bit_in_word(held[batch], in_word[batch])
        return positions

    def _find_words(self, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The 64-voxel word holding each (sorted) rank, and the rank inside that word."""
        superblock = np.searchsorted(self.running[1:], ranks, side="right")
        rank = (ranks - self.running[superblock]).astype(np.uint16)  # inside it: 0..1023
        # running sums of the superblock's 16 word counts, 4 lanes of 16 bits a word
        counts = self.word_counts.reshape(-1, _WORDS)[superblock]
        lanes = counts.astype(np.uint16).view(np.uint64)  # (draws, 4)
        lanes *= _ONES16  # running sums inside each 64-bit word
        carry = lanes >> np.uint64(48)  # each word's total, carried into the words after it
        carry[:, 3] = carry[:, 2] + carry[:, 1] + carry[:, 0]
        carry[:, 2] = carry[:, 1] + carry[:, 0]
        carry[:, 1] = carry[:, 0]
        carry[:, 0] = 0
        lanes += carry * _ONES16
        running_words = lanes.view(np.uint16)  # (draws, 16): foreground up to each word's end
        word = _true_per_row(running_words <= rank[:, None])
        at = np.arange(ranks.size) * _WORDS + word
        rank = (rank - running_words.ravel()[at] + counts.ravel()[at]).astype(np.uint8)
        return superblock * _WORDS + word, rank

    def _held_words(self, words: np.ndarray) -> np.ndarray:
        """The packed bits of the given (ascending) words, as uint64."""
        if self.bits is not None:
            return self.bits.view(np.uint64)[words]
        if isinstance(self.source, np.ndarray):
            return _read_words(self.source, words, self.path)
        return _stream_words(self.source, words)


def _bit_in_word(held: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Where the rank-th set bit of each packed word is, 0..63 (voxel order): the byte by the
    running sums of the word's 8 byte counts (one lane each), then the bit by table."""
    word_bytes = held.view(np.uint8)
    byte_counts = _popcount(word_bytes)
    running_bytes = (byte_counts.view(np.uint64) * _ONES8).view(np.uint8)
    byte = _true_per_row(running_bytes.reshape(-1, 8) <= rank[:, None])
    at = np.arange(rank.size) * 8 + byte
    held_byte = word_bytes[at]
    rank = rank - running_bytes[at] + byte_counts[at]
    return byte * 8 + _BIT_SELECT[held_byte.astype(np.intp) * 8 + rank]


def _true_per_row(flags: np.ndarray) -> np.ndarray:
    """True values per row of a (rows, 8 or 16) bool array: a popcount of its 0/1 bytes."""
    per_word = _popcount(flags.view(np.uint64))
    total = per_word[:, 0].astype(np.intp)
    for column in range(1, per_word.shape[1]):
        total += per_word[:, column]
    return total


def index_foreground(mask: ImageHeader) -> ForegroundIndex:
    """Read a mask once into a :class:`ForegroundIndex`.

    Memory: one bit per voxel plus an eighth of that (only a 64th of a byte per voxel above 256M
    voxels), and one piece of the mask at a time.

    Raises
    ------
    NonIntegerMaskError
        If a float mask holds non-integer values.
    ImageReadError
        If the mask's pixels turn out damaged while reading.
    """
    return _build_index(mask, reuse=False)


def _build_index(mask: ImageHeader, reuse: bool) -> ForegroundIndex:
    """:func:`index_foreground`, in this thread's kept buffers when ``reuse`` (then the index is
    good only until this thread builds the next one)."""
    voxels = int(np.prod(mask.shape, dtype=np.int64))
    superblocks = -(-voxels // _SUPER)
    # the compiled loop reads integer (and bool) labels in the machine's byte order, aligned to
    # their size; it reads a memory map under a guard (a file truncated meanwhile raises, where
    # a read of the map would kill the process with SIGBUS), so only it is given one: numpy's
    # loops read the mask through plain reads into a buffer
    loops = _compiled.loops
    compiled = loops is not None and mask.dtype.kind in "uib" and mask.dtype.isnative
    view = flat_view(mask) if compiled else None
    if view is not None and not view.flags.aligned:  # a raw mask at an odd offset in its file
        view = None
    # a bit per voxel, unless the mask is huge: then the counts alone
    keep_bits = superblocks * (_SUPER // 8) <= _KEEP_BITS_BYTES
    bits = _buffer("bits", superblocks * (_SUPER // 8), np.uint8, reuse) if keep_bits else None
    word_counts = _buffer("word_counts", superblocks * _WORDS, np.uint8, reuse)
    running = _buffer("running", superblocks + 1, np.int64, reuse)
    if bits is not None:
        bits[-(_SUPER // 8) :] = 0  # the last superblock's padding counts as background
    word_counts[-_WORDS:] = 0
    check_integer = not np.issubdtype(mask.dtype, np.integer) and mask.dtype != np.bool_
    # nonzero is foreground for unsigned labels; signed or float labels need "> 0"
    unsigned = mask.dtype.kind in "ub"
    largest = 0
    piece_size = max(_SUPER, _COMPILED_PIECE_BYTES // mask.dtype.itemsize) if compiled else _PIECE
    piece_size -= piece_size % _SUPER
    scratch = None if bits is not None else _buffer("scratch", piece_size // 8, np.uint8, reuse)
    if view is not None:
        pieces = _mapped(view, piece_size)
    else:
        pieces = _regrouped(iter_chunks(mask, _STREAM_CHUNK_BYTES, reuse=True), piece_size)
    for start, piece in pieces:
        if check_integer and not np.array_equal(piece, np.trunc(piece)):
            raise NonIntegerMaskError(
                f"The mask {str(mask.path)!r} holds non-integer values (dtype {mask.dtype}). "
                "Masks must be label images (0 = background); save it as an integer image."
            )
        if compiled:
            first_word = start // 64
            into = bits[start // 8 :] if bits is not None else scratch
            try:
                top = loops.pack(
                    piece, into, word_counts[first_word:], mask.dtype.itemsize, not unsigned
                )
            except OSError as error:  # the mapped file shrank under the pass (SIGBUS caught)
                raise shrank_error(mask.path) from error
            largest = max(largest, top)
            continue
        largest = max(largest, piece.max().item())
        packed = np.packbits(piece if unsigned else piece > 0, bitorder="little")
        if bits is not None:
            bits[start // 8 : start // 8 + packed.size] = packed
        else:
            _count_words(packed, start // 64, word_counts)
    if bits is not None and not compiled:
        # counted once over the whole bit set: per piece, the numpy calls' own cost (a
        # microsecond each, holding the interpreter lock) would outweigh the work
        _popcount(bits.view(np.uint64), out=word_counts)
    if compiled:
        loops.running(word_counts, running)
    else:
        _super_counts(word_counts, out=running[1:], reuse=reuse)
        running[0] = 0
        np.cumsum(running[1:], out=running[1:])
    source = None if keep_bits else view if view is not None else mask
    return ForegroundIndex(bits, word_counts, running, max(int(largest), 0), source, mask.path)


def _count_words(packed: np.ndarray, first_word: int, word_counts: np.ndarray) -> None:
    """Set bits per 64-bit word of one piece's packed bits (its last word zero-padded)."""
    whole = packed.size // 8
    if whole:
        _popcount(
            packed[: whole * 8].view(np.uint64), out=word_counts[first_word : first_word + whole]
        )
    if packed.size % 8:
        last = np.zeros(8, dtype=np.uint8)
        last[: packed.size % 8] = packed[whole * 8 :]
        word_counts[first_word + whole] = _popcount(last.view(np.uint64))[0]


def _read_words(view: np.ndarray, words: np.ndarray, path: object = None) -> np.ndarray:
    """The packed foreground bits of the given (ascending) 64-voxel words of a mapped mask, as
    uint64; read in spans of ``_RELEASE_BYTES`` of mask, the mapped pages let go after each.

    The words' voxels are copied out of the map by the compiled gather, which reads it under
    its SIGBUS guard (a mask truncated meanwhile raises, naming ``path``); only a view exists
    where the compiled loops do (see :func:`_build_index`).
    """
    held = np.empty(words.size, dtype=np.uint64)
    span = words * (64 * view.itemsize) // _RELEASE_BYTES
    edges = [0, *(np.flatnonzero(np.diff(span)) + 1).tolist(), words.size]
    for start, stop in itertools.pairwise(edges):
        some = words[start:stop]
        held[start:stop] = _packed_words(_copy_words(view, some, path), np.arange(some.size))
        drop_pages(view)
    return held


def _copy_words(view: np.ndarray, words: np.ndarray, path: object) -> np.ndarray:
    """The voxels of the given 64-voxel words of a mapped mask, copied out in order (the last
    word zero-padded past the mask's end), through the guarded compiled gather."""
    positions = (words[:, None] * 64 + np.arange(64)).ravel()
    inside = positions < view.size
    copied = np.zeros(positions.size, dtype=view.dtype)
    taken = np.empty(int(np.count_nonzero(inside)), dtype=view.dtype)
    try:
        _compiled.loops.gather(
            view, np.ascontiguousarray(positions[inside]), taken, view.dtype.itemsize
        )
    except OSError as error:  # the mapped file shrank under the read (SIGBUS caught)
        raise shrank_error(path or "the mask") from error
    copied[inside] = taken
    return copied


def _stream_words(mask: ImageHeader, words: np.ndarray) -> np.ndarray:
    """The packed foreground bits of the given (ascending) 64-voxel words of a compressed mask,
    as uint64, from one more pass over its pieces (stopped after the last word)."""
    held = np.empty(words.size, dtype=np.uint64)
    done = 0
    for start, piece in _regrouped(iter_chunks(mask, _STREAM_CHUNK_BYTES, reuse=True), _PIECE):
        first = start // 64  # pieces hold whole words, but for the mask's last one
        stop = int(np.searchsorted(words, first + -(-piece.size // 64)))
        if stop > done:
            held[done:stop] = _packed_words(piece, words[done:stop] - first)
            done = stop
        if done == words.size:
            break
    return held


def _packed_words(flat: np.ndarray, words: np.ndarray) -> np.ndarray:
    """``packbits(flat > 0, bitorder="little")`` of the given (ascending) 64-voxel words of
    ``flat``, as uint64; a last word cut short by the end of ``flat`` is zero-padded."""
    whole = flat.size // 64
    inside = int(np.searchsorted(words, whole))
    flags = np.zeros((words.size, 64), dtype=np.bool_)
    np.greater(flat[: whole * 64].reshape(-1, 64)[words[:inside]], 0, out=flags[:inside])
    if inside < words.size:
        tail = flat[whole * 64 :]
        flags[inside:, : tail.size] = tail > 0
    return np.packbits(flags, axis=1, bitorder="little").view(np.uint64).ravel()


def _super_counts(word_counts: np.ndarray, out: np.ndarray, reuse: bool) -> None:
    """Set bits per superblock into ``out``, from its 16 word counts (each <= 64), with lane
    arithmetic.

    Summing rows of 16 with ``reshape(-1, 16).sum(axis=1)`` costs more than reading the mask;
    here pairs of 8-lane words are added (lanes <= 128), widened to 4 lanes of 16 bits (<= 256),
    and the lanes summed by one multiplication.
    """
    lanes = word_counts.view(np.uint64)
    pairs = _buffer("pairs", lanes.size // 2, np.uint64, reuse)
    wide = _buffer("wide", lanes.size // 2, np.uint64, reuse)
    np.add(lanes[0::2], lanes[1::2], out=pairs)
    np.right_shift(pairs, np.uint64(8), out=wide)
    np.bitwise_and(wide, _LOW_BYTES, out=wide)
    np.bitwise_and(pairs, _LOW_BYTES, out=pairs)
    np.add(pairs, wide, out=pairs)
    np.multiply(pairs, _ONES16, out=pairs)
    np.right_shift(pairs, np.uint64(48), out=pairs)
    out[...] = pairs


def _mapped(view: np.ndarray, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first voxel, piece) over a memory-mapped mask, its pages let go as it goes."""
    release_every = max(1, _RELEASE_BYTES // (size * view.itemsize))
    try:
        for i, start in enumerate(range(0, view.size, size)):
            yield start, view[start : start + size]
            if (i + 1) % release_every == 0:
                drop_pages(view)
    finally:
        drop_pages(view)


def _regrouped(chunks: Iterable[np.ndarray], size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first voxel, piece) of ``size`` voxels (a multiple of 64) from chunks of any size (the
    last may be shorter): packed bits then start on whole bytes. Pieces are views of the chunks
    where they fall whole inside one, else copied into one reused buffer: use each before the
    next."""
    buffer: np.ndarray | None = None
    filled = start = 0
    for chunk in chunks:
        flat = chunk.ravel()
        taken = 0
        while taken < flat.size:
            if filled == 0 and flat.size - taken >= size:  # whole inside this chunk
                yield start, flat[taken : taken + size]
                start += size
                taken += size
                continue
            if buffer is None:
                buffer = np.empty(size, dtype=flat.dtype)
            step = min(size - filled, flat.size - taken)
            buffer[filled : filled + step] = flat[taken : taken + step]
            filled += step
            taken += step
            if filled == size:
                yield start, buffer
                start += size
                filled = 0
    if buffer is not None and filled:
        yield start, buffer[:filled]
