"""Both planners' fingerprints from one read of every file (``--planner both``).

biom3d's record of an image (:func:`napari_autoconfig.fingerprint.fingerprint_case`) needs the
mask's foreground bits and the image's values at its drawn positions; nnU-Net's record of the case
(:func:`napari_autoconfig.planners.nnunet_case.analyze_case`) streams every voxel of the label and
of the image (its crop box and its draws need them all). Read apart, every file is read twice, and
a compressed one inflated twice.

Here one task per case lets nnU-Net's pass read and watches the pieces go by
(:class:`_Watch`): the label's pieces give biom3d's foreground bits (its index, then its draw,
:func:`napari_autoconfig.foreground.draw_from_index`), the image's pieces give biom3d's drawn
values as their positions pass. Both records are those of the two passes, to the bit; a case the
two read differently (a multichannel case, files nnU-Net presents otherwise) is read by each
planner on its own, in the same task.

Sizes and positions are numpy's, flat C order of the (z, y, x) array the readers present.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from pathlib import Path

import numpy as np

from .dataset import Case, Dataset
from .errors import Cancelled, DatasetError, NonIntegerMaskError
from .fingerprint import (
    CaseRecord,
    Fingerprint,
    _check_mask,
    _check_seed,
    _fingerprint_checked,
    _naming,
    in_flight_bound,
    read_errors_named,
    shared_pool,
    summarize,
)
from .foreground import draw_foreground, draw_from_index, index_from_bits, padded_bits_bytes
from .planners.float32_sum import summation_blocks
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

    def stream(self, header: ImageHeader) -> Iterator[np.ndarray]:
        """The pieces of ``header``'s file for nnU-Net's pass, watched on their way."""
        path = Path(header.path)
        same = header.shape == self.mask.shape and header.dtype == self.mask.dtype
        mask = same and path == Path(self.mask.path) and not self.mask_read
        same = header.shape == self.image.shape and header.dtype == self.image.dtype
        image = same and path == Path(self.image.path) and self.mask_read and not self.image_read
        start = 0
        for chunk in stream_pieces(header):
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
    """biom3d's record of ``case`` and nnU-Net's of ``nnunet_case`` (the same files), each file
    read once where the two read it alike.

    ``reader``, ``spacing``, ``label_values`` and ``float32_spacing`` are nnU-Net's reading of
    the case, as :func:`~napari_autoconfig.planners.nnunet_case.analyze_case` takes them. A
    pure function of its arguments, so any executor runs it.
    """
    image, mask = case.image, case.mask
    shared = (
        mask is not None
        and not isinstance(image, tuple)
        and not isinstance(mask, tuple)
        and nnunet_case.mask is not None
        and len(nnunet_case.image) == 1
        and Path(nnunet_case.image[0]) == Path(image)
        and Path(nnunet_case.mask) == Path(mask)
    )
    if not shared:  # without a mask biom3d reads the headers only: nothing to share
        return (
            _fingerprint_checked(image, mask, seed, num_samples),
            _analyze_checked(
                nnunet_case,
                nnunet_samples,
                position,
                num_cases,
                reader,
                spacing,
                label_values,
                float32_spacing,
            ),
        )
    with read_errors_named(image):
        image_header = read_header(image)
        with _naming(mask, "mask"):
            mask_header = read_header(mask)
            _check_mask(image_header, mask_header)
        watch = _Watch(image_header, mask_header, seed, num_samples)
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
            stream=watch.stream,
            float32_spacing=float32_spacing,
        )
        return watch.record(), nnunet


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
    """biom3d's fingerprint of ``dataset`` and nnU-Net's of ``source``, one task per case.

    ``dataset`` and ``source`` are the same folders opened for each planner
    (:func:`~napari_autoconfig.dataset.open_dataset`,
    :func:`~napari_autoconfig.planners.open_nnunet_source`): their cases, in the same order.
    Two tasks per worker are kept in flight; ``cancel`` is polled between cases.

    Raises
    ------
    DatasetError
        When the two list different cases (a bug: they open the same folders).
    Cancelled, ImageReadError, MaskMismatchError, SeedError
        As each planner's own pass.
    """
    cases, nnunet_cases = dataset.cases, source.cases
    if [c.key for c in cases] != [c.key for c in nnunet_cases]:
        raise DatasetError(
            "biom3d's and nnU-Net's passes list different cases in these folders; run them "
            "apart (--planner biom3d, then --planner nnunet) and report this."
        )
    if any(case.mask is not None for case in cases):
        _check_seed(seed)
    total = len(cases)
    nnunet_samples = int(SAMPLES_IN_TOTAL // total)
    pool = shared_pool() if executor is None else executor
    in_flight = in_flight_bound(pool)
    biom3d_records: list[CaseRecord | None] = [None] * total
    nnunet_records: list[NnUNetCaseRecord | None] = [None] * total
    # per channel, nnU-Net's draws' value counts merged as cases finish (as its own pass does)
    tallies: list = [None] * len(source.channel_names)
    pending: dict[Future, int] = {}
    next_case = done = 0
    try:
        while next_case < total or pending:
            if cancel is not None and cancel():
                raise Cancelled(f"Fingerprinting cancelled after {done} of {total} cases.")
            while len(pending) < in_flight and next_case < total:
                future = pool.submit(
                    fingerprint_both_case,
                    cases[next_case],
                    nnunet_cases[next_case],
                    seed,
                    num_samples,
                    nnunet_samples,
                    next_case,
                    total,
                    source.case_reader,
                    source.case_spacing(next_case),
                    source.labels is None,
                    source.float32_spacing,
                )
                pending[future] = next_case
                next_case += 1
                if next_case == 1:
                    # numpy's summation tree, once, while the first cases are being read
                    summation_blocks(nnunet_samples * total)
            finished, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in finished:
                index = pending.pop(future)
                biom3d_records[index], nnunet_record = future.result()
                nnunet_records[index] = _tallied(nnunet_record, tallies)
                done += 1
                if progress is not None:
                    progress(done, total)
    finally:
        for future in pending:
            future.cancel()  # a task already running ends on its own, its result unused
    return (
        summarize(biom3d_records, dataset.skipped, dataset.unreadable, non_finite),  # type: ignore[arg-type]
        summarize_nnunet(source, nnunet_records, tallies),  # type: ignore[arg-type]
    )
