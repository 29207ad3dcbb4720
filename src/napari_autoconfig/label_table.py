"""Per-label statistics of a dataset's masks: one row per mask value (the Objects tab's table).

For each non-zero mask value over the dataset: its share of all voxels, the image's intensity
under it, its connected components and their sizes, the case holding its largest component, and
in how many cases it appears. Background (0) has no row: its share is what the rows leave.

How this differs from MONAI's ``DataAnalyzer`` (which answers another question, and whose files
:mod:`.planners.monai` writes):

- intensities are **exact over all cases' voxels**: the mean and the 0.5 / 99.5 % percentiles
  (numpy's linear ones) of every voxel under the label, all cases together, where MONAI's summary
  takes the mean of per-case values;
- components are the label's own foreground components (26-connectivity, voxels join only voxels
  of the same value), where MONAI's CPU path (``background=-1``) also counts the background's;
- the share is over all voxels of all cases (MONAI averages per-case shares).

Instance masks: a mask holding more than :data:`~.planners.nnunet_labels.INSTANCE_MIN_VALUES`
distinct non-zero values numbers objects, not classes (the project's one rule,
:mod:`.planners.nnunet_labels`). One row per value would be hundreds of rows saying nothing, so
the table then has a single ``instances`` row: every non-zero voxel as one label, its intensity
over all of them, and its components counted per value (one per instance; more where an instance
is in pieces; touching instances stay apart).

Memory: each mask is streamed in slabs of whole z planes with its image in step
(:func:`.objects.objects_by_value`, the Objects panel's slab labelling); per label only the
distinct intensities and their counts are kept (exact for integer images: at most 65,536 values
for 16 bits), merged as the cases finish. A float image keeps its distinct values under each
label. Cases run in parallel on any :class:`concurrent.futures.Executor`.

Channels: the intensity is the image's channel 0 when the mask has no channel axis; a one-hot
mask (channels like its image) is labelled channel by channel, each channel with its own image
channel. Order: arrays and tuples are (z, y, x).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from .errors import MaskMismatchError
from .objects import (
    SLAB_BYTES,
    CancelCheck,
    MaskObjects,
    ObjectSummary,
    _iter_slabs,
    _objects_checked,
    _pairs_of,
    _spacing_zyx,
    objects_by_value,
    run_pairs,
    summarize_objects,
)
from .planners.nnunet_labels import INSTANCE_MIN_VALUES
from .planners.nnunet_statistics import (
    _exact_sum,
    merge_counts,
    percentiles_from_counts,
    value_counts,
)
from .readers import read_header

#: The ``name`` of the one row of an instance dataset.
INSTANCES = "instances"

Tally = tuple[np.ndarray, np.ndarray]  # distinct values (ascending float32) and their counts


@dataclass(frozen=True)
class CaseLabels:
    """The labels of one mask: its objects per value and the intensities under each value.

    Attributes
    ----------
    image, mask : Path
        The pair.
    voxels : int
        Voxels of the mask (every voxel, background included).
    objects : dict of int to MaskObjects
        Non-zero value -> its connected components.
    tallies : dict of int to (values, counts)
        Value -> the image's distinct intensities under it and their counts; empty when the mask
        holds instances (then ``foreground`` holds them all).
    foreground : (values, counts) or None
        The intensities under every non-zero voxel, for an instance mask; None otherwise.
    spacing_zyx : tuple of float or None
        The image's spacing, (z, y, x).
    unit : str or None
        Its unit.
    """

    image: Path
    mask: Path
    voxels: int
    objects: dict[int, MaskObjects] = field(repr=False)
    tallies: dict[int, Tally] = field(repr=False, compare=False)
    foreground: Tally | None = field(default=None, repr=False, compare=False)
    spacing_zyx: tuple[float, float, float] | None = None
    unit: str | None = None

    @property
    def instances(self) -> bool:
        """True when the mask holds more than INSTANCE_MIN_VALUES distinct non-zero values."""
        return len(self.objects) > INSTANCE_MIN_VALUES


@dataclass(frozen=True)
class LabelRow:
    """One row of the table: one mask value (or every value of an instance dataset).

    Attributes
    ----------
    name : str
        The value as text, or :data:`INSTANCES`.
    value : int or None
        The mask value; None for the instances row.
    voxels : int
        Voxels holding the label, all cases.
    share : float
        ``voxels`` over all voxels of all cases (background included), 0 to 1.
    mean, percentile_00_5, percentile_99_5 : float
        The image's intensity under the label: mean and linear 0.5 / 99.5 % percentiles, exact
        over every such voxel of every case (not a mean of per-case values).
    objects : ObjectSummary
        Its connected components: count, median and largest extents (z, y, x) in voxels and
        physical units, and the largest one (its case and box, for drawing).
    cases : int
        Cases whose mask holds the label.
    n_cases : int
        Cases in the dataset.
    """

    name: str
    value: int | None
    voxels: int
    share: float
    mean: float
    percentile_00_5: float
    percentile_99_5: float
    objects: ObjectSummary = field(repr=False)
    cases: int
    n_cases: int

    @property
    def in_some_cases_only(self) -> bool:
        """True when some masks lack the label."""
        return self.cases < self.n_cases


@dataclass(frozen=True)
class LabelTable:
    """The per-label rows of a dataset.

    Attributes
    ----------
    rows : tuple of LabelRow
        Ascending values, or the one instances row.
    n_cases : int
        Masks read.
    voxels : int
        Voxels of all masks.
    instances : bool
        True when a mask holds more than INSTANCE_MIN_VALUES values (one ``instances`` row).
    most_in_one_mask : int
        The most distinct non-zero values found in one mask.
    """

    rows: tuple[LabelRow, ...]
    n_cases: int
    voxels: int
    instances: bool
    most_in_one_mask: int

    def notes(self) -> tuple[str, ...]:
        """One line each: what a reader must know to read the rows right."""
        notes = []
        if self.instances:
            notes.append(
                f"One mask holds {self.most_in_one_mask} distinct values (more than "
                f"{INSTANCE_MIN_VALUES}): the masks number objects one by one (instance labels), "
                "so every non-zero value is one 'instances' row, each instance a component."
            )
        partial_rows = [r.name for r in self.rows if r.in_some_cases_only]
        if partial_rows:
            notes.append(
                f"Label(s) {', '.join(partial_rows)} appear in only some of the "
                f"{self.n_cases} masks (see 'cases')."
            )
        return tuple(notes)


# --------------------------------------------------------------------------------------------
# One case


class _Intensities:
    """The image's slabs read in step with the mask's, tallied under each non-zero value."""

    def __init__(self, image_slabs) -> None:
        self.image_slabs = image_slabs
        self.tallies: dict[int, Tally] = {}
        self.foreground: Tally | None = None
        self.seen: set[int] = set()

    def __call__(self, channel: int, z0: int, mask: np.ndarray) -> None:
        image_channel, image_z0, image = next(self.image_slabs)
        if (image_channel, image_z0, image.shape) != (channel, z0, mask.shape):
            raise MaskMismatchError(  # the same shape gives the same slabs: never seen
                "The image and its mask were not read in step; check that they belong together."
            )
        if mask.dtype.kind not in "uib":  # classes are integers: truncated as they are labelled
            mask = mask.astype(np.int64)
        if self.foreground is None:
            found, _ = value_counts(mask.ravel())
            present = [int(v) for v in found.tolist() if v != 0]
            self.seen.update(present)
            if len(self.seen) <= INSTANCE_MIN_VALUES:
                for value in present:
                    self._add(value, image[mask == value])
                return
            # instance labels: one tally for all; what was tallied per value joins it
            self.foreground = (np.empty(0, np.float32), np.empty(0, np.int64))
            for tally in self.tallies.values():
                self.foreground = merge_counts(self.foreground, *tally)
            self.tallies = {}
        self.foreground = merge_counts(self.foreground, *value_counts(image[mask != 0]))

    def _add(self, value: int, under: np.ndarray) -> None:
        self.tallies[value] = merge_counts(self.tallies.get(value), *value_counts(under))


def case_labels(image_path: str | Path, mask_path: str | Path, slab_bytes: int = SLAB_BYTES):
    """The labels of one mask: components per value and the image's intensities under each.

    Parameters
    ----------
    image_path, mask_path : str or Path
        The pair; the image is streamed in step with the mask (one slab of each at a time).
    slab_bytes : int
        Memory for one slab's labels (int32 per voxel).

    Returns
    -------
    CaseLabels

    Raises
    ------
    ImageReadError, MaskMismatchError
        If a file cannot be read or the mask does not have its image's shape.
    """
    image = read_header(image_path)
    mask = read_header(mask_path)
    # the same spatial shape cuts both files into the same slabs, channel 0's first: a label
    # mask of a multi-channel image is read against channel 0 (as MONAI's summary is)
    intensities = _Intensities(_iter_slabs(image, slab_bytes, values=True))
    objects = objects_by_value(image, mask, slab_bytes, on_slab=intensities)
    return CaseLabels(
        image.path,
        mask.path,
        int(np.prod(mask.shape, dtype=np.int64)),
        objects,
        intensities.tallies,
        intensities.foreground,
        _spacing_zyx(image),
        image.unit,
    )


# --------------------------------------------------------------------------------------------
# A dataset


class _Merged:
    """The tallies of the finished cases, merged as they come (one tally per label)."""

    def __init__(self) -> None:
        self.tallies: dict[int, Tally] = {}
        self.foreground: Tally | None = None

    def add(self, case: CaseLabels) -> CaseLabels:
        """Merge the case's tallies; return the case without them (what is kept of it)."""
        if case.foreground is not None and self.foreground is None:
            self.foreground = (np.empty(0, np.float32), np.empty(0, np.int64))
            for tally in self.tallies.values():
                self.foreground = merge_counts(self.foreground, *tally)
            self.tallies = {}
        pieces = list(case.tallies.items())
        if case.foreground is not None:
            pieces.append((0, case.foreground))
        for value, tally in pieces:
            if self.foreground is not None:
                self.foreground = merge_counts(self.foreground, *tally)
            else:
                self.tallies[value] = merge_counts(self.tallies.get(value), *tally)
        return CaseLabels(
            case.image, case.mask, case.voxels, case.objects, {}, None, case.spacing_zyx, case.unit
        )


