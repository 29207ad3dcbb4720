"""nnU-Net v2's dataset fingerprint (``DatasetFingerprintExtractor``), one streamed read per file.

nnunetv2 2.8.1 reads every case whole (as float32), crops it to the bounding box of the voxels
that are non-zero in any channel, and draws foreground intensities: a fresh
``RandomState(1234)`` per case, ``1e8 // cases`` draws with replacement per channel (channel 1
continuing channel 0's stream) among the cropped voxels whose label is > 0, in C order. The
dataset's statistics are those of every case's draws concatenated in case order: float32 mean
and standard deviation, min, max and the 0.5 / 50 / 99.5 percentiles.

Here each file is read once, streamed (:func:`napari_autoconfig.readers.iter_chunks`): the label
first (one bit per voxel), then each channel, whose pass both widens the non-zero bounding box and
keeps the values under the label. The draws are then nnU-Net's own (same generator, same stream,
same order), so min, max and the percentiles are nnU-Net's to the bit, and so is the mean: its
float32 pairwise summation is replayed over the same sequence (:mod:`.float32_sum`). The
standard deviation is computed from the exact draws in float64 (nnU-Net sums float32 squares
pairwise: the two differ by float32 rounding, about 1e-7 relative).

Axis order: nnU-Net's SimpleITK reader order, which is numpy's (z, y, x); a 2D image is
``(1, Y, X)`` with the spacing ``(999 * max, y, x)``, as nnU-Net reads it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..dataset import Case, Dataset, nnunet_root, open_dataset
from ..errors import Cancelled, DatasetError, ImageReadError, MaskMismatchError
from ..readers import ImageHeader, iter_chunks, read_header
from .float32_sum import PartialSum, joined_sum, split_sum, summation_blocks

SEED = 1234
#: nnU-Net's ``num_foreground_voxels_for_intensitystats`` (written ``10e7``: it is 1e8).
SAMPLES_IN_TOTAL = 10e7
_CHUNK_BYTES = 4 * 2**20
#: Draws indexed per step: the generator's stream is the same in pieces as at once.
_DRAWS_AT_ONCE = 2**20

#: The reader nnU-Net picks for a file ending (its registry's first match that reads 3D files).
READER_OF_ENDING = {
    ".nii.gz": "SimpleITKIO",
    ".nrrd": "SimpleITKIO",
    ".mha": "SimpleITKIO",
    ".gipl": "SimpleITKIO",
    ".nii": "NibabelIO",
    ".tif": "Tiff3DIO",
    ".tiff": "Tiff3DIO",
    ".png": "NaturalImage2DIO",
    ".bmp": "NaturalImage2DIO",
}

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ChannelDraws:
    """What one case contributes to one channel's statistics: its draws, summarised.

    Attributes
    ----------
    values, counts : numpy.ndarray
        The distinct drawn values (float32, ascending) and how often each was drawn.
    sum : PartialSum
        The draws' part of numpy's float32 sum of every case's draws (:mod:`.float32_sum`).
    """

    values: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    sum: PartialSum = field(repr=False)

    @property
    def drawn(self) -> int:
        return int(self.counts.sum())


@dataclass(frozen=True)
class NnUNetCaseRecord:
    """One case as nnU-Net's ``analyze_case`` sees it (reader axis order, (z, y, x)).

    Attributes
    ----------
    key : str
        The case id.
    shape : tuple of int
        Shape before cropping.
    bbox : tuple of (int, int)
        Half-open bounding box of the voxels non-zero in any channel (the whole image when none).
    spacing : tuple of float
        nnU-Net's spacing of the case.
    foreground : int
        Label voxels > 0 inside the box (the voxels drawn from).
    label_max : int
        The largest label value (to count classes in folders without a dataset.json).
    channels : tuple of ChannelDraws
        One per channel; empty when the case has no foreground.
    """

    key: str
    shape: tuple[int, ...]
    bbox: tuple[tuple[int, int], ...]
    spacing: tuple[float, ...]
    foreground: int
    label_max: int
    channels: tuple[ChannelDraws, ...] = field(default=(), repr=False)

    @property
    def shape_after_crop(self) -> tuple[int, ...]:
        return tuple(hi - lo for lo, hi in self.bbox)

    @property
    def relative_size_after_cropping(self) -> float:
        return float(np.prod(self.shape_after_crop) / np.prod(self.shape))


@dataclass(frozen=True)
class ChannelIntensities:
    """nnU-Net's foreground intensity statistics of one channel (over the draws)."""

    mean: float
    median: float
    std: float
    min: float
    max: float
    percentile_99_5: float
    percentile_00_5: float

    def as_json(self) -> dict:
        return {
            "max": self.max,
            "mean": self.mean,
            "median": self.median,
            "min": self.min,
            "percentile_00_5": self.percentile_00_5,
            "percentile_99_5": self.percentile_99_5,
            "std": self.std,
        }


