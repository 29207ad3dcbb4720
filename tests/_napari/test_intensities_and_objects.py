"""Looking at a fingerprinted dataset's intensities and objects in the dock's tabs.

Through the manifest, on the shared dataset's real files: the run fills the histogram, a table
row draws its image's own distribution, the normalisation preview lies over the opened image under
the boxes with biom3d's values and follows the next opened row, the objects are counted, and the
plugin's own layers never carry the boxes.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from napari.utils import progress
from scipy import ndimage

from gui_steps import open_row
from napari_autoconfig._napari.boxes import is_box_layer
from napari_autoconfig._napari.histogram import HistogramPanel, theme_colors
from napari_autoconfig._napari.objects_panel import LARGEST_NAME
from napari_autoconfig._napari.objects_tab import ObjectsTab
from napari_autoconfig._napari.preview import NORMALIZED_NAME, is_plugin_layer
from napari_autoconfig.normalization import CT_NORM, EPSILON, ZSCORE


@pytest.fixture
def fingerprinted(make_napari_viewer, dock_widget, run_and_wait, dataset):
    """The widget docked, the shared dataset fingerprinted, no image open yet."""
    viewer = make_napari_viewer(show=True)
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = dataset
    histogram = widget.native.findChild(HistogramPanel, "histogram")
    before = histogram.pixels()
    assert run_and_wait(widget) == "done"
    return viewer, widget, histogram, before


def _count(pixels: np.ndarray, hex_color: str, tolerance: int) -> int:
    """Pixels of the canvas within ``tolerance`` of a colour."""
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels[..., :3].astype(int) - rgb).max(axis=-1) <= tolerance).sum())


def _preview_on(viewer, qtbot, image):
    """The ``normalized`` layer once it lies over ``image``."""

    def over_image():
        layers = [lyr for lyr in viewer.layers if lyr.name == NORMALIZED_NAME]
        return len(layers) == 1 and layers[0].metadata["target"] == id(image)

    qtbot.waitUntil(over_image, timeout=30_000)
    return viewer.layers[NORMALIZED_NAME]


def _zscore(path) -> np.ndarray:
    image = tifffile.imread(path).astype(np.float64)
    return (image - image.mean()) / (image.std() + EPSILON)  # biom3d's per-image line


def _ct_norm(path, fp) -> np.ndarray:
    image = tifffile.imread(path).astype(np.float64)
    return (np.clip(image, fp.perc_005, fp.perc_995) - fp.mean) / (fp.std + EPSILON)


def _same_planes(layer, expected: np.ndarray) -> None:
    assert layer.data.shape == expected.shape
    for z in (0, expected.shape[0] // 2, expected.shape[0] - 1):
        np.testing.assert_allclose(np.asarray(layer.data[z]), expected[z], rtol=1e-5, atol=1e-5)


def test_the_run_fills_the_histogram_and_a_row_draws_its_image(fingerprinted):
    viewer, widget, histogram, before = fingerprinted
    colors = theme_colors(viewer)
    assert _count(before, colors["current"], tolerance=40) == 0  # only a message before the run
    drawn = histogram.pixels()
    assert _count(drawn, colors["current"], tolerance=40) > 200  # the dataset's bars
    markers = sorted(line.get_xdata()[0] for line in histogram.axes.get_lines())
    fp = widget.result
    assert markers == pytest.approx(sorted([fp.mean, fp.perc_005, fp.perc_995]))
    assert _count(drawn, colors["warning"], tolerance=6) == 0  # no image drawn over it yet

    # sorted by shape, largest first: the selected row still draws its own image
    view = widget["images_table"].native
    view.sortItems(2)
    view.sortItems(2)
    for r in (0, view.rowCount() - 1):
        view.selectRow(r)
        name = view.item(r, 0).text()
        assert histogram.record is not None and histogram.record.image.path.name == name
        assert histogram.record in fp.records
        drawn = histogram.pixels()
        legend = [t.get_text() for t in histogram.axes.get_legend().get_texts()]
        assert any(text.startswith(name) for text in legend)
        assert _count(drawn, colors["warning"], tolerance=6) > 50  # its outline

    view.clearSelection()
    assert histogram.record is None
    assert _count(histogram.pixels(), colors["warning"], tolerance=6) == 0


def test_the_histogram_is_drawn_when_its_tab_is_shown(fingerprinted, qtbot):
    """Behind the Plan tab the plot waits (no GUI time spent on it); shown, it is up to date."""
    _viewer, widget, histogram, _ = fingerprinted
    tabs = widget.tabs
    plan_tab = next(i for i in range(tabs.count()) if tabs.tabText(i) == "Plan")
    intensities = next(i for i in range(tabs.count()) if tabs.tabText(i) == "Intensities")
    tabs.setCurrentIndex(plan_tab)
    qtbot.waitUntil(lambda: not histogram.isVisible())
    view = widget["images_table"].native
    view.selectRow(0)
    name = view.item(0, 0).text()
    assert histogram.record.image.path.name == name
    assert histogram._stale  # the selection is not drawn while nobody sees the plot
    tabs.setCurrentIndex(intensities)
    qtbot.waitUntil(histogram.isVisible)
    assert not histogram._stale
    legend = [t.get_text() for t in histogram.axes.get_legend().get_texts()]
    assert any(text.startswith(name) for text in legend)


def test_the_preview_lies_over_the_opened_image_and_follows_the_next_row(
    fingerprinted, qtbot, dataset
):
    viewer, widget, _histogram, _ = fingerprinted
    images, _masks = dataset
    names = sorted(path.name for path in images.iterdir())
    first = open_row(widget, qtbot, names[0])
    assert widget["normalization"].value == ZSCORE  # biom3d's default first
    assert NORMALIZED_NAME not in viewer.layers  # nothing until asked

    widget["preview"].value = True
    layer = _preview_on(viewer, qtbot, first)
    assert is_plugin_layer(layer) and viewer.layers.selection.active is first
    boxes = [viewer.layers.index(lyr) for lyr in viewer.layers if is_box_layer(lyr)]
    assert viewer.layers.index(layer) == viewer.layers.index(first) + 1  # over the image...
    assert len(boxes) == 2 and viewer.layers.index(layer) < min(boxes)  # ...under the boxes
    np.testing.assert_array_equal(layer.scale, first.scale)
    _same_planes(layer, _zscore(images / names[0]))

    widget["normalization"].value = CT_NORM
    qtbot.waitUntil(lambda: viewer.layers[NORMALIZED_NAME].metadata["normalization"] == CT_NORM)
    _same_planes(viewer.layers[NORMALIZED_NAME], _ct_norm(images / names[0], widget.result))

    # the user clicks the preview layer: the boxes stay on the image
    viewer.layers.selection.select_only(viewer.layers[NORMALIZED_NAME])
    qtbot.wait(100)
    assert widget.boxes.image is first
    assert viewer.layers.selection.active is viewer.layers[NORMALIZED_NAME]  # the click is kept

    # another row: the preview leaves the closed image and lies over the new one
    second = open_row(widget, qtbot, names[1])
    layer = _preview_on(viewer, qtbot, second)
    assert first not in viewer.layers and widget.boxes.image is second
    assert viewer.layers.index(layer) == viewer.layers.index(second) + 1
    _same_planes(layer, _ct_norm(images / names[1], widget.result))
    widget["normalization"].value = ZSCORE
    qtbot.waitUntil(lambda: viewer.layers[NORMALIZED_NAME].metadata["normalization"] == ZSCORE)
    _same_planes(viewer.layers[NORMALIZED_NAME], _zscore(images / names[1]))

    widget["preview"].value = False
    assert NORMALIZED_NAME not in viewer.layers
    assert widget.boxes.image is second


def test_objects_are_counted_and_the_outline_never_carries_the_boxes(fingerprinted, qtbot, dataset):
    viewer, widget, _histogram, _ = fingerprinted
    _images, masks = dataset
    expected = sum(
        ndimage.label(tifffile.imread(path) > 0, structure=np.ones((3, 3, 3)))[1]
        for path in sorted(masks.iterdir())
    )
    panel = widget.panel(ObjectsTab).objects_panel
    assert widget["objects"].enabled and not widget["draw_largest"].enabled
    assert widget["objects_result"].native.isHidden()  # no empty box before there is a result
    with qtbot.waitSignal(panel.finished, timeout=60_000) as blocker:
        widget["objects"].native.click()
    assert blocker.args == ["done"]
    assert panel.summary.count == expected
    assert f"Objects: {expected} connected foreground components" in widget["objects_result"].value
    assert not widget["objects_result"].native.isHidden()
    assert f"Found {expected} objects." == widget["objects_status"].value  # not a step's words
    # no progress bar left open in napari's activity list (napari's own registry of bars)
    assert [bar for bar in progress._all_instances if "objects" in (bar.desc or "")] == []

    widget["draw_largest"].native.click()  # opens the largest object's image, off the GUI thread
    qtbot.waitUntil(lambda: LARGEST_NAME in viewer.layers, timeout=30_000)
    outline = viewer.layers[LARGEST_NAME]
    qtbot.waitUntil(lambda: widget.boxes.image is not None)
    assert widget.boxes.image is not outline and not is_plugin_layer(widget.boxes.image)
    image = widget.boxes.image
    viewer.layers.selection.select_only(outline)  # the user clicks the outline
    assert viewer.layers.selection.active is outline
    qtbot.wait(100)
    assert widget.boxes.image is image


def test_closing_the_dock_takes_the_preview_away_and_stops_listening(fingerprinted, qtbot):
    viewer, widget, histogram, _ = fingerprinted
    image = open_row(widget, qtbot, widget.images_panel.rows[0].image)
    widget["preview"].value = True
    _preview_on(viewer, qtbot, image)
    widget["objects"].native.click()  # a labelling still running when the dock closes
    viewer.window.remove_dock_widget(widget.native)  # what the dock's close button does
    panel = widget.panel(ObjectsTab).objects_panel
    qtbot.waitUntil(lambda: panel.worker is None, timeout=60_000)
    assert NORMALIZED_NAME not in viewer.layers
    assert histogram.viewer is None  # no longer follows the theme
    viewer.layers.remove(image)  # the viewer's events no longer reach the closed panels
    qtbot.wait(100)
    assert not widget["status"].value.startswith("Error:")


def test_closing_the_viewer_with_the_preview_on(fingerprinted, qtbot):
    viewer, widget, _histogram, _ = fingerprinted
    image = open_row(widget, qtbot, widget.images_panel.rows[-1].image)
    widget["preview"].value = True
    _preview_on(viewer, qtbot, image)
    viewer.close()  # deletes the dock widget: every panel lets go, nothing raises
    qtbot.waitUntil(lambda: not widget._alive)
    qtbot.wait(100)
