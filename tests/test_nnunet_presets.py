"""nnU-Net's residual-encoder presets (ResEnc M / L / XL) and other GPU targets, checked against
nnunetv2 2.8.1's own plans.

``nnunet_presets_recorded.json`` holds, per dataset (the generated datasets of
``benchmarks/nnunet_reference.py`` by nnU-Net's own fingerprints, and three large ones given by
a fingerprint), what ``nnUNetv2_plan_experiment -pl nnUNetPlannerResEncM/L/XL`` wrote, ResEnc M
at ``-gpu_memory_target 12`` and the default planner at 24, with the feature-map count of each
network nnU-Net built (``benchmarks/nnunet_presets_reference.py``). The tests plan the same
fingerprints and compare the files: every key, its order, every number and its type.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import nnunet_reference as reference
from napari_autoconfig.cli import main
from napari_autoconfig.nnunet_cli import NNUNET_PLANNERS
from napari_autoconfig.planners import NnUNetFingerprint, plan_nnunet, write_plans
from napari_autoconfig.planners.nnunet import (
    PRESETS,
    feature_map_size,
    features_per_stage,
    plan_configuration,
    pool_and_conv_props,
    preset_advice,
)

RECORDED = json.loads((Path(__file__).parent / "nnunet_presets_recorded.json").read_text())
DATASETS = {d["name"]: d for d in RECORDED["datasets"]}
PRESET_OF_PLANNER = {preset.planner: name for name, preset in PRESETS.items()}
RUNS = [
    pytest.param(name, i, id=f"{name}-{run['planner']}-{run['gpu_memory_target'] or 'own'}GB")
    for name, dataset in DATASETS.items()
    for i, run in enumerate(dataset["runs"])
]


def _fingerprint(name: str) -> NnUNetFingerprint:
    dataset = DATASETS[name]
    # the reader is the fingerprint's choice, from the files (tested with the readers): a .tif
    # without a file to try would name nnU-Net's 2D reader, so take the one nnU-Net named
    reader = dataset["runs"][0]["plans"]["image_reader_writer"]
    meta = {**dataset["dataset_json"], "overwrite_image_reader_writer": reader}
    return NnUNetFingerprint.from_json(dataset["fingerprint"], meta, name)


def _differences(ours, theirs, where: str = "") -> list[str]:
    """Every place two JSON documents differ: keys, their order, values, and types."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        if list(ours) != list(theirs):
            return [f"{where}: keys {list(ours)} != {list(theirs)}"]
        return [d for k in theirs for d in _differences(ours[k], theirs[k], f"{where}/{k}")]
    if isinstance(theirs, list) and isinstance(ours, list) and len(ours) == len(theirs):
        return [
            d for i, p in enumerate(zip(ours, theirs)) for d in _differences(*p, f"{where}[{i}]")
        ]
    same = ours == theirs and type(ours) is type(theirs)
    return [] if same else [f"{where}: {ours!r} != {theirs!r}"]


@pytest.mark.parametrize(("name", "index"), RUNS)
def test_every_preset_and_gpu_target_plans_as_nnunet_did(name, index):
    run = DATASETS[name]["runs"][index]

    plans = plan_nnunet(
        _fingerprint(name),
        gpu_memory_gb=run["gpu_memory_target"],
        preset=PRESET_OF_PLANNER[run["planner"]],
    )

    assert _differences(plans.as_json(), run["plans"]) == []
    assert f"{plans.plans_name}.json" == run["file"]
    # the number nnU-Net's shrink loop compared: the network it builds from these plans, counted
    ours = {c.name: c.feature_map_voxels for c in plans.configurations}
    assert ours == run["feature_map_voxels"]
    # nnU-Net warns when a preset plans for another GPU than its own; so do the plans' notes
    assert len(plans.notes) == len(run["warnings"])


def test_the_big_anisotropic_stack_shrinks_to_each_presets_memory():
    runs = {
        run["planner"]: run
        for run in DATASETS["Dataset121_BigAnisoStack"]["runs"]
        if run["gpu_memory_target"] is None  # each preset at its own GPU target
    }
    fingerprint = _fingerprint("Dataset121_BigAnisoStack")

    patches = {}
    for size in ("M", "L", "XL"):
        plans = plan_nnunet(fingerprint, preset=f"ResEnc{size}")
        full = plans.configuration("3d_fullres")
        nnunet = runs[f"nnUNetPlannerResEnc{size}"]["plans"]["configurations"]["3d_fullres"]
        assert full.patch_size == tuple(nnunet["patch_size"])
        patches[size] = full.patch_size
    # z keeps few slices at 4 mm, the 0.5 mm plane is shrunk: more of it with more memory
    assert math.prod(patches["M"]) < math.prod(patches["L"]) < math.prod(patches["XL"])
    assert all(p[0] < p[1] for p in patches.values())
    median = plans.configuration("3d_fullres").median_image_size_in_voxels
    assert all(p[1] < median[1] for p in patches.values())