def _intensity(tally: Tally) -> tuple[float, float, float]:
    """Mean, 0.5 % and 99.5 % percentiles (numpy's linear) of the tallied voxels."""
    values, counts = tally
    if not counts.size:  # never for a label that has voxels; said rather than raised
        return math.nan, math.nan, math.nan
    running = np.cumsum(counts)
    low, high = percentiles_from_counts(values, running, (0.5, 99.5))
    return _exact_sum(values, counts) / float(running[-1]), low, high


def _absent(case: CaseLabels) -> MaskObjects:
    empty = np.empty((0, 3), dtype=np.int64)
    return MaskObjects(
        case.image, case.mask, empty, np.empty(0, np.int64), case.spacing_zyx, case.unit
    )


def _joined(case: CaseLabels) -> MaskObjects:
    """Every value's objects of one case as one record (the instances row)."""
    found = [o for o in case.objects.values() if o.count]
    if not found:
        return _absent(case)
    best = max(found, key=lambda o: (int(np.prod(o.largest.extent_zyx)), o.largest.voxels))
    return MaskObjects(
        case.image,
        case.mask,
        np.concatenate([o.extents_zyx for o in found]),
        np.concatenate([o.voxels for o in found]),
        case.spacing_zyx,
        case.unit,
        best.largest,
    )


