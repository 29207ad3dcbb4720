"""One case of MONAI Auto3DSeg's DataAnalyzer (monai 1.6.1, ``device="cpu"``), torch-free.

MONAI loads the image and the label as float32 tensors, turns them to RAS, and runs its case
analyzers (``monai/auto3dseg/analyzer.py``): ``ImageStats``, ``FgImageStats``, ``LabelStats``
and, with ``hist_bins``, ``ImageHistogram``. :func:`analyze_case` gives the same by-case entry
(same keys, same order, same values) from one streamed pass over each file:

- usually (one 8 / 16-bit channel, a uint8 label of its shape and orientation) the label is
  streamed beside the image and every (label value, image value) pair counted, from which every
  statistic follows exactly (no sort, no mask per label, nothing of the label kept);
- otherwise the label is read once (its values cast to int16, as MONAI does; turned and resized
  onto the image's grid where MONAI does) and kept as one small array, and each image channel is
  streamed against it; an integer image of 8 or 16 bits is counted as above; a float (or wider
  integer) image keeps its values, and its statistics are taken by selection;
- ``cropped_shape`` and the image intensity are over MONAI's crop: ``CropForeground`` of
  ``intensity > 0`` applied to a channel *without* its channel axis, so that the first RAS axis
  is taken for channels and never cropped (a MONAI quirk, reproduced). Outside the crop every
  voxel is <= 0: an unsigned image's crop is its counts less the zeros outside;
- components (``do_ccp``) as MONAI's CPU path: ``skimage.measure.label`` of the boolean mask of
  each label value, which for a boolean image is ``scipy.ndimage.label`` with 26-connectivity
  (``background=-1`` changes nothing there), in the raster order of the RAS array.

Cases MONAI skips (its analyzers raise and it only logs the case) raise :class:`SkippedCase`.

:class:`PiecesWatch` makes the same entry from the pieces another pass reads (the label's, then
the image's: :mod:`napari_autoconfig.one_pass`), where the label would stream beside the image.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError, MaskMismatchError
from ..readers import ImageHeader, iter_chunks, read_header
from .monai_ras import RasGeometry, ras_geometry
from .monai_stats import voxel_stats, voxel_stats_of

_CHUNK_BYTES = 4 * 2**20
#: MONAI's ``EnsureSameShaped``: a label this close to the image's shape is resized to it.
ALLOWED_SHAPE_DIFFERENCE = 5


class SkippedCase(Exception):
    """A case MONAI's DataAnalyzer leaves out (it logs it and goes on): why, in words."""


def _counted(dtype: np.dtype) -> bool:
    """Whether an image of this type is counted per value (8 / 16-bit integers)."""
    return dtype.kind in "uib" and dtype.itemsize <= 2


def _header(files) -> ImageHeader:
    return read_header(files if not isinstance(files, (tuple, list)) else tuple(files))


def _spatial(header: ImageHeader) -> tuple[int, int, int]:
    if header.is_2d:
        raise DatasetError(
            f"{str(header.path)!r} is a 2D image: MONAI's DataAnalyzer analyses 3D volumes. "
            "Give 3D images (one z plane is fine)."
        )
    return header.spatial_shape_zyx


def _read_label(header: ImageHeader) -> tuple[np.ndarray, np.ndarray | None]:
    """The label as MONAI analyses it, (z, y, x): its values cast to int16 (float labels
    truncated); kept as uint8 where every value fits (a uint8 label, most masks). With the
    compiled loops, a uint8 label's values are counted too, each piece while it is in cache
    (else None: counted later)."""
    from .._compiled import loops

    shape = _spatial(header)
    if header.channels > 1:
        raise DatasetError(
            f"The label {str(header.path)!r} has {header.channels} channels: give one label "
            "image of class values per case (MONAI would take the argmax over channels)."
        )
    small = header.dtype.kind in "ub" and header.dtype.itemsize == 1
    out = np.empty(int(np.prod(shape)), np.uint8 if small else np.int16)
    counts = np.zeros(256, np.int64) if small and loops is not None else None
    pos = 0
    for chunk in iter_chunks(header, _CHUNK_BYTES, reuse=True):
        flat = chunk.reshape(-1)
        if header.dtype.kind == "f":
            flat = np.trunc(flat)
        piece = out[pos : pos + flat.size]
        piece[...] = flat.astype(out.dtype, copy=False)
        if counts is not None:
            loops.tally(piece, counts, 1, False)
        pos += flat.size
    return out.reshape(shape), counts


