"""A user's whole journey through the plugin, as the README tells it, in a viewer napari draws.

Open the sample (File > Open Sample), dock the widget (Plugins menu), point it at the sample's
folders, fingerprint, open rows of the images table one after another with the normalisation
preview switched on and off between them, measure the objects and show the largest, change a limit
(the plan is made again), copy the config, then fingerprint a 2D dataset without masks and open
two of its images, delete the opened image, undock the widget and close the viewer.

Every step runs in a shown viewer under the virtual X server and lets napari draw before the next
(a crash in a draw, such as the one that opening a second row used to cause, kills the test run);
the layers are checked after each step, and no warning or error notification may appear.
"""

from __future__ import annotations

import napari
import numpy as np
import pytest
from napari.layers import Image, Labels
from napari.utils.notifications import NotificationSeverity, notification_manager
from qtpy.QtWidgets import QApplication

import gui_steps
from datafiles import write_case
from napari_autoconfig._napari.boxes import AUG_NAME, PATCH_NAME, box_world_bounds, is_box_layer
from napari_autoconfig._napari.objects_panel import LARGEST_NAME
from napari_autoconfig._napari.objects_tab import ObjectsTab
from napari_autoconfig._napari.preview import NORMALIZED_NAME
from napari_autoconfig.sample import sample_folder

SAMPLE_SPACING_ZYX = (2.0, 0.5, 0.5)


@pytest.fixture
def notices():
    """Every warning or error notification napari shows during the journey."""
    seen: list[str] = []

    def keep(notification):
        if notification.severity >= NotificationSeverity.WARNING:
            seen.append(f"{notification.severity}: {notification.message}")

    notification_manager.notification_ready.connect(keep)
    yield seen
    notification_manager.notification_ready.disconnect(keep)


def drawn(qtbot) -> None:
    """Let napari paint the journey's viewer once more before the next step."""
    gui_steps.drawn(napari.current_viewer(), qtbot)


def names(viewer) -> list[str]:
    return [layer.name for layer in viewer.layers]


def open_row(widget, qtbot, name: str, double_click: bool = False) -> Image:
    """Open the row of ``name`` (Open, or a double-click); the image once shown and drawn."""
    opened = gui_steps.open_row(widget, qtbot, name, double_click)
    drawn(qtbot)
    return opened


def fingerprint(widget, qtbot, images, masks) -> None:
    """Type the folders (Masks empty for None) and click Fingerprint; wait for the plan."""
    widget["images"].line_edit.value = str(images)
    widget["masks"].line_edit.value = str(masks) if masks is not None else ""
    ends: list[str] = []
    widget.run_finished.connect(ends.append)
    try:
        widget["fingerprint"].native.click()
        qtbot.waitUntil(lambda: bool(ends) and widget.worker is None, timeout=120_000)
    finally:
        widget.run_finished.disconnect(ends.append)
    assert ends == ["done"], widget["status"].value
    drawn(qtbot)


def preview_over(viewer, qtbot, image) -> Image:
    """The ``normalized`` layer once it lies right above ``image``."""

    def over() -> bool:
        found = [layer for layer in viewer.layers if layer.name == NORMALIZED_NAME]
        return len(found) == 1 and found[0].metadata["target"] == id(image)

    qtbot.waitUntil(over, timeout=30_000)
    drawn(qtbot)
    layer = viewer.layers[NORMALIZED_NAME]
    assert viewer.layers.index(layer) == viewer.layers.index(image) + 1
    return layer


def assert_boxes_on(widget, viewer, image, patch) -> None:
    """Both boxes on ``image``, above it, the patch box the plan's patch in world units."""
    boxes = [layer for layer in viewer.layers if is_box_layer(layer)]
    assert {layer.name for layer in boxes} == {PATCH_NAME, AUG_NAME}
    assert widget.boxes.image is image
    assert min(viewer.layers.index(b) for b in boxes) > viewer.layers.index(image)
    (patch_box,) = [b for b in boxes if b.name == PATCH_NAME]
    k = len(patch)
    bounds = box_world_bounds(patch_box)
    np.testing.assert_allclose(bounds[1] - bounds[0], np.multiply(patch, image.scale[-k:]))


