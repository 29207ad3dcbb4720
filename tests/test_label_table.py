"""The per-label table on masks with known labels: shares, intensities, components, cases."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from datafiles import write_image
from napari_autoconfig.dataset import open_dataset
from napari_autoconfig.errors import Cancelled, MaskMismatchError
from napari_autoconfig.label_table import INSTANCES, case_labels, describe_labels, label_table

SHAPE = (12, 16, 20)
SPACING = (2.0, 0.5, 0.25)
PLANE_LABEL_BYTES = 4 * SHAPE[1] * SHAPE[2]


def _box(mask, start, stop, value):
    mask[tuple(slice(a, b) for a, b in zip(start, stop))] = value


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Case a: two cubes of label 1 and a bar of label 2 touching one of them; case b: a cube of
    label 1 and a tall bar of label 3 (only there), crossing every slab face."""
    folder = tmp_path_factory.mktemp("labels")
    a = np.zeros(SHAPE, np.uint8)
    _box(a, (0, 0, 0), (3, 3, 3), 1)  # 3 x 3 x 3
    _box(a, (5, 8, 8), (9, 12, 12), 1)  # 4 x 4 x 4
    _box(a, (5, 12, 8), (9, 14, 12), 2)  # touches the cube above by a face: its own object
    b = np.zeros(SHAPE, np.uint8)
    _box(b, (1, 1, 10), (3, 3, 12), 1)  # 2 x 2 x 2
    _box(b, (0, 10, 0), (12, 12, 1), 3)  # 12 x 2 x 1
    rng = np.random.default_rng(7)
    images = {
        "a": rng.integers(0, 300, SHAPE, dtype=np.uint16),
        "b": rng.integers(100, 1000, SHAPE, dtype=np.uint16),
    }
    for name, mask in (("a", a), ("b", b)):
        write_image(folder / "images" / f"{name}.tif", images[name], SPACING)
        write_image(folder / "masks" / f"{name}.tif", mask, SPACING)
    dataset = open_dataset(folder / "images", folder / "masks")
    masks = {"a": a, "b": b}
    return dataset, masks, images


def test_each_label_has_its_share_intensity_components_and_cases(labelled):
    dataset, masks, images = labelled
    table = label_table(dataset, slab_bytes=2 * PLANE_LABEL_BYTES)  # slabs of 2 planes

    assert [row.name for row in table.rows] == ["1", "2", "3"]
    assert not table.instances and table.n_cases == 2
    one, two, three = table.rows
    all_voxels = 2 * np.prod(SHAPE)
    assert one.voxels == 27 + 64 + 8 and one.share == pytest.approx((27 + 64 + 8) / all_voxels)
    assert two.voxels == 32 and three.voxels == 24

    # components of each value alone: label 2 touching a label-1 cube stays apart
    assert (one.objects.count, two.objects.count, three.objects.count) == (3, 1, 1)
    assert one.objects.max_extent_zyx == (4, 4, 4)
    assert one.objects.median_extent_zyx == (3.0, 3.0, 3.0)
    assert one.objects.max_extent_physical_zyx == (8.0, 2.0, 1.0)  # times (2, 0.5, 0.25)
    assert one.objects.unit == "micron"
    largest = one.objects.largest
    assert largest.image.name == "a.tif"
    assert (largest.start_zyx, largest.stop_zyx) == ((5, 8, 8), (9, 12, 12))
    # label 3's bar crosses every slab face: one object, in case b
    assert three.objects.max_extent_zyx == (12, 2, 1)
    assert three.objects.largest.image.name == "b.tif"

    # present in both masks, or in only one (and the table says so)
    assert (one.cases, two.cases, three.cases) == (2, 1, 1)
    assert not one.in_some_cases_only and three.in_some_cases_only
    assert "Label(s) 2, 3 appear in only some of the 2 masks" in "\n".join(table.notes())

    # intensity: numpy's mean and percentiles over every voxel under the label, both cases
    for row in table.rows:
        under = np.concatenate(
            [images[k][masks[k] == row.value].astype(np.float32) for k in ("a", "b")]
        )
        assert row.mean == pytest.approx(float(under.astype(np.float64).mean()), rel=1e-12)
        low, high = np.percentile(under, (0.5, 99.5))
        assert (row.percentile_00_5, row.percentile_99_5) == pytest.approx((low, high))

    lines = describe_labels(table)
    assert lines[2].startswith(
        "Label 3: 0.312 % of the voxels"
    )  # 24 of 7680 and "in 1 of 2 masks only" in lines[2]


