"""Pixels stored raw in a file (:class:`_Raw`): sequential reads and memory maps.

Also the conversion every format shares from stored values to presented ones (native byte
order, NIfTI scaling), and the exact-read helper the compressed streams use too.
"""

from __future__ import annotations

import itertools
import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _compiled
from ._errors import _stream_damaged, shrank_error

# take() on raw pixels: the memory map is released after every span of _READ_SPAN bytes.
_READ_SPAN = 8 * 2**20


@dataclass(frozen=True)
class _Raw:
    """Pixels stored raw: a memory map at ``offset`` in ``file``."""

    file: Path
    offset: int
    dtype: np.dtype  # stored dtype, with the file's byte order
    shape: tuple[int, ...]  # stored shape (size-1 axes dropped), in ``order``
    order: str = "C"
    perm: tuple[int, ...] | None = None  # transpose from stored to presented
    scale: tuple[float, float] | None = None  # NIfTI scl_slope, scl_inter
    out_dtype: np.dtype | None = None


def _native(dtype: np.dtype) -> np.dtype:
    return np.dtype(dtype).newbyteorder("=")


def _finish(block: np.ndarray, scale, out_dtype) -> np.ndarray:
    """Convert stored values to presented ones: native byte order, NIfTI scaling as ITK does."""
    if scale is not None:
        # ITK casts to the output float type, then applies slope/intercept in double precision.
        return (block.astype(out_dtype).astype(np.float64) * scale[0] + scale[1]).astype(out_dtype)
    if not block.dtype.isnative:
        return block.astype(_native(block.dtype))
    return block


