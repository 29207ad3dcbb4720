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
def fingerprints(folders):
    """biom3d's and nnU-Net's fingerprints of the folders, made once for the module: nnU-Net's
    draws its 1e8 foreground samples (seconds), and the tests only read them."""
    return fingerprint_dataset(*folders), fingerprint_nnunet(*folders)


def test_both_plans_come_from_one_call_and_biom3ds_is_unchanged(fingerprints):
    fp, nn_fp = fingerprints

    alone = plan_training(fp)
    both = plan_training(fp, planners=("biom3d", "nnunet"), nnunet_fingerprint=nn_fp)

    assert alone.nnunet is None and alone.nnunet_fingerprint is None
    assert both.biom3d == alone.biom3d and both.config_values == alone.config_values
    assert both.nnunet == plan_nnunet(nn_fp)
    assert both.nnunet_fingerprint is nn_fp


def test_nnunets_3d_fullres_in_the_images_axes_and_physical_units(fingerprints):
    plans = plan_nnunet(fingerprints[1])
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
    with pytest.raises(LimitsError, match="Unknown planner 'monai'"):
        plan_training(fp, planners=("monai",))


def test_the_table_flags_what_nnunet_resamples_only_when_its_plan_was_made(fingerprints):
    fp, nn_fp = fingerprints
    training = plan_training(fp, planners=("biom3d", "nnunet"), nnunet_fingerprint=nn_fp)
    target = training.nnunet.target_spacing_zyx

    without = {r.image: r.flags for r in image_rows(fp, training.biom3d)}
    flagged = {r.image: r.flags for r in image_rows(fp, training.biom3d, nnunet_target_zyx=target)}

    assert target == (2.0, 0.5, 0.5)
    assert not any("nnU-Net" in f for flags in without.values() for f in flags)
    assert [f for f in flagged["case_04.tif"] if "nnU-Net" in f] == [
        "nnU-Net upsamples it 3x along z (spacing 6 vs its target 2)"
    ]
    assert not any("nnU-Net" in f for name in ("case_01.tif", "case_02.tif") for f in flagged[name])
