"""MONAI Auto3DSeg's dataset statistics (``DataAnalyzer``'s ``datastats.yaml``), torch-free.

MONAI's Auto3DSeg runs ``DataAnalyzer`` before anything else: its algorithm templates take their
spacing, intensity bounds and patch size from the two files it writes. :func:`compute_datastats`
gives monai 1.6.1's numbers (``DataAnalyzer(device="cpu", average=True, do_ccp=...,
hist_bins=...)``: every key, its order, every value within float32 rounding) from one streamed
pass per file, the cases in parallel on an Executor; :func:`write_datastats` writes MONAI's two
files. The shape is MONAI's: one record per case (:mod:`.monai_case`), reducers that summarise
them (:mod:`.monai_summary`, on :mod:`.monai_stats`), the files' layout (:mod:`.monai_yaml`).

MONAI quirks reproduced (each one checked against monai 1.6.1's own output,
``tests/monai_recorded.json``):

- shapes and spacings in RAS order (the arrays are turned to RAS; (x, y, z) for most files);
- ``cropped_shape`` and the image intensity over the box of intensity > 0, whose first RAS axis
  is never cropped (MONAI crops a channel without its channel axis);
- torch's lower median, the population standard deviation, linear percentiles;
- ``foreground_percentage`` over all voxels, background included (float32 ratios);
- summary intensities of channel 0 only; summary medians, deviations and percentiles are the
  means of the per-case ones; whole-number percentiles truncated;
- per-label summaries indexed by label value into each case's list of present labels;
- components (``do_ccp``) as the CPU path: 26-connected, in the RAS array's raster order;
- the label cast to int16; a label up to 5 voxels off its image's shape resized (nearest);
- a case whose image has no voxel > 0 is skipped (MONAI logs it; here it is listed).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from ..dataset import Case, Dataset
from ..errors import DatasetError
from .monai_case import PiecesWatch, SkippedCase, analyze_case
from .monai_summary import summarize
from .monai_yaml import by_case_path, render

#: The MONAI release whose DataAnalyzer these statistics reproduce.
MONAI_VERSION = "1.6.1"

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Skipped:
    """A case MONAI's DataAnalyzer would leave out: its image and why."""

    file: Path
    reason: str

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Datastats:
    """MONAI's datastats of a dataset.

    Attributes
    ----------
    summary : dict
        MONAI's ``stats_summary`` (``n_cases`` last), plain Python numbers and lists.
    by_case : tuple of dict
        MONAI's ``stats_by_cases`` entries, in the dataset's order.
    skipped : tuple of Skipped
        Cases MONAI would skip (not in ``by_case``).
    do_ccp : bool
        Whether components were counted (``shape`` and ``ncomponents`` per label).
    hist_bins : int
        Histogram bins (0: no histogram).
    """

    summary: dict
    by_case: tuple[dict, ...]
    skipped: tuple[Skipped, ...] = ()
    do_ccp: bool = False
    hist_bins: int = 0

    def documents(self) -> tuple[dict, dict]:
        """The two files' contents: the summary (``stats_by_cases: []``) and the by-case one."""
        return (
            {"stats_summary": self.summary, "stats_by_cases": []},
            {"stats_summary": self.summary, "stats_by_cases": list(self.by_case)},
        )


def _names(case: Case) -> tuple:
    image = case.image
    mask = case.mask[0] if isinstance(case.mask, tuple) else case.mask
    if mask is None:
        raise DatasetError(
            f"The image {str(image if not isinstance(image, tuple) else image[0])!r} has no "
            "label: MONAI's DataAnalyzer needs one label per case. Give the masks folder (or a "
            'datalist with a "label" per entry).'
        )
    return image, mask


def check_hist_bins(hist_bins: int) -> None:
    """Refuse a negative number of histogram bins (a programming error: ValueError)."""
    if hist_bins < 0:
        raise ValueError(f"hist_bins must be 0 (no histogram) or more, not {hist_bins}")


def check_labels(dataset: Dataset) -> None:
    """Refuse, before any file is read, a dataset with a case without a label.

    Raises
    ------
    DatasetError
        Naming the first image without a label.
    """
    for case in dataset.cases:
        _names(case)