def _tally(flat: np.ndarray, size: int) -> np.ndarray:
    """How often each value of an 8- or 16-bit unsigned array occurs (``size`` counts)."""
    from .._compiled import loops

    if loops is None:
        return np.bincount(flat, minlength=size)
    counts = np.zeros(size, np.int64)
    loops.tally(np.ascontiguousarray(flat), counts, flat.dtype.itemsize, False)
    return counts


def _nearest_exact(size_in: int, size_out: int) -> np.ndarray:
    """torch's ``interpolate(mode="nearest-exact")`` source index of each output index."""
    scale = size_in / size_out
    return np.minimum(np.floor((np.arange(size_out) + 0.5) * scale).astype(np.int64), size_in - 1)


def _label_on_image_grid(
    label: np.ndarray,
    label_geometry: RasGeometry,
    image_geometry: RasGeometry,
    image_shape_zyx: tuple[int, int, int],
    label_path: Path,
    image_path: Path,
) -> np.ndarray:
    """The label in the image's (z, y, x) frame, as MONAI pairs them: both turned to RAS, the
    label resized (nearest-exact) where it differs by at most 5 voxels per axis, else refused."""
    if label_geometry.order_zyx == image_geometry.order_zyx and label.shape == image_shape_zyx:
        if label_geometry.flips == image_geometry.flips:
            return label
    ras = label_geometry.to_ras(label)
    target = image_geometry.shape_ras(image_shape_zyx)
    if list(ras.shape) != target:
        if any(abs(a - b) > ALLOWED_SHAPE_DIFFERENCE for a, b in zip(ras.shape, target)):
            raise MaskMismatchError(
                f"The label {str(label_path)!r} is {list(ras.shape)} voxels (RAS order) and "
                f"its image {str(image_path)!r} {target}: MONAI's DataAnalyzer stops on a "
                f"difference of more than {ALLOWED_SHAPE_DIFFERENCE} voxels. Give each image "
                "its own label."
            )
        ras = ras[np.ix_(*(_nearest_exact(a, b) for a, b in zip(ras.shape, target)))]
    return np.ascontiguousarray(image_geometry.from_ras(ras))


