"""Every planner's fingerprint from one read of every file (``--planner both`` / ``all``).

biom3d's record of an image (:func:`napari_autoconfig.fingerprint.fingerprint_case`) needs the
mask's foreground bits and the image's values at its drawn positions; nnU-Net's record of the case
(:func:`napari_autoconfig.planners.nnunet_case.analyze_case`) streams every voxel of the label and
of the image (its crop box and its draws need them all). Read apart, every file is read twice, and
a compressed one inflated twice.

Here one task per case lets nnU-Net's pass read and watches the pieces go by
(:class:`_Watch`): the label's pieces give biom3d's foreground bits (its index, then its draw,
:func:`napari_autoconfig.foreground.draw_from_index`), the image's pieces give biom3d's drawn
values as their positions pass. MONAI's datastats entry of the case
(:class:`~napari_autoconfig.planners.monai_case.PiecesWatch`) is made from the same pieces: the
label's, kept as bits and values, then the image's, counted against them. Every record is that of
the planner's own pass, to the bit; a case a planner reads differently (a multichannel case, files
nnU-Net presents otherwise; for MONAI also a float image, a label turned or resized onto its
image) is read by that planner on its own, in the same task (:func:`fingerprint_all`).

Sizes and positions are numpy's, flat C order of the (z, y, x) array the readers present.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import Case, Dataset
from .errors import DatasetError, NonIntegerMaskError
from .fingerprint import (
    CaseRecord,
    Fingerprint,
    _check_mask,
    _check_seed,
    _fingerprint_checked,
    _naming,
    read_errors_named,
    shared_pool,
    summarize,
)
from .foreground import draw_foreground, draw_from_index, index_from_bits, padded_bits_bytes
from .planners import monai
from .planners.float32_sum import summation_blocks
from .planners.monai_case import PiecesWatch
from .planners.nnunet_case import analyze_case, stream_pieces
from .planners.nnunet_fingerprint import (
    SAMPLES_IN_TOTAL,
    NnUNetSource,
    _analyze_checked,
    _tallied,
    summarize_nnunet,
)
from .planners.nnunet_records import NnUNetCaseRecord, NnUNetFingerprint
from .readers import ImageHeader, read_header, take
from .scheduling import as_they_finish

#: ``progress(done, total)``: cases finished, in the caller's thread.
Progress = Callable[[int, int], None]


class _Watch:
    """biom3d's record of one image, made from the pieces nnU-Net's pass reads.

    nnU-Net reads the label first: its pieces are packed into biom3d's foreground bits (``> 0``,
    little bit order, as :mod:`.foreground` keeps them). When the image's first piece comes, the
    draw is made; each piece then gives the drawn values whose positions it holds.
    """

    def __init__(self, image: ImageHeader, mask: ImageHeader, seed: int, num_samples: int):
        self.image, self.mask = image, mask
        self.seed, self.num_samples = seed, num_samples
        voxels = int(np.prod(mask.shape, dtype=np.int64))
        self.bits = np.zeros(padded_bits_bytes(voxels), dtype=np.uint8)
        self.byte, self.largest = 0, 0
        self.carry = np.empty(0, dtype=bool)  # flags of a byte a piece left unfinished
        self.integer = np.issubdtype(mask.dtype, np.integer) or mask.dtype == np.bool_
        self.mask_read = self.image_read = False
        self.draw = None
        self.values: np.ndarray | None = None
        self.taken = 0

    def stream(
        self, header: ImageHeader, pieces: Iterable[np.ndarray] | None = None
    ) -> Iterator[np.ndarray]:
        """The pieces of ``header``'s file for nnU-Net's pass (``pieces``, else read here),
        watched on their way."""
        path = Path(header.path)
        same = header.shape == self.mask.shape and header.dtype == self.mask.dtype
        mask = same and path == Path(self.mask.path) and not self.mask_read
        same = header.shape == self.image.shape and header.dtype == self.image.dtype
        image = same and path == Path(self.image.path) and self.mask_read and not self.image_read
        start = 0
        for chunk in stream_pieces(header) if pieces is None else pieces:
            flat = chunk.reshape(-1)
            if mask:
                self._mask_piece(flat)
            elif image:
                self._image_piece(start, flat)
            start += flat.size
            yield chunk
        if mask:
            self._mask_done()
        elif image:
            self.image_read = True

    def _mask_piece(self, flat: np.ndarray) -> None:
        if not flat.size:
            return
        if not self.integer and not np.array_equal(flat, np.trunc(flat)):
            raise NonIntegerMaskError(
                f"The mask {str(self.mask.path)!r} holds non-integer values (dtype "
                f"{self.mask.dtype}). Masks must be label images (0 = background); save it as an "
                "integer image."
            )
        self.largest = max(self.largest, int(flat.max()))
        flags = flat > 0
        if self.carry.size:
            flags = np.concatenate([self.carry, flags])
        whole = flags.size - flags.size % 8
        packed = np.packbits(flags[:whole], bitorder="little")
        self.bits[self.byte : self.byte + packed.size] = packed
        self.byte += packed.size
        self.carry = flags[whole:].copy()

    def _mask_done(self) -> None:
        if self.carry.size:
            self.bits[self.byte] = np.packbits(self.carry, bitorder="little")[0]
        index = index_from_bits(self.bits, self.largest)
        self.draw = draw_from_index(index, self.seed, self.num_samples)
        self.values = np.empty(self.draw.sorted_positions.size, dtype=self.image.dtype)
        self.mask_read = True

    def _image_piece(self, start: int, flat: np.ndarray) -> None:
        positions = self.draw.sorted_positions
        end = self.taken + int(np.searchsorted(positions[self.taken :], start + flat.size))
        self.values[self.taken : end] = flat[positions[self.taken : end] - start]
        self.taken = end

    def record(self) -> CaseRecord:
        """biom3d's record; what nnU-Net's pass did not show it (a file it read otherwise) is
        read here, as :func:`~napari_autoconfig.fingerprint.fingerprint_case` reads it."""
        if not self.mask_read:
            with _naming(self.mask.path, "mask"):
                self.draw = draw_foreground(self.mask, self.seed, self.num_samples)
        draw = self.draw
        if not self.image_read:
            self.values = take(self.image, draw.sorted_positions)
        samples = np.empty(draw.order.size, dtype=self.image.dtype)
        samples[draw.order] = self.values  # read in file order, kept in draw order
        non_finite = 0
        if samples.dtype.kind in "fc":  # integers are always finite
            non_finite = int(samples.size - np.count_nonzero(np.isfinite(samples)))
        return CaseRecord(self.image, self.mask.path, draw.count, samples, draw.largest, non_finite)


#: The planners :func:`fingerprint_all` makes records for.
PLANNERS = ("biom3d", "nnunet", "monai")


@dataclass(frozen=True)
class MonaiOptions:
    """How MONAI's datastats are taken (:func:`.planners.monai.compute_datastats`'s options)."""

    do_ccp: bool = False
    hist_bins: int = 0
    hist_range: tuple[float, float] = (-500, 500)


@dataclass(frozen=True)
class Fingerprints:
    """Each planner's fingerprint of one dataset; None for a planner not asked for."""

    biom3d: Fingerprint | None = None
    nnunet: NnUNetFingerprint | None = None
    monai: monai.Datastats | None = None


