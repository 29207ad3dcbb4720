"""The per-image table: one row per image, from the fingerprint's single pass, flags in words."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from datafiles import write_case, write_npy, write_odd_dataset
from napari_autoconfig.fingerprint import fingerprint_dataset
from napari_autoconfig.image_table import COLUMNS, image_rows, rows_csv
from napari_autoconfig.planners.biom3d import make_plan

SPACING = (2.0, 0.5, 0.5)


@pytest.fixture
def odd_dataset(tmp_path):
    """Five volumes: three ordinary, one thinner than the patch, one with an empty mask."""
    return write_odd_dataset(tmp_path)


def test_rows_follow_the_dataset_with_their_own_numbers(odd_dataset):
    images, masks, kept = odd_dataset
    fp = fingerprint_dataset(images, masks)
    plan = make_plan(fp.median_size)
    rows = image_rows(fp, plan, images, masks)

    assert [row.image for row in rows] == ["a.tif", "b.tif", "c.tif", "empty.tif", "thin.tif"]
    assert [row.index for row in rows] == [0, 1, 2, 3, 4]
    for row, record in zip(rows, fp.records):
        image, mask = kept[row.image]
        assert row.mask == row.image and row.mask_path == record.mask_path
        assert row.shape_zyx == image.shape and row.channels == 1 and row.dtype == "uint8"
        assert row.spacing_zyx == pytest.approx(SPACING) and row.unit == "micron"
        assert row.foreground_percent == pytest.approx(100 * np.count_nonzero(mask) / mask.size)
        if record.samples.size:  # the image's own sampled foreground, not the dataset's
            assert row.perc_005 == np.percentile(record.samples, 0.5)
            assert row.perc_995 == np.percentile(record.samples, 99.5)
            assert image[mask > 0].min() <= row.perc_005 <= row.perc_995 <= image.max()
    assert rows[3].perc_005 is None and rows[3].foreground_percent == 0


def test_flags_name_what_deserves_a_look(odd_dataset):
    images, masks, _ = odd_dataset
    fp = fingerprint_dataset(images, masks)
    plan = make_plan(fp.median_size)
    assert plan.patch[0] > 4  # the thin volume is thinner than the patch
    flags = {row.image: row.flags for row in image_rows(fp, plan, images, masks)}

    assert flags["thin.tif"] == (
        f"smaller than the patch along z (4 < {plan.patch[0]}): training pads it",
    )
    assert flags["empty.tif"] == ("mask without foreground",)
    assert flags["a.tif"] == flags["b.tif"] == flags["c.tif"] == ()
    # Without a plan, nothing can be smaller than the patch.
    assert not image_rows(fp)[4].flags


def test_odd_labels_spacing_and_pixel_type_are_flagged(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name in ("a.tif", "b.tif", "c.tif"):
        write_case(images, masks, name, (12, 40, 40))
    write_case(images, masks, "d_255.tif", (12, 40, 40), mask_value=255)
    write_case(images, masks, "e_coarse.tif", (12, 40, 40), spacing_zyx=(2.0, 1.5, 0.5))
    write_case(images, masks, "f_16bit.tif", (12, 40, 40), dtype=np.uint16)
    write_npy(images / "g_nospacing.npy", np.full((12, 40, 40), 60, np.uint8))
    mask = np.zeros((12, 40, 40), np.uint8)
    mask[4:8, 10:30, 10:30] = 1
    write_npy(masks / "g_nospacing.npy", mask)

    fp = fingerprint_dataset(images, masks)
    flags = {row.image: row.flags for row in image_rows(fp, make_plan(fp.median_size))}
    assert flags["d_255.tif"] == ("mask labels up to 255 where most masks go up to 1",)
    assert flags["e_coarse.tif"] == ("spacing along y is 3x the median (1.5 vs 0.5)",)
    assert flags["f_16bit.tif"] == ("pixel type uint16 where most images are uint8",)
    assert flags["g_nospacing.npy"] == ("no spacing while other images have one",)
    assert flags["a.tif"] == flags["b.tif"] == flags["c.tif"] == ()


def test_csv_has_the_table_columns(odd_dataset):
    images, masks, _ = odd_dataset
    fp = fingerprint_dataset(images, masks)
    rows = image_rows(fp, make_plan(fp.median_size), images, masks)
    table = list(csv.reader(io.StringIO(rows_csv(rows))))
    assert table[0] == list(COLUMNS)
    assert [line[0] for line in table[1:]] == [row.image for row in rows]
    thin = table[5]
    assert thin[0] == thin[-1] == "thin.tif"  # image first, mask last
    assert thin[1] == rows[4].flags[0]
    assert thin[2:6] == ["4 x 64 x 64", "1", "2 x 0.5 x 0.5 µm", "uint8"]
