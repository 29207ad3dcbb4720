"""The objects panel on masks with known cuboids: counted on a worker, the largest outlined."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from napari.utils.notifications import notification_manager

from datafiles import write_cuboid_pair
from napari_autoconfig._napari.objects_panel import LARGEST_NAME, ObjectsPanel
from napari_autoconfig._napari.preview import is_plugin_layer
from napari_autoconfig.fingerprint import fingerprint_dataset
from napari_autoconfig.planners.biom3d import Limits, make_plan

SHAPE = (16, 40, 40)
SPACING = (2.0, 0.5, 0.5)


@pytest.fixture
def cuboids(tmp_path):
    """Two masks, three cuboids; the largest box (12 x 4 x 6 voxels) is in a.tif at (2, 5, 7)."""
    write_cuboid_pair(tmp_path, "a", SHAPE, [((2, 5, 7), (14, 9, 13)), ((0, 30, 30), (2, 34, 34))])
    write_cuboid_pair(tmp_path, "b", SHAPE, [((2, 10, 10), (6, 30, 12))])
    return fingerprint_dataset(tmp_path / "images", tmp_path / "masks")


def _measure(qtbot, panel):
    qtbot.waitUntil(lambda: panel.worker is None)  # a previous run has wound up
    with qtbot.waitSignal(panel.finished, timeout=30_000) as blocker:
        panel["objects"].native.click()
    return blocker.args[0]


def test_objects_are_counted_and_the_patch_is_judged(qtbot, make_napari_viewer, cuboids):
    viewer = make_napari_viewer(show=True)
    panel = ObjectsPanel(viewer)
    assert not panel["objects"].enabled  # nothing to measure before a fingerprint
    panel.set_fingerprint(cuboids)
    panel.set_plan(make_plan(cuboids.median_size, Limits(max_dims=(16, 16, 16), max_pool=2)))
    assert panel.plan.patch[0] < 12  # this patch is shorter in z than the largest cuboid

    assert _measure(qtbot, panel) == "done"
    assert panel.summary.count == 3
    text = panel["objects_result"].value
    assert "Objects: 3 connected foreground components in 2 mask(s)" in text
    assert "largest: 12 x 20 x 6 voxels" in text
    assert "largest: 24 x 10 x 3 micron" in text
    assert "smaller than the largest objects along z" in text
    assert panel["draw_largest"].enabled

    # a plan with a larger patch: the text says the objects fit
    panel.set_plan(make_plan(cuboids.median_size))
    assert "fit whole in the patch" in panel["objects_result"].value


def test_the_largest_object_is_outlined_on_its_image(qtbot, make_napari_viewer, cuboids):
    viewer = make_napari_viewer(show=True)
    panel = ObjectsPanel(viewer)
    panel.set_fingerprint(cuboids)
    _measure(qtbot, panel)
    assert len(viewer.layers) == 0

    panel["draw_largest"].native.click()  # its image is not open: the panel opens it, off the
    qtbot.waitUntil(lambda: LARGEST_NAME in viewer.layers)  # GUI thread, and outlines it then
    image = next(lyr for lyr in viewer.layers if not is_plugin_layer(lyr))
    assert image.source.path.endswith("a.tif")
    np.testing.assert_allclose(image.scale, SPACING)  # the file's spacing (ImageJ)
    outline = viewer.layers[LARGEST_NAME]
    assert outline.data.shape == (12, 4, 6) and outline.bounding_box.visible
    np.testing.assert_allclose(outline.scale, image.scale)
    np.testing.assert_allclose(image.translate, (0, 0, 0))  # the image stays where it was
    # the outline's first voxel sits on the object's first voxel, (2, 5, 7)
    np.testing.assert_allclose(outline.translate, np.multiply((2, 5, 7), SPACING))
    assert viewer.dims.point[0] == pytest.approx(14.0)  # slice 7, the middle of 2..13 (2 µm)

    # with the image already open and moved, the outline follows its translate; drawn once
    image.translate = (10.0, -4.0, 2.0)
    panel.set_image(image)
    panel["draw_largest"].native.click()  # the image is open: outlined at once
    outlines = [lyr for lyr in viewer.layers if lyr.name.startswith(LARGEST_NAME)]
    assert len(outlines) == 1 and len(viewer.layers) == 2
    np.testing.assert_allclose(image.translate, (10.0, -4.0, 2.0))
    np.testing.assert_allclose(
        outlines[0].translate, np.add((10.0, -4.0, 2.0), np.multiply((2, 5, 7), SPACING))
    )


def test_without_masks_there_is_nothing_to_measure(make_napari_viewer, tmp_path):
    write_cuboid_pair(tmp_path, "a", SHAPE, [((0, 0, 0), (2, 2, 2))])
    viewer = make_napari_viewer(show=True)
    panel = ObjectsPanel(viewer)
    panel.set_fingerprint(fingerprint_dataset(tmp_path / "images"))
    assert not panel["objects"].enabled
    assert "masks folder" in panel["objects_status"].value


def test_a_new_fingerprint_during_a_run_drops_the_old_result(qtbot, make_napari_viewer, cuboids):
    viewer = make_napari_viewer(show=True)
    panel = ObjectsPanel(viewer)
    panel.set_fingerprint(cuboids)
    with qtbot.waitSignal(panel.finished, timeout=30_000) as blocker:
        panel["objects"].native.click()
        panel.set_fingerprint(replace(cuboids))  # the folders fingerprinted again: a new result
    assert blocker.args == ["cancelled"]
    assert panel.summary is None and not panel["draw_largest"].enabled
    assert _measure(qtbot, panel) == "done" and panel.summary.count == 3


def test_an_image_gone_bad_since_the_fingerprint_is_one_message(
    qtbot, make_napari_viewer, cuboids, tmp_path
):
    viewer = make_napari_viewer(show=True)
    panel = ObjectsPanel(viewer)
    panel.set_fingerprint(cuboids)
    _measure(qtbot, panel)
    (tmp_path / "images" / "a.tif").write_bytes(b"not a tiff")  # overwritten meanwhile
    heard = []
    notification_manager.notification_ready.connect(heard.append)
    try:
        panel["draw_largest"].native.click()  # read on a worker: the error comes back as words
        qtbot.waitUntil(lambda: panel["objects_status"].value.startswith("Could not open a.tif"))
    finally:
        notification_manager.notification_ready.disconnect(heard.append)
    assert "not a readable tiff" in panel["objects_status"].value  # what is wrong, in words
    assert len(heard) == 1 and "could not open a.tif" in heard[0].message
    assert LARGEST_NAME not in viewer.layers and len(viewer.layers) == 0