def test_a_user_walks_the_whole_plugin_in_a_drawn_viewer(
    make_napari_viewer, dock_widget, qtbot, tmp_path, notices
):
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1366, 768)

    # File > Open Sample > napari-autoconfig: one volume and its mask, at the file's spacing.
    viewer.open_sample("napari-autoconfig", "nuclei")
    drawn(qtbot)
    assert names(viewer) == ["nuclei_01", "nuclei_01 mask"]
    sample_image, sample_mask = viewer.layers
    assert isinstance(sample_image, Image) and isinstance(sample_mask, Labels)
    np.testing.assert_allclose(sample_image.scale, SAMPLE_SPACING_ZYX)

    # Plugins > napari-autoconfig > Auto-configuration; the sample's folders; Fingerprint.
    widget = dock_widget(viewer)
    drawn(qtbot)
    folder = sample_folder()
    fingerprint(widget, qtbot, folder / "images", folder / "masks")
    assert widget.result.num_images == 4
    plan = widget.plan
    assert_boxes_on(widget, viewer, sample_image, plan.patch)  # on the image the user opened
    assert names(viewer) == ["nuclei_01", "nuclei_01 mask", AUG_NAME, PATCH_NAME]

    # Rows of the images table, one after another; the preview on and off between them.
    opened = open_row(widget, qtbot, "nuclei_02.tif")
    assert names(viewer) == [
        "nuclei_01",
        "nuclei_01 mask",
        "nuclei_02",
        "nuclei_02 mask",
        AUG_NAME,
        PATCH_NAME,
    ]
    assert_boxes_on(widget, viewer, opened, plan.patch)
    widget["preview"].value = True
    preview_over(viewer, qtbot, opened)

    previous = opened
    opened = open_row(widget, qtbot, "nuclei_03.tif", double_click=True)
    assert previous not in viewer.layers
    preview_over(viewer, qtbot, opened)  # the preview followed the new row
    assert names(viewer) == [
        "nuclei_01",
        "nuclei_01 mask",
        "nuclei_03",
        NORMALIZED_NAME,
        "nuclei_03 mask",
        AUG_NAME,
        PATCH_NAME,
    ]
    assert_boxes_on(widget, viewer, opened, plan.patch)

    widget["preview"].value = False
    drawn(qtbot)
    assert NORMALIZED_NAME not in names(viewer)
    opened = open_row(widget, qtbot, "nuclei_04.tif")  # thinner than the patch along z
    assert names(viewer)[2:] == ["nuclei_04", "nuclei_04 mask", AUG_NAME, PATCH_NAME]
    assert "larger than this image along z" in widget["notes"].value

    widget["preview"].value = True
    preview_over(viewer, qtbot, opened)
    again = open_row(widget, qtbot, "nuclei_04.tif")  # the row already open: replaced, once
    assert opened not in viewer.layers
    preview_over(viewer, qtbot, again)
    assert names(viewer)[2:] == [
        "nuclei_04",
        NORMALIZED_NAME,
        "nuclei_04 mask",
        AUG_NAME,
        PATCH_NAME,
    ]
    widget["preview"].value = False
    drawn(qtbot)

    # Objects: measured on the masks, the largest outlined on its image.
    panel = widget.panel(ObjectsTab).objects_panel
    with qtbot.waitSignal(panel.finished, timeout=120_000) as blocker:
        widget["objects"].native.click()
    assert blocker.args == ["done"]
    assert panel.summary.count > 0
    assert widget["objects_result"].value.startswith("Objects:")
    widget["draw_largest"].native.click()  # its image may be read first, off the GUI thread
    qtbot.waitUntil(lambda: LARGEST_NAME in names(viewer), timeout=30_000)
    drawn(qtbot)
    outline = viewer.layers[LARGEST_NAME]
    largest = panel.summary.largest
    assert outline.data.shape == tuple(largest.extent_zyx)
    assert outline.metadata["image"] == str(largest.image)
    assert widget.boxes.image is not outline  # the outline never carries the boxes

    # A smaller limit: the plan is made again from the cached fingerprint, the boxes follow.
    default_dims = widget["max_dims"].value
    widget["max_dims"].value = (64, 128, 128)
    qtbot.waitUntil(lambda: widget.plan is not plan)
    drawn(qtbot)
    assert widget.plan.patch != plan.patch
    assert all(new <= old for new, old in zip(widget.plan.patch, plan.patch))
    assert_boxes_on(widget, viewer, widget.boxes.image, widget.plan.patch)

    # Copy: the config snippet on the clipboard.
    widget["copy"].native.click()
    assert QApplication.clipboard().text() == widget.snippet
    assert f"PATCH_SIZE = {list(widget.plan.patch)}" in widget.snippet

    # A 2D dataset without masks: rectangles instead of cuboids, rows without a mask.
    flat = tmp_path / "flat"
    flat.mkdir()
    for name, shape in (("d.tif", (120, 100)), ("e.tif", (96, 128))):
        write_case(flat, tmp_path, name, shape)  # the masks land beside, unused
    widget["max_dims"].value = default_dims
    fingerprint(widget, qtbot, flat, None)
    two_d = open_row(widget, qtbot, "d.tif")
    assert two_d.ndim == 2
    assert_boxes_on(widget, viewer, two_d, widget.plan.patch[-2:])
    widget["preview"].value = True
    preview_over(viewer, qtbot, two_d)
    two_d = open_row(widget, qtbot, "e.tif")
    preview_over(viewer, qtbot, two_d)
    assert not [layer for layer in viewer.layers if layer.name.startswith("e mask")]
    assert_boxes_on(widget, viewer, two_d, widget.plan.patch[-2:])

    # The user deletes the opened image: its preview goes; so do the boxes, since no single
    # image is left to carry them (three volumes are open, none of them selected).
    viewer.layers.remove(two_d)
    drawn(qtbot)
    assert "e" not in names(viewer) and NORMALIZED_NAME not in names(viewer)
    assert widget.boxes.image is None
    assert not [layer for layer in viewer.layers if is_box_layer(layer)]
    assert names(viewer) == ["nuclei_01", "nuclei_01 mask", "nuclei_02", LARGEST_NAME]

    # Undock (the dock's close button), then close the viewer.
    viewer.window.remove_dock_widget(widget.native)
    qtbot.waitUntil(lambda: not widget._alive)
    drawn(qtbot)
    assert not widget["status"].value.startswith("Error:"), widget["status"].value
    assert notices == []
    viewer.close()
