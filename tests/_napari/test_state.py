"""The planning story without a viewer: folders -> fingerprint -> plan -> change a limit -> re-plan.

The dock widget's state lives in :class:`PlanningState`, which imports no Qt: a script (or a
test) drives it as the widget does and hears what the panels hear.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import tifffile

from datafiles import write_dataset, write_imagej
from napari_autoconfig._napari.state import PlanInputs, PlanningState
from napari_autoconfig.dataset import open_dataset
from napari_autoconfig.fingerprint import fingerprint_dataset
from napari_autoconfig.planners import fingerprint_nnunet, plan_nnunet
from napari_autoconfig.planners.biom3d import Limits
from napari_autoconfig.planners.monai import compute_datastats
from napari_autoconfig.planners.monai_segresnet import plan_segresnet
from napari_autoconfig.planning import plan_training


def test_the_planning_story_runs_and_signals_without_a_viewer(tmp_path):
    folders = write_dataset(tmp_path / "data")
    state = PlanningState()
    heard: list[object] = []
    state.planned.connect(heard.append)
    results: list[object] = []
    state.result_changed.connect(results.append)

    assert state.replan() is None and heard == []  # nothing fingerprinted yet: nothing to plan

    fp = fingerprint_dataset(*folders)
    first = state.set_result(fp, folders)
    assert results == [fp] and heard == [first]
    assert first.biom3d == plan_training(fp).biom3d
    assert state.snippet.startswith("BATCH_SIZE = ")

    # a smaller patch budget: planned again from the kept fingerprint
    small = PlanInputs(limits=lambda: Limits(max_dims=(32, 32, 32)))
    second = state.set_inputs(small)
    assert heard == [first, second]
    assert second.biom3d == plan_training(fp, Limits(max_dims=(32, 32, 32))).biom3d
    assert second.biom3d.patch != first.biom3d.patch

    # nnU-Net asked for: its reading pass is needed first, then both plans come from one call
    state.set_inputs(PlanInputs(planner="both"))
    assert state.nnunet_missing and state.nnunet is None and state.plan is not None
    nn_fp = fingerprint_nnunet(*folders)
    state.set_result(fp, folders, nn_fp)
    assert state.nnunet == plan_nnunet(nn_fp) and not state.nnunet_missing

    # limits no plan can come from: no plan, nothing stale to export, the reason kept
    refused = state.set_inputs(PlanInputs(limits=lambda: Limits(max_dims=(0, 0, 0))))
    assert refused is None and heard[-1] is None
    assert state.plan is None and state.snippet == "" and "max_dims" in state.refusal


def test_monais_plan_needs_its_datastats_and_its_failure_leaves_biom3ds_plan(tmp_path):
    folders = write_dataset(tmp_path / "data")
    fp = fingerprint_dataset(*folders)
    state = PlanningState(PlanInputs(planner="monai"))

    state.set_result(fp, folders)  # a run made before MONAI's planner was chosen
    assert state.monai_missing and state.monai is None and state.plan is not None
    assert "MONAI's SegResNet plan needs MONAI's datastats" in state.missing_passes

    datastats = compute_datastats(open_dataset(*folders))
    state.set_result(fp, folders, monai_datastats=datastats)
    assert state.monai == plan_segresnet(datastats.summary) and not state.missing_passes
    # the GPU field: SegResNet's segmenter scales its batch to that card
    state.set_inputs(PlanInputs(planner="monai", gpu_gib=80.0))
    assert state.monai == plan_segresnet(datastats.summary, gpu_memory_gb=80.0)

    # images without a voxel above 0: MONAI skips every case, its plan cannot be made; biom3d's
    # plan stands and the state says why MONAI's is missing
    dark = write_dataset(tmp_path / "dark")
    for image in sorted(dark[0].iterdir()):
        write_imagej(image, np.zeros(tifffile.imread(image).shape, np.uint16))
    dark_fp = fingerprint_dataset(*dark)
    state.set_result(dark_fp, dark, monai_datastats=compute_datastats(open_dataset(*dark)))
    assert state.monai is None and state.plan is not None
    assert state.monai_error.startswith("MONAI's SegResNet plan failed: MONAI's datastats hold")


def test_the_state_imports_no_qt():
    code = (
        "import sys, napari_autoconfig._napari.state\n"
        "bad = [m for m in ('qtpy', 'PyQt6', 'napari', 'magicgui', 'vispy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
