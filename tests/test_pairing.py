"""Masks named as people name them: same name, by convention, or by position (biom3d's rule)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from datafiles import biom3d_statistics, rename_masks, write_dataset, write_npy
from napari_autoconfig import auto_config as ac
from napari_autoconfig.cli import main
from napari_autoconfig.dataset import open_dataset
from napari_autoconfig.errors import UnpairedFilesError

# (how the user named img's mask, as a function of img's stem)
CONVENTIONS = {
    "_mask": lambda s: s + "_mask",
    "_masks": lambda s: s + "_masks",
    "_label": lambda s: s + "_label",
    "_labels": lambda s: s + "_labels",
    "_seg": lambda s: s + "_seg",
    "_gt": lambda s: s + "_gt",
    "_annotation": lambda s: s + "_annotation",
    "_annotations": lambda s: s + "_annotations",
    "_Mask (any case)": lambda s: s + "_Mask",
    "mask_": lambda s: "mask_" + s,
    "label_": lambda s: "label_" + s,
    "LABEL_ (any case)": lambda s: "LABEL_" + s,
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The shared dataset with masks named like their images, and its numbers."""
    images, masks = write_dataset(tmp_path_factory.mktemp("same"))
    return images, masks, ac.data_fingerprint(images, masks)


def _same_numbers(result, expected):
    assert result[0].tolist() == expected[0].tolist()
    assert np.allclose(result[1], expected[1])
    assert result[2:] == expected[2:]


@pytest.mark.parametrize("convention", list(CONVENTIONS))
def test_each_naming_convention_pairs_and_gives_the_same_numbers(tmp_path, reference, convention):
    images, masks, expected = reference
    renamed = rename_masks(shutil.copytree(masks, tmp_path / "masks"), CONVENTIONS[convention])
    dataset = open_dataset(images, renamed)
    assert dataset.pairing == "convention" and dataset.warning is None
    for case in dataset.cases:
        assert case.mask.name == CONVENTIONS[convention](case.image.stem) + ".tif"
    _same_numbers(ac.data_fingerprint(images, renamed), expected)


def test_nnunet_channel_suffix_on_images_pairs_with_the_case_name(tmp_path):
    for name in ("case_a_0000", "case_b_0000"):
        write_npy(tmp_path / "img" / f"{name}.npy", np.zeros((2, 3, 4), np.uint8))
    for name in ("case_a", "case_b_seg"):
        write_npy(tmp_path / "msk" / f"{name}.npy", np.zeros((2, 3, 4), np.uint8))
    dataset = open_dataset(tmp_path / "img", tmp_path / "msk")
    assert [(c.image.stem, c.mask.stem) for c in dataset.cases] == [
        ("case_a_0000", "case_a"),
        ("case_b_0000", "case_b_seg"),
    ]


def test_names_that_share_nothing_pair_by_position_with_a_warning(tmp_path, reference, capsys):
    # biom3d trains on lbl_000.tif beside img_000.tif: it pairs by sorted position.
    images, masks, expected = reference
    renamed = rename_masks(
        shutil.copytree(masks, tmp_path / "labels"), lambda s: s.replace("case", "lbl")
    )
    dataset = open_dataset(images, renamed)
    assert dataset.pairing == "position"
    assert "sorted position" in dataset.warning
    for case in dataset.cases:
        assert f"{case.image.name} <- {case.mask.name}" in dataset.warning
    # the seed API gives biom3d's numbers: biom3d's own way over the sorted listings
    result = ac.data_fingerprint(images, renamed)
    _same_numbers(result, expected)
    stats = biom3d_statistics(sorted(images.iterdir()), sorted(renamed.iterdir()))
    assert result[2:] == stats

    assert main([str(images), "--masks", str(renamed), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "warning" in err and "case_01.tif <- lbl_01.tif" in err
    assert "lbl_" not in out  # the warning goes to stderr, the config to stdout


def test_position_is_never_used_when_counts_differ_or_some_names_match(tmp_path):
    for name in ("img/a.npy", "img/b.npy", "msk/x.npy", "msk/y.npy", "msk/z.npy"):
        write_npy(tmp_path / name, np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(UnpairedFilesError, match="do not pair up"):
        open_dataset(tmp_path / "img", tmp_path / "msk")
    (tmp_path / "msk" / "z.npy").rename(tmp_path / "msk" / "a_mask.npy")
    # one mask pairs by convention: the others are not shifted into place by position
    with pytest.raises(UnpairedFilesError) as info:
        open_dataset(tmp_path / "img", tmp_path / "msk")
    assert "'b.npy'" in str(info.value) and "'x.npy'" in str(info.value)


def test_two_masks_claiming_one_image_pair_neither(tmp_path):
    for name in ("img/a.npy", "msk/a_mask.npy", "msk/a_seg.npy"):
        write_npy(tmp_path / name, np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(UnpairedFilesError, match=r"a_mask\.npy"):
        open_dataset(tmp_path / "img", tmp_path / "msk")
