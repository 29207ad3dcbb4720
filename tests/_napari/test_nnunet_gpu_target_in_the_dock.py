"""nnU-Net's column of the dock follows the GPU the user gave: its GPU line names that target."""

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
    memory = {title: nnunet for title, _, nnunet in rows}["GPU memory"]
    assert training.nnunet.gpu_memory_target_gb == 12
    assert memory == f"{training.nnunet.fullres.gpu_memory_gb:.1f} of 12 GB"
