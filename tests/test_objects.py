"""Objects against the patch: masks with known cuboids, counted and measured slab by slab."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy import ndimage

from datafiles import write_cuboid_pair, write_image
from napari_autoconfig.dataset import open_dataset
from napari_autoconfig.errors import Cancelled, DatasetError, MaskMismatchError
from napari_autoconfig.objects import (
    CONNECTIVITY,
    describe_objects,
    larger_than_patch,
    mask_objects,
    objects_dataset,
    objects_json,
)

SHAPE = (12, 16, 20)
PLANE_LABEL_BYTES = 4 * SHAPE[1] * SHAPE[2]  # one z plane of int32 labels


def _slabs(planes: int) -> int:
    """slab_bytes giving slabs of ``planes`` z planes on SHAPE."""
    return planes * PLANE_LABEL_BYTES


def test_known_cuboids_give_their_count_and_extents(tmp_path):
    cuboids = [
        ((0, 0, 0), (3, 4, 5)),  # 3 x 4 x 5
        ((1, 8, 8), (10, 12, 18)),  # 9 x 4 x 10, crosses slab faces at z 2, 4, 6, 8
        ((6, 0, 10), (7, 2, 11)),  # 1 x 2 x 1
    ]
    image, mask = write_cuboid_pair(tmp_path, "cells", SHAPE, cuboids, spacing_zyx=(2.0, 0.5, 0.25))
    summary = objects_dataset(open_dataset(image.parent, mask.parent), slab_bytes=_slabs(2))

    assert summary.count == 3
    assert summary.max_extent_zyx == (9, 4, 10)
    assert summary.median_extent_zyx == (3.0, 4.0, 5.0)
    # physical: each extent times the image's (z, y, x) spacing, in the file's unit
    assert summary.max_extent_physical_zyx == (18.0, 2.0, 2.5)
    assert summary.median_extent_physical_zyx == (6.0, 2.0, 1.25)
    assert summary.unit == "micron"
    box = summary.largest
    assert (box.image, box.mask) == (image, mask)
    assert (box.start_zyx, box.stop_zyx) == ((1, 8, 8), (10, 12, 18))
    assert box.voxels == 9 * 4 * 10


def test_one_slab_or_one_plane_per_slab_count_the_same(tmp_path):
    rng = np.random.default_rng(3)
    mask = (ndimage.uniform_filter(rng.random(SHAPE), 3) > 0.55).astype(np.uint8)
    expected, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    assert n > 5  # a mask with many irregular objects, some spanning several planes
    boxes = ndimage.find_objects(expected)
    extents = sorted(tuple(s.stop - s.start for s in box) for box in boxes)
    image_path = write_image(tmp_path / "noise.tif", mask.astype(np.uint16))
    mask_path = write_image(tmp_path / "noise_mask.tif", mask)
    for planes in (1, 2, 5, SHAPE[0]):
        found = mask_objects(image_path, mask_path, slab_bytes=_slabs(planes))
        assert found.count == n, planes
        assert sorted(map(tuple, found.extents_zyx.tolist())) == extents, planes
        assert found.voxels.sum() == mask.sum()


def test_objects_touching_by_a_corner_are_one_object_26_connectivity(tmp_path):
    assert CONNECTIVITY == 26
    cuboids = [
        ((0, 0, 0), (2, 3, 3)),  # ends at z 1, y 2, x 2 ...
        ((2, 3, 3), (4, 6, 6)),  # ... and this one starts at z 2, y 3, x 3: corner to corner,
        # across the face between slabs of 2 planes
        ((5, 0, 0), (6, 2, 2)),  # within one slab ...
        ((5, 2, 2), (6, 4, 4)),  # ... touching the previous by a corner in y, x
        ((9, 10, 10), (10, 12, 12)),  # one plane gap from the next: two objects
        ((11, 10, 10), (12, 12, 12)),
    ]
    image, mask = write_cuboid_pair(tmp_path, "corners", SHAPE, cuboids)
    found = mask_objects(image, mask, slab_bytes=_slabs(2))
    assert found.count == 4
    assert sorted(map(tuple, found.extents_zyx.tolist())) == [
        (1, 2, 2),
        (1, 2, 2),
        (1, 4, 4),
        (4, 6, 6),
    ]


def test_a_u_shape_split_by_slabs_is_merged_into_one(tmp_path):
    # Two pillars (separate in the first slabs) joined by a bridge in the last plane.
    cuboids = [((0, 2, 2), (12, 4, 4)), ((0, 2, 14), (12, 4, 16)), ((11, 2, 2), (12, 4, 16))]
    image, mask = write_cuboid_pair(tmp_path, "u", SHAPE, cuboids)
    found = mask_objects(image, mask, slab_bytes=_slabs(3))
    assert found.count == 1
    assert found.extents_zyx.tolist() == [[12, 2, 14]]
    assert found.largest.start_zyx == (0, 2, 2) and found.largest.stop_zyx == (12, 4, 16)


def test_compressed_nifti_streams_in_pieces_not_aligned_to_planes(tmp_path):
    shape = (9, 33, 31)  # a plane of 1023 voxels: the stream's blocks cut planes anywhere
    cuboids = [((0, 0, 0), (9, 5, 5)), ((2, 20, 20), (4, 33, 31))]
    image, mask = write_cuboid_pair(
        tmp_path, "ct", shape, cuboids, spacing_zyx=(3.0, 0.7, 0.7), suffix=".nii.gz"
    )
    found = mask_objects(image, mask, slab_bytes=4 * 33 * 31)
    assert sorted(map(tuple, found.extents_zyx.tolist())) == [(2, 13, 11), (9, 5, 5)]
    assert found.spacing_zyx == pytest.approx((3.0, 0.7, 0.7))
    assert found.unit == "mm"  # ITK's unit for NIfTI


def test_channels_are_labelled_apart(tmp_path):
    mask = np.zeros((2, *SHAPE), dtype=np.uint8)
    mask[0, 0:4, 0:4, 0:4] = 1
    mask[1, 0:4, 0:4, 0:4] = 1  # the same place in the other channel: another object
    mask[1, 8:12, 8:10, 8:9] = 1
    image = write_image(tmp_path / "images" / "two.npy", mask.astype(np.float32))
    mask_path = write_image(tmp_path / "masks" / "two.npy", mask)
    found = mask_objects(image, mask_path, slab_bytes=_slabs(2))
    assert found.count == 3
    assert found.spacing_zyx is None  # .npy has no spacing
    summary = objects_dataset([(image, mask_path)])
    assert summary.max_extent_physical_zyx is None and summary.largest.voxels == 64


def test_the_patch_is_compared_in_the_median_spacing(tmp_path):
    cuboids = [((0, 0, 0), (10, 4, 12))]
    image, mask = write_cuboid_pair(tmp_path, "long", SHAPE, cuboids, spacing_zyx=(1.0, 1.0, 1.0))
    summary = objects_dataset([(image, mask)])
    assert larger_than_patch(summary, (8, 64, 64)) == ("z",)
    assert larger_than_patch(summary, (16, 2, 8)) == ("y", "x")
    # Trained at a median spacing of 2 in z (x, y, z order), the object spans 5 planes: it fits.
    assert larger_than_patch(summary, (8, 64, 64), median_spacing_xyz=(1.0, 1.0, 2.0)) == ()
    lines = describe_objects(summary, (8, 64, 64))
    assert any("smaller than the largest objects along z" in line for line in lines)
    record = objects_json(summary, (8, 64, 64))
    assert record["count"] == 1 and record["max_extent"] == [10, 4, 12]
    assert record["larger_than_patch"] == ["z"]
    assert record["largest"]["start"] == [0, 0, 0] and record["largest"]["stop"] == [10, 4, 12]


def test_empty_masks_and_missing_masks(tmp_path):
    image, mask = write_cuboid_pair(tmp_path, "empty", SHAPE, [])
    summary = objects_dataset([(image, mask)])
    assert summary.count == 0 and summary.largest is None
    assert larger_than_patch(summary, (1, 1, 1)) == ()
    assert describe_objects(summary) == ["Objects: none (every mask is empty)"]
    with pytest.raises(DatasetError, match="Give the masks folder"):
        objects_dataset(open_dataset(image.parent))


def test_a_mask_of_another_shape_is_refused_with_both_names(tmp_path):
    image, _ = write_cuboid_pair(tmp_path, "a", SHAPE, [])
    other = write_image(tmp_path / "other.tif", np.zeros((3, 4, 5), np.uint8))
    with pytest.raises(MaskMismatchError, match=r"other\.tif"):
        mask_objects(image, other)


def test_progress_on_any_executor_and_cancel(tmp_path):
    for i in range(4):
        write_cuboid_pair(tmp_path, f"c{i}", SHAPE, [((0, 0, 0), (i + 1, 2, 2))])
    dataset = open_dataset(tmp_path / "images", tmp_path / "masks")
    seen = []
    with ThreadPoolExecutor(2) as pool:
        summary = objects_dataset(
            dataset, executor=pool, progress=lambda done, total, r: seen.append((done, total))
        )
    assert seen[-1] == (4, 4) and len(seen) == 4
    assert [r.count for r in summary.records] == [1, 1, 1, 1]
    assert summary.max_extent_zyx == (4, 2, 2)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled, match="cancelled after 0 of 4"):
        objects_dataset(dataset, cancel=stop.is_set)


def test_2d_masks_are_one_plane_with_8_connectivity(tmp_path):
    mask = np.zeros((30, 40), dtype=np.uint8)
    mask[0:5, 0:5] = 1
    mask[5:9, 5:20] = 1  # touches the first square by a corner only: the same object
    mask[20:30, 30:32] = 1
    image = write_image(tmp_path / "images" / "flat.npy", mask.astype(np.uint16))
    mask_path = write_image(tmp_path / "masks" / "flat.npy", mask)
    summary = objects_dataset(open_dataset(image.parent, mask_path.parent), slab_bytes=1)
    assert summary.count == 2
    assert summary.max_extent_zyx == (1, 10, 20)
    assert summary.largest.start_zyx == (0, 0, 0) and summary.largest.stop_zyx == (1, 9, 20)
    assert larger_than_patch(summary, (1, 8, 64)) == ("y",)


def test_the_core_pieces_import_no_gui_library():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import napari_autoconfig.objects, napari_autoconfig.normalization\n"
        "gui = ('qtpy', 'napari', 'magicgui', 'superqt', 'vispy', 'matplotlib', 'dask')\n"
        "print('LOADED', [m for m in gui if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
