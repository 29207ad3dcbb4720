"""What a user does in the dock, as steps the GUI tests share: select a row, open it.

The test-data writers are in ``tests/datafiles.py``; the fixtures (a docked widget, a run) in
``tests/_napari/conftest.py``.
"""

from __future__ import annotations

from typing import Any


def select_row(widget: Any, name: str) -> int:
    """Select the Images table's row showing ``name`` (first column); return its index."""
    view = widget["images_table"].native
    (r,) = [r for r in range(view.rowCount()) if view.item(r, 0).text() == name]
    view.selectRow(r)
    return r


def open_row(widget: Any, qtbot: Any, name: str, double_click: bool = False) -> Any:
    """Select the row of ``name`` and open it (Open, or a double-click on the row); return the
    image layer once it is shown."""
    r = select_row(widget, name)
    with qtbot.waitSignal(widget.image_opened, timeout=60_000) as blocker:
        if double_click:
            widget["images_table"].native.cellDoubleClicked.emit(r, 0)
        else:
            widget["open"].native.click()
    return blocker.args[0]


def drawn(viewer: Any, qtbot: Any, timeout: int = 30_000) -> None:
    """Ask napari's canvas for a paint and wait until it has drawn: every step after this sees
    what the user sees, and a crash in a draw ends the run here (on a fast machine in a few
    milliseconds, on a slow one as long as the draw takes)."""
    scene = viewer.window._qt_viewer.canvas._scene_canvas  # vispy's canvas (napari 0.5 to 0.9)
    draws: list[object] = []

    def count(event: object) -> None:
        draws.append(event)

    scene.events.draw.connect(count)
    try:
        scene.update()
        qtbot.waitUntil(lambda: bool(draws), timeout=timeout)
    finally:
        scene.events.draw.disconnect(count)
