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

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import MaskMismatchError
from ..readers import ImageHeader, iter_chunks, read_header
from .nnunet_io import nnunet_geometry
from .nnunet_records import ChannelDraws, NnUNetCaseRecord
from .nnunet_statistics import summarize_draws

SEED = 1234
_CHUNK_BYTES = 4 * 2**20
#: Draws indexed per step: the generator's stream is the same in pieces as at once.
_DRAWS_AT_ONCE = 2**20


def _spatial_size(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _read_label(header: ImageHeader) -> tuple[np.ndarray, int, int]:
    """The label's ``> 0`` voxels packed eight to a byte (little bit order), their number and
    the label's largest value."""
    size = _spatial_size(header.shape)
    packed = np.empty((size + 7) // 8, dtype=np.uint8)
    byte, largest, count = 0, 0, 0
    carry = np.empty(0, dtype=bool)  # flags of a byte a chunk left unfinished
    for chunk in iter_chunks(header, _CHUNK_BYTES, reuse=True):
        flat = chunk.reshape(-1)
        if not flat.size:
            continue
        flags = flat > 0
        count += int(np.count_nonzero(flags))
        largest = max(largest, int(flat.max()))
        if carry.size:
            flags = np.concatenate([carry, flags])
        whole = flags.size - flags.size % 8
        bits = np.packbits(flags[:whole], bitorder="little")
        packed[byte : byte + bits.size] = bits
        byte += bits.size
        carry = flags[whole:].copy()
    if carry.size:
        packed[byte] = np.packbits(carry, bitorder="little")[0]
    return packed, count, largest


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
    """
    headers = [read_header(p) for p in images]
    shape, spacing, _ = nnunet_geometry(headers[0])
    for header in headers[1:]:
        other_shape, _, _ = nnunet_geometry(header)
        if other_shape != shape:
            raise MaskMismatchError(
                f"{str(header.path)!r} has shape {other_shape}, but {str(headers[0].path)!r} "
                f"of the same case has {shape}. The channel files of a case must match."
            )
    packed, count, label_max = None, 0, 0
    if label is not None:
        label_header = read_header(label)
        label_shape = nnunet_geometry(label_header)[0]
        if label_shape != shape or label_header.channels != 1:
            raise MaskMismatchError(
                f"The label {str(label)!r} has shape {label_header.shape}, but its image "
                f"{str(headers[0].path)!r} is {shape}. A label must have its image's shape."
            )
        packed, count, label_max = _read_label(label_header)
    box = _NonzeroBox(shape)
    volume = _spatial_size(shape)
    kept: list[np.ndarray] = []
    for header in headers:
        per_channel = [np.empty(count, header.dtype) for _ in range(header.channels)]
        filled = [0] * header.channels
        pos = 0
        for chunk in iter_chunks(header, _CHUNK_BYTES, reuse=True):
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
    return NnUNetCaseRecord(key, shape, bbox, spacing, foreground, label_max, channels)


def _draw(rs: np.random.RandomState, values: np.ndarray, num_samples: int) -> np.ndarray:
    """``rs.choice(values, num_samples)`` (nnU-Net's draw), its indices made in pieces."""
    from .._compiled import loops

    out = np.empty(num_samples, values.dtype)
    for first in range(0, num_samples, _DRAWS_AT_ONCE):
        n = min(_DRAWS_AT_ONCE, num_samples - first)
        at = rs.randint(0, values.size, n)
        if loops is not None and values.dtype.itemsize in (1, 2, 4, 8):
            # the package's gather asks for the next voxels ahead: the misses overlap
            loops.gather(values, at, out[first : first + n], values.dtype.itemsize)
        else:
            out[first : first + n] = values[at]
    return out


def _inside_box(
    packed: np.ndarray, shape: tuple[int, ...], bbox: tuple[tuple[int, int], ...]
) -> np.ndarray | None:
    """Which of the label's foreground voxels (in C order) lie inside ``bbox``; None for all."""
    if all(lo == 0 and hi == n for (lo, hi), n in zip(bbox, shape)):
        return None
    volume = _flags(packed, 0, _spatial_size(shape)).reshape(shape)
    box = tuple(slice(lo, hi) for lo, hi in bbox)
    outside_any = volume.sum() != volume[box].sum()
    if not outside_any:
        return None
    inside = np.zeros(shape, dtype=bool)
    inside[box] = True
    return inside[volume]
