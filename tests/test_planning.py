"""One way to plan: the command line shows what :func:`plan_training` makes, nothing of its own.

A user who knows only a median size asks the command line for a plan; what it prints (text and
``--json``) is the plan, the GPU budget, the memory or why there is none, and the config of one
call to the core. The widget shows the same call's result (``tests/_napari/
test_widget_plans_as_the_cli.py`` checks the two side by side on real files).
"""

from __future__ import annotations

import json
import re

import pytest

from datafiles import write_dataset
from napari_autoconfig.cli import main
from napari_autoconfig.errors import LimitsError
from napari_autoconfig.fingerprint import fingerprint_dataset
from napari_autoconfig.memory import biom3d_can_train
from napari_autoconfig.planners.biom3d import Limits
from napari_autoconfig.planning import plan_training

#: Medians (C, Z, Y, X or Z, Y, X) from tiny to huge, 2D and multichannel among them.
MEDIANS = (
    (4, 4, 4),
    (2, 6, 6),
    (32, 32, 32),
    (22, 66, 62),
    (1, 512, 512),
    (2, 40, 300, 300),
    (12, 2048, 2048),
)
#: Limits as a user gives them on the command line, and the same as the core's arguments.
SETTINGS = (
    ((), {}),
    (("--max-dims", "32", "32", "32"), {"limits": Limits(max_dims=(32, 32, 32))}),
    (("--precision", "fp32"), {"precision": "fp32"}),
    (("--gpu-memory", "3"), {"gpu_memory_gib": 3.0}),
    (("--gpu-memory", "12", "--precision", "fp32"), {"gpu_memory_gib": 12.0, "precision": "fp32"}),
)


def _run(capsys, *args):
    status = main([*args, "--quiet"])
    out, err = capsys.readouterr()
    return status, out, err


def test_median_4_4_4_gets_no_memory_figure_and_says_why(capsys):
    # biom3d's rules plan a 4x4x4 patch with no pooling: its U-Net cannot be built on it.
    status, text, _ = _run(capsys, "--median", "4", "4", "4")
    assert status == 0
    assert "PATCH_SIZE = [4, 4, 4]" in text and "NUM_POOLS = [0, 0, 0]" in text
    assert "GiB" not in text  # no memory figure for a plan that cannot train
    (line,) = [line for line in text.splitlines() if "GPU memory" in line]
    assert line == (
        "# GPU memory not estimated: biom3d's network cannot train this plan (poolings 0x0x0): "
        "with no pooling its U-Net has no decoder."
    )

    status, out, _ = _run(capsys, "--median", "4", "4", "4", "--json")
    record = json.loads(out)
    assert record["gpu_memory"] is None
    assert f"# {record['gpu_memory_reason']}" == line


def test_a_single_voxel_at_the_deepest_level_is_not_estimated_either(capsys):
    # max_dims 32 with 5 poolings: the smallest feature map is 1 voxel, which biom3d's
    # instance normalisation refuses in training.
    status, out, _ = _run(capsys, "--median", "32", "32", "32", "--max-dims", "32", "32", "32")
    assert status == 0 and "NUM_POOLS = [5, 5, 5]" in out
    assert "GiB" not in out
    assert "deepest level would hold a single voxel" in out


@pytest.mark.parametrize("median", MEDIANS, ids=lambda m: "x".join(map(str, m)))
def test_the_command_line_prints_what_the_core_plans(capsys, median):
    for args, kwargs in SETTINGS:
        argv = ["--median", *map(str, median), *args]
        try:
            expected = plan_training(median, **kwargs)
        except LimitsError as refused:  # e.g. no plan fits the GPU: the command says the same
            status, _, err = _run(capsys, *argv)
            assert (status, err) == (2, f"napari-autoconfig: error: {refused}\n")
            continue
        plan = expected.biom3d
        status, out, _ = _run(capsys, *argv, "--json")
        assert status == 0
        record = json.loads(out)
        assert (record["patch"], record["pool"], record["batch"], record["aug_patch"]) == (
            list(plan.patch),
            list(plan.pool),
            plan.batch,
            list(plan.aug_patch),
        )
        assert record["reasons"] == list(plan.reasons)
        assert record["config"] == expected.config_values
        assert record["notes"] == list(expected.notes)
        trainable = biom3d_can_train(plan.patch, plan.pool)
        if trainable:
            assert record["gpu_memory"] == expected.memory.as_dict()
            assert record["gpu_memory_reason"] is None
        else:  # null, and the reason instead
            assert record["gpu_memory"] is None and expected.memory is None
            assert record["gpu_memory_reason"] == expected.memory_reason

        status, text, _ = _run(capsys, *argv)
        lines = text.splitlines()
        assert f"# {expected.memory_line}" in lines
        assert ("GiB" in expected.memory_line) is trainable
        comment = [line for line in lines if line.startswith("# max_dims")]
        assert comment == (
            [expected.config_comment.rstrip("\n")] if "gpu_memory_gib" in kwargs else []
        )


def test_a_fingerprint_and_its_median_plan_alike(tmp_path):
    images, masks = write_dataset(tmp_path / "data", shapes=[(4, 4, 4)] * 3)
    fp = fingerprint_dataset(images, masks)
    from_files, from_median = plan_training(fp), plan_training(fp.median_size)
    assert from_files.biom3d == from_median.biom3d
    assert from_files.memory is from_median.memory is None
    assert from_files.memory_reason == from_median.memory_reason != ""
    # the files add what a median cannot know: the spacing and the intensities
    assert from_files.config_values["MEDIAN_SPACING"] == list(fp.median_spacing_xyz)
    assert from_median.config_values["MEDIAN_SPACING"] == []


def test_an_unknown_precision_is_refused_even_without_an_estimate():
    with pytest.raises(LimitsError, match="fp8"):
        plan_training((4, 4, 4), precision="fp8")


def test_a_gpu_budget_is_said_above_the_config(capsys):
    expected = plan_training((22, 66, 62), gpu_memory_gib=6.0)
    assert re.fullmatch(
        r"# max_dims \d+x\d+x\d+ derived from a GPU memory of 6 GiB .*\n", (expected.config_comment)
    )
    status, out, _ = _run(capsys, "--median", "22", "66", "62", "--gpu-memory", "6", "--yaml")
    assert status == 0 and out.startswith(expected.config_comment)
    assert plan_training((22, 66, 62)).config_comment == ""


def test_the_planners_package_offers_both_planners_as_peers():
    """Every name ``napari_autoconfig.planners`` lists is there, each from its planner's module."""
    import napari_autoconfig.planners as planners

    for name in planners.__all__:
        value = getattr(planners, name)
        assert value.__module__ == f"napari_autoconfig.planners.{planners._HOMES[name]}"
    assert sorted(planners.__all__) == sorted(planners._HOMES)
    with pytest.raises(AttributeError):
        planners.no_such_planner  # noqa: B018 - the look-up is the test