def _raw_chunks(layout: _Raw, max_bytes: int, reuse: bool = False) -> Iterator[np.ndarray]:
    """Sequential pieces of a raw layout.

    In file order the pieces are plain reads (faster than faulting in a memory map, and the
    process keeps no mapped pages: a 4 GB volume is scanned in ~max_bytes of memory), into one
    reused buffer with ``reuse``. Other orders are copied out value by value (see below), the
    mapped pages released after every piece.
    """
    count = int(np.prod(layout.shape, dtype=np.int64))
    if layout.perm is None:
        # a scaled NIfTI presents wider values than it stores: the presented piece is the bound
        itemsize = max(layout.dtype.itemsize, np.dtype(layout.out_dtype or layout.dtype).itemsize)
        step = max(1, max_bytes // itemsize)
        buffer = np.empty(min(step, count), dtype=layout.dtype) if reuse else None
        with open(layout.file, "rb") as f:
            f.seek(layout.offset)
            for start in range(0, count, step):
                n = min(step, count - start)
                block = buffer[:n] if reuse else np.empty(n, dtype=layout.dtype)
                if _read_exact(f, memoryview(block.view(np.uint8))) < block.nbytes:
                    raise shrank_error(layout.file)  # its size was checked with the header
                yield _finish(block, layout.scale, layout.out_dtype)
        return
    # Another order: each piece is a strided view of the stored values, copied out of plain
    # reads, never by numpy reading the map (a file cut meanwhile would kill the process with
    # SIGBUS; the map only gives the pieces' places): one read per contiguous run where the runs
    # are long (a z-first hyperstack's planes), else one read of the span the piece lies in,
    # its values then picked with the view's strides (interleaved channels).
    try:
        stored = np.memmap(
            layout.file, dtype=layout.dtype, mode="r", offset=layout.offset, shape=(count,)
        )
    except ValueError as error:  # shorter than its header said: it shrank since
        raise shrank_error(layout.file) from error
    view = stored.reshape(layout.shape).transpose(layout.perm)
    base = stored.__array_interface__["data"][0]
    piece_bytes = min(max_bytes, _COPY_ITEMS * layout.dtype.itemsize)
    with open(layout.file, "rb", buffering=0) as f:
        kept: list[np.ndarray] = []
        for block in _view_blocks(view, piece_bytes):
            values = np.empty(block.size, dtype=layout.dtype)
            runs = _contiguous_axes(block)
            if runs < block.ndim and block[(0,) * runs].nbytes >= _RUN_BYTES:
                _read_runs(f, layout, block, runs, base, values)
            else:
                _read_strided(f, layout, block, base, values, kept)
            yield _finish(values.reshape(block.shape), layout.scale, layout.out_dtype)


#: Contiguous runs at least this long are read with one plain read each, not value by value.
_RUN_BYTES = 4096


def _contiguous_axes(block: np.ndarray) -> int:
    """How many leading axes of ``block`` to index before what is left is contiguous in the
    file (C order): ``block.ndim`` when not even the last axis is."""
    expected = block.itemsize
    for axis in range(block.ndim - 1, -1, -1):
        if block.shape[axis] > 1 and block.strides[axis] != expected:
            return axis + 1
        expected *= block.shape[axis]
    return 0


def _read_runs(f, layout: _Raw, block: np.ndarray, runs: int, base: int, out: np.ndarray):
    """``out`` = the block's values, its contiguous trailing runs read one plain read each."""
    starts = _positions(block[(Ellipsis,) + (0,) * (block.ndim - runs)], base)
    length = int(np.prod(block.shape[runs:], dtype=np.int64))
    pieces = memoryview(out.view(np.uint8))
    nbytes = length * layout.dtype.itemsize
    for i, start in enumerate(starts.tolist()):
        f.seek(layout.offset + start * layout.dtype.itemsize)
        if _read_exact(f, pieces[i * nbytes : (i + 1) * nbytes]) < nbytes:
            raise shrank_error(layout.file)


#: Values per piece of a raw file read in another order than stored: the span read for a piece
#: of interleaved channels is as many times larger as there are channels.
_COPY_ITEMS = 2**20


def _positions(block: np.ndarray, base: int) -> np.ndarray:
    """The stored positions (in items from ``base``'s address) of a strided view's values, in
    its C order, as contiguous int64."""
    itemsize = block.itemsize
    start = (block.__array_interface__["data"][0] - base) // itemsize
    positions = np.full((1,) * block.ndim, start, dtype=np.int64)
    for axis, (size, stride) in enumerate(zip(block.shape, block.strides, strict=True)):
        steps = np.arange(size, dtype=np.int64) * (stride // itemsize)
        positions = positions + steps.reshape([size if a == axis else 1 for a in range(block.ndim)])
    return np.ascontiguousarray(positions.ravel())


def _read_strided(f, layout: _Raw, block: np.ndarray, base: int, out: np.ndarray, kept: list):
    """``out`` = the block's values, from one plain read of the stored span they lie in (into a
    buffer kept in ``kept`` from piece to piece), picked with the block's own strides."""
    itemsize = layout.dtype.itemsize
    first = (block.__array_interface__["data"][0] - base) // itemsize
    last = first + sum((n - 1) * (s // itemsize) for n, s in zip(block.shape, block.strides))
    if not kept or kept[0].size < last - first + 1:
        kept[:] = [np.empty(last - first + 1, dtype=layout.dtype)]
    span = kept[0][: last - first + 1]
    f.seek(layout.offset + first * itemsize)
    if _read_exact(f, memoryview(span.view(np.uint8))) < span.nbytes:
        raise shrank_error(layout.file)
    picked = np.lib.stride_tricks.as_strided(span, block.shape, block.strides, writeable=False)
    out.reshape(block.shape)[...] = picked


def _release(mapping) -> None:
    """Drop the pages a memory map touched from this process (clean, file-backed: no data lost).

    Through the compiled loops where built: ``mmap.madvise`` holds the interpreter lock while the
    kernel unmaps the pages (a tenth of a masked case's work), the compiled call lets the other
    threads run meanwhile.
    """
    if mapping is None:
        return
    loops = _compiled.loops
    if loops is not None:
        try:
            if loops.release(mapping):
                return
        except (TypeError, ValueError):  # a writable or odd mapping: mmap's own call below
            pass
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is not None:
        try:
            mapping.madvise(advice)
        except (OSError, ValueError):  # pragma: no cover - advisory only
            pass


def _view_blocks(view: np.ndarray, max_bytes: int) -> Iterator[np.ndarray]:
    """Consecutive C-order sub-views of ``view``, each at most ``max_bytes``."""
    if view.nbytes <= max_bytes:
        yield view
    elif view.ndim == 1:
        step = max(1, max_bytes // view.itemsize)
        for i in range(0, view.shape[0], step):
            yield view[i : i + step]
    else:
        sub = view[0].nbytes
        if sub <= max_bytes:
            step = max(1, max_bytes // max(sub, 1))
            for i in range(0, view.shape[0], step):
                yield view[i : i + step]
        else:
            for i in range(view.shape[0]):
                yield from _view_blocks(view[i], max_bytes)


def _raw_take(layout: _Raw, shape: tuple[int, ...], idx: np.ndarray) -> np.ndarray:
    """Values at presented flat indices, gathered from a memory map (one page fault per page).

    The stored positions are visited in bounded spans whose pages are dropped after each
    (:func:`_release`): the kernel maps whole neighbourhoods around a touched page, so without it
    10,000 values from a 4 GB volume left 3.5 GB resident.
    """
    if layout.perm is None:
        pos, order = idx, None
    else:
        multi = np.unravel_index(idx, shape)
        stored = [None] * len(layout.perm)
        for j, axis in enumerate(layout.perm):
            stored[axis] = multi[j]
        pos = np.ravel_multi_index(stored, layout.shape)
        order = np.argsort(pos, kind="stable")
        pos = pos[order]
    values = _gather(layout, pos)
    if order is not None:
        unsorted = np.empty_like(values)
        unsorted[order] = values
        values = unsorted
    return _finish(values, layout.scale, layout.out_dtype)


def _flat_map(layout: _Raw) -> np.ndarray:
    """The stored values as one flat read-only array over a memory map of the file."""
    count = int(np.prod(layout.shape, dtype=np.int64))
    with open(layout.file, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        return np.frombuffer(mapping, dtype=layout.dtype, count=count, offset=layout.offset)
    except ValueError as exc:  # the file shrank since its header was read
        raise _stream_damaged(layout.file, exc) from exc


def _mapping_of(view: np.ndarray):
    """The ``mmap`` under a view, if any."""
    base = view
    while base is not None and not isinstance(base, mmap.mmap):
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return base


def _gather(layout: _Raw, pos: np.ndarray) -> np.ndarray:
    """Stored values at sorted element positions, read in bounded spans.

    The compiled gather reads a memory map (its reads' cache misses overlapped) under a guard
    that turns a SIGBUS (the file truncated meanwhile) into an error; without it each span is
    read into a buffer, which meets a shorter file as a short read, never a SIGBUS.
    """
    out = np.empty(pos.size, dtype=layout.dtype)
    # spans of _READ_SPAN bytes from the first position on: where each starts in ``pos``
    per_span = max(1, _READ_SPAN // layout.dtype.itemsize)
    edges = pos[0] + per_span * np.arange(1, (pos[-1] - pos[0]) // per_span + 1)
    starts = [0, *np.searchsorted(pos, edges).tolist(), pos.size]
    loops = _compiled.loops
    if loops is None or layout.dtype.itemsize not in (1, 2, 4, 8):
        _gather_read(layout, pos, starts, out)
        return out
    view = _flat_map(layout)
    mapping = _mapping_of(view)
    pos = np.ascontiguousarray(pos, dtype=np.int64)
    for a, b in itertools.pairwise(starts):
        if a == b:
            continue
        try:
            loops.gather(view, pos[a:b], out[a:b], view.dtype.itemsize)
        except OSError as error:  # the mapped file shrank under the read (SIGBUS caught)
            raise shrank_error(layout.file) from error
        _release(mapping)
    return out


def _gather_read(layout: _Raw, pos: np.ndarray, starts: list, out: np.ndarray) -> None:
    """``out = stored[pos]``, each span of positions read at once into one reused buffer (a
    fresh one per span cost a page fault per 4 KB, more than the read)."""
    itemsize = layout.dtype.itemsize
    buffer = None
    with open(layout.file, "rb", buffering=0) as f:
        for a, b in itertools.pairwise(starts):
            if a == b:
                continue
            first, last = int(pos[a]), int(pos[b - 1])
            if buffer is None or buffer.size < last - first + 1:
                buffer = np.empty(last - first + 1, dtype=layout.dtype)
            span = buffer[: last - first + 1]
            f.seek(layout.offset + first * itemsize)
            if _read_exact(f, memoryview(span.view(np.uint8))) < span.nbytes:
                raise shrank_error(layout.file)
            out[a:b] = span[pos[a:b] - first]


def _read_exact(f, buf: memoryview) -> int:
    got = 0
    while got < len(buf):
        n = f.readinto(buf[got:])
        if not n:
            break
        got += n
    return got
