"""The "Auto-configuration" dock widget: wires folder pickers, a worker and the results to the core.

Nothing here computes a number. The fingerprint comes from
:func:`napari_autoconfig.fingerprint.fingerprint_dataset` (run in a napari thread worker, one
progress step per file, cancellable), the plan from :func:`napari_autoconfig.planner.make_plan`
(re-run instantly from the cached fingerprint when a limit changes), the snippet and config files
from :mod:`napari_autoconfig.export`, the boxes from :mod:`napari_autoconfig._overlay`.

Errors: the core raises :class:`~napari_autoconfig.errors.AutoconfigError` subclasses with messages
meant for people; they are shown as they are (status line and a napari notification, no
traceback). Anything else is shown as its type and message and its traceback goes to napari's
logger; no exception leaves a Qt slot or the worker.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
    TextEdit,
    TupleEdit,
)
from napari.qt.threading import create_worker
from napari.utils import progress as napari_progress
from napari.utils.notifications import show_error, show_info, show_warning
from psygnal import Signal as PsygnalSignal
from qtpy.QtCore import QEvent, QObject, QTimer, Signal
from qtpy.QtGui import QFontDatabase
from qtpy.QtWidgets import QApplication, QFileDialog, QSizePolicy

from . import export, planner
from ._overlay import (
    AUG_NAME,
    PATCH_NAME,
    PatchBoxes,
    is_box_layer,
    spatial_ndim,
    target_image,
)
from ._settings import LIMIT_RANGE, load_settings, save_settings
from .errors import AutoconfigError, Cancelled
from .fingerprint import describe, fingerprint_dataset

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

    from .fingerprint import Fingerprint

logger = logging.getLogger("napari")

# What each of the planner's batch rules means, for the combo box; the rule names themselves
# (and which rules exist) come from the planner.
_RULE_HELP = {
    "fixed": "the max batch as given",
    "preprocessing": "number of images // 20",
}
BATCH_RULES = tuple(
    (f"{rule}: {_RULE_HELP[rule]}" if rule in _RULE_HELP else rule, rule)
    for rule in planner.BATCH_RULES
)
DEFAULTS = planner.Limits()  # the form starts from the planner's own defaults


@dataclass(frozen=True)
class Outcome:
    """What a fingerprinting run ended with: exactly one of the fields is set."""

    fingerprint: Fingerprint | None = None
    cancelled: str | None = None
    error: str | None = None
    unexpected: bool = False  # the error is not one the core raises on purpose


class _DockWatcher(QObject):
    """Calls ``on_undocked`` once the watched widget, after having had a parent, loses it."""

    def __init__(self, on_undocked: Callable[[], None]) -> None:
        super().__init__()
        self._on_undocked = on_undocked
        self._docked = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ParentChange:
            if watched.parent() is not None:
                self._docked = True
            elif self._docked:
                self._on_undocked()
        return False


class _ProgressRelay(QObject):
    """Carries per-file progress from the worker thread to the GUI thread (queued signal)."""

    step = Signal(int, int, str)


def run_fingerprint(
    images: Path, masks: Path | None, stop: threading.Event, relay: _ProgressRelay
) -> Outcome:
    """Body of the worker: fingerprint the folders, never raise (the outcome says what happened)."""
    try:
        fp = fingerprint_dataset(
            images,
            masks,
            progress=lambda done, total, record: relay.step.emit(
                done, total, Path(record.image.path).name
            ),
            cancel=stop.is_set,
        )
        return Outcome(fingerprint=fp)
    except Cancelled as exc:
        return Outcome(cancelled=str(exc))
    except AutoconfigError as exc:
        return Outcome(error=str(exc))
    except Exception as exc:  # a bug or an unforeseen failure: say what, log where
        logger.exception("napari-autoconfig: fingerprinting failed")
        return Outcome(error=f"{type(exc).__name__}: {exc}", unexpected=True)


def _guarded(method):
    """Decorate a slot so that no exception escapes it into Qt's event loop."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self._alive:  # the dock was closed; late viewer events and timers are ignored
            return None
        try:
            return method(self, *args, **kwargs)
        except AutoconfigError as exc:
            self._report_error(str(exc), level="warning")
        except Exception as exc:
            logger.exception("napari-autoconfig: %s failed", method.__name__)
            self._report_error(f"{type(exc).__name__}: {exc}", level="error")
        return None

    return wrapper


