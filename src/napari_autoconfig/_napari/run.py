"""The fingerprinting run's body, as the napari worker thread runs it: it never raises.

:func:`run_fingerprint` opens the dataset with the core's
:func:`~napari_autoconfig.dataset.open_dataset` (pairing the masks, recognising an nnU-Net raw
dataset, reading a URL as text), fingerprints it with
:func:`~napari_autoconfig.fingerprint.fingerprint_dataset` and returns an :class:`Outcome` that
says how the run ended, so the GUI thread decides what to show; per-file progress crosses threads
through :class:`ProgressRelay`'s queued signal.
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

if TYPE_CHECKING:
    from ..fingerprint import Fingerprint

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


class ProgressRelay(QObject):
    """Carries per-file progress from the worker thread to the GUI thread (queued signal)."""

    step = Signal(int, int, str)


def run_fingerprint(
    images: str | Path, masks: str | Path | None, stop: threading.Event, relay: ProgressRelay
) -> Outcome:
    """Body of the worker: fingerprint the folders, never raise (the outcome says what happened)."""
    folders = {"images": images, "masks": masks}
    try:
        dataset = open_dataset(images, masks, cancel=stop.is_set)  # a URL's listing too
        fp = fingerprint_dataset(
            dataset,
            progress=lambda done, total, record: relay.step.emit(
                done, total, Path(record.image.path).name
            ),
            cancel=stop.is_set,
        )
        # entries passed over, NaN voxels left out: shown like the pairing warning, never silent
        warning = " ".join(filter(None, [dataset.warning, *fp.notes()])) or None
        return Outcome(fingerprint=fp, warning=warning, **folders)
    except Cancelled as exc:
        return Outcome(cancelled=str(exc), **folders)
    except AutoconfigError as exc:
        return Outcome(error=str(exc), **folders)
    except Exception as exc:  # a bug or an unforeseen failure: say what, log where
        logger.exception("napari-autoconfig: fingerprinting failed")
        return Outcome(error=f"{type(exc).__name__}: {exc}", unexpected=True, **folders)