def _row(name, value, records, tally, voxels_all, n_cases) -> LabelRow:
    summary = summarize_objects(records)
    voxels = int(sum(int(r.voxels.sum()) for r in records))
    mean, low, high = _intensity(tally)
    return LabelRow(
        name,
        value,
        voxels,
        voxels / voxels_all,
        mean,
        low,
        high,
        summary,
        sum(1 for r in records if r.count),
        n_cases,
    )


def summarize_labels(cases: Sequence[CaseLabels], merged: _Merged | None = None) -> LabelTable:
    """The table of finished cases (their tallies merged here unless ``merged`` holds them)."""
    if merged is None:
        merged = _Merged()
        cases = [merged.add(c) for c in cases]
    n_cases = len(cases)
    voxels_all = sum(c.voxels for c in cases)
    most = max((len(c.objects) for c in cases), default=0)
    instances = merged.foreground is not None
    rows = []
    if instances:
        records = [_joined(c) for c in cases]
        if any(r.count for r in records):
            rows.append(_row(INSTANCES, None, records, merged.foreground, voxels_all, n_cases))
    else:
        for value in sorted(merged.tallies):
            records = [c.objects.get(value) or _absent(c) for c in cases]
            rows.append(
                _row(str(value), value, records, merged.tallies[value], voxels_all, n_cases)
            )
    return LabelTable(tuple(rows), n_cases, voxels_all, instances, most)


