"""biom3d's normalisations on real files: streamed moments and block-wise values against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from datafiles import random_volume, read_whole, write_dataset, write_image
from napari_autoconfig.errors import AutoconfigError, Cancelled
from napari_autoconfig.fingerprint import fingerprint_dataset
from napari_autoconfig.normalization import (
    CT_NORM,
    EPSILON,
    ZSCORE,
    array_moments,
    ct_norm,
    image_moments,
    normalize,
    zscore,
)


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("stack.tif", np.uint16), ("ct.nii.gz", np.float32), ("cells.mha", np.int16)],
)
def test_streamed_moments_equal_numpy_on_the_whole_file(tmp_path, name, dtype):
    data = random_volume((17, 40, 36), dtype=dtype, seed=5, high=3000)
    path = write_image(tmp_path / name, data, spacing_zyx=(2.0, 0.5, 0.5))
    whole = read_whole(path).astype(np.float64)
    # pieces of 1000 bytes: many pieces, none aligned to a plane
    moments = image_moments(path, chunk_bytes=1000)
    assert moments.count == whole.size
    assert moments.mean == pytest.approx(whole.mean(), rel=1e-12)
    assert moments.std == pytest.approx(whole.std(), rel=1e-12)
    assert (moments.minimum, moments.maximum) == (whole.min(), whole.max())


def test_moments_keep_their_precision_far_from_zero(tmp_path):
    # A large offset with a small spread: a sum of squares would lose every digit of the spread.
    data = 1e9 + np.random.default_rng(0).standard_normal((6, 50, 50))
    path = write_image(tmp_path / "offset.npy", data)
    moments = image_moments(path, chunk_bytes=4096)
    assert moments.std == pytest.approx(np.std(data), rel=1e-9)


def test_per_image_zscore_slice_by_slice_is_biom3d_formula(tmp_path):
    data = random_volume((9, 30, 20), dtype=np.uint16, seed=1, high=60000)
    path = write_image(tmp_path / "img.tif", data)
    whole = read_whole(path)
    params = zscore(image_moments(path))
    assert params.kind == ZSCORE and params.clip is None
    expected = (whole - whole.mean()) / (whole.std() + EPSILON)  # biom3d's line
    slices = np.stack([normalize(whole[z], params) for z in range(whole.shape[0])])
    assert slices.dtype == np.float32
    np.testing.assert_allclose(slices, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(normalize(whole, params, np.float64), expected, rtol=1e-12)
    assert whole.dtype == np.uint16 and np.array_equal(whole, read_whole(path))  # untouched


def test_ct_norm_uses_the_fingerprint_clip_and_moments(tmp_path):
    images, masks = write_dataset(tmp_path)
    fp = fingerprint_dataset(images, masks)
    params = ct_norm(fp)
    assert params.kind == CT_NORM and params.clip == (fp.perc_005, fp.perc_995)
    image = read_whole(sorted(images.iterdir())[0])
    expected = (np.clip(image, fp.perc_005, fp.perc_995) - fp.mean) / (fp.std + EPSILON)
    got = np.stack([normalize(plane, params) for plane in image])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    low, high = params.value_range
    assert got.min() >= low - 1e-5 and got.max() <= high + 1e-5
    assert np.isclose(got.min(), low, atol=1e-5)  # the image's background sits at the low clip


def test_ct_norm_needs_masks_and_a_cancel_stops_the_pass(tmp_path):
    images, _ = write_dataset(tmp_path)
    with pytest.raises(AutoconfigError, match="masks folder"):
        ct_norm(fingerprint_dataset(images))
    with pytest.raises(Cancelled, match="case_01"):
        image_moments(sorted(images.iterdir())[0], cancel=lambda: True)


def test_array_moments_read_an_array_plane_by_plane():
    data = random_volume((5, 8, 9), dtype=np.uint8, seed=2)
    moments = array_moments(data)
    assert moments.mean == pytest.approx(data.mean()) and moments.std == pytest.approx(data.std())