def test_the_residual_encoders_feature_maps_match_nnunets_own_anchors():
    # ResEnc M's reference networks (residual_encoder_unet_planners.py's __main__), counted as
    # nnU-Net's estimate counts them: without deep supervision
    resenc = PRESETS["ResEncM"]
    cube = pool_and_conv_props([1.0, 1.0, 1.0], [128, 128, 128])
    assert cube.strides == ((1, 1, 1),) + ((2, 2, 2),) * 5
    features = features_per_stage(cube.n_stages, two_d=False)
    assert feature_map_size(cube.patch_size, cube.strides, features, 3, resenc) == 557_420_544
    # the 2D one has seven stages (nnU-Net's own topology of 512^2 would make eight)
    strides = ((1, 1),) + ((2, 2),) * 6
    features = features_per_stage(7, two_d=True)
    assert feature_map_size((512, 512), strides, features, 3, resenc) == 129_531_904


def test_a_2d_resenc_plan_shrinks_until_the_estimate_itself_fits():
    # the default's loop stops once the estimate at batch 2 fits (12 reference patches), ResEnc's
    # only when one patch's estimate is under the reference: a smaller patch, a bigger batch
    common = {
        "spacing": (0.25, 0.25),
        "median_shape": (2500, 2000),
        "dataset_voxels": 2500 * 2000 * 6.0,
        "classes": 2,
        "channel_names": ("H&E",),
        "relative_size": 1.0,
    }
    default = plan_configuration("2d", **common)
    resenc = plan_configuration("2d", **common, preset=PRESETS["ResEncM"])

    assert resenc.feature_map_voxels <= PRESETS["ResEncM"].reference_2d
    assert default.feature_map_voxels > PRESETS["default"].reference_2d
    assert resenc.batch_size > default.batch_size


def test_no_gpu_memory_given_is_the_presets_own_and_another_is_noted():
    fingerprint = _fingerprint("Dataset105_LargeLowres")

    own = plan_nnunet(fingerprint, preset="ResEncL")
    explicit = plan_nnunet(fingerprint, gpu_memory_gb=24, preset="nnUNetPlannerResEncL")
    smaller = plan_nnunet(fingerprint, gpu_memory_gb=12, preset="ResEncL")

    assert own.gpu_memory_target_gb == 24 and own.notes == ()
    assert own.as_json() == explicit.as_json()
    assert smaller.notes == (
        "nnU-Net warns: nnUNetPlannerResEncL is made for 24 GB of GPU memory; these plans "
        "target 12 GB as asked.",
    )
    assert math.prod(smaller.fullres.patch_size) < math.prod(own.fullres.patch_size)
    assert plan_nnunet(fingerprint, 12).notes == ()  # the default planner does not warn


def test_a_presets_plans_file_is_the_one_nnunet_trains_with(tmp_path):
    name = RECORDED["plans_manager"]["dataset"]
    plans = plan_nnunet(_fingerprint(name), preset=RECORDED["plans_manager"]["preset"])

    path = write_plans(plans, tmp_path / f"{plans.plans_name}.json")

    assert path.name == "nnUNetResEncUNetLPlans.json"
    written = json.loads(path.read_text())
    assert written["experiment_planner_used"] == "nnUNetPlannerResEncL"
    # the benchmark loaded this very file with nnU-Net's PlansManager and built its networks
    loaded = RECORDED["plans_manager"]
    assert loaded["loaded"] and loaded["feature_maps_equal"]
    assert loaded["plans_name"] == written["plans_name"]
    configurations = written["configurations"]
    for config, read in loaded["configurations"].items():
        # the cascade's fullres inherits 3d_fullres' settings, as PlansManager resolves them
        mine = configurations[configurations[config].get("inherits_from", config)]
        assert read["patch_size"] == mine["patch_size"]
        assert read["batch_size"] == mine["batch_size"]
        assert read["data_identifier"] == mine["data_identifier"]
    lowres = written["configurations"]["3d_lowres"]
    assert lowres["data_identifier"] == "nnUNetResEncUNetLPlans_3d_lowres"
    assert written["configurations"]["3d_fullres"]["data_identifier"] == "nnUNetPlans_3d_fullres"


