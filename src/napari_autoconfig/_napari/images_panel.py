"""The images panel: one row per image, from the core's :func:`~.image_table.image_rows`.

Rows are sortable by any column, can be narrowed to the flagged ones, exported as CSV, and opened:
select a row and click Open, or double-click it; the dock widget opens the image under its boxes.
Selecting a row tells every panel (the ``show_selection`` hook, through the dock widget) which
image of the fingerprint it is, so the histogram can draw that image's own intensities.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import CheckBox, Label, PushButton
from qtpy.QtWidgets import QFileDialog, QSizePolicy

from ..atomic import write_atomic
from ..image_table import COLUMNS, ImageRow, image_rows, rows_csv
from .guard import guarded
from .panel import Panel, row
from .tables import ROW_ROLE, fill_table, make_table

if TYPE_CHECKING:
    from ..fingerprint import Fingerprint
    from ..planners.biom3d import Plan

#: Where each row keeps its position in the dataset (the table may be sorted).
INDEX_COLUMN = 0
INDEX_ROLE = ROW_ROLE


def _sort_keys(row: ImageRow) -> list:
    z, y, x = row.shape_zyx
    spacing = row.spacing_zyx or ()
    return [
        row.image,
        (len(row.flags), " ".join(row.flags)),
        (z * y * x, row.shape_zyx),
        row.channels,
        tuple(spacing) if spacing else (-1.0,),
        row.dtype,
        -1.0 if row.foreground_percent is None else row.foreground_percent,
        -1.0 if row.perc_005 is None else row.perc_005,
        -1.0 if row.perc_995 is None else row.perc_995,
        row.mask,
    ]


def _tooltips(row: ImageRow) -> list[str]:
    """The flags in full on every cell; the file's full path on the name."""
    flags = "\n".join(row.flags)
    tips = [str(row.image_path)] + [flags] * (len(COLUMNS) - 2) + [str(row.mask_path or "")]
    return tips


def ask_csv_path(parent) -> str:
    """Ask where to save the table as CSV (a file dialog); '' if the user cancels."""
    path, _ = QFileDialog.getSaveFileName(
        parent, "Save the images table", "images.csv", "CSV (*.csv)"
    )
    return path


class ImagesPanel(Panel):
    """The per-image table, a filter to the flagged rows, Open and CSV export."""

    title = "Images"
    tooltip = "One row per image; flagged rows deserve a look"

    def __init__(self, host: Any) -> None:
        tools = row(
            CheckBox(name="only_flagged", text="Only flagged", value=False),
            PushButton(name="open", text="Open", enabled=False),
            PushButton(name="export_csv", text="CSV…", enabled=False),
        )
        widgets = [
            Label(name="images_summary", value="Fingerprint a dataset to list its images."),
            tools,
            make_table("images_table", COLUMNS),
        ]
        super().__init__(host, widgets=widgets)
        self.rows: tuple[ImageRow, ...] = ()
        self._fingerprint: Fingerprint | None = None  # the one the rows were made from
        self._told: tuple = (None, None)  # (fingerprint, row) last told to the panels
        self["images_summary"].native.setWordWrap(True)
        self["images_summary"].native.setSizePolicy(
            QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred
        )
        tools["open"].tooltip = "Open the selected image and its mask, under the patch boxes."
        tools["export_csv"].tooltip = "Save the table (all rows) as a CSV file."
        view = self["images_table"].native
        view.setSortingEnabled(True)
        view.setToolTip("Click a column title to sort; double-click a row to open the image.")
        view.itemSelectionChanged.connect(self._on_selection)
        view.cellDoubleClicked.connect(self._on_double_click)
        tools["only_flagged"].changed.connect(self._apply_filter)
        tools["open"].changed.connect(self._on_open)
        tools["export_csv"].changed.connect(self._on_export)

    def show_plan(self, plan: Plan | None) -> None:
        # every new fingerprint is planned at once, and "smaller than the patch" needs the plan
        self._refill()

    def _refill(self) -> None:
        fp = self.host.result
        folders = self.host.result_folders
        resampling = self.host.nnunet_resampling  # nnU-Net's plan made: what it resamples 2x
        self.rows = (
            image_rows(fp, self.host.plan, *folders, nnunet_resampling=resampling)
            if fp is not None
            else ()
        )
        self._fingerprint = fp
        table = self["images_table"]
        fill_table(
            table,
            [row.cells() for row in self.rows],
            keys=[_sort_keys(row) for row in self.rows],
            tooltips=[_tooltips(row) for row in self.rows],
            row_data=[row.index for row in self.rows],
            highlight=[row.flagged for row in self.rows],
        )
        view = table.native
        view.resizeColumnsToContents()
        for c in range(len(COLUMNS)):  # long names and flags are elided; tooltips hold them
            view.setColumnWidth(c, min(view.columnWidth(c), 220 if c == 1 else 140))
        flagged = sum(row.flagged for row in self.rows)
        if fp is None:
            text = "Fingerprint a dataset to list its images."
        else:
            text = (
                f"{len(self.rows)} image{'s' * (len(self.rows) != 1)}, {flagged} flagged"
                f"{' (orange)' if flagged else ''}. Double-click a row to open it."
            )
        self["images_summary"].value = text
        self["export_csv"].enabled = bool(self.rows)
        self._apply_filter()
        self._on_selection()

    # -- the user's actions --------------------------------------------------------------------
    def selected_row(self) -> ImageRow | None:
        """The row selected in the table (in the dataset's order), or None."""
        view = self["images_table"].native
        selected = view.selectionModel().selectedRows() if view.selectionModel() else []
        if not selected:
            return None
        item = view.item(selected[0].row(), INDEX_COLUMN)
        index = item.data(INDEX_ROLE) if item is not None else None
        return self.rows[index] if index is not None and index < len(self.rows) else None

    def select(self, index: int) -> None:
        """Select the row of the dataset's ``index``-th image (whatever the sort)."""
        view = self["images_table"].native
        for r in range(view.rowCount()):
            item = view.item(r, INDEX_COLUMN)
            if item is not None and item.data(INDEX_ROLE) == index:
                view.selectRow(r)
                return

    @guarded
    def _apply_filter(self, *_: Any) -> None:
        only = bool(self["only_flagged"].value)
        view = self["images_table"].native
        for r in range(view.rowCount()):
            item = view.item(r, INDEX_COLUMN)
            index = item.data(INDEX_ROLE) if item is not None else None
            flagged = index is not None and self.rows[index].flagged
            view.setRowHidden(r, only and not flagged)

    @guarded
    def _on_selection(self, *_: Any) -> None:
        row = self.selected_row()
        self["open"].enabled = row is not None
        fp = self._fingerprint
        if self._told[0] is fp and self._told[1] == row:  # e.g. refilled for a new plan
            return
        self._told = (fp, row)
        # a row's index is its record's position in the fingerprint the rows were made from
        record = fp.records[row.index] if row is not None and fp is not None else None
        self.host.tell("show_selection", record)

    @guarded
    def _on_double_click(self, row: int, column: int) -> None:
        self._on_open()

    @guarded
    def _on_open(self, *_: Any) -> None:
        row = self.selected_row()
        if row is not None:
            self.host.open_row(row)

    @guarded
    def _on_export(self, *_: Any) -> None:
        if not self.rows:
            return
        path = ask_csv_path(self.native)
        if not path:
            return
        written = write_atomic(Path(path), rows_csv(self.rows).encode("utf-8"))
        self.host.set_status(f"Saved the images table to {written}.")
