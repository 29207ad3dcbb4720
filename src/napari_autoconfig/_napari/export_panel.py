"""The export panel: the config snippet (values first), Copy, Save as…, Update a biom3d config…,
and Export nnU-Net dataset….

Nothing the user had is lost: Save as… replaces an existing file only after the file dialog asked,
and the core keeps the old one in a numbered backup (``FILE.bak``, ``FILE.bak.1``...); Update
config… rewrites only the owned keys of a Python or YAML biom3d config
(:func:`napari_autoconfig.config_update.update_config`), with a backup too. How files are written
(links, locks, owners) is :mod:`napari_autoconfig.atomic`'s.

Export nnU-Net dataset… writes the folders of the last fingerprint as an nnU-Net raw dataset
(:func:`napari_autoconfig.nnunet_export.export_nnunet`) into a folder chosen in a dialog, on a
worker thread with napari's progress bar and a Cancel button; the panel's last line says what was
written and the command that trains nnU-Net on it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Label, PushButton, TextEdit
from napari.qt.threading import create_worker
from napari.utils import progress
from napari.utils.notifications import show_info
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtGui import QFontDatabase
from qtpy.QtWidgets import QApplication, QFileDialog, QSizePolicy

from .. import config_update, export
from ..errors import AutoconfigError, Cancelled
from ..nnunet_export import NnUNetExport, check_target, export_nnunet
from .guard import guarded
from .panel import Panel, row

logger = logging.getLogger("napari")

if TYPE_CHECKING:
    from ..planners.biom3d import Plan


def ask_save_path(parent) -> str:
    """Ask where to save the snippet (a file dialog); '' if the user cancels.

    The dialog itself asks before an existing file is chosen for replacing.
    """
    path, _ = QFileDialog.getSaveFileName(
        parent,
        "Save the biom3d config snippet",
        "autoconfig.py",
        "biom3d config (*.py);;YAML (*.yaml *.yml)",
    )
    return path


def ask_config_path(parent) -> str:
    """Ask which existing biom3d config to update (a file dialog); '' if the user cancels.

    Python or YAML configs (biom3d reads both; every run logs a ``config.yaml``): the core
    changes only the owned keys' values and keeps every other byte.
    """
    path, _ = QFileDialog.getOpenFileName(
        parent, "biom3d config to update", "", "biom3d config (*.py *.yaml *.yml)"
    )
    return path


def ask_export_folder(parent) -> str:
    """Ask for the nnU-Net dataset folder (a folder dialog); '' if the user cancels.

    The folder must be new or empty and named ``DatasetNNN_Name``, inside nnU-Net's
    ``nnUNet_raw``: the dialog lets the user create it.
    """
    return QFileDialog.getExistingDirectory(
        parent, "New, empty nnU-Net dataset folder: DatasetNNN_Name, inside nnUNet_raw"
    )


@dataclass(frozen=True)
class ExportOutcome:
    """How an export on the worker ended: exactly one of the first three fields is set."""

    result: NnUNetExport | None = None
    cancelled: str | None = None
    error: str | None = None
    unexpected: bool = False


class ExportRelay(QObject):
    """Carries the export's steps from the worker thread to the GUI thread (queued signal)."""

    step = Signal(int, int)


def run_export(
    images: str | Path, masks: str | Path, target: str, stop: threading.Event, relay: ExportRelay
) -> ExportOutcome:
    """Body of the worker: export, never raise (the outcome says what happened)."""
    from ..fingerprint import shared_pool

    try:
        result = export_nnunet(
            images,
            masks,
            target,
            executor=shared_pool(),
            progress=relay.step.emit,
            cancel=stop.is_set,
        )
        return ExportOutcome(result=result)
    except Cancelled as exc:
        return ExportOutcome(cancelled=str(exc))
    except AutoconfigError as exc:
        return ExportOutcome(error=str(exc))
    except Exception as exc:  # a bug: say what, log where
        logger.exception("napari-autoconfig: the nnU-Net export failed")
        return ExportOutcome(error=f"{type(exc).__name__}: {exc}", unexpected=True)


