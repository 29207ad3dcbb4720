"""The objects panel: how large the objects in the masks are, against the patch.

A button ``objects`` labels the connected foreground components of every mask
(:func:`napari_autoconfig.objects.objects_dataset`, in a thread worker, one napari progress step
per mask, cancellable) and shows their count and their median and largest extents (z, y, x) in
voxels and physical units, and whether the patch is smaller than the largest objects along an
axis (such an object never fits whole in a patch). A second button, ``draw_largest``, outlines the
largest object on its image, opening the image when it is not open yet.

An image that is not open is prepared on a worker (:func:`.opener.prepare_pair`, as a table row's:
a lazy array at the file's spacing, its first plane read ahead, its contrast limits worked out),
added over the user's layers when it arrives (unselected: the patch boxes stay where they are),
and outlined in the next turn; a later choice supersedes one whose image is still loading (only
the last one is outlined).

The same worker then makes the per-label table (:func:`napari_autoconfig.label_table.label_table`):
one row per mask value (or one ``instances`` row for instance masks) with its share of the voxels,
the image's intensity under it, its components' count and sizes, and in how many masks it is.
Selecting a row outlines that label's largest component, on the image that holds it.

``save_datastats`` writes MONAI Auto3DSeg's two datastats YAML files
(:func:`napari_autoconfig.planners.monai.write_datastats`) for the fingerprinted pairs, on a
worker with a progress bar, to a file chosen in a dialog (:func:`ask_datastats_path`).

The outline is drawn the way the patch boxes are: an invisible ``Image`` layer of the object's
bounding-box shape whose ``bounding_box`` overlay is on, with the image's scale and a translate
that puts its first voxel on the object's first voxel. napari then draws the rectangle on every
slice the object spans (and on no other) in 2D, and a wireframe cuboid in 3D, with no handlers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import Container, Label, PushButton, TextEdit
from napari.layers import Image
from napari.layers._source import layer_source
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from psygnal import Signal as PsygnalSignal
from qtpy.QtCore import QObject, QTimer, Signal
from qtpy.QtWidgets import (
    QAbstractScrollArea,
    QFileDialog,
    QSizePolicy,
    QStyledItemDelegate,
)

from ..dataset import Case, Dataset, open_dataset
from ..errors import AutoconfigError, Cancelled
from ..image_table import ImageRow, image_rows
from ..label_table import LabelRow, LabelTable, label_table
from ..objects import ObjectBox, ObjectSummary, describe_objects, objects_dataset
from .activity import ActivityBar
from .boxes import is_box_layer
from .opener import TURN_MS, prepare_pair
from .preview import PLUGIN_LAYER_KEY, insert_quietly, is_plugin_layer, source_path
from .tables import ROW_ROLE, fill_table, make_table
from .warmup import warmed

if TYPE_CHECKING:
    import napari

    from ..fingerprint import Fingerprint
    from ..planners.biom3d import Plan

QWIDGETSIZE_MAX = (1 << 24) - 1  # Qt's 'no maximum' (not exported by every binding)
LARGEST_NAME = "largest object"
LARGEST_COLOR = "#ff4fd8"  # magenta: apart from the patch boxes' yellow and cyan
LABEL_NAME = "largest of the label"
LABEL_COLOR = "#5cff7a"  # green: apart from the largest object's magenta and the patch boxes'
#: The per-label table's columns (short: the dock is narrow) and what each says (header tips).
LABEL_COLUMNS = (
    (
        "Label\nmasks",
        "The mask value ('instances': every value of instance masks as one label), and the "
        "masks holding it, of all masks (orange rows: not in every mask)",
    ),
    ("Voxels", "Share of all voxels of all masks (background included)"),
    (
        "Intensity\nmean\n0.5–99.5%",
        "Image intensity under the label, over every such voxel of every case: its mean, and "
        "its 0.5 % and 99.5 % percentiles",
    ),
    ("Objects", "Connected components of the label (26-connectivity) in all masks"),
    (
        "Median\nz×y×x\nvoxels\n{unit}",
        "Median bounding-box size of the components (each axis on its own), in voxels and "
        "in {unit}",
    ),
    (
        "Largest\nz×y×x\nvoxels\n{unit}",
        "Largest bounding-box size of the components (each axis on its own), in voxels and "
        "in {unit}",
    ),
)
_SHORT_UNITS = {"micron": "µm", "um": "µm", "microns": "µm"}


class _Relay(QObject):
    """Carries per-mask progress from the worker thread to the GUI thread (queued signal)."""

    step = Signal(int, int)


def _run_objects(
    fingerprint: Fingerprint, stop: threading.Event, relay: _Relay
) -> tuple[ObjectSummary, LabelTable] | str:
    """Body of the worker: the objects and the per-label table, or a message for people when
    they could not be made. Progress counts both passes (2 steps per mask)."""
    total = len(fingerprint.records)
    try:
        summary = objects_dataset(
            fingerprint,
            progress=lambda done, _total, found: relay.step.emit(done, 2 * total),
            cancel=stop.is_set,
        )
        table = label_table(
            fingerprint,
            progress=lambda done, _total, found: relay.step.emit(total + done, 2 * total),
            cancel=stop.is_set,
        )
        return summary, table
    except (AutoconfigError, Cancelled) as error:
        return str(error)


def ask_datastats_path(parent) -> str:
    """Ask where to write MONAI's datastats (a file dialog); '' if the user cancels.

    ``datastats.yaml`` and, beside it, ``datastats_by_case.yaml`` are written (MONAI's names).
    """
    path, _ = QFileDialog.getSaveFileName(
        parent, "Save MONAI Auto3DSeg's datastats", "datastats.yaml", "YAML (*.yaml)"
    )
    return path


def _dataset_of(fingerprint: Fingerprint, folders: tuple | None) -> Dataset:
    """What the datastats read: the fingerprinted folders listed again (an nnU-Net raw dataset
    keeps its channel files), else the fingerprint's (image, mask) pairs."""
    if folders is not None and folders[0] is not None:
        dataset = open_dataset(*folders)
        if dataset.cases and all(c.mask is not None for c in dataset.cases):
            return dataset
    cases = tuple(
        Case(Path(r.image.path).name, r.image.path, r.mask_path) for r in fingerprint.records
    )
    return Dataset(cases, pairing="name")


def _run_datastats(
    fingerprint: Fingerprint,
    folders: tuple | None,
    path: str,
    stop: threading.Event,
    relay: _Relay,
) -> tuple[tuple[Path, ...], tuple[str, ...]] | str:
    """Body of the datastats worker: the two files written and the cases MONAI would skip (one
    line each), or a message for people."""
    try:
        from ..planners.monai import compute_datastats, write_datastats

        stats = compute_datastats(
            _dataset_of(fingerprint, folders),
            progress=lambda done, total, *_: relay.step.emit(done, total),
            cancel=stop.is_set,
        )
        written = tuple(write_datastats(stats, path))
        return written, tuple(str(s) for s in stats.skipped)
    except (AutoconfigError, Cancelled) as error:
        return str(error)


def _fit_columns(view) -> None:
    """Each column as wide as its widest line of text (header included), plus the cell's
    margins: Qt's own fit adds the style's generous header padding, too wide for the dock."""
    metrics = view.fontMetrics()
    for column in range(view.columnCount()):
        texts = [view.horizontalHeaderItem(column).text()]
        texts += [view.item(r, column).text() for r in range(view.rowCount())]
        lines = [line for text in texts for line in text.split("\n")]
        view.setColumnWidth(column, max(metrics.horizontalAdvance(t) for t in lines) + 10)


def _size(values, digits: str) -> str:
    return "×".join(format(v, digits) for v in values)


def _label_cells(table: LabelTable) -> tuple[list, list, list]:
    """Text, sort keys and tooltips of each row of the per-label table.

    Two lines per cell where two numbers belong together (the dock is narrow): the mean over the
    percentiles, the size in voxels over the size in the dataset's unit (named in the header).
    """
    rows, keys, tips = [], [], []
    for row in table.rows:
        objects = row.objects
        physical = objects.max_extent_physical_zyx is not None
        median = _size(objects.median_extent_zyx, "g")
        largest = _size(objects.max_extent_zyx, "d")
        if physical:
            median += f"\n{_size(objects.median_extent_physical_zyx, '.3g')}"
            largest += f"\n{_size(objects.max_extent_physical_zyx, '.3g')}"
        rows.append(
            [
                f"{row.name}\n{row.cases}/{row.n_cases}",
                f"{100 * row.share:.3g} %",
                f"{row.mean:.4g}\n{row.percentile_00_5:.4g}–{row.percentile_99_5:.4g}",
                str(objects.count),
                median,
                largest,
            ]
        )
        keys.append(
            [
                -1 if row.value is None else row.value,
                row.share,
                row.mean,
                objects.count,
                float(np.prod(objects.median_extent_zyx)),
                float(np.prod(objects.max_extent_zyx)),
            ]
        )
        box = objects.largest
        where = (
            f"Largest component: {_size(box.extent_zyx, 'd')} voxels in {box.mask.name}; "
            "select the row to outline it."
            if box is not None
            else ""
        )
        only = f"Only in {row.cases} of {row.n_cases} masks. " if row.in_some_cases_only else ""
        tips.append([only + where] * len(LABEL_COLUMNS))
    return rows, keys, tips


class ObjectsPanel(Container):
    """``objects`` button, the result text, ``draw_largest`` button.

    Wire it with :meth:`set_fingerprint` (each new fingerprint), :meth:`set_plan` (each new
    plan: the patch the objects are measured against) and :meth:`set_image` (the image the
    patch boxes are on, preferred when it is the largest object's file).
    """

    #: "done", "cancelled" or "error", once per run, when it has ended (its activity bar closed)
    finished = PsygnalSignal(str)
    #: "done" or "error", once per Save datastats… run that was started, when it has returned
    datastats_finished = PsygnalSignal(str)

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        # Kept as attributes too, so the widgets can be moved into another container.
        self.measure_button = PushButton(
            name="objects",
            text="Measure the objects in the masks",
            enabled=False,
            tooltip="Label the connected objects of every mask (26-connectivity) and compare "
            "their size with the patch.",
        )
        self.status_label = Label(
            name="objects_status", value="Fingerprint a dataset with masks first."
        )
        self.result_text = TextEdit(name="objects_result", value="")
        self.draw_button = PushButton(
            name="draw_largest", text="Show the largest object", enabled=False
        )
        self.labels_table = make_table("labels_table", [title for title, _ in LABEL_COLUMNS])
        self.labels_table.tooltip = (
            "One row per mask value; select a row to outline that label's largest component."
        )
        self.save_button = PushButton(
            name="save_datastats",
            text="Save datastats…",
            enabled=False,
            tooltip="Write MONAI Auto3DSeg's datastats.yaml and datastats_by_case.yaml "
            "(DataAnalyzer's keys and values) for these images and masks.",
        )
        super().__init__(
            widgets=[
                self.measure_button,
                self.status_label,
                self.labels_table,  # first: what a biologist reads about the masks
                self.result_text,
                self.draw_button,
                self.save_button,
            ],
            labels=False,
        )
        self.viewer = getattr(viewer, "__wrapped__", viewer)
        self.fingerprint: Fingerprint | None = None
        self.folders: tuple | None = None
        self.plan: Plan | None = None
        self.image: Image | None = None
        self.summary: ObjectSummary | None = None
        self.label_stats: LabelTable | None = None
        self.worker = None
        self.datastats_worker = None
        self._stop = threading.Event()
        self._datastats_stop = threading.Event()
        self._relay = _Relay()
        self._relay.step.connect(self._on_step)
        self._datastats_relay = _Relay()
        self._datastats_relay.step.connect(self._on_datastats_step)
        self._bar = ActivityBar("napari-autoconfig: objects")
        self._datastats_bar = ActivityBar("napari-autoconfig: datastats")
        self._ending = "error"  # what the running labelling came to (see ``finished``)
        self._closed = False
        self._wanted = 0  # the latest outline asked for: an image arriving for an older one is late
        self._call_off: Callable[[], None] | None = None  # stops the image loading for it
        self.result_text.read_only = True
        self.status_label.native.setWordWrap(True)
        view = self.labels_table.native
        # Qt's own delegate: magicgui's writes every number with four decimals ("9.8300")
        view.setItemDelegate(QStyledItemDelegate(view))
        view.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        view.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Maximum)
        for column, (title, tip) in enumerate(LABEL_COLUMNS):
            view.horizontalHeaderItem(column).setText(title.format(unit="physical"))
            view.horizontalHeaderItem(column).setToolTip(tip.format(unit="physical units"))
        view.setSelectionMode(view.SelectionMode.SingleSelection)
        # a little smaller than the dock's text: the eleven numbers of a row fit its width
        font = view.font()
        font.setPointSizeF(max(font.pointSizeF() - 1.5, 7))
        view.setFont(font)
        view.horizontalHeader().setFont(font)
        view.setVisible(False)  # shown with its rows
        view.itemSelectionChanged.connect(self._on_label_selected)
        self.measure_button.changed.connect(self.start)
        self.draw_button.changed.connect(self.show_largest)
        self.save_button.changed.connect(self.save_datastats)

    # -- inputs -----------------------------------------------------------------------------
    def set_fingerprint(
        self, fingerprint: Fingerprint | None, folders: tuple | None = None
    ) -> None:
        """A new dataset: the previous objects no longer apply. ``folders``: the (images, masks)
        folders it was read from (the datastats list them again; None: its pairs)."""
        self.cancel()
        self._datastats_stop.set()
        self._forget_outline()
        self.fingerprint = fingerprint
        self.folders = folders
        self.summary = None
        self.label_stats = None
        self.result_text.value = ""
        self.draw_button.enabled = False
        self._show_labels()
        usable = fingerprint is not None and fingerprint.has_masks
        self.measure_button.enabled = usable
        self.save_button.enabled = usable and self.datastats_worker is None
        self.status_label.value = (
            "Measure the objects to compare them with the patch."
            if usable
            else "The objects are counted in the masks: fingerprint with a masks folder."
        )

    def set_plan(self, plan: Plan | None) -> None:
        """The plan whose patch the objects are measured against."""
        self.plan = plan
        self._show_summary()

    def set_image(self, image: Image | None) -> None:
        """The image the patch boxes are on."""
        self.image = image

    # -- the run ----------------------------------------------------------------------------
    def start(self, *_: Any) -> None:
        """Label every mask's objects in a worker thread."""
        if self.worker is not None or self.fingerprint is None:
            return
        self._stop = stop = threading.Event()
        self._ending = "error"  # until the result or the error tells; said once the worker ends
        self.measure_button.enabled = False
        self.status_label.value = "Labelling the objects of the masks …"
        worker = create_worker(
            warmed(_run_objects),
            self.fingerprint,
            stop,
            self._relay,
            _ignore_errors=True,  # errored is handled below: superqt would also re-raise it
            _start_thread=False,
        )
        fingerprint = self.fingerprint
        worker.returned.connect(lambda outcome: self._on_returned(outcome, fingerprint))
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        worker.start()

    def cancel(self) -> None:
        """Stop a running labelling (it stops within about one mask)."""
        self._stop.set()

    def close_panel(self) -> None:
        """Stop a running labelling for good: its end no longer touches the (closed) widgets."""
        self._closed = True
        self.cancel()
        self._datastats_stop.set()
        self._forget_outline()

    def _on_step(self, done: int, total: int) -> None:
        if self._closed:
            return
        # The words first: napari's progress bar processes the pending events while it is built
        # and updated, among them the later steps and the result, whose words must stay.
        masks = total // 2  # two passes: the objects, then the labels
        self.status_label.value = (
            f"Labelled the objects of {done} of {masks} masks."
            if done <= masks
            else f"Measured the labels of {done - masks} of {masks} masks."
        )
        self._bar.step(done, total, running=lambda: self.worker is not None)

    def _on_returned(
        self, outcome: tuple[ObjectSummary, LabelTable] | str, fingerprint: Fingerprint
    ) -> None:
        if (
            self._closed or fingerprint is not self.fingerprint
        ):  # a run for a dataset replaced meanwhile
            self._ending = "cancelled"
            return
        if isinstance(outcome, str):
            self.status_label.value = outcome
            self._ending = "cancelled" if self._stop.is_set() else "error"
            return
        self.summary, self.label_stats = outcome
        self.status_label.value = f"Found {self.summary.count} objects."
        self._show_summary()
        self._show_labels()
        self._ending = "done"

    def _on_errored(self, error: Exception) -> None:
        # _run_objects returns every expected failure; this is for a bug or a surprise
        if self._closed:
            self._ending = "cancelled"
            return
        self.status_label.value = f"Labelling failed: {type(error).__name__}: {error}"
        self._ending = "error"

    def _on_finished(self) -> None:
        self.worker = None
        self._bar.close()
        if not self._closed:
            self.measure_button.enabled = (
                self.fingerprint is not None and self.fingerprint.has_masks
            )
        # said last: whoever waits for the end finds the bar closed and the button back
        self.finished.emit(self._ending)

    def _show_summary(self) -> None:
        summary = self.summary
        if summary is None:
            return
        patch = self.plan.patch if self.plan is not None else None
        spacing = self.fingerprint.median_spacing_xyz if self.fingerprint is not None else None
        lines = describe_objects(summary, patch, spacing)
        if self.label_stats is not None:
            lines += self.label_stats.notes()
        self.result_text.value = "\n".join(lines)
        self.draw_button.enabled = summary.largest is not None

    # -- the per-label table ----------------------------------------------------------------
    def _show_labels(self) -> None:
        """Fill the per-label table (hidden while there is none)."""
        table, view = self.label_stats, self.labels_table.native
        if table is None or not table.rows:
            view.setRowCount(0)
            view.setVisible(False)
            return
        units = {r.objects.unit for r in table.rows if r.objects.unit}
        unit = units.pop() if len(units) == 1 else "physical units"
        unit = _SHORT_UNITS.get(unit, unit)
        for column, (title, tip) in enumerate(LABEL_COLUMNS):
            view.horizontalHeaderItem(column).setText(title.format(unit=unit))
            view.horizontalHeaderItem(column).setToolTip(tip.format(unit=unit))
        rows, keys, tips = _label_cells(table)
        view.blockSignals(True)  # refilling is no selection by the user
        try:
            fill_table(
                self.labels_table,
                rows,
                keys=keys,
                tooltips=tips,
                row_data=list(range(len(rows))),
                highlight=[r.in_some_cases_only for r in table.rows],
            )
        finally:
            view.blockSignals(False)
        _fit_columns(view)
        view.resizeRowsToContents()
        # as tall as its rows, header and scroll bar (Qt measures them: AdjustToContents), up to
        # eight rows, then it scrolls: no empty box below the rows
        view.setMaximumHeight(QWIDGETSIZE_MAX if len(rows) <= 8 else 10 * view.rowHeight(0))
        view.setVisible(True)

    def _on_label_selected(self) -> None:
        """The user selected a row: outline that label's largest component."""
        try:
            chosen = self.labels_table.native.selectionModel().selectedRows()
            if not chosen or self.label_stats is None:
                return
            item = self.labels_table.native.item(chosen[0].row(), 0)
            self.show_label(int(item.data(ROW_ROLE)))
        except Exception as error:  # never out of a Qt slot
            self.status_label.value = f"Could not outline the label: {error}"
            show_error(f"napari-autoconfig: could not outline the label: {error}")

    def show_label(self, index: int) -> Image | None:
        """Outline the largest component of row ``index`` of the label table on its image.

        Returns the outline layer, or None while the image loads (it is opened off the GUI
        thread and outlined when it arrives, unless another outline is asked for meanwhile) or
        when there is nothing to outline.
        """
        if self.label_stats is None:
            return None
        row: LabelRow = self.label_stats.rows[index]
        box = row.objects.largest
        if box is None:
            return None
        what = f"label {row.name}'s largest component"
        return self._outline_on(box, LABEL_NAME, LABEL_COLOR, what)

    # -- MONAI's datastats ------------------------------------------------------------------
    def save_datastats(self, *_: Any) -> None:
        """Ask for the file, then write MONAI's two datastats YAML files on a worker."""
        try:
            if self.datastats_worker is not None or self.fingerprint is None:
                return
            path = ask_datastats_path(self.native)
            if not path:
                return
            self._datastats_stop = stop = threading.Event()
            self.save_button.enabled = False
            self.status_label.value = f"Computing MONAI's datastats for {path} …"
            worker = create_worker(
                warmed(_run_datastats),
                self.fingerprint,
                self.folders,
                path,
                stop,
                self._datastats_relay,
                _ignore_errors=True,  # errored is handled below: superqt would also re-raise it
                _start_thread=False,
            )
            worker.returned.connect(self._on_datastats_returned)
            worker.errored.connect(self._on_datastats_errored)
            worker.finished.connect(self._on_datastats_finished)
            self.datastats_worker = worker
            worker.start()
        except Exception as error:  # never out of a Qt slot
            self.status_label.value = f"Could not save the datastats: {error}"
            show_error(f"napari-autoconfig: could not save the datastats: {error}")

    def _on_datastats_step(self, done: int, total: int) -> None:
        if self._closed:
            return
        self.status_label.value = f"Datastats: {done} of {total} cases analysed."
        self._datastats_bar.step(done, total, running=lambda: self.datastats_worker is not None)

    def _on_datastats_returned(
        self, outcome: tuple[tuple[Path, ...], tuple[str, ...]] | str
    ) -> None:
        if self._closed:
            return
        if isinstance(outcome, str):
            self.status_label.value = outcome
            show_warning(f"napari-autoconfig: {outcome}")
            self.datastats_finished.emit("error")
            return
        written, skipped = outcome
        names = " and ".join(str(p) for p in written)
        left_out = (
            f" {len(skipped)} case(s) left out, as MONAI would: {skipped[0]}" if skipped else ""
        )
        self.status_label.value = f"Saved MONAI's datastats: {names}.{left_out}"
        show_info(f"napari-autoconfig: saved {names}.{left_out}")
        self.datastats_finished.emit("done")

    def _on_datastats_errored(self, error: Exception) -> None:
        if self._closed:
            return
        self.status_label.value = f"The datastats failed: {type(error).__name__}: {error}"
        show_error(f"napari-autoconfig: the datastats failed: {error}")
        self.datastats_finished.emit("error")

    def _on_datastats_finished(self) -> None:
        self.datastats_worker = None
        self._datastats_bar.close()
        if not self._closed:
            self.save_button.enabled = self.fingerprint is not None and self.fingerprint.has_masks

    # -- the largest object -----------------------------------------------------------------
    def show_largest(self, *_: Any) -> Image | None:
        """Outline the largest object on its image.

        Returns the outline layer, or None while the image loads (it is opened off the GUI
        thread and outlined when it arrives, unless another outline is asked for meanwhile) or
        when there is nothing to outline.
        """
        try:
            if self.summary is None or self.summary.largest is None:
                return None
            box = self.summary.largest
            return self._outline_on(box, LARGEST_NAME, LARGEST_COLOR, "the largest object")
        except Exception as error:  # the button's slot: never out of a Qt slot
            self._say_failure(f"Could not outline the largest object: {error}", error)
            return None

    def _outline_on(self, box: ObjectBox, name: str, color: str, what: str) -> Image | None:
        """Outline ``box`` on its image: at once when the image is open (the layer), else once
        the image has been opened off the GUI thread (None now). Supersedes any earlier outline
        still waiting for its image."""
        self._forget_outline()
        wanted = self._wanted

        def draw(image: Image) -> Image:
            layer = self._outline(box, image, name, color)
            self._look_at(layer)
            self.status_label.value = (
                f"'{name}' outlines {what} on {image.name} "
                f"(z {box.start_zyx[0]}-{box.stop_zyx[0]})."
            )
            return layer

        image = self._open_image(box.image)
        if image is not None:
            return draw(image)
        row = self._row_of(box.image)
        if row is None:  # not a file of this fingerprint (cannot happen through the table)
            self.status_label.value = f"Could not find {box.image.name} among the images."
            return None

        def arrived(image: Image) -> None:
            if wanted != self._wanted or self._closed:  # superseded meanwhile: quietly dropped
                return
            self._call_off = None
            try:
                draw(image)
            except Exception as error:  # called from a Qt slot: never out of it
                self._say_failure(f"Could not outline {what}: {error}", error)

        def failed(message: str) -> None:  # _load has told the user already
            if wanted == self._wanted and not self._closed:
                self._call_off = None
                self.status_label.value = f"Could not open {box.image.name}: {message}"

        self.status_label.value = f"Opening {box.image.name} to outline {what} …"
        self._call_off = self._load(row, arrived, failed)
        return None

    def _forget_outline(self) -> None:
        """Drop the outline waiting for its image, if any (its image stops loading)."""
        self._wanted += 1
        call_off, self._call_off = self._call_off, None
        if call_off is not None:
            call_off()

    def _say_failure(self, message: str, error: Exception) -> None:
        self.status_label.value = message
        if isinstance(error, AutoconfigError):
            show_warning(f"napari-autoconfig: {message}")
        else:
            show_error(f"napari-autoconfig: {message}")

    def _open_image(self, path: Path) -> Image | None:
        """The open image layer of ``path`` (the boxes' image first), or None."""
        candidates = [self.image] if self.image is not None else []
        candidates += [lyr for lyr in self.viewer.layers if isinstance(lyr, Image)]
        for layer in candidates:
            if layer in self.viewer.layers and not is_plugin_layer(layer):
                found = source_path(layer)
                if found is not None and found.resolve() == Path(path).resolve():
                    return layer
        return None

    def _row_of(self, path: Path) -> ImageRow | None:
        """The images table's row of ``path`` (made from the fingerprint: no file is read)."""
        if self.fingerprint is None:
            return None
        target = Path(path).resolve()
        return next(
            (r for r in image_rows(self.fingerprint) if r.image_path.resolve() == target), None
        )

    def _load(
        self, row: ImageRow, then: Callable[[Image], None], failed: Callable[[str], None]
    ) -> Callable[[], None]:
        """Prepare the row's image on a worker; on the GUI thread add it and call ``then(layer)``,
        or tell the user and call ``failed(message)``. Returns what calls the loading off (then
        neither is called).

        Not the dock's row opener: it replaces the opened image and mask, and each layer napari
        removes costs a full garbage collection on the GUI thread (the old image, the
        normalisation preview over it): 0.6 s of freeze for a 48x256x256 pair. The image is added
        to the open layers instead (:meth:`_add_beside`).
        """
        stop = threading.Event()

        def returned(pair) -> None:
            if stop.is_set() or pair is None or self._closed:
                return
            try:
                image = self._open_image(row.image_path)  # opened meanwhile (the table's Open)?
                if image is None:
                    image = self._add_beside(pair.image, pair.image_kwargs, row.image_path)
                # the outline in a later turn: napari adds each layer in tens of milliseconds,
                # the GUI waits for one at a time
                QTimer.singleShot(TURN_MS, lambda: settle(image))
            except Exception as error:  # a Qt slot: never out of it
                self._say_failure(f"Could not show {row.image}: {error}", error)

        def settle(image: Image) -> None:
            if not stop.is_set() and not self._closed and image in self.viewer.layers:
                then(image)

        def errored(error: Exception) -> None:
            if stop.is_set() or self._closed:
                return
            expected = isinstance(error, AutoconfigError)  # a bad file: its message says it all
            detail = str(error) if expected else f"{type(error).__name__}: {error}"
            notify = show_warning if expected else show_error
            notify(f"napari-autoconfig: could not open {row.image}: {detail}")
            failed(detail)

        # given at creation: a worker made without an "errored" handler re-raises the error in
        # the GUI thread (superqt's default), out of a Qt slot
        worker = create_worker(
            warmed(prepare_pair),
            row,
            None,
            lambda: not stop.is_set(),
            _connect={"returned": returned, "errored": errored},
            _start_thread=False,
        )
        worker.start()
        return stop.set

    def _add_beside(self, data: Any, kwargs: dict, path: Path) -> Image:
        """Add the image above the user's layers, under the plugin's (the boxes, the outlines),
        without selecting it: the patch boxes and the normalisation preview stay on the image
        the user works on (following this one would remove the preview's layer, and napari
        collects the garbage in full at each removal: a quarter of a second of freeze)."""
        with layer_source(path=str(path)):  # napari's own record of the file, as File > Open
            if "channel_axis" in kwargs:  # one layer per channel: napari's own split
                added = self.viewer.add_image(data, **kwargs)
                return added[0] if isinstance(added, list) else added
            image = Image(data, **kwargs)
        layers = self.viewer.layers
        ours = [is_plugin_layer(lyr) or is_box_layer(lyr) for lyr in layers]
        above = max((i + 1 for i, plugin in enumerate(ours) if not plugin), default=0)
        insert_quietly(self.viewer, above, image)
        return image

    def _outline(self, box: ObjectBox, image: Image, name: str, color: str) -> Image:
        k = 2 if image.ndim == 2 else 3
        start = np.asarray(box.start_zyx[-k:], dtype=float)
        extent = box.extent_zyx[-k:]
        lead = image.ndim - k  # axes before the spatial ones (time, channel...): at 0
        # copies: napari hands out the layer's own arrays, and the image must not move
        scale = np.array(image.scale, dtype=float)
        translate = np.array(image.translate, dtype=float)
        translate[lead:] += start * scale[lead:]
        for layer in list(self.viewer.layers):
            if layer.metadata.get(PLUGIN_LAYER_KEY) == name:
                self.viewer.layers.remove(layer)
        shape = (1,) * lead + tuple(int(e) for e in extent)
        layer = Image(
            np.broadcast_to(np.zeros((), dtype=np.uint8), shape),
            name=name,
            opacity=0.0,
            contrast_limits=(0, 1),
            blending="additive",
            scale=scale,
            translate=translate,
            metadata={PLUGIN_LAYER_KEY: name, "image": str(box.image)},
        )
        layer.bounding_box.visible = True
        layer.bounding_box.points = False
        layer.bounding_box.line_color = color
        layer.bounding_box.line_thickness = 2
        insert_quietly(self.viewer, len(self.viewer.layers), layer)
        return layer

    def _look_at(self, layer: Image) -> None:
        """Show the object's middle slice and centre the camera on the object."""
        shape = np.asarray(layer.data.shape, dtype=float)
        middle = np.asarray(layer.translate) + (shape - 1) // 2 * np.asarray(layer.scale)
        centre = np.asarray(layer.translate) + (shape - 1) / 2.0 * np.asarray(layer.scale)
        if self.viewer.dims.ndisplay == 2 and layer.ndim >= 3:
            self.viewer.dims.set_point(layer.ndim - 3, float(middle[-3]))
        viewer = self.viewer
        camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari 0.9
        camera.center = tuple(float(c) for c in centre[-viewer.dims.ndisplay :])
