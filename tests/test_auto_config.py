"""The biom3d-compatible seed API: names, defaults, return types, messages and printed text."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from datafiles import random_volume, write_itk, write_npy
from napari_autoconfig import auto_config as ac
from napari_autoconfig.errors import EmptyDatasetError, MixedDimensionsError


def _npy(folder, name, shape, seed=0, dtype=np.uint16):
    arr = random_volume(shape, dtype, seed, high=1000)
    write_npy(folder / name, arr)
    return arr


def _nifti(folder, name, shape, spacing_xyz):
    folder.mkdir(parents=True, exist_ok=True)
    write_itk(folder / name, np.zeros(shape, dtype=np.uint8), spacing_xyz)


# --------------------------------------------------------------------------- signatures


def test_signatures_and_defaults_match_biom3d():
    sig = inspect.signature(ac.auto_config)
    assert list(sig.parameters) == ["img_path", "median", "max_dims", "max_batch", "min_batch"]
    assert [p.default for p in sig.parameters.values()] == [None, None, (128, 128, 128), 16, 2]
    sig = inspect.signature(ac.find_patch_pool_batch)
    assert list(sig.parameters) == ["dims", "max_dims", "max_pool", "epsilon"]
    assert [p.default for p in list(sig.parameters.values())[1:]] == [(128, 128, 128), 5, 1e-3]
    sig = inspect.signature(ac.data_fingerprint)
    assert list(sig.parameters) == ["img_path", "msk_path", "num_samples", "seed"]
    assert [p.default for p in list(sig.parameters.values())[1:]] == [None, 10000, 42]
    sig = inspect.signature(ac.compute_median)
    assert list(sig.parameters) == ["path", "return_spacing"]
    sig = inspect.signature(ac.parameters_return)
    assert list(sig.parameters) == ["patch", "pool", "batch", "config_path", "median_spacing"]
    assert list(inspect.signature(ac.display_info).parameters) == ["patch", "pool", "batch"]
    assert list(inspect.signature(ac.get_aug_patch).parameters) == ["patch_size"]


# --------------------------------------------------------------------------- auto_config


def test_auto_config_needs_path_or_median():
    with pytest.raises(
        AssertionError, match="Please provide either an image collection path or a median shape"
    ):
        ac.auto_config()


def test_auto_config_from_median_returns_biom3d_types():
    batch, aug_patch, patch, pool = ac.auto_config(median=(96, 512, 512))
    assert type(batch) is int and batch == 2
    assert aug_patch == [40, 317, 317] and all(type(v) is int for v in aug_patch)
    assert isinstance(patch, np.ndarray) and patch.tolist() == [40, 224, 224]
    assert isinstance(pool, np.ndarray) and pool.tolist() == [3, 5, 5]


def test_auto_config_clamps_max_first_then_min():
    assert ac.auto_config(median=(64, 64, 64))[0] == 16  # raw 16
    assert ac.auto_config(median=(32, 32, 32))[0] == 16  # raw 128, capped
    assert ac.auto_config(median=(32, 32, 32), max_batch=40)[0] == 40
    assert ac.auto_config(median=(64, 64, 64), max_batch=0)[0] == 2  # preprocessing, <40 images
    assert ac.auto_config(median=(64, 64, 64), max_batch=3, min_batch=5)[0] == 5


def test_auto_config_from_folder(tmp_path):
    for i, shape in enumerate([(10, 20, 30), (12, 22, 32), (14, 18, 40)]):
        _npy(tmp_path / "img", f"im{i}.npy", shape, seed=i)
    batch, aug, patch, pool = ac.auto_config(img_path=tmp_path / "img")
    expected = ac.find_patch_pool_batch((12, 20, 32))
    assert patch.tolist() == expected[0].tolist() and pool.tolist() == expected[1].tolist()
    assert batch == min(expected[2], 16)
    assert aug == ac.get_aug_patch(expected[0])


def test_find_patch_pool_batch_messages():
    with pytest.raises(AssertionError):
        ac.find_patch_pool_batch((10, 20))
    with pytest.raises(AssertionError, match="One dimension is non-positve"):
        ac.find_patch_pool_batch((0, 10, 10))
    with pytest.raises(AssertionError, match="is too small regarding max_pool"):
        ac.find_patch_pool_batch((64, 64, 64), max_dims=(16, 16, 16))


def test_crash_case_and_get_aug_patch():
    patch, _pool, batch = ac.find_patch_pool_batch((228, 314, 1802), max_dims=(96, 96, 96))
    assert patch.tolist() == [48, 48, 384] and batch == 2
    assert ac.get_aug_patch([96, 64, 24]) == [115, 115, 24]


# --------------------------------------------------------------------------- printing


def test_display_info_prints_config_lines_with_plain_ints(capsys):
    patch, pool, batch = ac.find_patch_pool_batch((96, 512, 512))
    ac.display_info(patch, pool, np.int64(batch))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("*" * 20) and lines[0].endswith("*" * 20)
    assert lines[1:] == [
        "BATCH_SIZE = 2",
        "PATCH_SIZE = [40, 224, 224]",
        "AUG_PATCH_SIZE = [40, 317, 317]",
        "NUM_POOLS = [3, 5, 5]",
    ]


def test_parameters_return_prints_one_per_line(capsys):
    ac.parameters_return(
        np.array([40, 224, 224]),
        np.array([3, 5, 5]),
        np.int64(2),
        "configs/x.py",
        np.array([0.5, 0.5, 2.0]),
    )
    assert capsys.readouterr().out.splitlines() == [
        "2",
        "[40, 224, 224]",
        "[40, 317, 317]",
        "[3, 5, 5]",
        "[0.5, 0.5, 2.0]",
        "configs/x.py",
    ]
    ac.parameters_return([64, 64, 64], [4, 4, 4], 16, "c.py")
    assert capsys.readouterr().out.splitlines()[4] == "None"


# --------------------------------------------------------------------------- folders


def test_compute_median_truncates_and_averages_even_counts(tmp_path):
    _npy(tmp_path / "a", "x.npy", (10, 20, 30))
    _npy(tmp_path / "a", "y.npy", (13, 21, 31))
    median = ac.compute_median(tmp_path / "a")
    assert isinstance(median, np.ndarray) and np.issubdtype(median.dtype, np.integer)
    assert median.tolist() == [11, 20, 30]  # 11.5, 20.5, 30.5 truncated


def test_compute_median_2d_counts_as_one_plane(tmp_path):
    _npy(tmp_path / "a", "x.npy", (64, 80))
    _npy(tmp_path / "a", "y.npy", (70, 90))
    _npy(tmp_path / "a", "z.npy", (66, 100))
    assert ac.compute_median(tmp_path / "a").tolist() == [1, 66, 90]


def test_compute_median_spacing(tmp_path):
    _nifti(tmp_path / "n", "a.nii.gz", (4, 5, 6), (0.5, 0.5, 2.0))
    _nifti(tmp_path / "n", "b.nii.gz", (6, 5, 4), (1.0, 0.25, 3.0))
    _nifti(tmp_path / "n", "c.nii.gz", (5, 5, 5), (0.75, 1.5, 2.5))
    median, spacing = ac.compute_median(tmp_path / "n", return_spacing=True)
    assert median.tolist() == [5, 5, 5]
    assert isinstance(spacing, np.ndarray) and spacing.tolist() == [0.75, 0.5, 2.5]


def test_compute_median_without_spacing_warns_and_returns_empty_list(tmp_path):
    _npy(tmp_path / "a", "x.npy", (10, 20, 30))
    with pytest.warns(UserWarning, match="spacing"):
        median, spacing = ac.compute_median(tmp_path / "a", return_spacing=True)
    assert median.tolist() == [10, 20, 30] and spacing == []


def test_empty_folder_raises_biom3d_assertion(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no image here")
    for folder in ("empty", "notes"):
        for call in (ac.compute_median, ac.data_fingerprint):
            with pytest.raises(AssertionError, match="List of sizes for median") as info:
                call(tmp_path / folder)
            assert str(info.value).count("List of sizes") == 1  # said once, then the why
            assert folder in str(info.value)
    with pytest.raises(AssertionError, match="List of sizes for median") as info:
        ac.auto_config(img_path=tmp_path / "empty")
    assert isinstance(info.value.__cause__, EmptyDatasetError)


def test_mixed_dimensions_raise_assertion(tmp_path):
    _npy(tmp_path / "m", "a.npy", (10, 20, 30))
    _npy(tmp_path / "m", "b.npy", (20, 30))
    for call in (ac.compute_median, ac.data_fingerprint):
        with pytest.raises(AssertionError) as info:
            call(tmp_path / "m")
        assert isinstance(info.value.__cause__, MixedDimensionsError)
        assert "a.npy" in str(info.value) and "b.npy" in str(info.value)


def test_data_fingerprint_without_masks(tmp_path):
    _npy(tmp_path / "a", "x.npy", (10, 20, 30))
    _npy(tmp_path / "a", "y.npy", (12, 20, 30))
    median_size, spacing, mean, std, p005, p995 = ac.data_fingerprint(tmp_path / "a")
    assert median_size.tolist() == [11, 20, 30]
    assert spacing == 0
    assert (mean, std, p005, p995) == (0, 0, 0, 0)


def test_data_fingerprint_with_masks_draws_like_biom3d(tmp_path):
    shapes = [(6, 7, 8), (5, 9, 8), (7, 7, 7)]
    drawn = []
    for i, shape in enumerate(shapes):
        image = _npy(tmp_path / "img", f"c{i}.npy", shape, seed=i)
        rng = np.random.default_rng(100 + i)
        mask = (rng.random(shape) > 0.6).astype(np.uint8)
        if i == 2:
            mask[:] = 0  # an empty mask contributes nothing
        (tmp_path / "msk").mkdir(exist_ok=True)
        np.save(tmp_path / "msk" / f"c{i}.npy", mask)
        values = image[mask > 0]
        if len(values):
            drawn.append(np.random.default_rng(7).choice(values, 500, replace=True))
    result = ac.data_fingerprint(tmp_path / "img", tmp_path / "msk", num_samples=500, seed=7)
    samples = np.concatenate(drawn)
    assert result[0].tolist() == [6, 7, 8]
    assert result[1] == 0
    assert result[2:] == (
        float(np.mean(samples)),
        float(np.std(samples)),
        float(np.percentile(samples, 0.5)),
        float(np.percentile(samples, 99.5)),
    )
    assert all(type(v) is float for v in result[2:])


def test_the_core_never_speaks_biom3d_wording(tmp_path, capsys):
    # The command line (and the widget, through the same core) says what is wrong in its own words;
    # only the seed API translates into biom3d's AssertionError and sentence.
    from napari_autoconfig.cli import main

    (tmp_path / "empty").mkdir()
    _npy(tmp_path / "m", "a.npy", (10, 20, 30))
    _npy(tmp_path / "m", "b.npy", (20, 30))
    for folder in ("empty", "m"):
        assert main([str(tmp_path / folder), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "List of sizes" not in err and "[Error]" not in err
        assert folder in err