def analyze(
    case: Case,
    do_ccp: bool = False,
    hist_bins: int = 0,
    hist_range: tuple[float, float] = (-500, 500),
    watch: PiecesWatch | None = None,
) -> dict | Skipped:
    """One case's by-case entry, or why MONAI skips it. ``watch``: what another pass's pieces
    showed of the case (:class:`.monai_case.PiecesWatch`); where they do not serve, the case is
    read here. A pure function of its arguments, so any executor runs it."""
    from ..fingerprint import read_errors_named

    image, mask = _names(case)
    first = image[0] if isinstance(image, tuple) else image
    with read_errors_named(image):  # an error the readers did not foresee names the file
        try:
            entry = None
            if watch is not None:
                entry = watch.entry(str(first), str(mask), do_ccp, hist_bins, hist_range)
            if entry is None:
                entry = analyze_case(
                    image,
                    mask,
                    image_name=str(first),
                    label_name=str(mask),
                    do_ccp=do_ccp,
                    hist_bins=hist_bins,
                    hist_range=hist_range,
                )
            return entry
        except SkippedCase as why:
            return Skipped(Path(first), str(why))


def datastats_of(results: list[dict | Skipped], do_ccp: bool, hist_bins: int) -> Datastats:
    """The datastats of the cases' :func:`analyze` results, in the dataset's order."""
    entries = [r for r in results if isinstance(r, dict)]
    skipped = tuple(r for r in results if isinstance(r, Skipped))
    summary = summarize(entries, do_ccp, hist_bins)
    summary["n_cases"] = len(entries)
    return Datastats(summary, tuple(entries), skipped, do_ccp, hist_bins)


def compute_datastats(
    dataset: Dataset,
    *,
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    do_ccp: bool = False,
    hist_bins: int = 0,
    hist_range: tuple[float, float] = (-500, 500),
) -> Datastats:
    """monai 1.6.1's ``DataAnalyzer`` statistics of ``dataset`` (every case needs a label).

    Cases run on ``executor`` (default: the package's shared thread pool), a few more in flight
    than workers, so memory stays that of a few cases; ``progress(done, total)`` after each.

    Raises
    ------
    Cancelled
        When ``cancel()`` returned True.
    DatasetError, MaskMismatchError, ImageReadError
        With the file and what to do (a case without a label, a label far off its image's
        shape, an unreadable file).
    """
    from ..fingerprint import shared_pool
    from ..scheduling import as_they_finish

    check_hist_bins(hist_bins)
    cases = dataset.cases
    check_labels(dataset)  # every case has a label, checked before any is read
    pool = shared_pool() if executor is None else executor
    results: list = [None] * len(cases)
    finishing = as_they_finish(
        pool,
        len(cases),
        lambda i: pool.submit(analyze, cases[i], do_ccp, hist_bins, tuple(hist_range)),
        cancel=cancel,
        cancelled=lambda done: f"Cancelled after {done} of {len(cases)} cases.",
    )
    for done, (index, result) in enumerate(finishing, start=1):
        results[index] = result
        if progress is not None:
            progress(done, len(cases))
    return datastats_of(results, do_ccp, hist_bins)


def _comments(datastats: Datastats) -> list[str]:
    return [
        "Written by napari-autoconfig (torch-free): the statistics of monai "
        f"{MONAI_VERSION}'s Auto3DSeg",
        f'DataAnalyzer(device="cpu", average=True, do_ccp={datastats.do_ccp}, '
        f"hist_bins={datastats.hist_bins}), same keys and layout,",
        "every value equal within float32 rounding. MONAI's quirks are kept: RAS axis order;",
        "cropped_shape / intensity over the box of intensity > 0 (first RAS axis uncropped);",
        "torch's lower median; population stdev; foreground_percentage over all voxels;",
        "summary intensity of channel 0; per-label summaries indexed by label value.",
        *(f"Skipped as MONAI would: {s.reason}" for s in datastats.skipped),
    ]


def write_datastats(datastats: Datastats, path: str | Path) -> tuple[Path, Path]:
    """Write MONAI's ``FILE.yaml`` and ``FILE_by_case.yaml``; return their paths.

    Through :mod:`..atomic`: an existing file is kept as a numbered backup; a refusal of either
    writes neither.

    Raises
    ------
    ConfigError
        A target that cannot be written (a folder, a locked file, no permission).
    """
    from ..atomic import PendingWrite, apply_writes

    path = Path(path)
    second = by_case_path(path)
    comments = _comments(datastats)
    summary_doc, by_case_doc = datastats.documents()
    writes = [
        PendingWrite(path, render(summary_doc, comments).encode()),
        PendingWrite(second, render(by_case_doc, comments).encode()),
    ]
    apply_writes(writes)
    return path, second
