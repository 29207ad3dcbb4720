"""nnU-Net v2's dataset fingerprint (``DatasetFingerprintExtractor``): the cases, scheduled, merged.

nnunetv2 2.8.1 analyses every case into a small record, then merges them: ``1e8 // cases`` draws
per case and channel, the dataset's statistics over every case's draws in case order. Here:
:func:`open_nnunet_source` lists the cases and the dataset.json facts the planner reads,
:func:`fingerprint_nnunet` runs :func:`.nnunet_case.analyze_case` over an Executor (a few cases in
flight, so memory stays that of a few cases), and :func:`summarize_nnunet` merges the records
(:mod:`.nnunet_statistics`) into an :class:`~.nnunet_records.NnUNetFingerprint`.

Where each part lives: the records and their JSON in :mod:`.nnunet_records`, the reader nnU-Net
picks and the geometry it sees in :mod:`.nnunet_io`, one case in :mod:`.nnunet_case`, the
statistics in :mod:`.nnunet_statistics`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..dataset import Case, Dataset, nnunet_root, open_dataset
from ..errors import DatasetError, ImageReadError, MaskMismatchError
from ..readers import image_suffix, read_header
from .float32_sum import summation_blocks
from .nnunet_case import analyze_case, read_as
from .nnunet_io import choose_reader, nnunet_geometry, read_spacing_file, tiff_spacing_file
from .nnunet_labels import LABEL_MODES, plan_labels
from .nnunet_layout import nnunet_format
from .nnunet_records import NnUNetCaseRecord, NnUNetFingerprint
from .nnunet_statistics import channel_intensities, merge_counts

#: nnU-Net's ``num_foreground_voxels_for_intensitystats`` (written ``10e7``: it is 1e8).
SAMPLES_IN_TOTAL = 10e7

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class NnUNetSource:
    """The cases to fingerprint and the dataset.json facts nnU-Net's planner reads.

    Attributes
    ----------
    name : str
        The dataset folder's name, or the images folder's.
    cases : tuple of Case
        In nnU-Net's order; each with its channel files and one label (or None).
    channel_names : tuple of str
        dataset.json's, or "zscore" per channel for a plain folder.
    labels : dict or None
        dataset.json's ``labels``; None for a plain folder (classes from its masks' values).
    num_training : int
        dataset.json's ``numTraining`` (trusted, as nnU-Net does), or the number of cases.
    file_ending : str
        dataset.json's, or the ending of the plain folder's nnU-Net export.
    image_reader_writer : str
        The reader nnU-Net uses (:func:`.nnunet_io.choose_reader`), or the export's.
    spacings : tuple
        Per case, Tiff3DIO's spacing from its spacing file (None where there is none or the
        reader takes the spacing from the image); empty when no case has one.
    notes : tuple of str
        Lines for the user about how the dataset is read.
    label_mode : str
        How a plain folder's mask values become classes (:data:`.nnunet_labels.LABEL_MODES`).
    float32_spacing : bool
        A plain folder whose export stores spacings as float32 (NIfTI): nnU-Net reads them
        rounded so (:attr:`.nnunet_layout.NnUNetFormat.float32_spacing`).
    """

    name: str
    cases: tuple[Case, ...]
    channel_names: tuple[str, ...]
    labels: dict | None
    num_training: int
    file_ending: str
    image_reader_writer: str = "SimpleITKIO"
    spacings: tuple[tuple[float, ...] | None, ...] = ()
    notes: tuple[str, ...] = ()
    label_mode: str = "auto"
    float32_spacing: bool = False

    @property
    def case_reader(self) -> str | None:
        """The reader whose view of each file the fingerprint reproduces: nnU-Net's for a raw
        dataset; None for a plain folder, read as its export will be (our reading, its
        spacing written into the export)."""
        return None if self.labels is None else self.image_reader_writer

    def case_spacing(self, index: int) -> tuple[float, ...] | None:
        return self.spacings[index] if self.spacings else None


def open_nnunet_source(
    images: str | Path, masks: str | Path | None = None, *, label_mode: str = "auto"
) -> NnUNetSource:
    """An nnU-Net raw dataset folder (dataset.json), or a plain folder of images (and masks).

    A raw dataset is read as nnunetv2 2.8.1 reads it: its ``dataset`` key's files when it has
    one (else ``imagesTr/`` and ``labelsTr/``), the reader nnU-Net picks (or the one
    ``overwrite_image_reader_writer`` names), TIFF spacing from nnU-Net's spacing files.

    A plain folder is read as nnU-Net would read its export (:mod:`.nnunet_layout`,
    :mod:`.nnunet_labels`): one channel per image file, z-scored (its name is unknown), the
    masks as labels, their values renumbered into classes as ``label_mode`` says, every case
    for training.
    """
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {', '.join(LABEL_MODES)}, not {label_mode!r}")
    root = nnunet_root(images)
    if root is not None:
        return _raw_source(root, masks)
    dataset = open_dataset(images, masks)
    first = dataset.cases[0].image
    first = first[0] if isinstance(first, tuple) else first
    header = read_header(first)
    files = [f for c in dataset.cases for f in (c.image, c.mask) if f is not None]
    export = nnunet_format(
        (image_suffix(f) if not isinstance(f, tuple) else None for f in files), header.is_2d
    )
    names = tuple("zscore" for _ in range(header.channels))
    name = Path(images).expanduser().resolve().name
    return NnUNetSource(
        name,
        _cases(dataset),
        names,
        None,
        len(dataset.cases),
        export.file_ending,
        export.reader,
        label_mode=label_mode,
        float32_spacing=export.float32_spacing and export.converted,
    )


def _raw_source(root: Path, masks: str | Path | None) -> NnUNetSource:
    """A raw dataset's cases, reader and spacing files, as nnU-Net takes them."""
    dataset = open_dataset(root, masks)
    meta = _dataset_json(root)
    where = str(root / "dataset.json")
    channels = meta.get("channel_names", meta.get("modality"))
    names = tuple(str(channels[k]) for k in sorted(channels, key=int))
    labels = meta.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise DatasetError(
            f"{where!r} has no 'labels': nnU-Net needs them "
            '(e.g. "labels": {"background": 0, "cell": 1}).'
        )
    training = meta.get("numTraining", len(dataset.cases))
    if isinstance(training, bool) or not isinstance(training, int) or training < 1:
        raise DatasetError(
            f"{where!r}: numTraining must be a positive whole number, not {training!r}."
        )
    cases = _cases(dataset)
    ending = str(meta["file_ending"])
    first = read_header(cases[0].image[0])
    reader, notes = choose_reader(ending, first, meta.get("overwrite_image_reader_writer"), where)
    in_files = sum(nnunet_geometry(read_as(f, reader), reader)[2] for f in cases[0].image)
    if in_files != len(names):
        raise DatasetError(
            f"{where!r} names {len(names)} channel(s) ({', '.join(names)}), but nnU-Net's "
            f"{reader} reads {in_files} from the case {cases[0].key!r}. Make channel_names "
            "list one name per channel."
        )
    spacings: tuple[tuple[float, ...] | None, ...] = ()
    if reader == "Tiff3DIO":
        spacings, missing = _spacing_files(cases)
        if missing:
            notes = (
                *notes,
                f"{len(missing)} of {len(cases)} case(s) have no spacing file "
                f"({str(missing[0])!r}{', ...' if len(missing) > 1 else ''}): nnU-Net's "
                "Tiff3DIO assumes the spacing 1, 1, 1 for them, and so does this plan.",
            )
    return NnUNetSource(root.name, cases, names, labels, training, ending, reader, spacings, notes)


