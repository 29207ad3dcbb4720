"""nnU-Net's plan is one more field of the one planning call, made from nnU-Net's own fingerprint.

A user with a folder of images and masks asks for both plans: :func:`plan_training` returns
biom3d's plan as before and nnU-Net's beside it, the same as nnU-Net's planner on the same
fingerprint; the images table then flags the image nnU-Net would resample by 2x or more.
"""

from __future__ import annotations

import pytest

from datafiles import write_case, write_dataset
from napari_autoconfig.errors import AutoconfigError, LimitsError
from napari_autoconfig.fingerprint import fingerprint_dataset
from napari_autoconfig.image_table import image_rows
from napari_autoconfig.planners import fingerprint_nnunet, plan_nnunet
from napari_autoconfig.planning import plan_training


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    images, masks = write_dataset(tmp_path_factory.mktemp("both"))
    # one image acquired at a coarser z step: 6 µm where the others have 2 µm
    write_case(images, masks, "case_04.tif", (8, 64, 60), spacing_zyx=(6.0, 0.5, 0.5))
    return images, masks


@pytest.fixture(scope="module")
def nnunet_of(folders):
    """nnU-Net's fingerprint of the folders, made once (its draws cost a second or so)."""
    return fingerprint_nnunet(*folders)


def test_both_plans_come_from_one_call_and_biom3ds_is_unchanged(folders, nnunet_of):
    fp = fingerprint_dataset(*folders)
    nn_fp = nnunet_of

    alone = plan_training(fp)
    both = plan_training(fp, planners=("biom3d", "nnunet"), nnunet_fingerprint=nn_fp)

    assert alone.nnunet is None and alone.nnunet_fingerprint is None
    assert both.biom3d == alone.biom3d and both.config_values == alone.config_values
    assert both.nnunet == plan_nnunet(nn_fp)
    assert both.nnunet_fingerprint is nn_fp


def test_nnunets_3d_fullres_in_the_images_axes_and_physical_units(nnunet_of):
    plans = plan_nnunet(nnunet_of)
    full = plans.fullres

    assert full.name == "3d_fullres"
    assert full.spacing_zyx == plans.target_spacing_zyx
    assert full.patch_physical_zyx == tuple(
        p * s for p, s in zip(full.patch_size_zyx, plans.target_spacing_zyx)
    )
    # each pooling halves the patch: the patch divides by 2 ** poolings along each axis
    assert all(p % 2**n == 0 for p, n in zip(full.patch_size_zyx, full.pool_zyx))
    # z's spacing is 4x y's and x's: nnU-Net pools it fewer times
    assert full.pool_zyx[0] < full.pool_zyx[1] == full.pool_zyx[2]


def test_nnunet_is_refused_without_its_fingerprint_or_from_a_median(folders):
    fp = fingerprint_dataset(*folders)
    with pytest.raises(AutoconfigError, match="nnU-Net's own fingerprint"):
        plan_training(fp, planners=("biom3d", "nnunet"))
    with pytest.raises(AutoconfigError, match="not from a median"):
        plan_training((22, 66, 62), planners=("biom3d", "nnunet"))
    with pytest.raises(LimitsError, match="Unknown planner 'swinunetr'"):
        plan_training(fp, planners=("swinunetr",))


def test_the_table_flags_what_nnunet_resamples_only_when_its_plan_was_made(folders, nnunet_of):
    fp = fingerprint_dataset(*folders)
    training = plan_training(fp, planners=("biom3d", "nnunet"), nnunet_fingerprint=nnunet_of)
    resampling = training.nnunet_resampling

    without = {r.image: r.flags for r in image_rows(fp, training.biom3d)}
    flagged = {
        r.image: r.flags for r in image_rows(fp, training.biom3d, nnunet_resampling=resampling)
    }

    assert resampling.target_zyx == training.nnunet.target_spacing_zyx == (2.0, 0.5, 0.5)
    assert not any("nnU-Net" in f for flags in without.values() for f in flags)
    assert [f for f in flagged["case_04.tif"] if "nnU-Net" in f] == [
        "nnU-Net upsamples it 3x along z (spacing 6 vs its target 2)"
    ]
    assert not any("nnU-Net" in f for name in ("case_01.tif", "case_02.tif") for f in flagged[name])