class ExportPanel(Panel):
    """The snippet and the three ways out: clipboard, a new file, an existing config."""

    title = "Config"
    tooltip = "The values for biom3d's config, to copy, save or write into your config"

    def __init__(self, host: Any) -> None:
        buttons = row(
            PushButton(name="copy", text="Copy", enabled=False),
            PushButton(name="save", text="Save as…", enabled=False),
            PushButton(name="update_config", text="Update config…", enabled=False),
        )
        nnunet = row(
            PushButton(name="export_nnunet", text="Export nnU-Net dataset…", enabled=False),
            PushButton(name="cancel_nnunet_export", text="Cancel", enabled=False),
        )
        super().__init__(
            host,
            widgets=[TextEdit(name="config"), buttons, nnunet, Label(name="export_result")],
        )
        nnunet["export_nnunet"].tooltip = (
            "Write the images and masks as an nnU-Net v2 raw dataset (imagesTr, labelsTr with "
            "labels 0..K, dataset.json) into a new folder DatasetNNN_Name inside nnUNet_raw."
        )
        self["export_result"].native.setWordWrap(True)
        self["export_result"].native.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.export_worker = None
        self._export_stop = threading.Event()
        self._export_relay = ExportRelay()
        self._export_relay.step.connect(self._on_export_step)
        self._export_bar: progress | None = None
        buttons["copy"].tooltip = "Put the snippet on the clipboard."
        buttons[
            "save"
        ].tooltip = "Write the snippet to a .py or .yaml file (a file replaced is kept as .bak)."
        buttons[
            "update_config"
        ].tooltip = (
            "Write these values into an existing biom3d config (.py, .yaml), keeping a .bak copy."
        )
        config = self["config"]
        config.read_only = True
        config.native.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        config.native.setLineWrapMode(config.native.LineWrapMode.NoWrap)
        config.native.setMinimumHeight(4 * config.native.fontMetrics().height())
        config.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        buttons["copy"].changed.connect(self.copy_snippet)
        buttons["save"].changed.connect(self.save_snippet)
        buttons["update_config"].changed.connect(self.update_existing_config)
        nnunet["export_nnunet"].changed.connect(self.export_nnunet_dataset)
        nnunet["cancel_nnunet_export"].changed.connect(self.cancel_export)

    def show_plan(self, plan: Plan | None) -> None:
        self["config"].value = self.host.snippet
        for name in ("copy", "save", "update_config"):
            self[name].enabled = plan is not None
        self["export_nnunet"].enabled = plan is not None and self.export_worker is None

    def set_running(self, running: bool) -> None:
        # the folders being fingerprinted again are not exported meanwhile
        self["export_nnunet"].enabled = (
            not running and self.host.plan is not None and self.export_worker is None
        )

    def closed(self) -> None:
        self._export_stop.set()

    # -- the three ways out ------------------------------------------------------------------
    def _values(self) -> dict[str, object]:
        training = self.host.training
        if training is None:
            raise AutoconfigError("Fingerprint a dataset first: there is no plan to export yet.")
        return dict(training.config_values)  # the values the snippet shows

    @guarded
    def copy_snippet(self, *_: Any) -> None:
        """Put the snippet on the clipboard."""
        if not self.host.snippet:
            raise AutoconfigError("Fingerprint a dataset first: there is no snippet to copy yet.")
        QApplication.clipboard().setText(self.host.snippet)
        self.host.set_status("Snippet copied to the clipboard.")

    @guarded
    def save_snippet(self, *_: Any) -> None:
        """Write the config to a .py or .yaml file chosen in a file dialog.

        The dialog asked before an existing file was chosen; it is then replaced and its old
        bytes kept in a numbered backup, ``FILE.bak`` or ``FILE.bak.N`` (the status line says
        which).
        """
        values = self._values()
        path = ask_save_path(self.native)
        if not path:
            return
        # the same text as the command line's --save: the GPU budget's note, then the config
        text = self.host.config_note + export.render_config(path, values)
        written = export.write_config_file(path, text, replace=True)
        kept = f" The old file is kept as {written.backup}." if written.backup else ""
        self.host.set_status(f"Saved {written.path}.{kept}")
        show_info(f"napari-autoconfig: saved {written.path}")

    @guarded
    def update_existing_config(self, *_: Any) -> None:
        """Update an existing biom3d config (.py or .yaml) in place, atomically, with a backup;
        say what changed."""
        values = self._values()
        path = ask_config_path(self.native)
        if not path:
            return
        update = config_update.update_config(path, values)
        parts = [f"{key}: {old} -> {new}" for key, old, new in update.changed]
        parts += [f"{key}: added" for key in update.added]
        parts += [
            f"{', '.join(users)} changed with {key} (YAML anchor &{anchor})"
            for key, anchor, users in update.linked
        ]
        what = "; ".join(parts) if parts else "nothing changed (the values were already these)"
        self.host.set_status(f"Updated {update.path} ({what}). Backup: {update.backup}")
        show_info(f"napari-autoconfig: updated {update.path}")

    # -- nnU-Net's raw dataset ---------------------------------------------------------------
    @guarded
    def export_nnunet_dataset(self, *_: Any) -> None:
        """Ask for the dataset folder, then export the last fingerprint's folders into it on a
        worker thread (progress in napari's activity dock, Cancel beside the button)."""
        if self.export_worker is not None:
            return
        images, masks = self.host.result_folders
        if images is None:
            raise AutoconfigError("Fingerprint a dataset first: there are no folders to export.")
        if masks is None:
            raise AutoconfigError(
                "An nnU-Net dataset needs the masks (they become labelsTr): choose the masks "
                "folder and fingerprint again."
            )
        target = ask_export_folder(self.native)
        if not target:
            return
        check_target(target)  # the folder's name and emptiness, at once, in one line
        self._export_stop.clear()
        self["export_nnunet"].enabled = False
        self["cancel_nnunet_export"].enabled = True
        self["export_result"].value = f"Exporting to {target} …"
        self._export_bar = progress(total=0, desc="nnU-Net export")
        worker = create_worker(
            run_export,
            images,
            masks,
            target,
            self._export_stop,
            self._export_relay,
            _ignore_errors=True,  # errored is handled below: superqt would also re-raise it
            _start_thread=False,
        )
        worker.returned.connect(self._on_exported)
        worker.errored.connect(self._on_export_errored)
        worker.finished.connect(self._on_export_finished)
        self.export_worker = worker
        worker.start()

    @guarded
    def cancel_export(self, *_: Any) -> None:
        """Stop the export between cases; nothing is left in the dataset folder."""
        if self.export_worker is None:
            return
        self._export_stop.set()
        self["cancel_nnunet_export"].enabled = False
        self["export_result"].value = "Cancelling the export …"

    @guarded
    def _on_export_step(self, done: int, total: int) -> None:
        if self._export_bar is not None:
            self._export_bar.total = total
            self._export_bar.update(done - self._export_bar.n)

    @guarded
    def _on_exported(self, outcome: ExportOutcome) -> None:
        if outcome.result is not None:
            result = outcome.result
            train = " ; ".join(result.training_commands())
            self["export_result"].value = f"{result.summary()} Then: {train}"
            self["export_result"].tooltip = "\n".join(
                [*result.notes(), *result.training_commands()]
            )
            self.host.set_status(result.summary())
            show_info(f"napari-autoconfig: {result.summary()}")
        elif outcome.cancelled is not None:
            self["export_result"].value = outcome.cancelled
            show_info(f"napari-autoconfig: {outcome.cancelled}")
        else:
            self["export_result"].value = f"Export failed: {outcome.error}"
            level = "error" if outcome.unexpected else "warning"
            self.host.report_error(outcome.error or "The export failed.", level=level)

    @guarded
    def _on_export_errored(self, exc: Exception) -> None:
        # run_export returns every failure it knows as an outcome; this is a last line of defence.
        logger.error("napari-autoconfig: export worker error", exc_info=exc)
        self["export_result"].value = f"Export failed: {type(exc).__name__}: {exc}"
        self.host.report_error(f"{type(exc).__name__}: {exc}", level="error")

    def _on_export_finished(self) -> None:
        self.export_worker = None
        if self._export_bar is not None:
            self._export_bar.close()
            self._export_bar = None
        if getattr(self.host, "_alive", False):
            self["cancel_nnunet_export"].enabled = False
            self["export_nnunet"].enabled = self.host.plan is not None
