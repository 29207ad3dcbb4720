"""The dock fits a 1366 x 768 laptop screen, nothing cut off, and is still good at 1920 x 1080.

Measured on the shown window, after a real run fills every table: the dock widget asks for at most
420 x 600 px, the whole window for at most 700 px of height, and at each screen size every button
the user needs lies inside the window.
"""

from __future__ import annotations

import pytest
from qtpy.QtCore import QPoint, QRect
from qtpy.QtWidgets import QWidget

BUTTONS = {
    "": ("fingerprint", "cancel"),
    "Plan": ("recentre",),
    "Images": ("open", "export_csv", "only_flagged"),
    "Intensities": ("preview", "normalization"),
    "Objects": ("objects", "draw_largest"),
    "Config": ("copy", "save", "update_config"),
}


def inside_window(widget, window) -> bool:
    """Whether the whole of a (visible) widget lies inside the window."""
    top_left = widget.mapTo(window, QPoint(0, 0))
    return widget.isVisible() and window.rect().contains(QRect(top_left, widget.size()))


@pytest.mark.parametrize("screen", [(1366, 768), (1920, 1080)])
def test_dock_fits_the_screen(
    make_napari_viewer, dock_widget, run_and_wait, dataset, qtbot, screen
):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = dataset
    assert run_and_wait(widget) == "done"
    # a long path must not widen the dock: it scrolls in its field, its tooltip shows it whole
    widget["images"].value = dataset[0] / ("a_very_long_folder_name_" * 8)

    hint = widget.native.minimumSizeHint()
    assert hint.width() <= 420 and hint.height() <= 600, hint
    assert window.minimumSizeHint().height() <= 700, window.minimumSizeHint()

    window.resize(*screen)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == screen)
    canvas = viewer.window._qt_viewer.canvas.native
    assert canvas.width() >= 0.4 * screen[0]  # the image keeps most of the room
    titles = [widget.tabs.tabText(i) for i in range(widget.tabs.count())]
    tab_bar = widget.tabs.tabBar()
    for i in range(len(titles)):  # every tab's title is shown whole, none behind scroll arrows
        assert inside_window(tab_bar, window) and tab_bar.rect().contains(tab_bar.tabRect(i))
    histogram = widget.native.findChild(QWidget, "histogram")
    for tab, names in BUTTONS.items():
        if tab:
            widget.tabs.setCurrentIndex(titles.index(tab))
        qtbot.wait(20)
        for name in names:
            assert inside_window(widget[name].native, window), (screen, name)
        if tab == "Intensities":  # the histogram is readable: whole, and not squeezed
            assert inside_window(histogram, window), screen
            assert histogram.width() >= 300 and histogram.height() >= 180, histogram.size()
    widget.tabs.setCurrentIndex(titles.index("Images"))
    qtbot.wait(20)
    table = widget["images_table"].native
    assert inside_window(table, window) and table.height() >= 3 * table.rowHeight(0)