class AutoconfigWidget(Container):
    """Dock widget: pick the folders, fingerprint, see the plan and the patch boxes, export.

    Children are reachable by name (``w["copy"]``); the current snippet is ``w.snippet``.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer the boxes are drawn on (napari passes it when docking).
    """

    run_finished = PsygnalSignal(str)  # "done", "cancelled" or "error", once per run

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        saved = load_settings()  # values out of the form's ranges are already dropped there
        max_dims = saved.get("max_dims", DEFAULTS.max_dims)
        rules = [value for _, value in BATCH_RULES]
        widgets = [
            FileEdit(name="images", label="Images folder", mode="d"),
            FileEdit(name="masks", label="Masks folder", mode="d", nullable=True),
            TupleEdit(
                name="max_dims",
                label="Max patch (z, y, x)",
                value=tuple(int(v) for v in max_dims),
                options={"min": LIMIT_RANGE[0], "max": LIMIT_RANGE[1], "step": 1},
                tooltip="biom3d's max_dims: only their product bounds the patch volume.",
            ),
            SpinBox(
                name="max_batch",
                label="Max batch",
                min=LIMIT_RANGE[0],
                max=LIMIT_RANGE[1],
                value=saved.get("max_batch", DEFAULTS.max_batch),
            ),
            SpinBox(
                name="min_batch",
                label="Min batch",
                min=LIMIT_RANGE[0],
                max=LIMIT_RANGE[1],
                value=saved.get("min_batch", DEFAULTS.min_batch),
            ),
            ComboBox(
                name="batch_rule",
                label="Batch rule",
                choices=BATCH_RULES,
                value=(
                    saved["batch_rule"] if saved.get("batch_rule") in rules else DEFAULTS.batch_rule
                ),
            ),
            PushButton(name="fingerprint", text="Fingerprint dataset"),
            PushButton(name="cancel", text="Cancel", enabled=False),
            ProgressBar(name="progress", label="Progress", min=0, max=1, value=0),
            Label(name="status", label="Status", value="Pick the images folder, then Fingerprint."),
            TextEdit(name="results", label="Results"),
            PushButton(
                name="recentre",
                text="Centre boxes on the view",
                enabled=False,
                tooltip="Move the patch boxes to the middle of what you are looking at "
                "(pan or scroll there first). Shift-click on the canvas also moves them there.",
            ),
            TextEdit(name="config", label="Config snippet"),
            PushButton(name="copy", text="Copy snippet", enabled=False),
            PushButton(name="save", text="Save as…", enabled=False),
            PushButton(name="update_config", text="Update a biom3d config…", enabled=False),
        ]
        super().__init__(widgets=widgets, labels=True)
        # napari hands plugins a public-only proxy of the viewer whose every attribute access
        # returns a fresh proxy, so layer identity checks (``image is self.boxes.image``) would
        # always fail. This widget uses public API only; keep the real viewer.
        napari_viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.viewer = napari_viewer
        self._alive = True
        self.snippet: str = ""
        self.result: Fingerprint | None = None
        self.plan: planner.Plan | None = None
        self.worker = None
        self.boxes = PatchBoxes(napari_viewer)
        self._stop = threading.Event()
        self._relay = _ProgressRelay()
        self._relay.step.connect(self._on_step)
        self._bar: napari_progress | None = None

        if saved.get("images"):
            self.images.value = saved["images"]
        self.masks.value = saved.get("masks")
        for name in ("results", "config"):
            self[name].read_only = True
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.config.native.setFont(mono)
        self.config.native.setMinimumHeight(170)
        self.results.native.setMinimumHeight(220)
        self.status.native.setWordWrap(True)
        self.status.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

        self.fingerprint.changed.connect(self.start)
        self.cancel.changed.connect(self.request_cancel)
        self.copy.changed.connect(self.copy_snippet)
        self.save.changed.connect(self.save_snippet)
        self.update_config.changed.connect(self.update_existing_config)
        self.recentre.changed.connect(self.recentre_boxes)
        for name in ("max_dims", "max_batch", "min_batch", "batch_rule"):
            self[name].changed.connect(self._on_limits_changed)
        connections = [
            (napari_viewer.layers.selection.events.active, self._on_active_layer),
            (napari_viewer.layers.events.inserted, self._on_layers_changed),
            (napari_viewer.layers.events.removed, self._on_layers_changed),
        ]
        for emitter, slot in connections:
            emitter.connect(slot)
        self._connections = connections
        # napari's close button takes the widget out of its dock (parent None) without deleting
        # it; closing the viewer deletes it. Either way the widget is done.
        self._dock_watcher = _DockWatcher(self.closed)
        self.native.installEventFilter(self._dock_watcher)
        self.native.destroyed.connect(lambda *_: self.closed())

    def closed(self) -> None:
        """Let go of the viewer: the dock was closed (the viewer outlives it).

        Stops a running worker, disconnects from the viewer's events and the boxes' handlers
        (the box layers stay, as plain layers). Calling it again does nothing.
        """
        if not self._alive:
            return
        self._alive = False
        self._stop.set()
        for emitter, slot in self._connections:
            emitter.disconnect(slot)
        self.boxes.close()

    # -- reading the form -------------------------------------------------------------------
    def limits(self) -> planner.Limits:
        """The limits currently in the form."""
        return planner.Limits(
            max_dims=tuple(int(v) for v in self.max_dims.value),
            min_batch=int(self.min_batch.value),
            max_batch=int(self.max_batch.value),
            batch_rule=str(self.batch_rule.value),
        )

    def _folders(self) -> tuple[Path, Path | None]:
        text = self.images.line_edit.value.strip()
        if not text:
            raise AutoconfigError("Choose the folder of images first (the Images folder field).")
        masks_text = (self.masks.line_edit.value or "").strip()
        return Path(text).expanduser(), (Path(masks_text).expanduser() if masks_text else None)

    def _remember(self) -> None:
        images_text = self.images.line_edit.value.strip()
        masks_text = (self.masks.line_edit.value or "").strip()
        try:
            save_settings(
                {
                    "images": images_text,
                    "masks": masks_text or None,
                    "max_dims": [int(v) for v in self.max_dims.value],
                    "max_batch": int(self.max_batch.value),
                    "min_batch": int(self.min_batch.value),
                    "batch_rule": str(self.batch_rule.value),
                }
            )
        except OSError as exc:  # a read-only home must not break the widget
            logger.warning("napari-autoconfig: could not save settings: %s", exc)

    # -- the run ----------------------------------------------------------------------------
    @_guarded
    def start(self, *_: Any) -> None:
        """Start fingerprinting the chosen folders in a worker thread."""
        if self.worker is not None:
            return
        images, masks = self._folders()
        self._remember()
        self._stop.clear()
        self._set_running(True)
        self.progress.max = 1
        self.progress.value = 0
        self._set_status(f"Reading the headers of {images} …")
        worker = create_worker(
            run_fingerprint, images, masks, self._stop, self._relay, _start_thread=False
        )
        worker.returned.connect(self._on_outcome)
        worker.errored.connect(self._on_worker_errored)
        worker.finished.connect(self._on_worker_finished)
        self.worker = worker
        worker.start()

    @_guarded
    def request_cancel(self, *_: Any) -> None:
        """Ask the running fingerprint to stop (it stops within about one file)."""
        if self.worker is None:
            return
        self._stop.set()
        self.cancel.enabled = False
        self._set_status("Cancelling … (the previous result is kept)")

    @_guarded
    def _on_step(self, done: int, total: int, name: str) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = done
        self._set_status(f"Fingerprinted {done} of {total} files ({name}).")
        if self._bar is None:
            self._bar = napari_progress(total=total, desc="napari-autoconfig: fingerprinting")
        self._bar.update(done - self._bar.n)

    @_guarded
    def _on_outcome(self, outcome: Outcome) -> None:
        if outcome.fingerprint is not None:
            self.result = outcome.fingerprint
            n = self.result.num_images
            msg = f"Fingerprinted {n} image{'s' * (n != 1)}."
            if self.result.skipped:
                msg += f" Skipped {len(self.result.skipped)} file(s) no reader claims."
            self._set_status(msg)
            self.replan(then=lambda: self.run_finished.emit("done"))
        elif outcome.cancelled is not None:
            kept = "the previous result is kept" if self.result is not None else "no result yet"
            self._set_status(f"{outcome.cancelled} Cancelled: {kept}.")
            show_info(f"napari-autoconfig: fingerprinting cancelled ({kept}).")
            self.run_finished.emit("cancelled")
        else:
            level = "error" if outcome.unexpected else "warning"
            self._report_error(outcome.error or "Fingerprinting failed.", level=level)
            self.run_finished.emit("error")

    @_guarded
    def _on_worker_errored(self, exc: Exception) -> None:
        # run_fingerprint returns every failure as an Outcome; this is a last line of defence.
        logger.error("napari-autoconfig: worker error", exc_info=exc)
        self._report_error(f"{type(exc).__name__}: {exc}", level="error")
        self.run_finished.emit("error")

    def _on_worker_finished(self) -> None:
        self.worker = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._alive:
            self._set_running(False)

    def _set_running(self, running: bool) -> None:
        for name in ("fingerprint", "images", "masks"):
            self[name].enabled = not running
        self.cancel.enabled = running

    # -- planning ---------------------------------------------------------------------------
    @_guarded
    def _on_limits_changed(self, *_: Any) -> None:
        self._remember()
        if self.result is not None:
            self.replan()

    def replan(self, then: Callable[[], None] | None = None) -> None:
        """Plan from the cached fingerprint and the current limits; refresh text, snippet, boxes.

        ``then`` is called once the boxes are drawn (possibly in a later event-loop turn).
        """
        fp = self.result
        if fp is None:
            return
        try:
            # Limits may refuse themselves when built (LimitsError), or the rules when planning.
            plan = planner.make_plan(fp.median_size, self.limits(), num_images=fp.num_images)
        except (AutoconfigError, AssertionError, ValueError) as exc:
            # Nothing stale may stay exportable: the shown plan would not match the form.
            self._clear_plan()
            self._report_error(f"These limits cannot be used: {exc}", level=None)
            if then is not None:
                then()
            return
        self.plan = plan
        self.snippet = export.render_python(export.config_values(plan, fp))
        self.config.value = self.snippet
        self._set_exportable(True)
        self.results.value = self._results_text()
        self._draw_boxes(then=then)

    def _clear_plan(self) -> None:
        """Forget the plan: no snippet, nothing to export, no boxes."""
        self.plan = None
        self.snippet = ""
        self.config.value = ""
        self.results.value = "\n".join(describe(self.result)) if self.result is not None else ""
        self._set_exportable(False)
        self.boxes.remove()

    def _set_exportable(self, enabled: bool) -> None:
        for name in ("copy", "save", "update_config", "recentre"):
            self[name].enabled = enabled

    def _draw_boxes(
        self, image: Image | None = None, then: Callable[[], None] | None = None
    ) -> None:
        """Draw the boxes on ``image`` (default: the target image), then refresh the text.

        Adding a layer costs napari about 70 ms on the GUI thread; when both box layers are new
        the second is added in the next event-loop turn so the GUI never stalls for both.
        """
        image = image if image is not None else target_image(self.viewer)
        if self.plan is None or image is None:
            if then is not None:
                then()
            return
        plan, k = self.plan, spatial_ndim(image)
        if self.boxes.has_layer(AUG_NAME, k) or self.boxes.has_layer(PATCH_NAME, k):
            self.boxes.show(plan.patch, plan.aug_patch, image=image)
            self._finish_boxes(then)
            return
        self.boxes.show(plan.patch, plan.aug_patch, image=image, names=(AUG_NAME,))
        # A short delay (not 0) lets Qt paint and run other timers between the two additions.
        QTimer.singleShot(10, lambda: self._second_box(image, then))

    @_guarded
    def _second_box(self, image: Image, then: Callable[[], None] | None) -> None:
        try:
            if self.plan is not None and image in self.viewer.layers:
                plan = self.plan
                self.boxes.show(plan.patch, plan.aug_patch, image=image, names=(PATCH_NAME,))
        finally:
            self._finish_boxes(then)

    def _finish_boxes(self, then: Callable[[], None] | None) -> None:
        if self.plan is not None:
            self.results.value = self._results_text()
        if then is not None:
            then()

    def _results_text(self) -> str:
        fp, plan = self.result, self.plan
        lines = describe(fp)  # the same sentences as the command line's summary
        lines += ["", plan.explain()]
        image = self.boxes.image
        if image is not None:
            shape = _shape_zyx(image)
            lines += ["", f"Boxes drawn on layer '{image.name}' (patch yellow, augmentation cyan)."]
            lines += [f"Warning: {s}" for s in planner.oversize_axes(plan, shape)]
        else:
            lines += ["", "Open an image (e.g. File > Open Sample) to see the patch on it."]
        return "\n".join(lines)

    # -- viewer events ----------------------------------------------------------------------
    @_guarded
    def _on_active_layer(self, event: Any = None) -> None:
        layer = self.viewer.layers.selection.active
        if self.plan is None or layer is None or is_box_layer(layer):
            return
        image = target_image(self.viewer)
        if image is not None and image is not self.boxes.image:
            self._draw_boxes(image)

    @_guarded
    def _on_layers_changed(self, event: Any = None) -> None:
        if self.plan is None:
            return
        if self.boxes.image is not None and self.boxes.image not in self.viewer.layers:
            self.boxes.remove()
        if self.boxes.image is None and target_image(self.viewer) is not None:
            self._draw_boxes()
        self.results.value = self._results_text()

    @_guarded
    def recentre_boxes(self, *_: Any) -> None:
        """Centre both boxes on what the user looks at (slice and camera centre)."""
        if self.boxes.image is None:
            self._draw_boxes()
        else:
            self.boxes.recentre()

    # -- export -----------------------------------------------------------------------------
    def _values(self) -> dict[str, object]:
        if self.plan is None:
            raise AutoconfigError("Fingerprint a dataset first: there is no plan to export yet.")
        return export.config_values(self.plan, self.result)

    @_guarded
    def copy_snippet(self, *_: Any) -> None:
        """Put the snippet on the clipboard."""
        if not self.snippet:
            raise AutoconfigError("Fingerprint a dataset first: there is no snippet to copy yet.")
        QApplication.clipboard().setText(self.snippet)
        self._set_status("Snippet copied to the clipboard.")

    @_guarded
    def save_snippet(self, *_: Any) -> None:
        """Write the snippet to a new .py or .yaml file chosen in a file dialog."""
        values = self._values()
        path = ask_save_path(self.native)
        if not path:
            return
        written = export.save_config(path, values)
        self._set_status(f"Saved {written}.")
        show_info(f"napari-autoconfig: saved {written}")

    @_guarded
    def update_existing_config(self, *_: Any) -> None:
        """Update an existing biom3d config in place (atomic, with backup); say what changed."""
        values = self._values()
        path = ask_config_path(self.native)
        if not path:
            return
        update = export.update_config(path, values)
        parts = [f"{key}: {old} -> {new}" for key, old, new in update.changed]
        parts += [f"{key}: added" for key in update.added]
        what = "; ".join(parts) if parts else "nothing changed (the values were already these)"
        self._set_status(f"Updated {update.path} ({what}). Backup: {update.backup}")
        show_info(f"napari-autoconfig: updated {update.path}")

    # -- messages ---------------------------------------------------------------------------
    def _set_status(self, text: str) -> None:
        self.status.value = text

    def _report_error(self, message: str, level: str | None = "warning") -> None:
        """Show a message in the status line and, unless ``level`` is None, as a notification.

        Expected problems (the core's errors) are warnings; anything else is an error.
        """
        self._set_status(f"Error: {message}")
        if level == "error":
            show_error(f"napari-autoconfig: {message}")
        elif level == "warning":
            show_warning(f"napari-autoconfig: {message}")


def ask_save_path(parent) -> str:
    """Ask where to save the snippet (a file dialog); '' if the user cancels."""
    path, _ = QFileDialog.getSaveFileName(
        parent,
        "Save the biom3d config snippet",
        "autoconfig.py",
        "biom3d config (*.py);;YAML (*.yaml *.yml)",
    )
    return path


def ask_config_path(parent) -> str:
    """Ask which existing biom3d config to update (a file dialog); '' if the user cancels.

    Python configs only: the core updates ``.py`` files in place and refuses YAML ones.
    """
    path, _ = QFileDialog.getOpenFileName(
        parent, "biom3d config to update", "", "biom3d config (*.py)"
    )
    return path


def _shape_zyx(image: Image) -> tuple[int, int, int]:
    """The image layer's spatial shape as (Z, Y, X), Z = 1 for a 2D layer."""
    shape = tuple(int(s) for s in image.level_shapes[0])
    if spatial_ndim(image) == 2:
        return (1, *shape[-2:])
    return shape[-3:]
