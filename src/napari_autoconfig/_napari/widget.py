"""The "Auto-configuration" dock widget: panels over one state, wired to the core and the viewer.

Nothing here computes a number. The fingerprint comes from
:func:`napari_autoconfig.fingerprint.fingerprint_dataset` (in a napari worker, one progress step per
file, cancellable: :mod:`.run`), the plan, its GPU memory and the config values from
:func:`napari_autoconfig.planning.plan_training`, as the command line (re-run at once from the
cached fingerprint when a limit changes), the snippet and config files from
:mod:`napari_autoconfig.export`, the per-image rows from :mod:`napari_autoconfig.image_table`,
the boxes from :mod:`.boxes`, kept on an image by :mod:`.box_keeper`; table rows open through
:mod:`.opener`.

The widget is assembled from panels (:mod:`.panel`), listed in :data:`PANELS`: the folders and
limits panel on top, the others as tabs. The planning state (fingerprints, folders, inputs, the
training plan, the snippet) lives in a Qt-free evented model, :class:`.state.PlanningState`
(``widget.state``); the widget feeds it the form and the worker's results, listens to it and
tells every panel when it changes (``widget.result``, ``widget.plan``... read the model); the
boxes and the opened image stay here. Panels call back for actions. Every child is reachable by
name (``widget["copy"]``), whichever panel holds it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from psygnal import Signal as PsygnalSignal
from qtpy.QtCore import QEvent, QObject, QSize
from qtpy.QtWidgets import QApplication, QFrame, QScrollArea, QSizePolicy, QTabWidget

from ..memory import MemoryEstimate
from ..planners import biom3d
from ..planning import TrainingPlan
from .activity import ActivityBar
from .box_keeper import BoxKeeper
from .export_panel import ExportPanel
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
from .state import PlanningState

if TYPE_CHECKING:
    import napari

    from ..fingerprint import Fingerprint
    from ..image_table import ImageRow
    from ..planners.monai_segresnet import SegResNetPlan
    from ..planners.nnunet import NnUNetPlans
    from ..planning import NnUNetResampling

#: The panels, in order: a panel without a title sits on top, the others are tabs.
PANELS = (FoldersPanel, ResultsPanel, ImagesPanel, IntensitiesTab, ObjectsTab, ExportPanel)


def _close_if_alive(ref: weakref.ref) -> None:
    """Qt's ``destroyed`` slot: close the widget if it still exists (never raises)."""
    widget = ref()
    if widget is not None:
        widget.closed()


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
        #: the planning state, without Qt: fingerprints, folders, inputs, the plan, the snippet
        self.state = PlanningState()
        self.worker = None
        self.keeper = BoxKeeper(self)
        self.boxes = self.keeper.boxes
        self.opener = RowOpener(self)
        self._stop = threading.Event()
        self._relay = ProgressRelay()
        self._relay.step.connect(self._on_step)
        self._relay.nnunet_step.connect(self._on_nnunet_step)
        self._relay.monai_step.connect(self._on_monai_step)
        self.state.result_changed.connect(self._on_result)
        self.state.planned.connect(self._on_planned)
        self._bar = ActivityBar("napari-autoconfig: fingerprinting")

        self["fingerprint"].changed.connect(self.start)
        self["cancel"].changed.connect(self.request_cancel)
        for name in LIMIT_NAMES:
            self[name].changed.connect(self._on_limits_changed)
        # napari's close button takes the widget out of its dock (parent None) without deleting
        # it; closing the viewer deletes it. Either way the widget is done.
        self._dock_watcher = _DockWatcher(self.closed)
        self.native.installEventFilter(self._dock_watcher)
        # A weak reference, not a closure over self: when the garbage collector takes a widget
        # apart it empties the closure's cell before Qt emits destroyed, and the slot would raise.
        this = weakref.ref(self)
        self.native.destroyed.connect(lambda *_: _close_if_alive(this))

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

    # -- the state, as the panels read it (the model holds it) ----------------------------------
    @property
    def result(self) -> Fingerprint | None:
        """The last fingerprint (None before the first run)."""
        return self.state.result

    @property
    def result_folders(self) -> tuple[str | Path | None, str | Path | None]:
        """The folders the last fingerprint read (the form may have changed since)."""
        return self.state.result_folders

    @property
    def training(self) -> TrainingPlan | None:
        """Everything planned from the result and the form (None: no result, or refused
        limits)."""
        return self.state.training

    @property
    def plan(self) -> biom3d.Plan | None:
        """biom3d's plan, ``training.biom3d``."""
        return self.state.plan

    @property
    def nnunet(self) -> NnUNetPlans | None:
        """nnU-Net's plans, when its planner is chosen (None otherwise)."""
        return self.state.nnunet

    @property
    def monai(self) -> SegResNetPlan | None:
        """MONAI's SegResNet plan, when its planner is chosen (None otherwise)."""
        return self.state.monai

    @property
    def nnunet_resampling(self) -> NnUNetResampling | None:
        """Each case's spacing and the one nnU-Net trains at, from its planner, when its plan was
        made (for the images table's resample flags)."""
        training = self.state.training
        return training.nnunet_resampling if training is not None else None

    @property
    def memory(self) -> MemoryEstimate | str | None:
        """biom3d's plan's GPU memory, or the sentence saying why there is none."""
        return self.state.memory

    @property
    def gpu_gib(self) -> float | None:
        """The GPU memory biom3d's plan was fitted to (None: no GPU budget)."""
        return self.state.gpu_gib

    @property
    def snippet(self) -> str:
        """biom3d's config snippet, values first ("" without a plan)."""
        return self.state.snippet

    @property
    def config_note(self) -> str:
        """The comment line above every exported config ("" unless a GPU budget is set)."""
        return self.state.config_note

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
            run_fingerprint,
            images,
            masks,
            self._stop,
            self._relay,
            nnunet=form.inputs().wants_nnunet,
            monai=form.inputs().wants_monai,
            _ignore_errors=True,  # errored is handled below: superqt would also re-raise it
            _start_thread=False,
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
    def _on_nnunet_step(self, done: int, total: int) -> None:
        self.panel(FoldersPanel).set_progress(done, total)
        self.set_status(
            f"nnU-Net's own reading pass: {done} of {total} cases (crop boxes, its intensity "
            "draws)."
        )
        self._bar.step(done, total, running=lambda: self.worker is not None)

    @guarded
    def _on_monai_step(self, done: int, total: int) -> None:
        self.panel(FoldersPanel).set_progress(done, total)
        self.set_status(f"MONAI's datastats: {done} of {total} cases (for SegResNet's plan).")
        self._bar.step(done, total, running=lambda: self.worker is not None)

    @guarded
    def _on_outcome(self, outcome: Outcome) -> None:
        if outcome.fingerprint is not None:
            fp = outcome.fingerprint
            n = fp.num_images
            msg = f"Fingerprinted {n} image{'s' * (n != 1)}."
            if fp.skipped:
                msg += f" Skipped {len(fp.skipped)} file(s) no reader claims."
            if outcome.nnunet_fingerprint is not None:
                msg += " nnU-Net's reading pass done."
            if outcome.monai_datastats is not None:
                msg += " MONAI's datastats done."
            if outcome.warning:  # e.g. masks paired by position: the user should check the pairs
                msg += f" Check: {outcome.warning}"
                show_warning(f"napari-autoconfig: {outcome.warning}")
            if outcome.nnunet_error:  # biom3d's plan stands; nnU-Net's could not be made
                msg += f" {outcome.nnunet_error}"
                show_warning(f"napari-autoconfig: {outcome.nnunet_error}")
            if outcome.monai_error:  # biom3d's plan stands; MONAI's could not be made
                msg += f" {outcome.monai_error}"
                show_warning(f"napari-autoconfig: {outcome.monai_error}")
            self.set_status(msg)
            self._then = lambda: self.run_finished.emit("done")
            self.state.inputs = self.panel(FoldersPanel).inputs()
            self.__dict__.pop("_nnunet_said", None)  # a new result: its failure is news again
            self.__dict__.pop("_monai_said", None)
            # the model says "result" (the panels are told), then "planned" (boxes drawn, then)
            self.state.set_result(
                fp,
                (outcome.images, outcome.masks),
                outcome.nnunet_fingerprint,
                outcome.nnunet_error or "",
                outcome.monai_datastats,
                outcome.monai_error or "",
            )
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

        :func:`~napari_autoconfig.planning.plan_training` makes everything shown
        (``self.training``), as for the command line: with a GPU memory in the form ``max_dims``
        is derived from it and the snippet says so in a comment line on top; the plan's GPU
        memory (``self.memory``, or why there is none) is at the form's precision.
        ``then`` is called once the boxes are drawn (possibly in a later event-loop turn).
        """
        if self.state.result is None:
            return
        self._then = then
        self.state.set_inputs(self.panel(FoldersPanel).inputs())

    @guarded
    def _on_result(self, fingerprint: Fingerprint | None) -> None:
        self.tell("show_result", fingerprint)

    @guarded
    def _on_planned(self, training: TrainingPlan | None) -> None:
        """The model made a plan (or refused the inputs): tell the panels, draw the boxes."""
        then = self.__dict__.pop("_then", None)
        if training is None:
            # Nothing stale may stay exportable: the shown plan would not match the form.
            self._refused = True
            self._other_boxes(None)
            self.keeper.clear()
            self.tell("show_plan", None)
            self.report_error(f"These limits cannot be used: {self.state.refusal}", level=None)
            if then is not None:
                then()
            return
        plan = training.biom3d
        if self.__dict__.pop("_refused", False):  # the status line still shows the refusal
            d = "x".join(map(str, plan.limits.max_dims))
            self.set_status(f"Planned again (max_dims {d}).")
        elif self.state.missing_passes:
            self.set_status(f"{self.state.missing_passes}: press Fingerprint dataset.")
        else:
            self._say_planner_errors()
        self._other_boxes(training)
        self.tell("show_plan", plan)
        self.keeper.draw(then=then)

    def _say_planner_errors(self) -> None:
        """nnU-Net's or MONAI's planner refused its fingerprint: biom3d's plan stands; each said
        once."""
        state = self.state
        for wanted, error, made, key in (
            (state.inputs.wants_nnunet, state.nnunet_error, state.nnunet_fingerprint, "_nnunet"),
            (state.inputs.wants_monai, state.monai_error, state.monai_datastats, "_monai"),
        ):
            if wanted and error and made is not None and error != self.__dict__.get(key + "_said"):
                self.__dict__[key + "_said"] = error
                self.set_status(f"{error} biom3d's plan stands.")
                show_warning(f"napari-autoconfig: {error}")

    def _other_boxes(self, training: TrainingPlan | None) -> None:
        """The third and fourth boxes' sizes: nnU-Net's patch and MONAI SegResNet's ROI in
        physical units at the spacing each trains at, in the images' (z, y, x) order (the box
        layers convert them to the image's voxels)."""
        plans = training.nnunet if training is not None else None
        monai = training.monai if training is not None else None
        self.boxes.nnunet_world_zyx = plans.fullres.patch_physical_zyx if plans else None
        # without resampling SegResNet crops each image's own voxels: the box is those voxels
        resampled = monai is not None and monai.resample
        self.boxes.monai_world_zyx = monai.roi_size_mm_zyx if resampled else None
        self.boxes.monai_voxels_zyx = monai.roi_size_zyx if monai and not resampled else None
        # another planner's plan alone: biom3d's boxes hidden (they come back with biom3d)
        alone = plans is None and monai is None
        self.boxes.biom3d_shown = alone or self.state.inputs.shows_biom3d

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
