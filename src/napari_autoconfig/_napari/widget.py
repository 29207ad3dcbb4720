"""The "Auto-configuration" dock widget: panels over one state, wired to the core and the viewer.

Nothing here computes a number. The fingerprint comes from
:func:`napari_autoconfig.fingerprint.fingerprint_dataset` (in a napari worker, one progress step per
file, cancellable: :mod:`.run`), the plan from :func:`napari_autoconfig.planner.make_plan` (re-run
at once from the cached fingerprint when a limit changes), the snippet and config files from
:mod:`napari_autoconfig.export`, the per-image rows from :mod:`napari_autoconfig.image_table`,
the boxes from :mod:`.boxes`, kept on an image by :mod:`.box_keeper`; table rows open through
:mod:`.opener`.

The widget is assembled from panels (:mod:`.panel`), listed in :data:`PANELS`: the folders and
limits panel on top, the others as tabs. It owns the state (``result``, ``plan``, ``snippet``,
the boxes, the opened image) and tells every panel when it changes; panels call back for actions.
Every child is reachable by name (``widget["copy"]``), whichever panel holds it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from psygnal import Signal as PsygnalSignal
from qtpy.QtCore import QEvent, QObject, QSize
from qtpy.QtWidgets import QApplication, QFrame, QScrollArea, QSizePolicy, QTabWidget

from .. import export, planner
from ..errors import AutoconfigError
from ..gpu_budget import budget_note, plan_for_gpu
from ..memory import MemoryEstimate, biom3d_can_train, estimate_plan_memory
from .activity import ActivityBar
from .box_keeper import BoxKeeper
from .export_panel import ExportPanel, values_first
from .folders_panel import LIMIT_NAMES, FoldersPanel
from .gl_context import CanvasContextGuard
from .guard import guarded, logger
from .images_panel import ImagesPanel
from .intensity_tab import IntensitiesTab
from .objects_tab import ObjectsTab
from .opener import RowOpener
from .panel import find_child
from .results_panel import ResultsPanel
from .run import Outcome, ProgressRelay, run_fingerprint

if TYPE_CHECKING:
    import napari

    from ..fingerprint import Fingerprint
    from ..image_table import ImageRow

#: The panels, in order: a panel without a title sits on top, the others are tabs.
PANELS = (FoldersPanel, ResultsPanel, ImagesPanel, IntensitiesTab, ObjectsTab, ExportPanel)


class _Tabs(QTabWidget):
    """The tabs: they ask for room for the tables (about 30 % of the window's width, 400 to 640
    px, so the image keeps most of it), yet make do with little (their minimum size)."""

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        window = self.window()
        if window is not None and window is not self and window.width() > 0:
            width = window.width()
        else:
            screen = self.screen() or QApplication.primaryScreen()
            width = screen.availableGeometry().width() if screen is not None else 1366
        return QSize(max(400, min(int(0.3 * width), 640)), hint.height())


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


class AutoconfigWidget(Container):
    """Dock widget: pick the folders, fingerprint, see the plan, the images and the boxes, export.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer the boxes are drawn on (napari passes it when docking).
    """

    run_finished = PsygnalSignal(str)  # "done", "cancelled" or "error", once per run
    image_opened = PsygnalSignal(object)  # the Image layer of a row, once it is shown

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        # napari hands plugins a public-only proxy of the viewer whose every attribute access
        # returns a fresh proxy, so layer identity checks would always fail; keep the real one.
        # Set first: panels (the preview, the objects) listen to the viewer from their start.
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        # napari frees a removed layer's GL objects in whichever context is current: make it the
        # canvas's before any removal (the plugin's or the user's), or the next draw may crash
        self._gl_guard = CanvasContextGuard(self.viewer)
        self.panels = [panel(self) for panel in PANELS]
        super().__init__(widgets=[p for p in self.panels if not p.title], labels=False)
        self.margins = (2, 2, 2, 2)
        self.tabs = _Tabs()
        self.tabs.setDocumentMode(True)
        for panel in (p for p in self.panels if p.title):
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(panel.native)
            index = self.tabs.addTab(scroll, panel.title)
            self.tabs.setTabToolTip(index, panel.tooltip)
        self.tabs.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.native.layout().addWidget(self.tabs, 1)
        self._alive = True
        self.snippet: str = ""
        #: the comment line that goes above every exported config ("" unless a GPU budget is set)
        self.config_note: str = ""
        self.result: Fingerprint | None = None
        self.result_folders: tuple[Path | None, Path | None] = (None, None)
        self.plan: planner.Plan | None = None
        self.memory: MemoryEstimate | str | None = None  # the plan's GPU memory, or why none
        self.gpu_gib: float | None = None  # the GPU memory the plan was fitted to (None: off)
        self.worker = None
        self.keeper = BoxKeeper(self)
        self.boxes = self.keeper.boxes
        self.opener = RowOpener(self)
        self._stop = threading.Event()
        self._relay = ProgressRelay()
        self._relay.step.connect(self._on_step)
        self._bar = ActivityBar("napari-autoconfig: fingerprinting")

        self["fingerprint"].changed.connect(self.start)
        self["cancel"].changed.connect(self.request_cancel)
        for name in LIMIT_NAMES:
            self[name].changed.connect(self._on_limits_changed)
        # napari's close button takes the widget out of its dock (parent None) without deleting
        # it; closing the viewer deletes it. Either way the widget is done.
        self._dock_watcher = _DockWatcher(self.closed)
        self.native.installEventFilter(self._dock_watcher)
        self.native.destroyed.connect(lambda *_: self.closed())

    def __getattr__(self, name: str):
        # children of every panel (tabs included) are reachable by name: widget["copy"]
        try:
            return super().__getattr__(name)
        except AttributeError:
            for panel in self.__dict__.get("panels", ()):
                found = find_child(panel, name)
                if found is not None:
                    return found
            raise

    def panel(self, kind: type) -> Any:
        """The panel of the given class."""
        return next(p for p in self.panels if isinstance(p, kind))

    @property
    def images_panel(self) -> ImagesPanel:
        """The images table's panel (the opener selects the row it opened)."""
        return self.panel(ImagesPanel)

    def closed(self) -> None:
        """Let go of the viewer: the dock was closed (the viewer outlives it).

        Stops a running worker, disconnects from the viewer's events and the boxes' handlers
        (the box layers stay, as plain layers; the preview layer goes), tells every panel.
        Calling it again does nothing.
        """
        if not self.__dict__.get("_alive", False):  # closed, or already taken apart by the GC
            return
        self._alive = False
        self._stop.set()
        self.keeper.close()
        self.tell("closed")
        self._gl_guard.close()

    def tell(self, hook: str, *args: Any) -> None:
        """Call the hook ``hook`` on every panel."""
        for panel in self.panels:
            getattr(panel, hook)(*args)

    # -- the run -------------------------------------------------------------------------------
    @guarded
    def start(self, *_: Any) -> None:
        """Start fingerprinting the chosen folders in a worker thread."""
        if self.worker is not None:
            return
        form = self.panel(FoldersPanel)
        images, masks = form.folders()
        form.remember()
        self._stop.clear()
        self.tell("set_running", True)
        form.set_progress(0, 1)
        self.set_status(f"Reading the headers of {images} …")
        worker = create_worker(
            run_fingerprint, images, masks, self._stop, self._relay, _start_thread=False
        )
        worker.returned.connect(self._on_outcome)
        worker.errored.connect(self._on_worker_errored)
        worker.finished.connect(self._on_worker_finished)
        self.worker = worker
        worker.start()

    @guarded
    def request_cancel(self, *_: Any) -> None:
        """Ask the running fingerprint to stop (it stops within about one file)."""
        if self.worker is None:
            return
        self._stop.set()
        self["cancel"].enabled = False
        self.set_status("Cancelling … (the previous result is kept)")

    @guarded
    def _on_step(self, done: int, total: int, name: str) -> None:
        # the words first: building the activity bar handles pending events (later steps, the end)
        self.panel(FoldersPanel).set_progress(done, total)
        self.set_status(f"Fingerprinted {done} of {total} files ({name}).")
        self._bar.step(done, total, running=lambda: self.worker is not None)

    @guarded
    def _on_outcome(self, outcome: Outcome) -> None:
        if outcome.fingerprint is not None:
            self.result = outcome.fingerprint
            self.result_folders = (outcome.images, outcome.masks)
            n = self.result.num_images
            msg = f"Fingerprinted {n} image{'s' * (n != 1)}."
            if self.result.skipped:
                msg += f" Skipped {len(self.result.skipped)} file(s) no reader claims."
            if outcome.warning:  # e.g. masks paired by position: the user should check the pairs
                msg += f" Check: {outcome.warning}"
                show_warning(f"napari-autoconfig: {outcome.warning}")
            self.set_status(msg)
            self.tell("show_result", self.result)
            self.replan(then=lambda: self.run_finished.emit("done"))
        elif outcome.cancelled is not None:
            kept = "the previous result is kept" if self.result is not None else "no result yet"
            self.set_status(f"{outcome.cancelled} Cancelled: {kept}.")
            show_info(f"napari-autoconfig: fingerprinting cancelled ({kept}).")
            self.run_finished.emit("cancelled")
        else:
            level = "error" if outcome.unexpected else "warning"
            self.report_error(outcome.error or "Fingerprinting failed.", level=level)
            self.run_finished.emit("error")

    @guarded
    def _on_worker_errored(self, exc: Exception) -> None:
        # run_fingerprint returns every failure as an Outcome; this is a last line of defence.
        logger.error("napari-autoconfig: worker error", exc_info=exc)
        self.report_error(f"{type(exc).__name__}: {exc}", level="error")
        self.run_finished.emit("error")

    def _on_worker_finished(self) -> None:
        self.worker = None
        self._bar.close()
        if self._alive:
            self.tell("set_running", False)

    # -- planning ------------------------------------------------------------------------------
    @guarded
    def _on_limits_changed(self, *_: Any) -> None:
        self.panel(FoldersPanel).remember()
        if self.result is not None:
            self.replan()

    def replan(self, then: Callable[[], None] | None = None) -> None:
        """Plan from the cached fingerprint and the current limits; refresh panels and boxes.

        With a GPU memory in the form, ``max_dims`` is derived from it
        (:func:`~napari_autoconfig.gpu_budget.plan_for_gpu`) and the snippet says so in a comment
        line on top; the plan's GPU memory (``self.memory``) is estimated at the form's precision.
        ``then`` is called once the boxes are drawn (possibly in a later event-loop turn).
        """
        fp = self.result
        if fp is None:
            return
        form = self.panel(FoldersPanel)
        gpu, precision = form.gpu_gib(), form.precision()
        try:
            # Limits may refuse themselves when built (LimitsError), or the rules when planning;
            # a GPU too small for any plan is a LimitsError too.
            if gpu is not None:
                chosen = plan_for_gpu(
                    fp.median_size,
                    gpu,
                    form.limits(),
                    num_images=fp.num_images,
                    channels=fp.channels,
                    precision=precision,
                )
                plan, memory = chosen.plan, chosen.memory
            else:
                plan = planner.make_plan(fp.median_size, form.limits(), num_images=fp.num_images)
                memory = _plan_memory(plan, fp.channels, precision)
        except (AutoconfigError, AssertionError, ValueError) as exc:
            # Nothing stale may stay exportable: the shown plan would not match the form.
            self.plan, self.snippet, self.memory, self.config_note = None, "", None, ""
            self._refused = True
            self.keeper.clear()
            self.tell("show_plan", None)
            self.report_error(f"These limits cannot be used: {exc}", level=None)
            if then is not None:
                then()
            return
        self.plan, self.memory, self.gpu_gib = plan, memory, gpu
        if self.__dict__.pop("_refused", False):  # the status line still shows the refusal
            d = "x".join(map(str, plan.limits.max_dims))
            self.set_status(f"Planned again (max_dims {d}).")
        note = f"# {budget_note(plan.limits.max_dims, gpu, precision)}\n" if gpu else ""
        self.config_note = note
        self.snippet = note + values_first(export.render_python(export.config_values(plan, fp)))
        self.tell("show_plan", plan)
        self.keeper.draw(then=then)

    # -- opening a row of the images table -----------------------------------------------------
    def open_row(self, row: ImageRow) -> None:
        """Open the row's image and mask lazily, under the boxes (:class:`.opener.RowOpener`)."""
        self.opener.open(row)

    # -- messages ------------------------------------------------------------------------------
    def set_status(self, text: str) -> None:
        """One line of news for the user, under the Fingerprint button."""
        self.panel(FoldersPanel).set_status(text)

    def report_error(self, message: str, level: str | None = "warning") -> None:
        """Show a message in the status line and, unless ``level`` is None, as a notification.

        Expected problems (the core's errors) are warnings; anything else is an error.
        """
        self.set_status(f"Error: {message}")
        if level == "error":
            show_error(f"napari-autoconfig: {message}")
        elif level == "warning":
            show_warning(f"napari-autoconfig: {message}")


def _plan_memory(plan: planner.Plan, channels: int, precision: str) -> MemoryEstimate | str:
    """The plan's training memory, or the sentence saying why there is none."""
    try:
        if not biom3d_can_train(plan.patch, plan.pool):
            return (
                "GPU memory not estimated: biom3d's network cannot train this plan (no pooling, "
                "or a single voxel at its deepest level)."
            )
        return estimate_plan_memory(plan, channels=channels, precision=precision)
    except AutoconfigError as exc:  # e.g. more poolings than biom3d's U-Net takes
        return f"GPU memory not estimated: {exc}"