@dataclass(frozen=True)
class NnUNetFingerprint:
    """nnU-Net's ``dataset_fingerprint.json`` plus the dataset.json facts its planner reads.

    Attributes
    ----------
    dataset_name : str
        The dataset folder's name (``Dataset001_Cells``), or the images folder's.
    channel_names : tuple of str
        dataset.json's ``channel_names`` in channel order (they choose the normalisation).
    num_labels : int
        Entries of dataset.json's ``labels`` (background, classes, ignore...).
    num_training : int
        dataset.json's ``numTraining`` (trusted as written, as nnU-Net does).
    image_reader_writer : str
        The reader class nnU-Net would use for the file ending.
    spacings, shapes_after_crop : tuple of tuple
        Per case, nnU-Net's reader order ((z, y, x); 2D: (999 * max, y, x)).
    median_relative_size_after_cropping : float
    intensities : tuple of ChannelIntensities or None
        Per channel; None without labels (nnU-Net needs them).
    keys : tuple of str
        The case ids, in nnU-Net's order.
    """

    dataset_name: str
    channel_names: tuple[str, ...]
    num_labels: int
    num_training: int
    image_reader_writer: str
    spacings: tuple[tuple[float, ...], ...]
    shapes_after_crop: tuple[tuple[int, ...], ...]
    median_relative_size_after_cropping: float
    intensities: tuple[ChannelIntensities, ...] | None
    keys: tuple[str, ...] = ()

    def intensity_properties_json(self) -> dict:
        """``foreground_intensity_properties_per_channel`` as nnU-Net writes it."""
        if self.intensities is None:
            return {}
        return {str(i): c.as_json() for i, c in enumerate(self.intensities)}

    def as_json(self) -> dict:
        """The ``dataset_fingerprint.json`` nnU-Net writes (its keys; it sorts them)."""
        return {
            "foreground_intensity_properties_per_channel": self.intensity_properties_json(),
            "median_relative_size_after_cropping": self.median_relative_size_after_cropping,
            "shapes_after_crop": [list(s) for s in self.shapes_after_crop],
            "spacings": [list(s) for s in self.spacings],
        }

    @classmethod
    def from_json(
        cls, fingerprint: dict, dataset_json: dict, dataset_name: str = ""
    ) -> NnUNetFingerprint:
        """Read nnU-Net's own ``dataset_fingerprint.json`` and ``dataset.json`` (as dicts)."""
        channels = dataset_json.get("channel_names", dataset_json.get("modality", {}))
        props = fingerprint["foreground_intensity_properties_per_channel"]
        intensities = tuple(
            ChannelIntensities(**{k: float(v) for k, v in props[str(i)].items()})
            for i in range(len(channels))
        )
        ending = dataset_json.get("file_ending", ".nii.gz")
        return cls(
            dataset_name=dataset_name,
            channel_names=tuple(str(channels[k]) for k in sorted(channels, key=int)),
            num_labels=len(dataset_json["labels"]),
            num_training=int(dataset_json["numTraining"]),
            image_reader_writer=READER_OF_ENDING.get(ending.lower(), "SimpleITKIO"),
            spacings=tuple(tuple(float(v) for v in s) for s in fingerprint["spacings"]),
            shapes_after_crop=tuple(
                tuple(int(v) for v in s) for s in fingerprint["shapes_after_crop"]
            ),
            median_relative_size_after_cropping=float(
                fingerprint["median_relative_size_after_cropping"]
            ),
            intensities=intensities,
        )


