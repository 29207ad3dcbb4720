"""nnU-Net's column of the dock follows the planner and the GPU the user chose: its plans are the
chosen preset's, its GPU line names the target they were made for."""

from __future__ import annotations

from datafiles import write_dataset
from napari_autoconfig._napari.results_panel import comparison_rows
from napari_autoconfig.dataset import open_dataset
from napari_autoconfig.fingerprint import fingerprint_dataset
from napari_autoconfig.planners import fingerprint_nnunet
from napari_autoconfig.planning import plan_training


def test_a_12_gib_gpu_is_nnunets_target_in_the_comparison(tmp_path):
    images, masks = write_dataset(tmp_path / "both")
    fingerprint = fingerprint_dataset(open_dataset(images, masks))

    training = plan_training(
        fingerprint,
        gpu_memory_gib=12,
        planners=("biom3d", "nnunet"),
        nnunet_fingerprint=fingerprint_nnunet(images, masks),
    )

    rows, _ = comparison_rows(training, fingerprint)
    memory = {title: nnunet for title, _, nnunet, _ in rows}["GPU memory"]
    assert training.nnunet.gpu_memory_target_gb == 12
    assert memory == f"{training.nnunet.fullres.gpu_memory_gb:.1f} of 12 GB"


def test_the_docks_resenc_l_choice_draws_its_plans_and_is_remembered(
    make_napari_viewer, dock_widget, run_and_wait, tmp_path, qtbot
):
    from napari_autoconfig._napari.settings import load_settings
    from napari_autoconfig.planners import plan_nnunet

    images, masks = write_dataset(tmp_path / "both")
    viewer = make_napari_viewer(show=True)
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = images, masks
    choice = widget["nnunet_planner"].native
    assert choice.isHidden()  # biom3d alone: no nnU-Net planner to choose
    widget["planner"].value = "both"
    assert not choice.isHidden()
    assert run_and_wait(widget) == "done"
    default = widget.training.nnunet

    widget["nnunet_planner"].value = "ResEncL"  # re-plans from the kept fingerprint

    resenc = plan_nnunet(fingerprint_nnunet(images, masks), preset="ResEncL")
    qtbot.waitUntil(lambda: widget.training.nnunet == resenc)
    assert default.plans_name == "nnUNetPlans" and default != resenc
    rows, _ = comparison_rows(widget.training, widget.state.result)
    shown = {title: nnunet for title, _, nnunet, _ in rows}
    assert shown["GPU memory"] == f"{resenc.fullres.gpu_memory_gb:.1f} of 24 GB"
    assert load_settings()["nnunet_planner"] == "ResEncL"  # the next launch starts from it
