"""nnU-Net's plan beside biom3d's in the dock: the planner choice, the two columns, the third box
and the resampling flag, on real files, in a shown viewer.

The dataset: the shared three volumes at 2 x 0.5 x 0.5 µm and a fourth acquired with a 6 µm z
step. nnU-Net's reading pass costs about a second on it (its 1e8 intensity draws are counted,
not kept).
"""

from __future__ import annotations

import numpy as np
import pytest

from datafiles import write_case, write_dataset
from gui_steps import open_row
from napari_autoconfig._napari.boxes import AUG_NAME, NNUNET_NAME, PATCH_NAME, box_world_bounds
from napari_autoconfig.planners import fingerprint_nnunet, plan_nnunet


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The dataset, written once for the module (the tests only read it)."""
    images, masks = write_dataset(tmp_path_factory.mktemp("both"))
    write_case(images, masks, "case_04.tif", (8, 64, 60), spacing_zyx=(6.0, 0.5, 0.5))
    return images, masks


@pytest.fixture(scope="module")
def core_plans(folders):
    """nnU-Net's plans as the core makes them from the folders, the dock's oracle: made once for
    the module (its fingerprint draws 1e8 samples)."""
    return plan_nnunet(fingerprint_nnunet(*folders))


def cells(widget, name: str) -> dict[str, list[str]]:
    """A small table's rows as {row title: [the other cells]} (hidden columns left out)."""
    view = widget[name].native
    shown = [c for c in range(1, view.columnCount()) if not view.isColumnHidden(c)]
    return {
        view.item(r, 0).text(): [view.item(r, c).text() for c in shown]
        for r in range(view.rowCount())
    }


def nnunet_box(viewer):
    return next((lyr for lyr in viewer.layers if lyr.name == NNUNET_NAME), None)


def test_both_plans_side_by_side_the_third_box_and_the_resample_flag(
    make_napari_viewer, dock_widget, run_and_wait, folders, core_plans, qtbot
):
    viewer = make_napari_viewer(show=True)
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = folders
    widget["planner"].value = "both"
    assert run_and_wait(widget) == "done"

    plans = core_plans
    full = plans.fullres
    plan = widget.plan
    assert widget.training.nnunet == plans  # the dock shows the core's plans

    shown = cells(widget, "compare_table")
    assert widget["compare_table"].native.isVisible()
    assert not widget["plan_table"].native.isVisible()
    xs = " x ".join
    assert shown["Patch (voxels)"] == [xs(map(str, plan.patch)), xs(map(str, full.patch_size_zyx))]
    assert shown["Patch (µm)"][1] == xs(f"{v:.4g}" for v in full.patch_physical_zyx)
    assert shown["Trains at (µm)"] == [
        "2 x 0.5 x 0.5",
        xs(f"{v:g}" for v in plans.target_spacing_zyx),
    ]
    assert shown["Poolings"] == [", ".join(map(str, plan.pool)), ", ".join(map(str, full.pool_zyx))]
    assert shown["Batch"] == [str(plan.batch), str(full.batch_size)]
    assert shown["Normalisation"][1] == "z-score"
    assert shown["GPU memory"][1] == f"{full.gpu_memory_gb:.1f} of 8 GB"

    # the image at 6 µm along z: nnU-Net would upsample it 3x there; the others are at its target
    flags = {row.image: row.flags for row in widget.images_panel.rows}
    assert "nnU-Net upsamples it 3x along z (spacing 6 vs its target 2)" in flags["case_04.tif"]
    assert not any("nnU-Net" in f for f in flags["case_01.tif"])

    # the third box: nnU-Net's patch at its target spacing, in world units, on the image at 6 µm
    # along z (a third of the patch's z voxels there: the same physical size)
    image = open_row(widget, qtbot, "case_04.tif")
    qtbot.waitUntil(lambda: widget.boxes.image is image and nnunet_box(viewer) is not None)
    box = nnunet_box(viewer)
    assert tuple(image.scale) == (6.0, 0.5, 0.5)
    bounds = box_world_bounds(box)
    np.testing.assert_allclose(bounds[1] - bounds[0], full.patch_physical_zyx)
    assert box.data.shape[0] == full.patch_size_zyx[0] // 3
    assert "nnU-Net 3d_fullres patch green" in widget["notes"].value

    # back to biom3d alone: nnU-Net's column, box and flags go; the choice is remembered
    widget["planner"].value = "biom3d"
    qtbot.waitUntil(lambda: nnunet_box(viewer) is None)
    assert widget["plan_table"].native.isVisible()
    assert not widget["compare_table"].native.isVisible()
    flags = {row.image: row.flags for row in widget.images_panel.rows}
    assert not any("nnU-Net" in f for f in flags["case_04.tif"])
    from napari_autoconfig._napari.settings import load_settings

    assert load_settings()["planner"] == "biom3d"


def test_choosing_nnunet_after_a_run_asks_for_its_reading_pass(
    make_napari_viewer, dock_widget, run_and_wait, folders, core_plans, qtbot
):
    viewer = make_napari_viewer(show=True)
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = folders
    assert run_and_wait(widget) == "done"

    widget["planner"].value = "nnunet"

    assert widget.training.nnunet is None and widget.plan is not None
    assert "press Fingerprint dataset" in widget["status"].value
    assert run_and_wait(widget) == "done"
    shown = cells(widget, "compare_table")
    assert widget.training.nnunet == core_plans
    assert len(shown["Batch"]) == 1  # nnU-Net's column alone

    # on an opened image: nnU-Net's box shown, biom3d's two kept but hidden
    image = open_row(widget, qtbot, "case_01.tif")
    qtbot.waitUntil(lambda: widget.boxes.image is image and len(widget.boxes.layers()) == 3)
    shown_boxes = {lyr.name: lyr.visible for lyr in widget.boxes.layers()}
    assert shown_boxes == {NNUNET_NAME: True, PATCH_NAME: False, AUG_NAME: False}
    assert widget["notes"].value.startswith("Box on 'case_01")


def test_cancel_stops_the_one_pass_that_reads_for_both_planners(folders, qtbot):
    """The worker's body as the dock runs it: with nnU-Net's planner one pass reads every file
    for both fingerprints (:func:`napari_autoconfig.one_pass.fingerprint_all`); Cancel pressed
    once it has begun stops it, and no planner's own pass follows."""
    import threading

    from napari_autoconfig._napari.run import ProgressRelay, run_fingerprint

    stop, relay = threading.Event(), ProgressRelay()
    began: list[tuple[int, int]] = []
    relay.step.connect(lambda done, total, name: (began.append((done, total)), stop.set()))
    nnunet_pass: list[int] = []
    relay.nnunet_step.connect(lambda done, total: nnunet_pass.append(done))

    outcome = run_fingerprint(*folders, stop, relay, nnunet=True)

    assert began[0][1] == 4 and nnunet_pass == []  # the one pass had started, nothing after it
    assert outcome.fingerprint is None and outcome.nnunet_fingerprint is None
    assert outcome.cancelled.startswith("Fingerprinting cancelled after")
