"""MONAI Auto3DSeg's SegResNet template, replayed without monai: every value it fills into
``hyper_parameters.yaml`` and what its segmenter trains with, against the template's own code run
on the same datastats summaries (``benchmarks/monai_segresnet_reference.py`` recorded them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_autoconfig.errors import DatasetError, LimitsError
from napari_autoconfig.planners.monai_segresnet import TEMPLATE_COMMIT, plan_segresnet

RECORDED = json.loads((Path(__file__).parent / "monai_segresnet_recorded.json").read_text())
CASES = {c["case"]["name"]: c for c in RECORDED["cases"]}


def _plan(case: dict, gpu: float = 16.0):
    options = case["case"]["input"]
    return plan_segresnet(
        case["stats_summary"],
        gpu_memory_gb=gpu,
        modality=options.get("modality", "ct"),
        resample_mode=options.get("resample_mode", "auto"),
    )


def test_the_recorded_template_is_the_one_monai_1_6_1_downloads():
    assert RECORDED["monai"] == "1.6.1"
    assert RECORDED["template"].endswith(
        f"@{TEMPLATE_COMMIT}:auto3dseg/algorithm_templates/segresnet"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_hyper_parameters_filled_as_the_template_fills_them(name):
    """Spacing, resampling, intensities, image size, ROI, network and epochs: each value the
    template's fill_template_config wrote for this summary."""
    case = CASES[name]
    want = case["template"]
    plan = _plan(case)
    got = {
        "modality": plan.modality,
        "input_channels": plan.input_channels,
        "output_classes": plan.output_classes,
        "intensity_bounds": list(plan.intensity_bounds),
        "normalize_mode": plan.normalize_mode,
        "resample_resolution": list(plan.spacing_xyz),
        "anisotropic_scales": plan.anisotropic_scales,
        "spacing_median": list(plan.spacing_median_xyz),
        "spacing_lower": list(plan.spacing_lower_xyz),
        "spacing_upper": list(plan.spacing_upper_xyz),
        "resample": plan.resample,
        "image_size_mm_median": list(plan.image_size_mm_median_xyz),
        "image_size_mm_90": list(plan.image_size_mm_90_xyz),
        "image_size": list(plan.image_size_xyz),
        "num_epochs": plan.num_epochs,
        "roi_size": list(plan.roi_size_xyz),
        "batch_size": plan.batch_size,
        "network#blocks_down": list(plan.blocks_down),
        "network#init_filters": plan.init_filters,
        "crop_mode": plan.crop_mode,
        "levels": plan.levels,
    }
    assert got == want
    # the JSON a user reads carries the same names and values
    as_json = plan.to_json()
    assert {k: as_json[k] for k in want if k in as_json} == {
        k: want[k] for k in want if k in as_json
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_time_roi_batch_and_epochs_follow_the_gpu(name):
    """When training starts the segmenter re-plans for the card: batch (as crops per image in
    "ratio" mode), epochs divided by the crops, and above 20 classes a ROI the card can hold."""
    case = CASES[name]
    for gpu, want in case["training"].items():
        plan = _plan(case, float(gpu))
        assert list(plan.train_roi_size_xyz) == want["roi_size"], gpu
        assert plan.train_batch_size == want["batch_size"], gpu
        assert plan.num_crops_per_image == want["num_crops_per_image"], gpu
        assert plan.train_num_epochs == want["num_epochs"], gpu
        assert plan.init_filters == want["init_filters"], gpu


def test_the_recorded_cases_cover_the_template_branches():
    """The reference exercises what the brief asks: anisotropic data, more than 20 classes (both
    budget branches), images smaller than the default ROI, few and many cases, resampling."""
    plans = {name: _plan(case) for name, case in CASES.items()}
    assert any(p.anisotropic_scales for p in plans.values())
    assert any(not p.anisotropic_scales for p in plans.values())
    assert any(
        p.output_classes > 20 and max(p.roi_size_xyz) == min(p.roi_size_xyz) for p in plans.values()
    )
    assert {p.num_epochs for p in plans.values()} >= {300, 1250}
    assert any(300 < p.num_epochs < 1250 for p in plans.values())
    assert any(p.resample for p in plans.values()) and any(not p.resample for p in plans.values())
    assert any(max(p.roi_size_xyz) < 64 for p in plans.values())
    big_card = {n: _plan(c, 80.0) for n, c in CASES.items()}
    assert any(big_card[n].train_roi_size_xyz != plans[n].roi_size_xyz for n in CASES)


def test_numpy_order_for_boxes():
    """Boxes are drawn in numpy (z, y, x) order: the plan's x, y, z values reversed, in mm too."""
    plan = _plan(CASES["anisotropic_mri_few_cases"])
    x, y, z = plan.train_roi_size_xyz
    sx, sy, sz = plan.spacing_xyz
    assert plan.roi_size_zyx == (z, y, x)
    assert plan.spacing_zyx == (sz, sy, sx)
    assert plan.roi_size_mm_zyx == pytest.approx((z * sz, y * sy, x * sx))
    assert plan.image_size_zyx == tuple(reversed(plan.image_size_xyz))


def test_a_whole_datastats_file_is_read_as_its_summary():
    case = CASES["isotropic_ct"]
    whole = {"stats_summary": case["stats_summary"], "stats_by_cases": []}
    assert plan_segresnet(whole) == plan_segresnet(case["stats_summary"])


def test_bad_summaries_and_options_say_what_is_wrong():
    summary = json.loads(json.dumps(CASES["isotropic_ct"]["stats_summary"]))
    del summary["image_stats"]["sizemm"]
    with pytest.raises(DatasetError, match="no 'image_stats#sizemm'"):
        plan_segresnet(summary)
    with pytest.raises(DatasetError, match="hold no case"):
        plan_segresnet({**CASES["isotropic_ct"]["stats_summary"], "n_cases": 0})
    with pytest.raises(LimitsError, match="modality must be 'ct' or 'mri'"):
        plan_segresnet(CASES["isotropic_ct"]["stats_summary"], modality="pet")
    with pytest.raises(LimitsError, match="Unknown resample_mode 'best'"):
        plan_segresnet(CASES["isotropic_ct"]["stats_summary"], resample_mode="best")
    given = plan_segresnet(
        CASES["isotropic_ct"]["stats_summary"], resample_resolution_xyz=(2, 2, 2)
    )
    assert given.spacing_xyz == (2.0, 2.0, 2.0) and given.resample_mode == "given"