# ----------------------------------------------------------------------- nnU-Net's reading


def nnunet_geometry(header: ImageHeader) -> tuple[tuple[int, ...], tuple[float, ...], int]:
    """Spatial shape, spacing and channel count of a file as nnU-Net's SimpleITK reader has them.

    3D: shape (Z, Y, X), spacing ``|GetSpacing()|`` reversed; 2D: shape (1, Y, X), spacing
    ``(999 * max(x, y), y, x)``; a 4D file's first axis is channels. Files without a spacing
    (plain TIFF, ``.npy``) get 1 per axis, as nnU-Net's TIFF reader without its json.
    """
    zyx = header.spatial_shape_zyx
    spacing = header.spacing_zyx
    if header.is_2d:
        yx = tuple(abs(float(v)) for v in spacing[-2:]) if spacing else (1.0, 1.0)
        # nnU-Net multiplies SimpleITK's (x, y) maximum by 999
        return (1, *zyx[1:]), (max(yx[::-1]) * 999, *yx), header.channels
    values = tuple(abs(float(v)) for v in spacing) if spacing else (1.0, 1.0, 1.0)
    return zyx, values, header.channels


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
                _summarize_draws(_draw(rs, v, num_samples), start, total) for v in values
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


# ------------------------------------------------------------------------- the statistics


def _summarize_draws(native: np.ndarray, start: int, total: int) -> ChannelDraws:
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


# -------------------------------------------------------------------------- the dataset


@dataclass(frozen=True)
class NnUNetSource:
    """The cases to fingerprint and the dataset.json facts nnU-Net's planner reads."""

    name: str
    cases: tuple[Case, ...]
    channel_names: tuple[str, ...]
    labels: dict | None  # dataset.json's labels; None: counted from the masks
    num_training: int
    file_ending: str


def open_nnunet_source(images: str | Path, masks: str | Path | None = None) -> NnUNetSource:
    """An nnU-Net raw dataset folder (dataset.json), or a plain folder of images (and masks).

    A plain folder is read as nnU-Net would read it converted: one channel per image file,
    z-scored (its name is unknown), the masks as labels, every case for training.
    """
    root = nnunet_root(images)
    if root is not None:
        dataset = open_dataset(root, masks)
        meta = _dataset_json(root)
        channels = meta.get("channel_names", meta.get("modality"))
        names = tuple(str(channels[k]) for k in sorted(channels, key=int))
        labels = meta.get("labels")
        if not isinstance(labels, dict) or not labels:
            raise DatasetError(
                f"{str(root / 'dataset.json')!r} has no 'labels': nnU-Net needs them "
                '(e.g. "labels": {"background": 0, "cell": 1}).'
            )
        training = meta.get("numTraining", len(dataset.cases))
        if isinstance(training, bool) or not isinstance(training, int) or training < 1:
            raise DatasetError(
                f"{str(root / 'dataset.json')!r}: numTraining must be a positive whole number, "
                f"not {training!r}."
            )
        return NnUNetSource(
            root.name, _cases(dataset), names, labels, training, str(meta["file_ending"])
        )
    dataset = open_dataset(images, masks)
    first = dataset.cases[0].image
    first = first[0] if isinstance(first, tuple) else first
    from ..readers import image_suffix

    ending = image_suffix(first) or ".nii.gz"
    header = read_header(first)
    names = tuple("zscore" for _ in range(header.channels))
    name = Path(images).expanduser().resolve().name
    return NnUNetSource(name, _cases(dataset), names, None, len(dataset.cases), ending)