def _same_files(case: Case, nnunet_case: Case) -> bool:
    """Whether nnU-Net's case is ``case``'s one image and its mask (the files it streams)."""
    image, mask = case.image, case.mask
    return (
        mask is not None
        and not isinstance(image, tuple)
        and not isinstance(mask, tuple)
        and nnunet_case.mask is not None
        and len(nnunet_case.image) == 1
        and Path(nnunet_case.image[0]) == Path(image)
        and Path(nnunet_case.mask) == Path(mask)
    )


def _monai_watch(case: Case, nnunet_case: Case) -> PiecesWatch | None:
    """MONAI's watch of the pieces nnU-Net's pass reads of ``case``; None where they cannot
    serve MONAI (then :func:`.planners.monai.analyze` reads the case on its own)."""
    if not _same_files(case, nnunet_case):
        return None
    with read_errors_named(case.image):
        watch = PiecesWatch(case.image, case.mask)
    return watch if watch.fits else None


def fingerprint_all_case(
    case: Case,
    nnunet_case: Case,
    seed: int,
    num_samples: int,
    nnunet_samples: int,
    position: int,
    num_cases: int,
    reader: str | None = None,
    spacing: tuple[float, ...] | None = None,
    label_values: bool = True,
    float32_spacing: bool = False,
    planners: tuple[str, ...] = ("biom3d", "nnunet"),
    monai_options: MonaiOptions | None = None,
) -> tuple[CaseRecord | None, NnUNetCaseRecord, dict | monai.Skipped | None]:
    """biom3d's record of ``case`` and MONAI's entry (those asked for in ``planners``, else
    None) and nnU-Net's record of ``nnunet_case`` (the same files): each file read once by
    nnU-Net's pass, its pieces watched for the others, where they read it alike.

    ``reader``, ``spacing``, ``label_values`` and ``float32_spacing`` are nnU-Net's reading of
    the case, as :func:`~napari_autoconfig.planners.nnunet_case.analyze_case` takes them. A
    case the pieces cannot serve (a multichannel case, a float image, a label MONAI turns or
    resizes onto its image) is read by that planner on its own, in the same task. A pure
    function of its arguments, so any executor runs it.
    """
    options = monai_options or MonaiOptions()
    biom3d_watch = monai_watch = None
    image, mask = case.image, case.mask
    if "biom3d" in planners and _same_files(case, nnunet_case):
        with read_errors_named(image):
            image_header = read_header(image)
            with _naming(mask, "mask"):
                mask_header = read_header(mask)
                _check_mask(image_header, mask_header)
        biom3d_watch = _Watch(image_header, mask_header, seed, num_samples)
    if "monai" in planners:
        monai_watch = _monai_watch(case, nnunet_case)

    def stream(header: ImageHeader) -> Iterator[np.ndarray]:
        pieces = stream_pieces(header)
        if biom3d_watch is not None:
            pieces = biom3d_watch.stream(header, pieces)
        if monai_watch is not None:
            pieces = monai_watch.stream(header, pieces)
        return pieces

    if biom3d_watch is None and monai_watch is None:
        nnunet = _analyze_checked(
            nnunet_case,
            nnunet_samples,
            position,
            num_cases,
            reader,
            spacing,
            label_values,
            float32_spacing,
        )
    else:
        with read_errors_named(image):
            nnunet = analyze_case(
                nnunet_case.key,
                nnunet_case.image,
                nnunet_case.mask,
                nnunet_samples,
                position,
                num_cases,
                reader,
                spacing,
                label_values,
                stream=stream,
                float32_spacing=float32_spacing,
            )
    biom3d = None
    if "biom3d" in planners:
        if biom3d_watch is not None:
            with read_errors_named(image):
                biom3d = biom3d_watch.record()
        else:  # without a mask biom3d reads the headers only: nothing to share
            biom3d = _fingerprint_checked(image, mask, seed, num_samples)
    entry = None
    if "monai" in planners:
        entry = monai.analyze(
            case, options.do_ccp, options.hist_bins, tuple(options.hist_range), monai_watch
        )
    return biom3d, nnunet, entry