def test_nnunets_plan_alone_makes_no_biom3d_plan(folders, nnunet_of):
    nn_fp = nnunet_of

    alone = plan_training(None, planners=("nnunet",), nnunet_fingerprint=nn_fp)

    assert alone.nnunet == plan_nnunet(nn_fp) and alone.nnunet_fingerprint is nn_fp
    assert alone.biom3d is None  # not computed: its fields say none
    assert (alone.memory, alone.config_values, alone.notes, alone.budget_note) == (None, {}, (), "")
    with pytest.raises(AutoconfigError, match="biom3d's plan needs its fingerprint"):
        plan_training(None, planners=("biom3d", "nnunet"), nnunet_fingerprint=nn_fp)
    with pytest.raises(AutoconfigError, match="No planner asked for"):
        plan_training(fingerprint_dataset(*folders), planners=())


def test_the_command_line_plans_nnunet_alone_through_the_one_planning_call(
    folders, monkeypatch, capsys
):
    import napari_autoconfig.cli as cli
    from napari_autoconfig.planning import PLANNER_CHOICES

    calls = []

    def spy(source, *args, **kwargs):
        calls.append((source, tuple(kwargs["planners"])))
        return plan_training(source, *args, **kwargs)

    monkeypatch.setattr(cli, "plan_training", spy)
    images, masks = folders

    for choice in ("biom3d", "nnunet"):  # "both": tests/test_nnunet_cli.py
        planners = PLANNER_CHOICES[choice]
        argv = [str(images), "--masks", str(masks), "--planner", choice, "--quiet", "--json"]
        assert cli.main(argv) == 0
        assert calls.pop()[1] == planners
        record = capsys.readouterr().out
        assert ('"nnunet"' in record) == ("nnunet" in planners)
        assert ('"patch"' in record) == ("biom3d" in planners)


def test_the_planner_names_are_the_cores_everywhere():
    from napari_autoconfig.cli import _parser
    from napari_autoconfig.planning import PLANNER_CHOICES, PLANNERS

    planner = next(a for a in _parser()._actions if a.dest == "planner")
    assert tuple(planner.choices) == tuple(PLANNER_CHOICES)
    assert {name for names in PLANNER_CHOICES.values() for name in names} == set(PLANNERS)


def test_the_resample_flags_take_each_cases_spacing_from_nnunets_planner(folders, nnunet_of):
    from dataclasses import replace

    fp = fingerprint_dataset(*folders)
    nn_fp = nnunet_of
    # nnU-Net reads case_01 at 1 µm in y and x (as its TIFF reader without the case's json
    # would): its own spacing, not the one the file's header gives biom3d, is resampled
    spacings = list(nn_fp.spacings)
    spacings[0] = (2.0, 1.0, 1.0)
    nn_fp = replace(nn_fp, spacings=tuple(spacings))
    training = plan_training(fp, planners=("biom3d", "nnunet"), nnunet_fingerprint=nn_fp)

    rows = image_rows(fp, training.biom3d, nnunet_resampling=training.nnunet_resampling)

    flags = [f for f in rows[0].flags if "nnU-Net" in f]
    assert rows[0].image == "case_01.tif" and rows[0].spacing_zyx == (2.0, 0.5, 0.5)
    assert flags == [
        "nnU-Net upsamples it 2x along y (spacing 1 vs its target 0.5)",
        "nnU-Net upsamples it 2x along x (spacing 1 vs its target 0.5)",
    ]


def test_a_2d_images_resample_flags_follow_nnunets_2d_rule(tmp_path):
    import numpy as np

    from datafiles import write_itk

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for number, yx in enumerate([(0.5, 0.5), (0.5, 0.5), (1.5, 0.5)]):
        image = np.random.default_rng(number).integers(0, 200, (48, 40)).astype(np.uint8)
        mask = np.zeros(image.shape, np.uint8)
        mask[10:30, 8:30] = 1
        write_itk(images / f"plane_{number}.nii.gz", image, yx[::-1], compress=True)
        write_itk(masks / f"plane_{number}.nii.gz", mask, yx[::-1], compress=True)
    fp, nn_fp = fingerprint_dataset(images, masks), fingerprint_nnunet(images, masks)
    training = plan_training(fp, planners=("biom3d", "nnunet"), nnunet_fingerprint=nn_fp)

    resampling = training.nnunet_resampling
    rows = image_rows(fp, training.biom3d, nnunet_resampling=resampling)

    # nnU-Net's own spacing of a 2D image is (999 * max, y, x); its 2d configuration trains at
    # (y, x): z is never a resampling
    assert resampling.spacings_zyx[2] == (999 * 1.5, 1.5, 0.5)
    assert resampling.target_zyx == training.nnunet.fullres.spacing_zyx == (0.5, 0.5)
    assert [[f for f in row.flags if "nnU-Net" in f] for row in rows] == [
        [],
        [],
        ["nnU-Net upsamples it 3x along y (spacing 1.5 vs its target 0.5)"],
    ]
