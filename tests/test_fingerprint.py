"""The fingerprint of real folders, against biom3d's straightforward computation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from datafiles import biom3d_statistics, read_whole, write_image
from napari_autoconfig.errors import (
    Cancelled,
    EmptyDatasetError,
    ImageReadError,
    MaskMismatchError,
    MixedDimensionsError,
    NonIntegerMaskError,
)
from napari_autoconfig.fingerprint import fingerprint_case, fingerprint_dataset
from napari_autoconfig.readers import read_header

SHAPES = ((20, 40, 36), (24, 32, 40), (22, 44, 30), (18, 36, 38), (26, 40, 40))


def _volume(shape, rng):
    image = rng.normal(1000, 200, shape).clip(0, 65535).astype(np.uint16)
    mask = (rng.random(shape) < 0.2).astype(np.uint8) * rng.integers(1, 4, shape).astype(np.uint8)
    return image, mask


def _dataset(root, suffix, shapes=SHAPES, seed=0):
    rng = np.random.default_rng(seed)
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    for i, shape in enumerate(shapes):
        image, mask = _volume(shape, rng)
        spacing = (2.0 + 0.25 * i, 0.5, 0.5 + 0.125 * i)
        write_image(images / f"case_{i}{suffix}", image, spacing)
        write_image(masks / f"case_{i}{suffix}", mask, spacing)
    return images, masks


@pytest.mark.parametrize("suffix", [".tif", ".nii.gz", ".nii", ".mha", ".npy"])
def test_statistics_equal_biom3d(tmp_path, suffix):
    images, masks = _dataset(tmp_path, suffix)
    fp = fingerprint_dataset(images, masks)
    assert (fp.mean, fp.std, fp.perc_005, fp.perc_995) == biom3d_statistics(
        sorted(images.iterdir()), sorted(masks.iterdir())
    )
    assert fp.has_masks and fp.num_images == len(SHAPES)
    # median over (20, 24, 22, 18, 26) etc.; an odd count takes the middle value
    assert fp.median_size == (22, 40, 38)
    for record, shape in zip(fp.records, SHAPES):
        mask = read_whole(record.mask_path)
        assert record.foreground == int(np.count_nonzero(mask))
        assert record.image.shape == shape


def test_spacing_median_is_biom3d_xyz(tmp_path):
    images, _masks = _dataset(tmp_path, ".nii.gz")
    fp = fingerprint_dataset(images)
    # spacings (z, y, x) = (2 + .25 i, .5, .5 + .125 i), i = 0..4: medians 2.5, .5, .75
    assert fp.median_spacing_xyz == pytest.approx((0.75, 0.5, 2.5))
    assert fp.median_spacing_zyx == fp.median_spacing_xyz[::-1]
    assert (fp.mean, fp.std, fp.perc_005, fp.perc_995) == (0.0, 0.0, 0.0, 0.0)
    assert not fp.has_masks
    assert all(record.samples.size == 0 for record in fp.records)


def test_even_count_median_averages_then_truncates(tmp_path):
    images, _ = _dataset(tmp_path, ".npy", shapes=((10, 20, 31), (11, 20, 32)))
    assert fingerprint_dataset(images).median_size == (10, 20, 31)  # (10.5, 20, 31.5) -> int
    assert fingerprint_dataset(images).median_spacing_xyz is None  # .npy has no spacing


def test_same_result_whatever_the_workers(tmp_path):
    images, masks = _dataset(tmp_path, ".tif")
    runs = []
    for workers in (1, 3):
        with ThreadPoolExecutor(workers) as pool:
            runs.append(fingerprint_dataset(images, masks, executor=pool))
    one, three = runs
    assert (one.median_size, one.mean, one.std, one.perc_005, one.perc_995) == (
        three.median_size,
        three.mean,
        three.std,
        three.perc_005,
        three.perc_995,
    )
    for a, b in zip(one.records, three.records):
        np.testing.assert_array_equal(a.samples, b.samples)


def test_progress_once_per_file_and_cancel_within_a_file(tmp_path):
    images, masks = _dataset(tmp_path, ".npy")
    calls = []
    fingerprint_dataset(
        images, masks, progress=lambda done, total, rec: calls.append((done, total))
    )
    assert calls == [(i, len(SHAPES)) for i in range(1, len(SHAPES) + 1)]

    started = []
    lock = threading.Lock()

    def cancel():
        with lock:
            started.append(1)
        return len(started) > 1  # let one round of submissions through, then stop

    with ThreadPoolExecutor(1) as pool, pytest.raises(Cancelled, match="cancelled after"):
        fingerprint_dataset(images, masks, executor=pool, cancel=cancel)


def test_mask_shape_mismatch_names_both(tmp_path):
    np.save(tmp_path / "img.npy", np.zeros((4, 5, 6), np.uint16))
    np.save(tmp_path / "msk.npy", np.zeros((4, 5, 7), np.uint8))
    with pytest.raises(MaskMismatchError) as info:
        fingerprint_case(tmp_path / "img.npy", tmp_path / "msk.npy")
    assert "(4, 5, 7)" in str(info.value) and "(4, 5, 6)" in str(info.value)
    assert "msk.npy" in str(info.value) and "img.npy" in str(info.value)


def test_non_integer_mask(tmp_path):
    np.save(tmp_path / "img.npy", np.zeros((4, 5, 6), np.uint16))
    np.save(tmp_path / "ok.npy", np.ones((4, 5, 6), np.float32))
    np.save(tmp_path / "bad.npy", np.full((4, 5, 6), 0.5, np.float32))
    assert fingerprint_case(tmp_path / "img.npy", tmp_path / "ok.npy").foreground == 120
    with pytest.raises(NonIntegerMaskError, match=r"bad\.npy"):
        fingerprint_case(tmp_path / "img.npy", tmp_path / "bad.npy")


def test_empty_masks_give_zero_statistics(tmp_path):
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    np.save(tmp_path / "i" / "a.npy", np.ones((3, 4, 5), np.uint16))
    np.save(tmp_path / "m" / "a.npy", np.zeros((3, 4, 5), np.uint8))
    fp = fingerprint_dataset(tmp_path / "i", tmp_path / "m")
    assert (fp.mean, fp.std, fp.perc_005, fp.perc_995) == (0.0, 0.0, 0.0, 0.0)
    assert fp.records[0].foreground == 0


def test_mixed_dimensions_raise_like_biom3d(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 4, 5), np.uint8))
    np.save(tmp_path / "b.npy", np.zeros((4, 5), np.uint8))
    with pytest.raises(MixedDimensionsError) as info:
        fingerprint_dataset(tmp_path)
    assert "a.npy" in str(info.value) and "b.npy" in str(info.value)


def test_2d_images_count_as_one_slice(tmp_path):
    for i, shape in enumerate(((50, 60), (70, 80), (90, 40))):
        np.save(tmp_path / f"{i}.npy", np.zeros(shape, np.uint8))
    fp = fingerprint_dataset(tmp_path)
    assert fp.median_size == (1, 70, 60) and fp.is_2d and fp.median_zyx == (1, 70, 60)


def test_unreadable_file_is_named(tmp_path):
    np.save(tmp_path / "good.npy", np.zeros((3, 4, 5), np.uint8))
    (tmp_path / "broken.tif").write_bytes(b"this is not a tiff")
    with pytest.raises(ImageReadError, match=r"broken\.tif"):
        fingerprint_dataset(tmp_path)
    (tmp_path / "broken.tif").unlink()
    (tmp_path / "README.txt").write_text("notes")
    fp = fingerprint_dataset(tmp_path)
    assert [p.name for p in fp.skipped] == ["README.txt"]


def test_empty_folder(tmp_path):
    with pytest.raises(EmptyDatasetError):
        fingerprint_dataset(tmp_path)


@pytest.mark.parametrize("fraction", [0.0005, 0.3, 0.999])
def test_drawn_positions_are_the_ranked_foreground_voxels(tmp_path, compiled_or_numpy, fraction):
    # a mask larger than one block of the foreground index, sparse to nearly full, odd-sized
    rng = np.random.default_rng(3)
    mask = (rng.random((7, 61, 83)) < fraction).astype(np.uint16) * 7
    image = rng.integers(0, 60000, mask.shape).astype(np.uint16)
    np.save(tmp_path / "m.npy", mask)
    np.save(tmp_path / "i.npy", image)
    record = fingerprint_case(tmp_path / "i.npy", tmp_path / "m.npy", seed=5, num_samples=3000)
    expected = np.random.default_rng(5).choice(image[mask > 0], 3000, replace=True)
    np.testing.assert_array_equal(record.samples, expected)
    assert record.samples.dtype == np.uint16


def test_mask_max_tells_a_0_255_mask_from_a_0_1_one(tmp_path):
    image = np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6)
    ones = np.zeros(image.shape, np.uint8)
    ones[1:3, 1:4, 2:5] = 1
    write_image(tmp_path / "i.tif", image)
    write_image(tmp_path / "ones.tif", ones)
    write_image(tmp_path / "bytes.tif", ones * 255)
    write_image(tmp_path / "empty.tif", np.zeros_like(ones))
    assert fingerprint_case(tmp_path / "i.tif", tmp_path / "ones.tif").mask_max == 1
    assert fingerprint_case(tmp_path / "i.tif", tmp_path / "bytes.tif").mask_max == 255
    assert fingerprint_case(tmp_path / "i.tif", tmp_path / "empty.tif").mask_max == 0
    assert fingerprint_case(tmp_path / "i.tif").mask_max == 0


@pytest.mark.parametrize(
    "dtype, suffix",
    [
        (np.uint8, ".tif"),  # memory-mapped, counted per block
        (np.int16, ".npy"),  # negative labels are background, as with biom3d's mask > 0
        (np.bool_, ".npy"),
        (np.float32, ".nii"),
        (np.uint16, ".nii.gz"),  # streamed, one bit per voxel
        (">u2", ".npy"),  # big-endian: read through the stream path
        (np.uint16, ".mha"),  # pixels after a text header: 2-byte labels at an odd offset
    ],
)
def test_every_mask_kind_draws_like_biom3d(tmp_path, compiled_or_numpy, dtype, suffix):
    rng = np.random.default_rng(11)
    shape = (9, 37, 41)  # not a whole number of 128-voxel blocks
    labels = rng.integers(-2, 4, shape) * (rng.random(shape) < 0.3)
    mask = (labels > 0) if np.dtype(dtype) == np.bool_ else labels.astype(dtype)
    image = rng.integers(0, 4000, shape).astype(np.uint16)
    write_image(tmp_path / f"i{suffix}", image)
    write_image(tmp_path / f"m{suffix}", mask)
    record = fingerprint_case(tmp_path / f"i{suffix}", tmp_path / f"m{suffix}", num_samples=5000)
    expected = np.random.default_rng(42).choice(image[mask > 0], 5000, replace=True)
    np.testing.assert_array_equal(record.samples, expected)
    assert record.foreground == int(np.count_nonzero(mask > 0))
    assert record.mask_max == int(mask.max())


def test_non_integer_float_mask_is_refused_whatever_the_path(tmp_path):
    image = np.zeros((4, 16, 16), np.uint16)
    mask = np.zeros((4, 16, 16), np.float32)
    mask[2, 3, 4] = 0.5
    for suffix in (".npy", ".nii.gz"):
        write_image(tmp_path / f"i{suffix}", image)
        write_image(tmp_path / f"m{suffix}", mask)
        with pytest.raises(NonIntegerMaskError, match="non-integer"):
            fingerprint_case(tmp_path / f"i{suffix}", tmp_path / f"m{suffix}")


def test_huge_masks_are_read_in_spans_with_the_same_draw(tmp_path, monkeypatch, compiled_or_numpy):
    """A mask larger than the span the mapped pages are kept for gives the same draw."""
    from napari_autoconfig import foreground

    rng = np.random.default_rng(5)
    mask = (rng.random((6, 50, 70)) < 0.4).astype(np.uint8) * 3
    image = rng.integers(0, 60000, mask.shape).astype(np.uint16)
    write_image(tmp_path / "i.tif", image)
    write_image(tmp_path / "m.tif", mask)
    monkeypatch.setattr(foreground, "_RELEASE_BYTES", 3000)  # a few pieces per span
    monkeypatch.setattr(foreground, "_PIECE", 1024)
    monkeypatch.setattr(foreground, "_COMPILED_PIECE_BYTES", 1024)
    record = fingerprint_case(tmp_path / "i.tif", tmp_path / "m.tif", seed=8, num_samples=4000)
    expected = np.random.default_rng(8).choice(image[mask > 0], 4000, replace=True)
    np.testing.assert_array_equal(record.samples, expected)
    assert (record.foreground, record.mask_max) == (int(np.count_nonzero(mask)), 3)


@pytest.mark.parametrize(
    ("suffix", "keep_bits"),
    [(".tif", True), (".tif", False), (".nii.gz", True), (".nii.gz", False)],
    # huge: only counts kept, the drawn words read again (from the map, or inflated once more)
    ids=["mapped", "mapped-huge", "streamed", "streamed-huge"],
)
@pytest.mark.parametrize("density", [0.0005, 0.3, 0.97, 1.0])
def test_any_density_and_odd_shape_gives_biom3ds_draw(
    tmp_path, monkeypatch, compiled_or_numpy, suffix, keep_bits, density
):
    """Sparse or full masks whose size is no multiple of anything, in small pieces."""
    from napari_autoconfig import foreground

    if not keep_bits:
        monkeypatch.setattr(foreground, "_KEEP_BITS_BYTES", 0)
        monkeypatch.setattr(foreground, "_RELEASE_BYTES", 3000)  # several spans of re-reading

    rng = np.random.default_rng(int(density * 1000))
    shape = (5, 37, 43)  # 7,955 voxels: superblocks and pieces end mid-way
    mask = (rng.random(shape) < density).astype(np.uint8) * 2
    mask.flat[-1] = 1  # the very last voxel is foreground
    image = rng.integers(0, 60000, shape).astype(np.uint16)
    write_image(tmp_path / f"i{suffix}", image)
    write_image(tmp_path / f"m{suffix}", mask)
    monkeypatch.setattr(foreground, "_PIECE", 2048)
    monkeypatch.setattr(foreground, "_COMPILED_PIECE_BYTES", 2048)
    monkeypatch.setattr(foreground, "_BATCH", 700)
    record = fingerprint_case(tmp_path / f"i{suffix}", tmp_path / f"m{suffix}", 3, 5000)
    index = foreground.index_foreground(read_header(tmp_path / f"m{suffix}"))
    assert (index.bits is None) is not keep_bits
    expected = np.random.default_rng(3).choice(image[mask > 0], 5000, replace=True)
    np.testing.assert_array_equal(record.samples, expected)
    assert (record.foreground, record.mask_max) == (int(np.count_nonzero(mask)), int(mask.max()))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_percentiles_are_numpys_whatever_the_sample_type(dtype):
    """The dataset's 0.5 / 99.5 percentiles equal numpy's on the drawn samples, bit for bit,
    whether they are rebuilt from counts (small unsigned integers) or not."""
    from napari_autoconfig.fingerprint import _percentiles

    rng = np.random.default_rng(1)
    for size in (2**16 + 1, 240_007):
        values = rng.gamma(2.0, 300.0, size).clip(0, 60_000)
        values = values.astype(dtype)
        expected = np.percentile(values, (0.5, 99.5))
        np.testing.assert_array_equal(_percentiles(values, (0.5, 99.5)), expected)
        assert _percentiles(values, (0.5, 99.5)).dtype == expected.dtype


def test_percentiles_from_counts_match_numpys_interpolation_everywhere():
    """Percentiles rebuilt from the counts of small unsigned samples follow numpy's float64
    interpolation exactly: few or many distinct values, places that fall on a value or between
    two, the ends (0 and 100) and the middle."""
    from napari_autoconfig.fingerprint import _percentiles

    rng = np.random.default_rng(7)
    for trial in range(120):
        dtype = (np.uint8, np.uint16)[trial % 2]
        size = int(rng.integers(2**16 + 1, 2**16 + 40)) if trial % 3 == 0 else 100_003
        top = (3, 7, 256, 65536)[trial % 4] if dtype == np.uint16 else (3, 7, 256, 256)[trial % 4]
        values = rng.integers(0, top, size).astype(dtype)
        q = ((0.5, 99.5), (0.0, 100.0), (25.0, 50.0, 75.0), tuple(rng.uniform(0, 100, 4)))[
            trial % 4
        ]
        expected = np.percentile(values, q)
        found = _percentiles(values, q)
        assert found.dtype == expected.dtype
        np.testing.assert_array_equal(found, expected)