def fingerprint_both_case(
    case: Case,
    nnunet_case: Case,
    seed: int,
    num_samples: int,
    nnunet_samples: int,
    position: int,
    num_cases: int,
    reader: str | None = None,
    spacing: tuple[float, ...] | None = None,
    label_values: bool = True,
    float32_spacing: bool = False,
) -> tuple[CaseRecord, NnUNetCaseRecord]:
    """biom3d's record of ``case`` and nnU-Net's of ``nnunet_case``
    (:func:`fingerprint_all_case` of those two planners)."""
    biom3d, nnunet, _ = fingerprint_all_case(
        case,
        nnunet_case,
        seed,
        num_samples,
        nnunet_samples,
        position,
        num_cases,
        reader,
        spacing,
        label_values,
        float32_spacing,
    )
    return biom3d, nnunet  # type: ignore[return-value]


def fingerprint_both(
    dataset: Dataset,
    source: NnUNetSource,
    *,
    seed: int = 42,
    num_samples: int = 10000,
    executor: Executor | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    non_finite: str = "leave out",
) -> tuple[Fingerprint, NnUNetFingerprint]:
    """biom3d's fingerprint of ``dataset`` and nnU-Net's of ``source`` (:func:`fingerprint_all`
    of those two planners)."""
    both = fingerprint_all(
        dataset,
        source,
        planners=("biom3d", "nnunet"),
        seed=seed,
        num_samples=num_samples,
        executor=executor,
        progress=progress,
        cancel=cancel,
        non_finite=non_finite,
    )
    return both.biom3d, both.nnunet  # type: ignore[return-value]


