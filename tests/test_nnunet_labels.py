"""A plain folder's masks planned as nnU-Net classes the way its nnU-Net export numbers them:
0/255 masks (what Fiji saves) are two classes, instance masks foreground/background, each said in
one line; the class count enters nnU-Net's memory model, so the patch is the one of a 0/1 folder.

The volumes are large enough (48 x 192 x 192, nnU-Net's patch would shrink at 256 classes) for the
count to matter; one fingerprint per folder, computed once for the module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datafiles import write_imagej
from napari_autoconfig.cli import main
from napari_autoconfig.planners import fingerprint_nnunet, plan_nnunet

SHAPE_ZYX = (48, 192, 192)
CASES = ("cell_a", "cell_b")


def _foreground(shape) -> np.ndarray:
    inside = np.zeros(shape, bool)
    inside[8:40, 32:160, 24:168] = True
    return inside


def _masks(folder: Path, values) -> Path:
    """One mask per case: the same foreground, its voxels valued by ``values(inside)``."""
    folder.mkdir()
    for case in CASES:
        inside = _foreground(SHAPE_ZYX)
        mask = np.zeros(SHAPE_ZYX, np.uint16)
        mask[inside] = values(inside)
        write_imagej(folder / f"{case}.tif", mask)
    return folder


def _instances(inside: np.ndarray) -> np.ndarray:
    """30 objects numbered 1 ... 30: the foreground cut into slabs along x."""
    x = np.nonzero(inside)[2]
    return 1 + (x - x.min()) * 30 // (x.max() - x.min() + 1)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("plain")
    rng = np.random.default_rng(3)
    (root / "images").mkdir()
    for case in CASES:
        write_imagej(root / "images" / f"{case}.tif", rng.integers(1, 250, SHAPE_ZYX, np.uint8))
    return {
        "images": root / "images",
        "0/1": _masks(root / "binary", lambda inside: 1),
        "0/255": _masks(root / "fiji", lambda inside: 255),
        "instances": _masks(root / "instances", _instances),
    }


def _plan(folders, masks: str, capsys, *options) -> tuple[dict, str]:
    """``--planner nnunet --json`` on the images and one masks folder: plans, stderr."""
    argv = [str(folders["images"]), "--masks", str(folders[masks]), "--planner", "nnunet"]
    assert main([*argv, "--json", "--quiet", *options]) == 0
    out, err = capsys.readouterr()
    return json.loads(out)["nnunet"]["plans"], err


@pytest.fixture(scope="module")
def binary_plans(folders) -> dict:
    """nnU-Net's plans of the images with 0/1 masks (through the Python entry point)."""
    return plan_nnunet(fingerprint_nnunet(folders["images"], folders["0/1"])).as_json()


def test_a_0_255_folder_is_planned_for_two_classes_and_says_255_becomes_1(
    folders, binary_plans, capsys
):
    plans, err = _plan(folders, "0/255", capsys)

    assert plans == binary_plans  # 2 classes, as the export writes them: the same patch
    notes = [line for line in err.splitlines() if "nnU-Net classes" in line]
    assert len(notes) == 1 and "255 -> 1" in notes[0]


def test_instance_masks_are_foreground_background_and_the_line_says_how_to_change_it(
    folders, binary_plans, capsys
):
    plans, err = _plan(folders, "instances", capsys)

    assert plans == binary_plans
    notes = [line for line in err.splitlines() if "nnU-Net classes" in line]
    assert len(notes) == 1
    assert "30 mask values planned as foreground/background" in notes[0]
    assert "--nnunet-labels classes" in notes[0]


def test_nnunet_labels_classes_keeps_one_class_per_instance_value(folders, binary_plans, capsys):
    plans, err = _plan(folders, "instances", capsys, "--nnunet-labels", "classes")

    full, binary = plans["configurations"]["3d_fullres"], binary_plans["configurations"]
    # 31 outputs enter nnU-Net's memory model: a smaller patch than for two classes
    assert np.prod(full["patch_size"]) < np.prod(binary["3d_fullres"]["patch_size"])
    assert "30 -> 30" not in err and "foreground/background" not in err