def test_slabs_of_any_height_give_the_same_table(labelled):
    dataset, _, _ = labelled
    whole = label_table(dataset)
    for planes in (1, 5):
        sliced = label_table(dataset, slab_bytes=planes * PLANE_LABEL_BYTES)
        for a, b in zip(whole.rows, sliced.rows):
            assert (a.name, a.voxels, a.mean, a.percentile_99_5) == (
                b.name,
                b.voxels,
                b.mean,
                b.percentile_99_5,
            )
            assert a.objects.count == b.objects.count
            assert a.objects.max_extent_zyx == b.objects.max_extent_zyx


def test_instance_masks_make_one_instances_row(tmp_path):
    mask = np.zeros(SHAPE, np.uint16)
    for n in range(24):  # 24 numbered cells (more than 20 values: instances)
        z, y, x = 4 * (n // 16), 4 * (n // 4 % 4), 5 * (n % 4)
        _box(mask, (z, y, x), (z + 2, y + 2, x + 2 + (n == 0)), n + 1)
    _box(mask, (0, 0, 3), (2, 2, 5), 2)  # cell 2 widened to touch cell 1: still two cells
    image = np.random.default_rng(1).integers(0, 50, SHAPE, dtype=np.uint16)
    image_path = write_image(tmp_path / "images" / "cells.tif", image, SPACING)
    mask_path = write_image(tmp_path / "masks" / "cells.tif", mask, SPACING)

    table = label_table([(image_path, mask_path)], slab_bytes=PLANE_LABEL_BYTES)
    assert table.instances and table.most_in_one_mask == 24
    (row,) = table.rows
    assert row.name == INSTANCES and row.value is None
    assert row.objects.count == 24  # one component per instance
    assert row.voxels == int(np.count_nonzero(mask))
    under = image[mask > 0].astype(np.float32)
    assert row.mean == pytest.approx(float(under.mean(dtype=np.float64)))
    assert row.percentile_99_5 == pytest.approx(float(np.percentile(under, 99.5)))
    assert row.objects.max_extent_zyx == (2, 2, 4)  # cell 2, x 3 to 6
    assert "instance labels" in table.notes()[0]


def test_a_case_alone_and_a_mask_of_another_shape(tmp_path, labelled):
    dataset, _, _ = labelled
    case = dataset.cases[1]
    found = case_labels(case.image, case.mask)
    assert sorted(found.objects) == [1, 3] and not found.instances
    other = write_image(tmp_path / "other.tif", np.zeros((3, 4, 5), np.uint8))
    with pytest.raises(MaskMismatchError, match=r"other\.tif"):
        case_labels(case.image, other)


def test_progress_and_cancel(labelled):
    dataset, _, _ = labelled
    seen = []
    label_table(dataset, progress=lambda done, total, case: seen.append((done, total)))
    assert seen[-1] == (2, 2)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled, match="cancelled after 0 of 2"):
        label_table(dataset, cancel=stop.is_set)


def test_float_images_and_masks_give_numpys_numbers(tmp_path):
    mask = np.zeros((6, 10, 12), np.float32)  # a float mask: its classes read as integers
    mask[1:3, 1:4, 1:4] = 1.0
    mask[4:6, 5:9, 5:9] = 2.0
    image = np.random.default_rng(2).normal(50, 9, mask.shape).astype(np.float32)
    pair = (write_image(tmp_path / "i.npy", image), write_image(tmp_path / "m.npy", mask))
    table = label_table([pair], slab_bytes=4 * 120 * 2)  # slabs of 2 planes
    assert [row.value for row in table.rows] == [1, 2]
    for row in table.rows:
        under = image[mask == row.value]
        assert row.mean == pytest.approx(float(under.mean(dtype=np.float64)), rel=1e-12)
        low, high = np.percentile(under, (0.5, 99.5))
        assert (row.percentile_00_5, row.percentile_99_5) == pytest.approx((low, high))
    assert table.rows[1].objects.max_extent_physical_zyx is None  # .npy has no spacing
