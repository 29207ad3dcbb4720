"""MONAI Auto3DSeg's SegResNet plan in the dock: the planner choice "all", its column in the Plan
tab beside biom3d's and nnU-Net's, and its ROI drawn as a fourth box, on real files, in a shown
viewer."""

from __future__ import annotations

import numpy as np

from gui_steps import open_row
from napari_autoconfig._napari.boxes import AUG_NAME, MONAI_NAME, PATCH_NAME, box_world_bounds
from napari_autoconfig.dataset import open_dataset
from napari_autoconfig.planners.monai import compute_datastats
from napari_autoconfig.planners.monai_segresnet import TEMPLATE_VERSION, plan_segresnet


def cells(widget, name: str) -> dict[str, list[str]]:
    """A small table's rows as {row title: [the other cells]} (hidden columns left out)."""
    view = widget[name].native
    shown = [c for c in range(1, view.columnCount()) if not view.isColumnHidden(c)]
    return {
        view.item(r, 0).text(): [view.item(r, c).text() for c in shown]
        for r in range(view.rowCount())
    }


def monai_box(viewer):
    return next((lyr for lyr in viewer.layers if lyr.name == MONAI_NAME), None)


def test_all_three_plans_side_by_side_and_segresnets_roi_as_a_fourth_box(
    make_napari_viewer, dock_widget, run_and_wait, dataset, qtbot
):
    viewer = make_napari_viewer(show=True)
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = dataset
    widget["planner"].value = "all"
    assert run_and_wait(widget) == "done"

    # the dock shows the core's plan, from MONAI's datastats of the same files
    expected = plan_segresnet(compute_datastats(open_dataset(*dataset)).summary)
    assert widget.monai == expected
    shown = cells(widget, "compare_table")
    assert widget["compare_table"].native.isVisible()
    assert len(shown["Batch"]) == 3  # biom3d | nnU-Net | MONAI SegResNet
    # three columns in the dock: sizes written 20x64x48
    assert shown["Patch (voxels)"][2] == "x".join(map(str, expected.roi_size_zyx))
    # one spacing in the dataset: SegResNet trains each image at its own, no resampling
    assert not expected.resample and shown["Trains at (µm)"][2] == "own spacing"
    assert shown["Poolings"][2] == f"{expected.levels - 1} (levels {expected.levels})"
    low, high = expected.intensity_bounds
    assert shown["Normalisation"][2] == f"clip {low:.4g}–{high:.4g}"
    assert shown["Epochs"] == ["", "", str(expected.train_num_epochs)]
    header = widget["compare_table"].native.horizontalHeaderItem(3)
    assert TEMPLATE_VERSION in header.toolTip()

    # the fourth box: the ROI's voxels on the opened image (no resampling), beside the three others
    image = open_row(widget, qtbot, "case_01.tif")
    qtbot.waitUntil(lambda: widget.boxes.image is image and len(widget.boxes.layers()) == 4)
    box = monai_box(viewer)
    assert box.visible and box.bounding_box.visible
    assert box.data.shape == expected.roi_size_zyx
    bounds = box_world_bounds(box)
    np.testing.assert_allclose(
        bounds[1] - bounds[0], np.multiply(expected.roi_size_zyx, image.scale)
    )
    assert "MONAI SegResNet ROI orange" in widget["notes"].value

    # MONAI's plan alone, from the datastats kept: its column and box; biom3d's kept, hidden
    widget["planner"].value = "monai"
    qtbot.waitUntil(lambda: len(widget.boxes.layers()) == 3)
    assert {lyr.name: lyr.visible for lyr in widget.boxes.layers()} == {
        MONAI_NAME: True,
        PATCH_NAME: False,
        AUG_NAME: False,
    }
    alone = cells(widget, "compare_table")
    assert alone["Epochs"] == [str(expected.train_num_epochs)]
    assert alone["Patch (voxels)"] == [" x ".join(map(str, expected.roi_size_zyx))]
    assert widget["notes"].value.startswith(f"Box on '{image.name}': MONAI SegResNet ROI orange.")

    # back to biom3d alone: MONAI's column and box go
    widget["planner"].value = "biom3d"
    qtbot.waitUntil(lambda: monai_box(viewer) is None)
    assert widget.monai is None
    assert not widget["compare_table"].native.isVisible()


def test_cancel_stops_monais_datastats_pass_too(dataset, qtbot):
    """The worker's body as the dock runs it: Cancel pressed once MONAI's pass has begun."""
    import threading

    from napari_autoconfig._napari.run import ProgressRelay, run_fingerprint

    stop, relay = threading.Event(), ProgressRelay()
    began: list[tuple[int, int]] = []
    relay.monai_step.connect(lambda done, total: (began.append((done, total)), stop.set()))

    outcome = run_fingerprint(*dataset, stop, relay, monai=True)

    assert began[0] == (0, 1)  # biom3d's pass was done, MONAI's had started
    assert outcome.fingerprint is None and outcome.monai_datastats is None
    assert outcome.cancelled.startswith("Cancelled after 0 of 3 cases")


def test_with_all_three_planners_the_worker_reads_every_file_once(dataset, monkeypatch, qtbot):
    """The worker's body as the dock runs it for "all": one pass reads every file for biom3d's
    fingerprint, nnU-Net's and MONAI's datastats, each as its own pass makes it."""
    import threading

    from napari_autoconfig._napari.run import ProgressRelay, run_fingerprint
    from napari_autoconfig.fingerprint import fingerprint_dataset
    from napari_autoconfig.planners import fingerprint_nnunet
    from test_one_pass import count_pixel_reads, every_file_once

    images, masks = dataset
    apart = (
        fingerprint_dataset(images, masks),
        fingerprint_nnunet(images, masks),
        compute_datastats(open_dataset(images, masks)),
    )
    reads = count_pixel_reads(monkeypatch)

    outcome = run_fingerprint(images, masks, threading.Event(), ProgressRelay(), True, True)

    assert reads == every_file_once(images, masks)
    assert outcome.error is None and outcome.nnunet_error is None and outcome.monai_error is None
    found = (outcome.fingerprint, outcome.nnunet_fingerprint, outcome.monai_datastats)
    assert found[1:] == apart[1:]
    assert [r.samples.tolist() for r in found[0].records] == [
        r.samples.tolist() for r in apart[0].records
    ]
