"""The fingerprinting run's body, as the napari worker thread runs it: it never raises.

:func:`run_fingerprint` opens the dataset with the core's
:func:`~napari_autoconfig.dataset.open_dataset` (pairing the masks, recognising an nnU-Net raw
dataset, reading a URL as text), fingerprints it with
:func:`~napari_autoconfig.fingerprint.fingerprint_dataset`, then, when nnU-Net's planner is
chosen, makes nnU-Net's own reading pass (:func:`~napari_autoconfig.planners.fingerprint_nnunet`:
its crop boxes and seeded intensity draws), when MONAI's is chosen computes MONAI's datastats
(:func:`~napari_autoconfig.planners.monai.compute_datastats`, for SegResNet's plan), and returns an
:class:`Outcome` that says how the run ended, so the GUI thread decides what to show; per-file
(per-case) progress crosses threads through :class:`ProgressRelay`'s queued signals. Cancel stops
every pass.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtCore import QObject, Signal

from ..dataset import open_dataset
from ..errors import AutoconfigError, Cancelled
from ..fingerprint import fingerprint_dataset
from .state import monai_failure, nnunet_failure

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..fingerprint import Fingerprint
    from ..one_pass import Fingerprints
    from ..planners.monai import Datastats
    from ..planners.nnunet_records import NnUNetFingerprint

logger = logging.getLogger("napari")


@dataclass(frozen=True)
class Outcome:
    """What a fingerprinting run ended with: exactly one of the first three fields is set.

    ``images`` and ``masks`` are the folders the run read (the form may change meanwhile): a
    ``Path``, or the text of a URL. ``warning`` is the dataset's warning for the user to check
    (e.g. masks paired by sorted position: it lists the pairs), with a fingerprint.
    """

    fingerprint: Fingerprint | None = None
    cancelled: str | None = None
    error: str | None = None
    unexpected: bool = False  # the error is not one the core raises on purpose
    images: str | Path | None = None
    masks: str | Path | None = None
    warning: str | None = None
    #: nnU-Net's fingerprint of the same folders, when its planner was chosen
    nnunet_fingerprint: NnUNetFingerprint | None = None
    #: "nnU-Net's plan failed: ..." when nnU-Net's pass failed (biom3d's fingerprint stands)
    nnunet_error: str | None = None
    #: MONAI's datastats of the same folders, when its planner was chosen
    monai_datastats: Datastats | None = None
    #: "MONAI's SegResNet plan failed: ..." when MONAI's pass failed (biom3d's stands)
    monai_error: str | None = None


class ProgressRelay(QObject):
    """Carries per-file progress from the worker thread to the GUI thread (queued signal)."""

    step = Signal(int, int, str)
    nnunet_step = Signal(int, int)  # cases done, cases in all: nnU-Net's reading pass
    monai_step = Signal(int, int)  # cases done, cases in all: MONAI's datastats pass


def run_fingerprint(
    images: str | Path,
    masks: str | Path | None,
    stop: threading.Event,
    relay: ProgressRelay,
    nnunet: bool = False,
    monai: bool = False,
) -> Outcome:
    """Body of the worker: fingerprint the folders, never raise (the outcome says what happened).

    With ``nnunet`` nnU-Net's own fingerprint of the same folders follows biom3d's; if only that
    pass fails (e.g. a URL, which nnU-Net's pass does not read, or a bug in it), biom3d's
    fingerprint is kept and the outcome says, as nnU-Net's, why nnU-Net's plan is missing.
    With ``monai`` MONAI's datastats of the same dataset follow, with the same guarantee.
    With ``nnunet``, every file is read once for all of them (:func:`_one_pass`) where that
    pass succeeds.
    """
    folders = {"images": images, "masks": masks}
    try:
        dataset = open_dataset(images, masks, cancel=stop.is_set)  # a URL's listing too
        shared = _one_pass(dataset, images, masks, monai, stop, relay) if nnunet else None
        if shared is not None:  # every planner's records from one read of every file
            warning = " ".join(filter(None, [dataset.warning, *shared.biom3d.notes()])) or None
            return Outcome(
                fingerprint=shared.biom3d,
                warning=warning,
                nnunet_fingerprint=shared.nnunet,
                monai_datastats=shared.monai,
                **folders,
            )
        fp = fingerprint_dataset(
            dataset,
            progress=lambda done, total, record: relay.step.emit(
                done, total, Path(record.image.path).name
            ),
            cancel=stop.is_set,
        )
        # entries passed over, NaN voxels left out: shown like the pairing warning, never silent
        warning = " ".join(filter(None, [dataset.warning, *fp.notes()])) or None
        nnunet_fp, nnunet_error = (
            _nnunet_pass(images, masks, stop, relay) if nnunet else (None, None)
        )
        datastats, monai_error = _monai_pass(dataset, stop, relay) if monai else (None, None)
        return Outcome(
            fingerprint=fp,
            warning=warning,
            nnunet_fingerprint=nnunet_fp,
            nnunet_error=nnunet_error,
            monai_datastats=datastats,
            monai_error=monai_error,
            **folders,
        )
    except Cancelled as exc:
        return Outcome(cancelled=str(exc), **folders)
    except AutoconfigError as exc:
        return Outcome(error=str(exc), **folders)
    except Exception as exc:  # a bug or an unforeseen failure: say what, log where
        logger.exception("napari-autoconfig: fingerprinting failed")
        return Outcome(error=f"{type(exc).__name__}: {exc}", unexpected=True, **folders)


def _one_pass(
    dataset: Dataset,
    images: str | Path,
    masks: str | Path | None,
    monai: bool,
    stop: threading.Event,
    relay: ProgressRelay,
) -> Fingerprints | None:
    """biom3d's, nnU-Net's and (with ``monai``) MONAI's records from one read of every file
    (:func:`~napari_autoconfig.one_pass.fingerprint_all`); None where that pass failed: the
    planners' own passes then run, so that each failure is said as its planner's (a URL, which
    nnU-Net's pass does not read, keeps biom3d's fingerprint). Cancelled goes up."""
    from ..one_pass import fingerprint_all
    from ..planners import open_nnunet_source

    try:
        return fingerprint_all(
            dataset,
            open_nnunet_source(images, masks),
            planners=("biom3d", "nnunet", "monai") if monai else ("biom3d", "nnunet"),
            progress=lambda done, total: relay.step.emit(done, total, "one read for every plan"),
            cancel=stop.is_set,
        )
    except Cancelled:
        raise
    except Exception:  # said by the planner's own pass that follows
        logger.info("napari-autoconfig: the one-pass fingerprint failed; each planner reads")
        return None


def _nnunet_pass(
    images: str | Path, masks: str | Path | None, stop: threading.Event, relay: ProgressRelay
) -> tuple[NnUNetFingerprint | None, str | None]:
    """nnU-Net's fingerprint, or None and the one line saying why not (Cancelled goes up).

    Any failure is nnU-Net's alone here: biom3d's fingerprint is already made and is kept.
    """
    from ..planners import fingerprint_nnunet, open_nnunet_source

    relay.nnunet_step.emit(0, 1)
    try:
        source = open_nnunet_source(images, masks)
        found = fingerprint_nnunet(
            source,
            progress=lambda done, total: relay.nnunet_step.emit(done, total),
            cancel=stop.is_set,
        )
        return found, None
    except Cancelled:
        raise
    except AutoconfigError as exc:
        return None, nnunet_failure(exc)
    except Exception as exc:  # a bug or an unforeseen failure: nnU-Net's, said so, logged
        logger.exception("napari-autoconfig: nnU-Net's reading pass failed")
        return None, nnunet_failure(exc)


def _monai_pass(
    dataset: object, stop: threading.Event, relay: ProgressRelay
) -> tuple[Datastats | None, str | None]:
    """MONAI's datastats, or None and the one line saying why not (Cancelled goes up).

    Any failure is MONAI's alone here: biom3d's fingerprint is already made and is kept.
    """
    from ..planners.monai import compute_datastats

    relay.monai_step.emit(0, 1)
    try:
        found = compute_datastats(
            dataset,
            progress=lambda done, total, *_: relay.monai_step.emit(done, total),
            cancel=stop.is_set,
        )
        return found, None
    except Cancelled:
        raise
    except AutoconfigError as exc:
        return None, monai_failure(exc)
    except Exception as exc:  # a bug or an unforeseen failure: MONAI's, said so, logged
        logger.exception("napari-autoconfig: MONAI's datastats pass failed")
        return None, monai_failure(exc)