def _spacing_files(cases: Sequence[Case]) -> tuple[tuple, list[Path]]:
    """Tiff3DIO's spacing of each case (None without a file) and the files not found."""
    spacings, missing = [], []
    for case in cases:
        path = tiff_spacing_file(case.image[0])
        spacing = read_spacing_file(path)
        if spacing is None:
            missing.append(path)
        if case.mask is not None:  # nnU-Net checks a label's spacing file when there is one
            read_spacing_file(tiff_spacing_file(case.mask, label=True), label=True)
        spacings.append(spacing)
    return tuple(spacings), missing


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
    label_mode: str = "auto",
) -> NnUNetFingerprint:
    """nnU-Net v2's dataset fingerprint of a raw dataset or a folder of images and masks.

    ``label_mode``: how a plain folder's mask values become classes (see
    :func:`open_nnunet_source`; ignored when ``source`` is an :class:`NnUNetSource`).

    Cases run on ``executor`` (default: the package's shared thread pool), a few more in
    flight than workers, so memory stays that of a few cases.

    Raises
    ------
    Cancelled
        When ``cancel()`` returned True.
    ImageReadError, MaskMismatchError, DatasetError
        With the file and what to do.
    """
    from ..fingerprint import shared_pool
    from ..scheduling import as_they_finish

    if not isinstance(source, NnUNetSource):
        source = open_nnunet_source(source, masks, label_mode=label_mode)
    cases = source.cases
    num_samples = int(SAMPLES_IN_TOTAL // len(cases))
    pool = shared_pool() if executor is None else executor
    records: list[NnUNetCaseRecord | None] = [None] * len(cases)
    # per channel, the draws' value counts merged as cases finish: one tally for the dataset
    tallies: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(source.channel_names)

    def submit(index: int) -> Future:
        future = pool.submit(
            _analyze_checked,
            cases[index],
            num_samples,
            index,
            len(cases),
            source.case_reader,
            source.case_spacing(index),
            source.labels is None,
            source.float32_spacing,
        )
        if index == 0:
            # numpy's summation tree, once, while the first cases are being read
            summation_blocks(num_samples * len(cases))
        return future

    finishing = as_they_finish(
        pool,
        len(cases),
        submit,
        cancel=cancel,
        cancelled=lambda done: f"Cancelled after {done} of {len(cases)} cases.",
    )
    for done, (index, record) in enumerate(finishing, start=1):
        records[index] = _tallied(record, tallies)
        if progress is not None:
            progress(done, len(cases))
    return summarize_nnunet(source, records, tallies)  # type: ignore[arg-type]


def _tallied(record: NnUNetCaseRecord, tallies: list) -> NnUNetCaseRecord:
    """Merge a finished case's value counts into ``tallies``; the record without them."""
    if not record.channels:
        return record
    kept = []
    for channel, draws in enumerate(record.channels):
        tallies[channel] = merge_counts(tallies[channel], draws.values, draws.counts)
        kept.append(replace(draws, values=draws.values[:0], counts=draws.counts[:0]))
    return replace(record, channels=tuple(kept))


def _analyze_checked(
    case: Case,
    num_samples: int,
    position: int,
    num_cases: int,
    reader: str | None,
    spacing: tuple[float, ...] | None,
    label_values: bool,
    float32_spacing: bool = False,
):
    try:
        return analyze_case(
            case.key,
            case.image,
            case.mask,
            num_samples,
            position,
            num_cases,
            reader,
            spacing,
            label_values,
            float32_spacing=float32_spacing,
        )
    except (ImageReadError, MaskMismatchError, DatasetError):
        raise
    except MemoryError as error:
        raise ImageReadError(
            f"Not enough memory to read the case {case.key!r}: {error}. Close other programs."
        ) from error


def summarize_nnunet(
    source: NnUNetSource,
    records: Sequence[NnUNetCaseRecord],
    tallies: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> NnUNetFingerprint:
    """Merge the cases' records into the dataset's fingerprint, as nnU-Net's ``run``.

    ``tallies``: per channel, the draws' value counts already merged (the records then hold
    none); None: merged here from the records.
    """
    channels = len(source.channel_names)
    has_labels = all(case.mask is not None for case in source.cases)
    intensities = None
    if has_labels and any(r.channels for r in records):
        intensities = tuple(
            channel_intensities(records, c, tallies[c] if tallies else None)
            for c in range(channels)
        )
    notes = source.notes
    if source.labels is not None:
        num_labels = len(source.labels)
    else:
        # the plain folder's export renumbers the mask values: its classes are planned
        plan = plan_labels((r.label_values for r in records), source.label_mode)
        num_labels = plan.num_classes
        notes = (*notes, *plan.notes())
    return NnUNetFingerprint(
        dataset_name=source.name,
        channel_names=source.channel_names,
        num_labels=num_labels,
        num_training=source.num_training,
        image_reader_writer=source.image_reader_writer,
        spacings=tuple(r.spacing for r in records),
        shapes_after_crop=tuple(r.shape_after_crop for r in records),
        median_relative_size_after_cropping=float(
            np.median([r.relative_size_after_cropping for r in records])
        ),
        intensities=intensities,
        keys=tuple(r.key for r in records),
        notes=notes,
    )