def label_table(
    source,
    *,
    slab_bytes: int = SLAB_BYTES,
    executor: Executor | None = None,
    progress: Callable[[int, int, CaseLabels], None] | None = None,
    cancel: CancelCheck | None = None,
) -> LabelTable:
    """The per-label table of a dataset's masks, cases in parallel, memory bounded.

    Parameters
    ----------
    source : Dataset, Fingerprint or sequence of Case / (image, mask) pairs
        Where the images and their masks are; every image needs a mask.
    slab_bytes : int
        Memory for one slab's labels, per worker (the image's slab is read beside it).
    executor : concurrent.futures.Executor, optional
        Where the per-case work runs; default: a thread pool sized to the cores.
    progress : callable, optional
        ``progress(done, total, case_labels)`` once per finished mask, in the caller's thread.
    cancel : callable, optional
        Polled between masks; True stops the run with :class:`~.errors.Cancelled`.

    Returns
    -------
    LabelTable

    Raises
    ------
    DatasetError
        If an image has no mask.
    Cancelled
        If ``cancel()`` returned True.
    ImageReadError, MaskMismatchError
        If a file cannot be read or a mask does not fit its image.
    """
    merged = _Merged()
    cases = run_pairs(
        _pairs_of(source),
        partial(_objects_checked, slab_bytes=slab_bytes, work=case_labels),
        executor=executor,
        progress=progress,
        cancel=cancel,
        what="The label table",
        keep=merged.add,  # the tallies merged as the cases finish: one per label is held
    )
    return summarize_labels(cases, merged)


def _size(values: Sequence[float], digits: str) -> str:
    return " x ".join(format(v, digits) for v in values)


def describe_labels(table: LabelTable) -> list[str]:
    """The table in sentences for people (one line per row, then the notes)."""
    if not table.rows:
        return ["Labels: none (every mask is empty)"]
    lines = []
    for row in table.rows:
        objects = row.objects
        line = (
            f"Label {row.name}: {100 * row.share:.3g} % of the voxels, intensity mean "
            f"{row.mean:.4g} (0.5-99.5 %: {row.percentile_00_5:.4g}-{row.percentile_99_5:.4g}), "
            f"{objects.count} component(s), median {_size(objects.median_extent_zyx, 'g')} "
            f"largest {_size(objects.max_extent_zyx, 'd')} voxels (z, y, x)"
        )
        if objects.max_extent_physical_zyx is not None:
            unit = f" {objects.unit}" if objects.unit else ""
            line += f", largest {_size(objects.max_extent_physical_zyx, '.4g')}{unit}"
        if row.in_some_cases_only:
            line += f"; in {row.cases} of {row.n_cases} masks only"
        lines.append(line)
    return lines + list(table.notes())
