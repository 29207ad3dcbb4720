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
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dataset import Case, Dataset, nnunet_root, open_dataset
from ..errors import Cancelled, DatasetError, ImageReadError, MaskMismatchError
from ..readers import read_header
from .float32_sum import summation_blocks
from .nnunet_case import analyze_case
from .nnunet_io import READER_OF_ENDING
from .nnunet_records import NnUNetCaseRecord, NnUNetFingerprint
from .nnunet_statistics import channel_intensities

#: nnU-Net's ``num_foreground_voxels_for_intensitystats`` (written ``10e7``: it is 1e8).
SAMPLES_IN_TOTAL = 10e7

ProgressCallback = Callable[[int, int], None]


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