def _cases(dataset: Dataset) -> tuple[Case, ...]:
    """The cases with one label path each (the dataset lists a multichannel case's label once
    per channel)."""
    out = []
    for case in dataset.cases:
        mask = case.mask[0] if isinstance(case.mask, tuple) else case.mask
        image = case.image if isinstance(case.image, tuple) else (case.image,)
        out.append(Case(case.key, image, mask))
    return tuple(out)


def _dataset_json(root: Path) -> dict:
    try:
        return json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(f"{str(root / 'dataset.json')!r} cannot be read ({error}).") from error


def fingerprint_nnunet(
    source: NnUNetSource | str | Path,
    masks: str | Path | None = None,
    *,
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> NnUNetFingerprint:
    """nnU-Net v2's dataset fingerprint of a raw dataset or a folder of images and masks.

    Cases run on ``executor`` (default: the package's shared thread pool), a few more in
    flight than workers, so memory stays that of a few cases.

    Raises
    ------
    Cancelled
        When ``cancel()`` returned True.
    ImageReadError, MaskMismatchError, DatasetError
        With the file and what to do.
    """
    from ..fingerprint import default_workers, shared_pool

    if not isinstance(source, NnUNetSource):
        source = open_nnunet_source(source, masks)
    cases = source.cases
    num_samples = int(SAMPLES_IN_TOTAL // len(cases))
    pool = shared_pool() if executor is None else executor
    records: list[NnUNetCaseRecord | None] = [None] * len(cases)
    pending: dict[Future, int] = {}
    next_case = done = 0
    try:
        while next_case < len(cases) or pending:
            if cancel is not None and cancel():
                raise Cancelled(f"Cancelled after {done} of {len(cases)} cases.")
            while len(pending) < 2 * default_workers() and next_case < len(cases):
                case = cases[next_case]
                future = pool.submit(_analyze_checked, case, num_samples, next_case, len(cases))
                pending[future] = next_case
                next_case += 1
                if next_case == 1:
                    # numpy's summation tree, once, while the first cases are being read
                    summation_blocks(num_samples * len(cases))
            finished, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in finished:
                records[pending.pop(future)] = future.result()
                done += 1
                if progress is not None:
                    progress(done, len(cases))
    finally:
        for future in pending:
            future.cancel()
    return summarize_nnunet(source, records)  # type: ignore[arg-type]


def _analyze_checked(case: Case, num_samples: int, position: int, num_cases: int):
    try:
        return analyze_case(case.key, case.image, case.mask, num_samples, position, num_cases)
    except (ImageReadError, MaskMismatchError, DatasetError):
        raise
    except MemoryError as error:
        raise ImageReadError(
            f"Not enough memory to read the case {case.key!r}: {error}. Close other programs."
        ) from error


def summarize_nnunet(
    source: NnUNetSource, records: Sequence[NnUNetCaseRecord]
) -> NnUNetFingerprint:
    """Merge the cases' records into the dataset's fingerprint, as nnU-Net's ``run``."""
    channels = len(source.channel_names)
    has_labels = all(case.mask is not None for case in source.cases)
    intensities = None
    if has_labels and any(r.channels for r in records):
        intensities = tuple(channel_intensities(records, c) for c in range(channels))
    if source.labels is not None:
        num_labels = len(source.labels)
    else:
        num_labels = max((r.label_max for r in records), default=0) + 1
        num_labels = max(num_labels, 2)
    return NnUNetFingerprint(
        dataset_name=source.name,
        channel_names=source.channel_names,
        num_labels=num_labels,
        num_training=source.num_training,
        image_reader_writer=READER_OF_ENDING.get(source.file_ending.lower(), "SimpleITKIO"),
        spacings=tuple(r.spacing for r in records),
        shapes_after_crop=tuple(r.shape_after_crop for r in records),
        median_relative_size_after_cropping=float(
            np.median([r.relative_size_after_cropping for r in records])
        ),
        intensities=intensities,
        keys=tuple(r.key for r in records),
    )