def fingerprint_all(
    dataset: Dataset,
    source: NnUNetSource,
    *,
    planners: tuple[str, ...] = PLANNERS,
    seed: int = 42,
    num_samples: int = 10000,
    executor: Executor | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    non_finite: str = "leave out",
    monai_options: MonaiOptions | None = None,
) -> Fingerprints:
    """The fingerprints of ``planners`` (nnU-Net's among them), one task per case, each file
    read once where the planners read it alike.

    biom3d's fingerprint (:func:`~napari_autoconfig.fingerprint.fingerprint_dataset`) and
    MONAI's datastats (:func:`~napari_autoconfig.planners.monai.compute_datastats`, with
    ``monai_options``) are of ``dataset``, nnU-Net's
    (:func:`~napari_autoconfig.planners.fingerprint_nnunet`) of ``source``: the same folders
    opened for each (:func:`~napari_autoconfig.dataset.open_dataset`,
    :func:`~napari_autoconfig.planners.open_nnunet_source`), their cases in the same order.
    Each record equals that of the planner's own pass, to the bit. Two tasks per worker are kept
    in flight; ``cancel`` is polled between cases.

    Raises
    ------
    ValueError
        ``planners`` without nnU-Net (whose pass does the reading), or an unknown one.
    DatasetError
        When the two list different cases (a bug: they open the same folders), or MONAI is
        asked for and a case has no label (before any file is read).
    Cancelled, ImageReadError, MaskMismatchError, SeedError
        As each planner's own pass.
    """
    unknown = set(planners) - set(PLANNERS)
    if unknown or "nnunet" not in planners:
        raise ValueError(
            f"fingerprint_all reads through nnU-Net's pass: planners must include 'nnunet' and "
            f"be among {PLANNERS}, not {planners}"
        )
    options = monai_options or MonaiOptions()
    cases, nnunet_cases = dataset.cases, source.cases
    if [c.key for c in cases] != [c.key for c in nnunet_cases]:
        raise DatasetError(
            "The planners' passes list different cases in these folders; run them "
            "apart (--planner biom3d, then --planner nnunet) and report this."
        )
    if "biom3d" in planners and any(case.mask is not None for case in cases):
        _check_seed(seed)
    if "monai" in planners:
        monai.check_hist_bins(options.hist_bins)
        monai.check_labels(dataset)
    total = len(cases)
    nnunet_samples = int(SAMPLES_IN_TOTAL // total)
    pool = shared_pool() if executor is None else executor
    biom3d_records: list[CaseRecord | None] = [None] * total
    nnunet_records: list[NnUNetCaseRecord | None] = [None] * total
    monai_results: list = [None] * total
    # per channel, nnU-Net's draws' value counts merged as cases finish (as its own pass does)
    tallies: list = [None] * len(source.channel_names)

    def submit(index: int) -> Future:
        future = pool.submit(
            fingerprint_all_case,
            cases[index],
            nnunet_cases[index],
            seed,
            num_samples,
            nnunet_samples,
            index,
            total,
            source.case_reader,
            source.case_spacing(index),
            source.labels is None,
            source.float32_spacing,
            tuple(planners),
            options,
        )
        if index == 0:
            # numpy's summation tree, once, while the first cases are being read
            summation_blocks(nnunet_samples * total)
        return future

    finishing = as_they_finish(
        pool,
        total,
        submit,
        cancel=cancel,
        cancelled=lambda done: f"Fingerprinting cancelled after {done} of {total} cases.",
    )
    for done, (index, (biom3d_record, nnunet_record, monai_result)) in enumerate(
        finishing, start=1
    ):
        biom3d_records[index] = biom3d_record
        nnunet_records[index] = _tallied(nnunet_record, tallies)
        monai_results[index] = monai_result
        if progress is not None:
            progress(done, total)
    return Fingerprints(
        biom3d=(
            summarize(biom3d_records, dataset.skipped, dataset.unreadable, non_finite)  # type: ignore[arg-type]
            if "biom3d" in planners
            else None
        ),
        nnunet=summarize_nnunet(source, nnunet_records, tallies),  # type: ignore[arg-type]
        monai=(
            monai.datastats_of(monai_results, options.do_ccp, options.hist_bins)
            if "monai" in planners
            else None
        ),
    )
