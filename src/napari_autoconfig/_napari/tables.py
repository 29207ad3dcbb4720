"""Small read-only tables for the panels: magicgui ``Table`` widgets filled row by row.

The cells are filled through the Qt table so that each cell sorts by its value (numbers as numbers,
shapes by volume) while showing text; magicgui's own ``table.data`` still reads the shown values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from magicgui.widgets import Table
from qtpy.QtCore import Qt
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QSizePolicy, QTableWidgetItem

#: The item role magicgui reads a cell's value from (``Table.data``).
MAGICGUI_ROLE = 255
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ROW_ROLE = Qt.ItemDataRole.UserRole
HIGHLIGHT = QColor(255, 170, 60)  # orange: readable on napari's dark and light themes


class SortItem(QTableWidgetItem):
    """A cell that shows text and sorts by a key (``SORT_ROLE``) when one is given."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if mine is not None and theirs is not None:
            try:
                return mine < theirs
            except TypeError:
                pass
        return self.text() < other.text()


def make_table(name: str, columns: Sequence[str], *, compact: bool = False) -> Table:
    """A read-only table with the given column titles, rows selected whole.

    ``compact``: no row numbers, no scroll bars, as tall as its rows (the small result tables).
    """
    table = Table(name=name)
    table.read_only = True
    view = table.native
    view.setColumnCount(len(columns))
    view.setHorizontalHeaderLabels(list(columns))
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setWordWrap(False)
    view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
    view.verticalHeader().hide()  # row numbers would only take room
    if compact:
        view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        view.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    else:
        view.setMinimumHeight(4 * view.verticalHeader().defaultSectionSize())
        view.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
    return table


def fill_table(
    table: Table,
    rows: Sequence[Sequence[str]],
    *,
    keys: Sequence[Sequence[Any]] | None = None,
    tooltips: Sequence[Sequence[str]] | None = None,
    row_data: Sequence[Any] | None = None,
    highlight: Sequence[bool] | None = None,
    compact: bool = False,
) -> None:
    """Put ``rows`` of text in the table (sort keys and tooltips per cell, optional).

    ``row_data[r]`` is kept in the first cell of row ``r`` (``ROW_ROLE``), so that a sorted table
    still knows which row is which; ``highlight[r]`` colours the row's text. ``compact`` tables
    then take exactly the height of their rows.
    """
    view = table.native
    sorting = view.isSortingEnabled()
    view.setSortingEnabled(False)  # sorting while filling would move rows under our feet
    view.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = SortItem(str(text))
            item.setData(MAGICGUI_ROLE, text)
            if keys is not None and keys[r][c] is not None:
                item.setData(SORT_ROLE, keys[r][c])
            if tooltips is not None and tooltips[r][c]:
                item.setToolTip(tooltips[r][c])
            if row_data is not None and c == 0:
                item.setData(ROW_ROLE, row_data[r])
            if highlight is not None and highlight[r]:
                item.setForeground(QBrush(HIGHLIGHT))
            view.setItem(r, c, item)
    view.setSortingEnabled(sorting)
    if compact:
        height = view.horizontalHeader().height() if view.horizontalHeader().isVisible() else 0
        height += sum(view.rowHeight(r) for r in range(len(rows))) + 2 * view.frameWidth()
        view.setFixedHeight(height)