class _PositiveBox:
    """Running extent, per (z, y, x) axis, of the voxels > 0 of flat C-order pieces."""

    def __init__(self, shape: tuple[int, int, int]):
        self.shape = shape
        self.rows = np.zeros(shape[0] * shape[1], dtype=bool)
        self.columns = np.zeros(shape[2], dtype=bool)

    def add(self, start: int, positive: np.ndarray) -> None:
        width = self.shape[2]
        end = start + positive.size
        first = -(-start // width)
        last = end // width
        if first > last:  # inside one row
            self._partial(start, positive)
            return
        cut0, cut1 = first * width - start, last * width - start
        if cut0:
            self._partial(start, positive[:cut0])
        if cut1 > cut0:
            rows = positive[cut0:cut1].reshape(-1, width)
            self.rows[first:last] |= rows.any(axis=1)
            if not self.columns.all():
                self.columns |= rows.any(axis=0)
        if cut1 < positive.size:
            self._partial(last * width, positive[cut1:])

    def _partial(self, start: int, positive: np.ndarray) -> None:
        hit = np.flatnonzero(positive)
        if hit.size:
            self.rows[start // self.shape[2]] = True
            self.columns[(start + hit) % self.shape[2]] = True

    def ranges(self) -> list[tuple[int, int]] | None:
        """(start, stop) per (z, y, x) axis; None when no voxel is > 0."""
        rows = self.rows.reshape(self.shape[:2])
        out = []
        for flags in (rows.any(axis=1), rows.any(axis=0), self.columns):
            hit = np.flatnonzero(flags)
            if not hit.size:
                return None
            out.append((int(hit[0]), int(hit[-1]) + 1))
        return out


class _Channel:
    """What one pass over one image channel gathers."""

    def __init__(self, dtype: np.dtype, shape: tuple[int, int, int], labels: int):
        self.dtype = dtype
        self.box = _PositiveBox(shape)
        self.counted = _counted(dtype)
        if self.counted:
            bits = 8 * dtype.itemsize
            self.span = 1 << bits
            self.offset = (1 << (bits - 1)) if dtype.kind == "i" else 0
            self.joint = np.zeros(labels * self.span, np.int64)
        # signed and float images keep their values: the crop's outside may hold negatives
        self.volume = None if dtype.kind in "ub" else np.empty(shape, dtype)

    def grow(self, labels: int) -> None:
        """Room for the (label, value) pairs of ``labels`` label rows."""
        if labels * self.span > self.joint.size:
            grown = np.zeros(labels * self.span, np.int64)
            grown[: self.joint.size] = self.joint
            self.joint = grown

    def add(self, start: int, flat: np.ndarray, label_index: np.ndarray) -> None:
        from .._compiled import loops

        # getattr: loops built from an older _loops.c have no pair_tally (numpy then counts)
        pair_tally = getattr(loops, "pair_tally", None)
        if self.counted and pair_tally is not None and label_index.dtype == np.uint8:
            # one pass: the (label, value) pairs counted, the rows and columns of voxels > 0
            native = np.ascontiguousarray(flat, flat.dtype.newbyteorder("="))
            pair_tally(
                native,
                np.ascontiguousarray(label_index),
                self.joint,
                native.dtype.itemsize,
                native.dtype.kind == "i",
                start,
                self.box.shape[2],
                self.box.rows,
                self.box.columns,
            )
        else:
            self._add_numpy(start, flat, label_index)
        if self.volume is not None:
            self.volume.reshape(-1)[start : start + flat.size] = flat

    def _add_numpy(self, start: int, flat: np.ndarray, label_index: np.ndarray) -> None:
        """:meth:`add` without the compiled loops: the same counts and flags."""
        self.box.add(start, flat > 0)
        if self.counted:
            key = label_index.astype(np.int64) * self.span
            key += flat.astype(np.int64) + self.offset
            self.joint += np.bincount(key, minlength=self.joint.size)

    def values(self) -> np.ndarray:
        """The distinct values a counted channel may hold, as float32 (MONAI's type)."""
        return (np.arange(self.span) - self.offset).astype(np.float32)


def _stream_channels(header: ImageHeader, label_index: np.ndarray, labels: int) -> list[_Channel]:
    """One pass over the image's pixels (every channel in turn)."""
    shape = header.spatial_shape_zyx
    volume = int(np.prod(shape))
    channels = [_Channel(header.dtype, shape, labels) for _ in range(header.channels)]
    flat_labels = label_index.reshape(-1)
    pos = 0
    for chunk in iter_chunks(header, _CHUNK_BYTES, reuse=True):
        flat = chunk.reshape(-1)
        offset = 0
        while offset < flat.size:  # a piece may straddle two channels
            channel, start = divmod(pos, volume)
            take = min(flat.size - offset, volume - start)
            piece = flat[offset : offset + take]
            channels[channel].add(start, piece, flat_labels[start : start + take])
            offset += take
            pos += take
    return channels


class _LabelPieces:
    """A label file's voxels in pieces of any size asked for, in C order (one streamed pass)."""

    def __init__(self, header: ImageHeader):
        self._chunks = iter_chunks(header, _CHUNK_BYTES, reuse=True)
        self._piece = np.empty(0, np.uint8)
        self._at = 0
        self._out = np.empty(0, np.uint8)

    def take(self, size: int) -> np.ndarray:
        """The next ``size`` voxels (valid until the next call)."""
        if self._out.size < size:
            self._out = np.empty(size, np.uint8)
        filled = 0
        while filled < size:
            if self._at == self._piece.size:  # the reused buffer is only refilled once used
                self._piece = next(self._chunks).reshape(-1)
                self._at = 0
            step = min(size - filled, self._piece.size - self._at)
            self._out[filled : filled + step] = self._piece[self._at : self._at + step]
            filled += step
            self._at += step
        return self._out[:size]


def _stream_with_label(header: ImageHeader, label_header: ImageHeader) -> _Channel:
    """One pass over a one-channel image and its uint8 label side by side: the (label value,
    image value) pairs counted, the label kept nowhere. The label's values are the rows of the
    counts (as many as its largest value needs)."""
    channel = _Channel(header.dtype, header.spatial_shape_zyx, 1)
    labels = _LabelPieces(label_header)
    pos = 0
    for chunk in iter_chunks(header, _CHUNK_BYTES, reuse=True):
        flat = chunk.reshape(-1)
        piece = labels.take(flat.size)
        channel.grow(int(piece.max()) + 1)
        channel.add(pos, flat, piece)
        pos += flat.size
    return channel


def _crop(
    channel: _Channel, geometry: RasGeometry, shape_zyx: tuple[int, int, int], path: Path
) -> tuple[list[int], dict]:
    """MONAI's ``cropped_shape`` (RAS order) and intensity statistics over that crop."""
    ranges = channel.box.ranges()
    if ranges is None:
        raise SkippedCase(
            f"{str(path)!r} has no voxel > 0: MONAI's ImageStats fails on its empty crop"
        )
    first = geometry.order_zyx[0]  # MONAI's crop takes this axis for channels: never cropped
    ranges[first] = (0, shape_zyx[first])
    cropped = [ranges[a][1] - ranges[a][0] for a in geometry.order_zyx]
    counts = channel.joint.reshape(-1, channel.span).sum(axis=0) if channel.counted else None
    if channel.volume is not None and (counts is None or counts[: channel.offset].any()):
        # negative values: those outside the crop are not all zeros, the values are needed
        box = channel.volume[tuple(slice(a, b) for a, b in ranges)]
        return cropped, _stats_of_values(box)
    # outside the crop every voxel is <= 0; an unsigned image's are zeros
    counts[channel.offset] -= int(np.prod(shape_zyx)) - int(np.prod(cropped))
    return cropped, voxel_stats(channel.values(), counts)


def _stats_of_values(values: np.ndarray) -> dict:
    if _counted(values.dtype):
        found, counts = np.unique(values, return_counts=True)
        return voxel_stats(found, counts)
    return voxel_stats_of(values)


def _ccp(label_ras: np.ndarray, value: int) -> tuple[list[list[int]], int]:
    """MONAI's CPU components of ``label_ras == value`` (a RAS view of the label): their
    bounding-box shapes (RAS order) in the raster order of the RAS array, and their number.

    Labelled slab by slab along the first RAS axis, the slabs' labels joined across their faces
    (:mod:`..objects`' merge): memory is one slab's labels (:data:`..objects.SLAB_BYTES`). A
    component's raster-first voxel lies in its earliest piece (slabs follow the first axis, and
    ``ndimage.label`` numbers a slab's pieces in raster order), so the components are put in
    MONAI's order by their earliest piece.
    """
    from scipy import ndimage

    from ..objects import _STRUCTURE, SLAB_BYTES, _face_pairs, _merge

    plane = label_ras.shape[1] * label_ras.shape[2]
    step = max(1, SLAB_BYTES // (4 * plane))
    starts, stops, pairs = [], [], []
    total = 0
    last_plane = None
    for a0 in range(0, label_ras.shape[0], step):
        slab = np.ascontiguousarray(label_ras[a0 : a0 + step] == value)
        labels, n = ndimage.label(slab, structure=_STRUCTURE)
        if n:
            boxes = ndimage.find_objects(labels)
            lo = np.array([[s.start for s in box] for box in boxes], dtype=np.int64)
            hi = np.array([[s.stop for s in box] for box in boxes], dtype=np.int64)
            lo[:, 0] += a0
            hi[:, 0] += a0
            starts.append(lo)
            stops.append(hi)
        first = labels[0].astype(np.int64)
        first[first > 0] += total
        if last_plane is not None:
            pairs.append(_face_pairs(last_plane, first))
        last_plane = labels[-1].astype(np.int64)
        last_plane[last_plane > 0] += total
        total += n
    if not total:
        return [], 0
    lo, hi = np.concatenate(starts), np.concatenate(stops)
    merged_lo, merged_hi, _, earliest = _merge(total, pairs, lo, hi, np.zeros(total, np.int64))
    order = np.argsort(earliest, kind="stable")
    shapes = (merged_hi - merged_lo)[order]
    return shapes.tolist(), len(shapes)


def _histogram(channel: _Channel, bins: int, hist_range) -> dict:
    """MONAI's ``ImageHistogram`` of one channel: ``np.histogram`` of its float32 voxels."""
    low, high = hist_range
    if channel.volume is not None:
        data = channel.volume.astype(np.float32, copy=False)
        counts, edges = np.histogram(data, bins=bins, range=(low, high))
    else:
        weights = channel.joint.reshape(-1, channel.span).sum(axis=0)
        present = np.flatnonzero(weights)
        counts, edges = np.histogram(
            channel.values()[present], bins=bins, range=(low, high), weights=weights[present]
        )
        counts = np.rint(counts).astype(np.int64)
    return {"counts": counts.tolist(), "bin_edges": edges.tolist()}


def _streams_beside(
    header: ImageHeader,
    label_header: ImageHeader,
    geometry: RasGeometry,
    label_geometry: RasGeometry,
) -> bool:
    """Whether the label can be streamed beside the image (no copy of it kept): one channel
    counted per value, a uint8 label of its shape and orientation."""
    return (
        header.channels == 1
        and _counted(header.dtype)
        and label_header.channels == 1
        and label_header.dtype.kind in "ub"
        and label_header.dtype.itemsize == 1
        and label_header.spatial_shape_zyx == header.spatial_shape_zyx
        and not label_header.is_2d
        and (label_geometry.order_zyx, label_geometry.flips) == (geometry.order_zyx, geometry.flips)
    )


def _dense_labels(
    label_values: np.ndarray, counts: np.ndarray | None
) -> tuple[np.ndarray, list[int], list[int]]:
    """A label's dense indices (its values present, ascending: MONAI's unique), those values and
    their voxel counts; ``counts``: the values' counts when already known."""
    if label_values.dtype == np.uint8:
        keys, size, shift = label_values, 256, 0
    else:  # int16, shifted to unsigned with its order kept
        keys, size, shift = label_values.view(np.uint16) ^ np.uint16(0x8000), 65536, 0x8000
    if counts is None:
        counts = _tally(keys.reshape(-1), size)
    present = np.flatnonzero(counts)
    if keys.dtype == np.uint8 and present[-1] == present.size - 1:
        label_index = keys  # labels 0, 1, 2...: their own indices, no copy
    else:
        lut = np.zeros(size, np.uint8 if present.size <= 256 else np.uint16)
        lut[present] = np.arange(present.size)
        label_index = lut[keys]
    return label_index, (present - shift).tolist(), counts[present].tolist()


def case_geometry(
    image: Path | Sequence[Path], label: Path
) -> tuple[ImageHeader, ImageHeader, RasGeometry, RasGeometry]:
    """The image's and the label's headers and MONAI's RAS geometry of each (headers only)."""
    header = _header(image)
    _spatial(header)
    geometry = ras_geometry(header if not isinstance(image, (tuple, list)) else _header(image[0]))
    label_header = read_header(label)
    return header, label_header, geometry, ras_geometry(label_header)


def analyze_case(
    image: Path | Sequence[Path],
    label: Path,
    *,
    image_name: str | None = None,
    label_name: str | None = None,
    do_ccp: bool = False,
    hist_bins: int = 0,
    hist_range: tuple[float, float] = (-500, 500),
) -> dict:
    """MONAI's by-case entry of one image and its label (its ``stats_by_cases`` item).

    Parameters
    ----------
    image
        The image file, or its channel files in order.
    label
        Its label file.
    image_name, label_name
        The paths written in the entry (MONAI's: the datalist's, joined to the dataroot).

    Raises
    ------
    SkippedCase
        Where MONAI leaves the case out.
    MaskMismatchError, DatasetError, ImageReadError
        Where MONAI would stop (or cannot read the files).
    """
    header, label_header, geometry, label_geometry = case_geometry(image, label)
    shape = header.spatial_shape_zyx
    if _streams_beside(header, label_header, geometry, label_geometry):
        # the usual case: the label streamed beside the image, its values the counts' rows
        channel = _stream_with_label(header, label_header)
        return _entry(
            header,
            geometry,
            [channel],
            _Labels.from_counts(channel),
            lambda: _read_label(label_header)[0],  # with do_ccp: read whole for components
            image_name if image_name is not None else str(header.path),
            label_name if label_name is not None else str(label),
            do_ccp,
            hist_bins,
            hist_range,
        )
    raw_label, raw_counts = _read_label(label_header)
    label_values = _label_on_image_grid(
        raw_label, label_geometry, geometry, shape, Path(label), Path(header.path)
    )
    label_index, values_present, voxel_counts = _dense_labels(
        label_values, raw_counts if label_values is raw_label else None
    )
    labels = _Labels(np.arange(len(values_present)), values_present, voxel_counts, label_index)
    channels = _stream_channels(header, label_index, len(values_present))
    return _entry(
        header,
        geometry,
        channels,
        labels,
        lambda: label_values,
        image_name if image_name is not None else str(header.path),
        label_name if label_name is not None else str(label),
        do_ccp,
        hist_bins,
        hist_range,
    )


@dataclass(frozen=True)
class _Labels:
    """The label values present in a case (ascending), their voxel counts, and the row of each
    in the channels' (label, value) counts; ``index``: each voxel's row, where it was made."""

    rows: np.ndarray
    values: list[int]
    voxels: list[int]
    index: np.ndarray | None = None

    @classmethod
    def from_counts(cls, channel: _Channel) -> _Labels:
        """Of a channel counted against the label's own values (its rows)."""
        per_value = channel.joint.reshape(-1, channel.span).sum(axis=1)
        rows = np.flatnonzero(per_value)
        return cls(rows, rows.tolist(), per_value[rows].tolist())


def _entry(
    header: ImageHeader,
    geometry: RasGeometry,
    channels: list[_Channel],
    labels: _Labels,
    whole_label: Callable[[], np.ndarray],
    image_name: str,
    label_name: str,
    do_ccp: bool,
    hist_bins: int,
    hist_range: tuple[float, float],
) -> dict:
    """The by-case entry from what the image's pass gathered. ``whole_label()``: the label on
    the image's (z, y, x) grid, asked for only where needed (values by selection, components)."""
    shape = header.spatial_shape_zyx
    rows, values_present, voxel_counts = labels.rows, labels.values, labels.voxels
    shape_ras = geometry.shape_ras(shape)
    spacing = list(geometry.spacing_ras)
    crops = [_crop(ch, geometry, shape, Path(header.path)) for ch in channels]
    image_stats = {
        "shape": [list(shape_ras) for _ in channels],
        "channels": len(channels),
        "cropped_shape": [c[0] for c in crops],
        "spacing": spacing,
        "sizemm": [a * b for a, b in zip(shape_ras, spacing)],
        "intensity": [c[1] for c in crops],
    }
    foreground = rows[np.asarray(values_present) > 0]
    per_label: list[list[dict]] = [[] for _ in values_present]
    fg_stats = []
    label_values = None
    for ch in channels:
        ch.volume = ch.volume if not ch.counted else None  # counted: the crop was its only use
        if ch.volume is not None:  # float (or wide) values: by selection, a label at a time
            label_values = whole_label() if label_values is None else label_values
            fg_stats.append(_stats_of_values(ch.volume[label_values > 0]))
            for k in range(len(values_present)):
                per_label[k].append(_stats_of_values(ch.volume[labels.index == k]))
            continue
        joint = ch.joint.reshape(-1, ch.span)
        fg_stats.append(voxel_stats(ch.values(), joint[foreground].sum(axis=0)))
        for k, row in enumerate(rows):
            per_label[k].append(voxel_stats(ch.values(), joint[row]))
    total = int(np.prod(shape))
    labels_out = []
    if do_ccp and label_values is None:
        label_values = whole_label()
    ras_label = geometry.to_ras(label_values) if do_ccp else None
    for k, value in enumerate(values_present):
        entry: dict = {"image_intensity": per_label[k]}
        if do_ccp:
            shapes, count = _ccp(ras_label, value)
            entry["shape"] = shapes
            entry["ncomponents"] = count
        # torch divides the int64 counts as float32
        entry["foreground_percentage"] = float(np.float32(voxel_counts[k]) / np.float32(total))
        labels_out.append(entry)
    out: dict = {
        "image_filepath": image_name,
        "label_filepath": label_name,
        "image_stats": image_stats,
    }
    if hist_bins:
        out["image_histogram"] = [_histogram(ch, hist_bins, hist_range) for ch in channels]
    out["image_foreground_stats"] = {"intensity": fg_stats}
    out["label_stats"] = {
        "labels": [int(v) for v in values_present],
        # a copy: one object twice would be written as a YAML alias, MONAI's are two
        "image_intensity": copy.deepcopy(fg_stats),
        "label": labels_out,
    }
    return out


class PiecesWatch:
    """MONAI's by-case entry made from the pieces another pass reads (the one-pass fingerprint
    of several planners, :mod:`napari_autoconfig.one_pass`): the label's pieces first, then the
    image's, each file once, in C order.

    Where the label streams beside the image in MONAI's own pass (:func:`_streams_beside`), the
    label's pieces are kept as MONAI pairs them with the image's: its ``> 0`` voxels packed eight
    to a byte (little bit order) and its values there, in C order (memory: a bit per voxel and a
    byte per foreground voxel). Each image piece is then counted against the label's voxels it
    holds, rebuilt from these. Elsewhere :attr:`fits` is False and the case is MONAI's own read.
    """

    def __init__(self, image: Path | Sequence[Path], label: Path):
        self.header, self.label_header, self.geometry, label_geometry = case_geometry(image, label)
        self.fits = not isinstance(image, (tuple, list)) and _streams_beside(
            self.header, self.label_header, self.geometry, label_geometry
        )
        voxels = int(np.prod(self.header.spatial_shape_zyx))
        self._bits = np.zeros((voxels + 7) // 8, np.uint8)
        self._byte = 0
        self._carry = np.empty(0, bool)  # flags of a byte a piece left unfinished
        self._values: list[np.ndarray] = []
        self._under = np.empty(0, np.uint8)  # the label's values > 0, in C order
        self._taken = 0
        self._largest = 0
        self._channel: _Channel | None = None
        self.label_seen = self.image_seen = False

    def stream(self, header: ImageHeader, pieces: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """``pieces`` (of ``header``'s file) passed on, watched on their way."""
        path = Path(header.path)
        same = (header.shape, header.dtype)
        label = (
            self.fits
            and not self.label_seen
            and path == Path(self.label_header.path)
            and same == (self.label_header.shape, self.label_header.dtype)
        )
        image = (
            self.fits
            and self.label_seen
            and not self.image_seen
            and path == Path(self.header.path)
            and same == (self.header.shape, self.header.dtype)
        )
        start = 0
        for chunk in pieces:
            flat = chunk.reshape(-1)
            if label:
                self._label_piece(flat)
            elif image:
                self._image_piece(start, flat)
            start += flat.size
            yield chunk
        if label:
            self._label_done(start)
        elif image:
            self.image_seen = start == self._voxels()

    def _label_piece(self, flat: np.ndarray) -> None:
        if not flat.size:
            return
        flags = flat > 0
        self._values.append(flat[flags])
        self._largest = max(self._largest, int(flat.max()))
        if self._carry.size:
            flags = np.concatenate([self._carry, flags])
        whole = flags.size - flags.size % 8
        packed = np.packbits(flags[:whole], bitorder="little")
        self._bits[self._byte : self._byte + packed.size] = packed
        self._byte += packed.size
        self._carry = flags[whole:].copy()

    def _label_done(self, voxels: int) -> None:
        if voxels != self._voxels():  # not the whole label: MONAI's own read will be needed
            self.fits = False
            return
        if self._carry.size:
            self._bits[self._byte] = np.packbits(self._carry, bitorder="little")[0]
        self._under = np.concatenate(self._values) if self._values else self._under
        self._values = []
        self._channel = _Channel(self.header.dtype, self.header.spatial_shape_zyx, 1)
        self._channel.grow(self._largest + 1)  # MONAI's pass grows to the largest value too
        self.label_seen = True

    def _label_of(self, start: int, size: int) -> np.ndarray:
        """The label's voxels ``start`` to ``start + size`` (the image's pieces come in order)."""
        first = start // 8
        bits = np.unpackbits(self._bits[first : (start + size + 7) // 8], bitorder="little")
        flags = bits[start - 8 * first : start - 8 * first + size].view(bool)
        piece = np.zeros(size, np.uint8)
        under = int(np.count_nonzero(flags))
        piece[flags] = self._under[self._taken : self._taken + under]
        self._taken += under
        return piece

    def _image_piece(self, start: int, flat: np.ndarray) -> None:
        if flat.size:
            self._channel.add(start, flat, self._label_of(start, flat.size))

    def entry(
        self,
        image_name: str,
        label_name: str,
        do_ccp: bool = False,
        hist_bins: int = 0,
        hist_range: tuple[float, float] = (-500, 500),
    ) -> dict | None:
        """The case's entry, as :func:`analyze_case` gives it; None where the pieces did not
        show it both files whole (then MONAI's own read of the case is needed).

        Raises
        ------
        SkippedCase
            Where MONAI leaves the case out.
        """
        if not (self.label_seen and self.image_seen):
            return None
        self._taken = 0
        return _entry(
            self.header,
            self.geometry,
            [self._channel],
            _Labels.from_counts(self._channel),
            lambda: self._label_of(0, self._voxels()).reshape(self.header.spatial_shape_zyx),
            image_name,
            label_name,
            do_ccp,
            hist_bins,
            hist_range,
        )

    def _voxels(self) -> int:
        return int(np.prod(self.header.spatial_shape_zyx))