def test_an_unknown_preset_or_a_gpu_of_nothing_is_refused_in_words():
    fingerprint = _fingerprint("Dataset101_IsoZeroBorder")
    with pytest.raises(ValueError, match="choose one of default, ResEncM, ResEncL, ResEncXL"):
        plan_nnunet(fingerprint, preset="ResEncXXL")
    with pytest.raises(ValueError, match="a GPU of a positive size, not 0 GB"):
        plan_nnunet(fingerprint, gpu_memory_gb=0, preset="ResEncM")


@pytest.mark.parametrize(
    ("gpu", "advice"),
    [
        (
            6,
            "6 GB: below every ResEnc preset (ResEncM expects 8 GB); the default planner or "
            "ResEncM planned for 6 GB",
        ),
        (12, "12 GB: ResEncM fits (made for 8 GB), ResEncL expects 24 GB"),
        (24, "24 GB: ResEncL fits (made for 24 GB), ResEncXL expects 40 GB"),
        (80, "80 GB: ResEncXL fits (made for 40 GB)"),
    ],
)
def test_the_gpu_a_user_has_names_the_preset_that_fits(gpu, advice):
    assert preset_advice(gpu) == advice


# ---------------------------------------------------------------------- on the command line


@pytest.fixture(scope="module")
def raw_dataset(tmp_path_factory) -> Path:
    """Dataset104_TwelveUint8 written again from its recorded parameters (the files nnU-Net
    fingerprinted)."""
    recorded = json.loads((Path(__file__).parent / "nnunet_recorded.json").read_text())
    spec = next(r["spec"] for r in recorded["datasets"] if r["spec"]["id"] == 104)
    return reference.write_dataset(spec, tmp_path_factory.mktemp("raw"))


def _nnunets(planner: str, gpu: float | None) -> dict:
    runs = DATASETS["Dataset104_TwelveUint8"]["runs"]
    return next(
        r["plans"] for r in runs if r["planner"] == planner and r["gpu_memory_target"] == gpu
    )


def test_a_user_plans_resenc_l_and_the_json_names_it(raw_dataset, capsys):
    argv = [str(raw_dataset), "--planner", "nnunet", "--nnunet-planner", "ResEncL", "--json"]

    assert main([*argv, "--quiet"]) == 0

    record = json.loads(capsys.readouterr().out)["nnunet"]
    assert record["planner"] == "ResEncL"
    assert record["experiment_planner"] == "nnUNetPlannerResEncL"
    assert record["plans_name"] == "nnUNetResEncUNetLPlans"
    assert record["gpu_memory_target_gb"] == 24 and record["notes"] == []
    assert record["plans"] == _nnunets("nnUNetPlannerResEncL", None)


def test_a_12_gb_card_plans_both_and_saves_resenc_ms_plans_file(raw_dataset, tmp_path, capsys):
    target = tmp_path / "nnUNetResEncUNetMPlans.json"
    both = [str(raw_dataset), "--planner", "both", "--gpu-memory", "12", "--quiet"]

    assert main([*both, "--nnunet-planner", "ResEncM", "--save", str(target)]) == 0

    out = capsys.readouterr().out
    # nnU-Net's own plans of ResEnc M at -gpu_memory_target 12, and its warning, in one line
    assert json.loads(target.read_text()) == _nnunets("nnUNetPlannerResEncM", 12.0)
    assert "# nnU-Net v2 plans (nnUNetResEncUNetMPlans, nnUNetPlannerResEncM for 12 GB)" in out
    assert "# nnU-Net warns: nnUNetPlannerResEncM is made for 8 GB of GPU memory" in out
    assert "# nnU-Net's presets: 12 GB: ResEncM fits (made for 8 GB), ResEncL expects 24 GB" in out
    # biom3d's config still fits the same 12 GiB card, whichever nnU-Net planner is chosen
    assert main([*both, "--nnunet-planner", "ResEncL"]) == 0
    biom3d_config = capsys.readouterr().out.split("# nnU-Net v2 plans")[0]
    assert biom3d_config == out.split("# nnU-Net v2 plans")[0]
    assert "BATCH_SIZE = " in biom3d_config


def test_a_preset_without_an_nnunet_planner_is_refused(raw_dataset, capsys):
    assert main([str(raw_dataset), "--nnunet-planner", "ResEncL", "--quiet"]) == 2

    assert "--nnunet-planner ResEncL chooses nnU-Net's planner: add --planner nnunet" in (
        capsys.readouterr().err
    )


def test_the_command_lines_choices_are_the_presets():
    assert NNUNET_PLANNERS == tuple(PRESETS)
