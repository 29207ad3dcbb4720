"""The command line's nnU-Net planner: ``--planner``, ``--json``'s ``nnunet`` entry, ``--save
plans.json``, on a dataset whose nnU-Net plans were recorded from nnunetv2 itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nnunet_reference as reference
from napari_autoconfig.cli import main

RECORDED = json.loads((Path(__file__).parent / "nnunet_recorded.json").read_text())
RECORD = next(r for r in RECORDED["datasets"] if r["spec"]["name"] == "TwelveUint8")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return reference.write_dataset(RECORD["spec"], tmp_path_factory.mktemp("raw"))


def test_nnunet_alone_prints_its_plans_with_nnunets_key_names(dataset, capsys):
    assert main([str(dataset), "--planner", "nnunet", "--json", "--quiet"]) == 0

    record = json.loads(capsys.readouterr().out)
    assert record == {
        "nnunet": {
            "planner": "default",
            "experiment_planner": "ExperimentPlanner",
            "plans_name": "nnUNetPlans",
            "gpu_memory_target_gb": 8,
            "notes": [],
            "dataset_fingerprint": RECORD["fingerprint"],
            "plans": RECORD["plans"],
        }
    }


def test_both_planners_keep_biom3ds_record_and_save_nnunets_plans_file(dataset, tmp_path, capsys):
    assert main([str(dataset), "--json", "--quiet"]) == 0
    biom3d_only = json.loads(capsys.readouterr().out)
    target = tmp_path / "nnUNetPlans.json"

    assert (
        main([str(dataset), "--planner", "both", "--json", "--quiet", "--save", str(target)]) == 0
    )

    out, err = capsys.readouterr()
    record = json.loads(out)
    assert record.pop("nnunet")["plans"] == RECORD["plans"]
    assert record == biom3d_only  # biom3d's numbers do not move
    assert json.loads(target.read_text()) == RECORD["plans"]
    assert f"Saved nnU-Net's plans to {target}" in err


def test_the_text_summary_gives_the_patch_in_the_images_axes(dataset, capsys):
    assert main([str(dataset), "--planner", "both", "--quiet"]) == 0

    out = capsys.readouterr().out
    assert "BATCH_SIZE = " in out  # biom3d's config is still printed
    full = RECORD["plans"]["configurations"]["3d_fullres"]["patch_size"]  # (y, z, x) here
    assert f"3d_fullres: patch {full[1]} x {full[0]} x {full[2]} (z, y, x), batch 2" in out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--save", "{tmp}/plans.json"], "that is nnU-Net's plans file. Add --planner nnunet"),
        (["--planner", "nnunet", "--save", "{tmp}/c.py"], "save them as FILE.json"),
        (["--planner", "nnunet", "--yaml"], "--planner nnunet makes nnU-Net's plans only"),
    ],
)
def test_options_that_do_not_go_together_are_refused_before_any_file_is_read(
    dataset, tmp_path, capsys, arguments, message
):
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in arguments]

    assert main([str(dataset), "--quiet", *arguments]) == 2

    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_nnunet_needs_the_images_not_a_median(capsys):
    assert main(["--median", "40", "40", "40", "--planner", "nnunet"]) == 2

    assert "give IMAGES instead of --median" in capsys.readouterr().err


def test_an_existing_plans_file_is_kept_unless_forced(dataset, tmp_path, capsys):
    target = tmp_path / "nnUNetPlans.json"
    target.write_text("{}")
    arguments = [str(dataset), "--planner", "nnunet", "--quiet", "--save", str(target)]

    assert main(arguments) == 2
    assert target.read_text() == "{}" and "left untouched" in capsys.readouterr().err

    assert main([*arguments, "--force"]) == 0
    assert json.loads(target.read_text()) == RECORD["plans"]
    assert (tmp_path / "nnUNetPlans.json.bak").read_text() == "{}"


def test_images_without_masks_plan_without_intensities(dataset, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for path in sorted((dataset / "imagesTr").iterdir())[:3]:
        (images / path.name.replace("_0000", "")).write_bytes(path.read_bytes())

    assert main([str(images), "--planner", "nnunet", "--quiet"]) == 0
    assert "no labels: nnU-Net's foreground intensities need them" in capsys.readouterr().out

    assert main([str(images), "--planner", "nnunet", "--quiet", "--json"]) == 0
    plans = json.loads(capsys.readouterr().out)["nnunet"]["plans"]
    assert plans["foreground_intensity_properties_per_channel"] == {}
    assert plans["configurations"]["3d_fullres"]["normalization_schemes"] == ["ZScoreNormalization"]


def test_a_case_without_a_positive_spacing_is_named():
    from dataclasses import replace

    from napari_autoconfig.errors import DatasetError
    from napari_autoconfig.planners import NnUNetFingerprint, plan_nnunet

    dataset_json = {"channel_names": {"0": "EM"}, "labels": {"background": 0, "a": 1}}
    fingerprint = NnUNetFingerprint.from_json(
        RECORD["fingerprint"], {**dataset_json, "numTraining": 12}
    )
    spacings = list(fingerprint.spacings)
    spacings[4] = (0.0, 1.0, 1.0)
    keys = tuple(f"case_{i:03d}" for i in range(12))

    with pytest.raises(DatasetError, match=r"'case_004' has the spacing .*positive spacings"):
        plan_nnunet(replace(fingerprint, spacings=tuple(spacings), keys=keys))


def test_a_refused_update_writes_no_plans_file_either(dataset, tmp_path, capsys, monkeypatch):
    # Both planners, nnU-Net's plans saved and biom3d's config updated in one run: the config is
    # edited by someone else before the files are written, so the update is refused, and the
    # plans file that came with it must not have been written (all or nothing, as for --save).
    from napari_autoconfig import cli

    config = tmp_path / "config.py"
    config.write_text("PATCH_SIZE = [1, 2, 3]\n")
    plans = tmp_path / "nnUNetPlans.json"
    prepare = cli.prepare_update

    def prepare_then_edit(path, values):
        prepared = prepare(path, values)
        config.write_text("PATCH_SIZE = [1, 2, 3]\nNUM_WORKERS = 4\n")
        return prepared

    monkeypatch.setattr(cli, "prepare_update", prepare_then_edit)
    argv = [str(dataset), "--planner", "both", "--quiet", "--save", str(plans)]
    assert main([*argv, "--update-config", str(config)]) == 2
    assert "changed on disk" in capsys.readouterr().err
    assert not plans.exists()


def test_a_forced_plans_file_never_overwrites_an_older_backup(dataset, tmp_path, capsys):
    target = tmp_path / "nnUNetPlans.json"
    target.write_text("{}")
    (tmp_path / "nnUNetPlans.json.bak").write_text('{"mine": 1}')
    argv = [str(dataset), "--planner", "nnunet", "--quiet", "--save", str(target), "--force"]
    assert main(argv) == 0
    assert "nnUNetPlans.json.bak.1" in capsys.readouterr().err
    assert (tmp_path / "nnUNetPlans.json.bak").read_text() == '{"mine": 1}'
    assert (tmp_path / "nnUNetPlans.json.bak.1").read_text() == "{}"
    assert json.loads(target.read_text()) == RECORD["plans"]
