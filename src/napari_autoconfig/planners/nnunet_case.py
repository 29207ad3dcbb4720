"""One case as nnU-Net v2's ``analyze_case`` sees it, each file read once, streamed.

nnunetv2 2.8.1 reads every case whole (as float32), crops it to the bounding box of the voxels
that are non-zero in any channel, and draws foreground intensities: a fresh
``RandomState(1234)`` per case, ``num_samples`` draws with replacement per channel (channel 1
continuing channel 0's stream) among the cropped voxels whose label is > 0, in C order.

Here each file is streamed (:func:`napari_autoconfig.readers.iter_chunks`): the label first (one
bit per voxel), then each channel, whose pass both widens the non-zero bounding box and keeps the
values under the label. The draws are then nnU-Net's own (same generator, same stream, same
order); :func:`.nnunet_statistics.summarize_draws` keeps them as value counts.

Axis order: nnU-Net's reader order, (z, y, x) (:mod:`.nnunet_io`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import DatasetError, MaskMismatchError
from ..readers import ImageHeader, iter_chunks, read_header
from .nnunet_io import cannot_read, nnunet_geometry
from .nnunet_records import ChannelDraws, NnUNetCaseRecord
from .nnunet_statistics import summarize_draws

SEED = 1234
_CHUNK_BYTES = 4 * 2**20
#: Label voxels counted per value at once (bincount's intp copy of them: 2 MB).
_COUNTED_AT_ONCE = 2**18
#: Voxels of the label's flags unpacked at once to find the foreground inside the crop box.
_SLAB_VOXELS = 2**20
#: Draws indexed per step: the generator's stream is the same in pieces as at once.
_DRAWS_AT_ONCE = 2**20


def _spatial_size(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def stream_pieces(header: ImageHeader) -> Iterator[np.ndarray]:
    """A file's pixels in C-order pieces, as :func:`analyze_case` reads them by default (each
    piece valid until the next is asked for)."""
    return iter_chunks(header, _CHUNK_BYTES, reuse=True)


def _read_label(
    header: ImageHeader,
    tally: bool = True,
    stream: Callable[[ImageHeader], Iterable[np.ndarray]] = stream_pieces,
) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """The label's ``> 0`` voxels packed eight to a byte (little bit order), their number and
    the label's distinct values (ascending; empty unless ``tally``)."""
    size = _spatial_size(header.shape)
    packed = np.empty((size + 7) // 8, dtype=np.uint8)
    byte, count = 0, 0
    values = _DistinctValues()
    carry = np.empty(0, dtype=bool)  # flags of a byte a chunk left unfinished
    for chunk in stream(header):
        flat = chunk.reshape(-1)
        if not flat.size:
            continue
        flags = flat > 0
        count += int(np.count_nonzero(flags))
        if tally:
            values.add(flat)
        if carry.size:
            flags = np.concatenate([carry, flags])
        whole = flags.size - flags.size % 8
        bits = np.packbits(flags[:whole], bitorder="little")
        packed[byte : byte + bits.size] = bits
        byte += bits.size
        carry = flags[whole:].copy()
    if carry.size:
        packed[byte] = np.packbits(carry, bitorder="little")[0]
    return packed, count, values.sorted()


class _DistinctValues:
    """The distinct values of a label's chunks: counted per value for 8 / 16-bit integers
    (one bincount per chunk), else ``np.unique`` per chunk; memory bounded by the values."""

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None
        self.offset = 0
        self.found: set[int] = set()

    def add(self, flat: np.ndarray) -> None:
        if flat.dtype.kind in "ui" and flat.dtype.itemsize <= 2:
            if flat.dtype.kind == "i":  # signed: shifted to unsigned, order kept
                unsigned = np.dtype(f"u{flat.dtype.itemsize}")
                self.offset = 1 << (8 * flat.dtype.itemsize - 1)
                flat = flat.view(unsigned) ^ unsigned.type(self.offset)
            if self.counts is None:
                self.counts = np.zeros(1 << (8 * flat.dtype.itemsize), np.int64)
            # bincount copies its input as intp (8 bytes a voxel): a few pieces at a time
            for first in range(0, flat.size, _COUNTED_AT_ONCE):
                piece = flat[first : first + _COUNTED_AT_ONCE]
                self.counts += np.bincount(piece, minlength=self.counts.size)
        else:
            # nnU-Net reads labels as float32 and counts them as integers
            self.found.update(int(v) for v in np.unique(flat).tolist())

    def sorted(self) -> tuple[int, ...]:
        found = set(self.found)
        if self.counts is not None:
            found.update((np.flatnonzero(self.counts) - self.offset).tolist())
        return tuple(sorted(found))


def _flags(packed: np.ndarray, start: int, size: int) -> np.ndarray:
    """The label's ``> 0`` flags of voxels ``start`` to ``start + size``, unpacked."""
    first = start // 8
    bits = np.unpackbits(packed[first : (start + size + 7) // 8], bitorder="little")
    return bits[start - 8 * first : start - 8 * first + size].view(bool)


class _NonzeroBox:
    """Running bounding box of the non-zero voxels of flat C-order pieces of (Z, Y, X) volumes.

    A piece is cut into whole rows of X voxels (and the partial rows at its ends): per row,
    whether it holds a non-zero voxel; per column, the same over every row seen.
    """

    def __init__(self, shape: tuple[int, int, int]):
        self.shape = shape
        self.rows = np.zeros(shape[0] * shape[1], dtype=bool)
        self.columns = np.zeros(shape[2], dtype=bool)

    def add(self, start: int, flat: np.ndarray) -> None:
        width = self.shape[2]
        end = start + flat.size
        first_row = -(-start // width)  # first whole row
        last_row = end // width
        if first_row > last_row:  # inside one row
            self._partial(start, flat)
            return
        cut0 = first_row * width - start
        cut1 = last_row * width - start
        if cut0:
            self._partial(start, flat[:cut0])
        if cut1 > cut0:
            nonzero = (flat[cut0:cut1] != 0).reshape(-1, width)
            self.rows[first_row:last_row] |= nonzero.any(axis=1)
            if not self.columns.all():
                self.columns |= nonzero.any(axis=0)
        if cut1 < flat.size:
            self._partial(last_row * width, flat[cut1:])

    def _partial(self, start: int, flat: np.ndarray) -> None:
        width = self.shape[2]
        nonzero = np.flatnonzero(flat)
        if nonzero.size:
            self.rows[start // width] = True
            self.columns[(start + nonzero) % width] = True

    def bbox(self) -> tuple[tuple[int, int], ...]:
        rows = self.rows.reshape(self.shape[:2])
        box = []
        for flags in (rows.any(axis=1), rows.any(axis=0), self.columns):
            hit = np.flatnonzero(flags)
            box.append((int(hit[0]), int(hit[-1]) + 1) if hit.size else (0, flags.size))
        if not self.columns.any():
            return tuple((0, n) for n in self.shape)  # an all-zero image: nnU-Net keeps it all
        return tuple(box)


def analyze_case(
    key: str,
    images: Sequence[Path],
    label: Path | None,
    num_samples: int,
    position: int,
    drawing_cases: int,
    reader: str | None = None,
    spacing: tuple[float, ...] | None = None,
    label_values: bool = True,
    stream: Callable[[ImageHeader], Iterable[np.ndarray]] = stream_pieces,
    float32_spacing: bool = False,
) -> NnUNetCaseRecord:
    """One case, as nnU-Net's ``analyze_case``: crop box, spacing, foreground draws.

    Parameters
    ----------
    images
        The case's channel files in order (a file may hold several channels).
    label
        Its label file; None draws nothing (folders without masks).
    num_samples
        Draws per channel (nnU-Net: ``int(1e8 // cases)``).
    position, drawing_cases
        The case's place among the cases, and their number: where its draws fall in the
        concatenated draws whose float32 sum nnU-Net takes (:mod:`.float32_sum`).
    reader, spacing
        nnU-Net's reader of a raw dataset and, for Tiff3DIO, the spacing of the case's spacing
        file (:func:`.nnunet_io.nnunet_geometry`); None: the files as read here.
    label_values
        Whether to list the label's distinct values (a plain folder's classes come from them;
        a raw dataset's from its dataset.json).
    stream
        How each file's pixels are read, label first, then the images in order
        (:func:`stream_pieces`); the one-pass fingerprint of both planners
        (:mod:`napari_autoconfig.one_pass`) watches the pieces go by to make biom3d's record.
    float32_spacing
        A plain folder whose export stores spacings as float32 (NIfTI): the spacing nnU-Net
        reads from it (:func:`.nnunet_io.nnunet_geometry`).

    Raises
    ------
    DatasetError
        nnU-Net's ``reader`` cannot read one of the files.
    MaskMismatchError
        The channel files or the label do not have the same shape.
    """
    headers = [read_as(p, reader) for p in images]
    geometry = [nnunet_geometry(h, reader, spacing, float32_spacing) for h in headers]
    shape, spacing, _ = geometry[0]
    for header, (other_shape, _, _) in zip(headers[1:], geometry[1:]):
        if other_shape != shape:
            raise MaskMismatchError(
                f"{str(header.path)!r} has shape {other_shape}, but {str(headers[0].path)!r} "
                f"of the same case has {shape}. The channel files of a case must match."
            )
    packed, count, values_found = None, 0, ()
    if label is not None:
        label_header = read_as(label, reader)
        label_shape, _, label_channels = nnunet_geometry(label_header, reader)
        if label_shape != shape or label_channels != 1:
            raise MaskMismatchError(
                f"The label {str(label)!r} has shape {label_header.shape}, but its image "
                f"{str(headers[0].path)!r} is {shape}. A label must have its image's shape."
            )
        packed, count, values_found = _read_label(label_header, label_values, stream)
    box = _NonzeroBox(shape)
    volume = _spatial_size(shape)
    kept: list[np.ndarray] = []
    for header, (_, _, channels_in_file) in zip(headers, geometry):
        per_channel = [np.empty(count, header.dtype) for _ in range(channels_in_file)]
        filled = [0] * channels_in_file
        pos = 0
        for chunk in stream(header):
            flat = chunk.reshape(-1)
            offset = 0
            while offset < flat.size:  # a piece may straddle two channels of a 4D file
                channel, start = divmod(pos, volume)
                take = min(flat.size - offset, volume - start)
                piece = flat[offset : offset + take]
                box.add(start, piece)
                if count:
                    under = piece[_flags(packed, start, take)]
                    per_channel[channel][filled[channel] : filled[channel] + under.size] = under
                    filled[channel] += under.size
                offset += take
                pos += take
        kept.extend(per_channel)
    bbox = box.bbox()
    channels: tuple[ChannelDraws, ...] = ()
    foreground = 0
    if count:
        inside = _inside_box(packed, shape, bbox)
        values = [v if inside is None else v[inside] for v in kept]
        foreground = int(values[0].size)
        if foreground:
            rs = np.random.RandomState(SEED)
            total = drawing_cases * num_samples
            start = position * num_samples
            channels = tuple(
                summarize_draws(_draw(rs, v, num_samples), start, total) for v in values
            )
    return NnUNetCaseRecord(key, shape, bbox, spacing, foreground, values_found, channels)


def read_as(path: Path, reader: str | None) -> ImageHeader:
    """The header of ``path``, refused where nnU-Net's ``reader`` would not read the file."""
    header = read_header(path)
    why_not = None if reader is None else cannot_read(reader, header)
    if why_not is not None:
        raise DatasetError(
            f"nnU-Net's {reader} cannot read {str(path)!r}: {why_not}. nnU-Net would stop "
            "on it: save it like the dataset's other files."
        )
    return header


def _draw(rs: np.random.RandomState, values: np.ndarray, num_samples: int) -> np.ndarray:
    """``rs.choice(values, num_samples)`` (nnU-Net's draw), bit for bit, ``rs`` left where
    numpy's own draw leaves it (the next channel continues the stream).

    numpy's legacy ``choice`` takes its indices from ``randint(0, values.size)``: each 32-bit word
    of the MT19937 stream masked to the bits of ``values.size - 1``, drawn again while above it.
    The compiled loops run that generator themselves from the state's key and position (about
    twice as fast as ``randint``, whose rejection branches mispredict, and with no index array);
    numpy's path takes ``randint``'s indices in pieces. Masking numpy's raw words in pieces was
    tried for the numpy path: exact, but slower than ``randint`` (each word takes several passes).
    """
    from .._compiled import loops

    size = values.size
    if loops is not None and size <= 2**32 and values.dtype.itemsize in (1, 2, 4, 8):
        out = np.empty(num_samples, values.dtype)
        name, key, pos, has_gauss, gauss = rs.get_state()
        key = np.array(key, dtype=np.uint32)  # a copy the loop advances in place
        pos = loops.draw(key, pos, size - 1, np.ascontiguousarray(values), out, out.itemsize)
        rs.set_state((name, key, pos, has_gauss, gauss))
        return out
    return _draw_by_randint(rs, values, num_samples)


def _draw_by_randint(rs: np.random.RandomState, values: np.ndarray, num_samples: int) -> np.ndarray:
    """``rs.choice(values, num_samples)`` through ``rs.randint``'s indices, in pieces (no index
    array of all the draws)."""
    out = np.empty(num_samples, values.dtype)
    for first in range(0, num_samples, _DRAWS_AT_ONCE):
        n = min(_DRAWS_AT_ONCE, num_samples - first)
        out[first : first + n] = values[rs.randint(0, values.size, n)]
    return out


def _inside_box(
    packed: np.ndarray, shape: tuple[int, ...], bbox: tuple[tuple[int, int], ...]
) -> np.ndarray | None:
    """Which of the label's foreground voxels (in C order) lie inside ``bbox``; None for all.

    The label's flags are unpacked a slab of z-planes at a time (about :data:`_SLAB_VOXELS`
    voxels), so no mask of the whole volume is made: memory is one flag per foreground voxel.
    """
    if all(lo == 0 and hi == n for (lo, hi), n in zip(bbox, shape)):
        return None
    (z0, z1), (y0, y1), (x0, x1) = bbox
    plane = shape[1] * shape[2]
    planes = max(1, _SLAB_VOXELS // plane)
    pieces = []
    for z in range(0, shape[0], planes):
        n = min(planes, shape[0] - z)
        flags = _flags(packed, z * plane, n * plane).reshape(n, shape[1], shape[2])
        inside = np.zeros_like(flags)
        inside[max(z0 - z, 0) : max(min(z1 - z, n), 0), y0:y1, x0:x1] = True
        pieces.append(inside[flags])
    chosen = np.concatenate(pieces)
    return None if chosen.all() else chosen
