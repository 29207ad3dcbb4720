"""Nothing escapes the dock: the user deletes, renames or replaces layers, closes things mid-run.

Each story ends without an exception (pytest-qt fails a test on any exception raised in a Qt slot)
and without an error notification or an "Error:" status; the boxes follow another image or go.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity, notification_manager

from datafiles import SPACING_ZYX, write_dataset
from napari_autoconfig._napari.boxes import box_world_bounds, is_box_layer

SCALE = np.array(SPACING_ZYX)


@pytest.fixture
def notices():
    """Every warning or error notification napari shows during the test."""
    seen = []

    def keep(notification):
        if notification.severity >= NotificationSeverity.WARNING:
            seen.append(notification.message)

    notification_manager.notification_ready.connect(keep)
    yield seen
    notification_manager.notification_ready.disconnect(keep)


@pytest.fixture
def viewer(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.zeros((30, 90, 80), np.uint8), name="volume", scale=SCALE)
    return viewer


@pytest.fixture
def widget(viewer, dataset, dock_widget):
    w = dock_widget(viewer)
    w["images"].value, w["masks"].value = dataset
    return w


def boxes(viewer):
    return [lyr for lyr in viewer.layers if is_box_layer(lyr)]


def settle(qtbot):
    qtbot.wait(100)  # deferred handlers (timers of 0-10 ms) run


def no_error(widget, notices):
    assert not widget["status"].value.startswith("Error:"), widget["status"].value
    assert notices == []


def test_deleting_the_image_under_the_boxes(viewer, widget, qtbot, run_and_wait, notices):
    assert run_and_wait(widget) == "done"
    qtbot.waitUntil(lambda: len(boxes(viewer)) == 2)
    other = viewer.add_image(np.zeros((10, 50, 50), np.uint8), name="other", scale=(3, 1, 1))
    viewer.layers.selection.active = viewer.layers["volume"]  # the boxes follow the selection
    settle(qtbot)
    assert widget.boxes.image is viewer.layers["volume"]
    # the delete button with the image and a box both selected (napari removes them in turn)
    viewer.layers.selection = {viewer.layers["volume"], boxes(viewer)[0]}
    viewer.layers.remove_selected()
    settle(qtbot)
    qtbot.waitUntil(lambda: len(boxes(viewer)) == 2 and widget.boxes.image is other)
    np.testing.assert_allclose(boxes(viewer)[0].scale, (3, 1, 1))  # they followed "other"
    no_error(widget, notices)

    viewer.layers.remove(other)  # no image left: the boxes go
    settle(qtbot)
    assert boxes(viewer) == [] and widget.boxes.image is None
    assert "Open an image" in widget["notes"].value
    no_error(widget, notices)


def test_renaming_and_replacing_the_image_under_the_boxes(
    viewer, widget, qtbot, run_and_wait, notices
):
    assert run_and_wait(widget) == "done"
    qtbot.waitUntil(lambda: len(boxes(viewer)) == 2)
    image = viewer.layers["volume"]
    image.name = "renamed"
    assert "Boxes on 'renamed'" in widget["notes"].value

    # New, smaller data: the boxes are placed again, centred on it.
    image.data = np.zeros((40, 60, 50), np.uint8)
    settle(qtbot)
    patch = next(lyr for lyr in boxes(viewer) if lyr.name == "patch")
    centre = box_world_bounds(patch).mean(axis=0)
    np.testing.assert_allclose(centre, (np.array([40, 60, 50]) - 1) / 2 * SCALE, atol=SCALE.max())
    # Moved: the boxes follow.
    image.translate = (100.0, 0.0, 0.0)
    settle(qtbot)
    assert box_world_bounds(patch).mean(axis=0)[0] == pytest.approx(centre[0] + 100, abs=2.0)

    # Replaced by another layer in its place (removed, then the new one inserted there).
    index = viewer.layers.index(image)
    viewer.layers.remove(image)
    new = type(image)(np.zeros((20, 40, 40), np.uint8), name="new", scale=SCALE)
    viewer.layers.insert(index, new)
    settle(qtbot)
    qtbot.waitUntil(lambda: widget.boxes.image is viewer.layers["new"])
    no_error(widget, notices)


def test_closing_the_dock_during_a_run(viewer, widget, qtbot, tmp_path, notices):
    many = write_dataset(tmp_path / "many", shapes=[(8, 64, 64)] * 60)
    widget["images"].value, widget["masks"].value = many
    widget["fingerprint"].native.click()
    assert widget.worker is not None
    viewer.window.remove_dock_widget(widget.native)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    settle(qtbot)
    assert widget.result is None and boxes(viewer) == []
    assert notices == []


def test_closing_the_viewer_during_a_run(make_napari_viewer, dock_widget, qtbot, tmp_path, notices):
    viewer = make_napari_viewer(show=True)
    widget = dock_widget(viewer)
    many = write_dataset(tmp_path / "many", shapes=[(8, 64, 64)] * 60)
    widget["images"].value, widget["masks"].value = many
    widget["fingerprint"].native.click()
    worker = widget.worker
    assert worker is not None
    viewer.close()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    assert not widget._alive
    assert notices == []


def test_changing_folders_during_a_run(viewer, widget, qtbot, dataset, tmp_path, notices):
    images, masks = dataset
    other = write_dataset(tmp_path / "other", shapes=[(6, 30, 30)] * 2)
    outcomes = []
    widget.run_finished.connect(outcomes.append)
    widget["fingerprint"].native.click()
    widget["images"].value, widget["masks"].value = other  # while it runs
    qtbot.waitUntil(lambda: bool(outcomes) and widget.worker is None, timeout=60_000)
    assert outcomes == ["done"]
    # The result is the folders the run read, and the table names their files.
    assert widget.result.num_images == 3 and widget.result_folders == (images, masks)
    view = widget["images_table"].native
    assert [view.item(r, 0).text() for r in range(view.rowCount())] == [
        f"case_{i:02d}.tif" for i in (1, 2, 3)
    ]
    no_error(widget, notices)


def test_an_unforeseen_error_on_a_worker_is_one_message(
    viewer, widget, qtbot, run_and_wait, notices, monkeypatch
):
    # The fingerprint's worker returns every failure it knows as a message; a bug it does not
    # know reaches the worker's errored handler, which says it once. superqt re-raises such an
    # error in the GUI thread too unless told not to: napari would then show a second pop-up
    # with the traceback, from inside a Qt slot.
    def broken(*_args, **_kwargs):
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr("napari_autoconfig._napari.widget.run_fingerprint", broken)
    assert run_and_wait(widget) == "error"
    settle(qtbot)
    assert len(notices) == 1 and "RuntimeError: the disk caught fire" in notices[0], notices
    assert "the disk caught fire" in widget["status"].value
