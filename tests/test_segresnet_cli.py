"""The command line's MONAI SegResNet plan: ``--planner monai`` and ``all`` on a small written
dataset, in the text summary and in ``--json``'s ``monai.segresnet``, as the core plans it from
MONAI's datastats of the same files (the core's rules are checked against the template's own code
in tests/test_monai_segresnet.py)."""

from __future__ import annotations

import json

import pytest

import monai_reference
from datafiles import write_dataset
from napari_autoconfig.cli import main
from napari_autoconfig.dataset import open_datalist, open_dataset
from napari_autoconfig.planners.monai import compute_datastats
from napari_autoconfig.planners.monai_segresnet import TEMPLATE_VERSION, plan_segresnet


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Three ImageJ volumes at z 2 µm, y and x 0.5 µm, each mask a cuboid of label 1."""
    return write_dataset(tmp_path_factory.mktemp("monai"))


@pytest.fixture(scope="module")
def summary(folders):
    """MONAI's datastats summary of the folders, as the core computes it (the oracle's input)."""
    return compute_datastats(open_dataset(*folders)).summary


def argv(folders, *more: str) -> list[str]:
    images, masks = folders
    return [str(images), "--masks", str(masks), "--quiet", *more]


def test_monai_alone_gives_segresnets_plan_under_monai_in_json(folders, summary, capsys):
    assert main(argv(folders, "--planner", "monai", "--json", "--gpu-memory", "80")) == 0

    record = json.loads(capsys.readouterr().out)
    assert set(record) == {"monai"}  # no biom3d plan asked for: its record is left out
    monai = record["monai"]
    assert monai["stats_summary"] == json.loads(json.dumps(summary))
    segresnet = monai["segresnet"]
    assert segresnet == plan_segresnet(summary, gpu_memory_gb=80).to_json()
    assert segresnet["template"] == TEMPLATE_VERSION
    # the files are at z 2, y and x 0.5 µm: MONAI's (x, y, z) and the numpy (z, y, x) reversed
    assert segresnet["resample_resolution"] == [0.5, 0.5, 2.0]
    training = segresnet["training"]
    assert training["roi_size_zyx"] == training["roi_size"][::-1]
    # the segmenter scales to the 80 GB card: 5 crops (or 5 images) per step instead of 1
    assert training["gpu_memory_gb"] == 80
    assert training["batch_size"] * training["num_crops_per_image"] == 5


def test_all_three_plans_in_one_summary_and_biom3ds_record_unchanged(folders, summary, capsys):
    assert main(argv(folders, "--json")) == 0
    biom3d_only = json.loads(capsys.readouterr().out)

    assert main(argv(folders, "--planner", "all", "--json")) == 0
    record = json.loads(capsys.readouterr().out)
    assert record.pop("monai")["segresnet"] == plan_segresnet(summary).to_json()
    assert "plans" in record.pop("nnunet")
    assert record == biom3d_only  # biom3d's numbers do not move

    assert main(argv(folders, "--planner", "all")) == 0
    out = capsys.readouterr().out
    plan = plan_segresnet(summary)
    assert "BATCH_SIZE" in out and "# nnU-Net v2 plans" in out  # biom3d's config, nnU-Net's plan
    assert f"# MONAI SegResNet plan ({TEMPLATE_VERSION}) from the datastats of 3 cases" in out
    assert "# resample spacing (z, y, x) 2 x 0.5 x 0.5 (not resampled" in out
    z, y, x = plan.roi_size_zyx
    assert f"# roi_size (z, y, x) {z} x {y} x {x}, {plan.levels} levels" in out
    low, high = plan.intensity_bounds
    assert f"# intensity bounds {low:.6g} to {high:.6g} (normalize range, modality ct)" in out
    assert f"# epochs {plan.train_num_epochs} (num_epochs 1250 for 3 cases)" in out


def test_datastats_files_and_segresnets_plan_come_from_one_pass(
    folders, summary, tmp_path, monkeypatch, capsys
):
    import napari_autoconfig.monai_cli as monai_cli

    passes = []
    compute = monai_cli.compute
    monkeypatch.setattr(monai_cli, "compute", lambda *a: passes.append(1) or compute(*a))
    target = tmp_path / "datastats.yaml"

    assert main(argv(folders, "--planner", "monai", "--json", "--datastats", str(target))) == 0

    monai = json.loads(capsys.readouterr().out)["monai"]
    assert passes == [1]
    assert monai["datastats_files"] == [str(target), str(tmp_path / "datastats_by_case.yaml")]
    assert target.is_file() and monai["segresnet"] == plan_segresnet(summary).to_json()


def test_a_monai_datalist_gives_segresnets_plan_beside_its_datastats(tmp_path, capsys):
    spec = next(s for s in monai_reference.DATASETS if s["name"] == "uint16_labels")
    datalist = monai_reference.write_dataset(spec, tmp_path) / "datalist.json"
    target = tmp_path / "datastats.yaml"
    run = [str(datalist), "--datastats", str(target), "--quiet", "--planner"]

    assert main([*run, "monai", "--json"]) == 0

    segresnet = json.loads(capsys.readouterr().out)["monai"]["segresnet"]
    summary = compute_datastats(open_datalist(datalist)).summary
    assert segresnet == plan_segresnet(summary).to_json()
    assert segresnet["output_classes"] == 3  # labels 0, 1 and 3: one class per value, as MONAI
    assert main([*run, "all"]) == 2
    assert "biom3d's and nnU-Net's plans read the image folders" in capsys.readouterr().err


def test_monai_options_refused_before_any_file_is_read(folders, capsys):
    assert main(["--median", "22", "66", "62", "--planner", "monai"]) == 2
    assert "MONAI's SegResNet plans from the images' datastats" in capsys.readouterr().err
    assert main(argv(folders, "--monai-modality", "mri")) == 2
    assert "--monai-modality mri is for MONAI's SegResNet plan" in capsys.readouterr().err
    assert main(argv(folders, "--planner", "monai", "--yaml")) == 2
    assert "--planner monai makes no biom3d plan" in capsys.readouterr().err
