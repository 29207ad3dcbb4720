"""Exploring a dataset in the dock: the per-image table, its flags, an image opened under the boxes.

Through the manifest, on real files: a dataset with a volume thinner than the patch and one whose
mask is empty.
"""

from __future__ import annotations

import csv

import dask.array as da
import numpy as np
import pytest

from datafiles import ODD_SHAPES_ZYX, SPACING_ZYX, write_odd_dataset
from gui_steps import open_row
from napari_autoconfig._napari.boxes import AUG_NAME, PATCH_NAME, box_world_bounds, is_box_layer

SCALE = np.array(SPACING_ZYX)


@pytest.fixture
def explored(make_napari_viewer, dock_widget, run_and_wait, tmp_path):
    """The widget docked, the odd dataset fingerprinted, no image open yet."""
    viewer = make_napari_viewer(show=True)
    images, masks, kept = write_odd_dataset(tmp_path / "odd")
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = images, masks
    assert run_and_wait(widget) == "done"
    return viewer, widget, kept


def table_rows(widget) -> list[dict[str, str]]:
    """The visible rows of the images table, as {column title: text}."""
    view = widget["images_table"].native
    titles = [view.horizontalHeaderItem(c).text() for c in range(view.columnCount())]
    return [
        {t: view.item(r, c).text() for c, t in enumerate(titles)}
        for r in range(view.rowCount())
        if not view.isRowHidden(r)
    ]


def world_bounds(layer) -> np.ndarray:
    """The image's voxel edges in world coordinates, rows min / max."""
    shape = np.asarray(layer.data.shape, dtype=float)
    return np.vstack([layer.data_to_world(-0.5 * np.ones(3)), layer.data_to_world(shape - 0.5)])


def test_table_lists_every_image_with_its_flags(explored, qtbot, tmp_path, monkeypatch):
    _viewer, widget, kept = explored
    rows = table_rows(widget)
    assert [row["image"] for row in rows] == sorted(ODD_SHAPES_ZYX)  # the dataset's order
    by_name = {row["image"]: row for row in rows}
    patch_z = widget.plan.patch[0]
    assert by_name["thin.tif"]["flags"] == (
        f"smaller than the patch along z (4 < {patch_z}): training pads it"
    )
    assert by_name["empty.tif"]["flags"] == "mask without foreground"
    assert by_name["empty.tif"]["foreground %"] == "0"
    for name in ("a.tif", "b.tif", "c.tif"):
        row = by_name[name]
        assert row["flags"] == ""
        z, y, x = ODD_SHAPES_ZYX[name]
        assert row["shape (z, y, x)"] == f"{z} x {y} x {x}"
        assert row["spacing (z, y, x)"] == "2 x 0.5 x 0.5 µm"
        image, mask = kept[name]
        assert float(row["foreground %"]) == pytest.approx(
            100 * np.count_nonzero(mask) / mask.size, rel=1e-2
        )
        assert image[mask > 0].min() <= float(row["p0.5"]) <= float(row["p99.5"])
    assert "2 flagged" in widget["images_summary"].value

    # Only the flagged rows, then all again.
    widget["only_flagged"].value = True
    assert [row["image"] for row in table_rows(widget)] == ["empty.tif", "thin.tif"]
    widget["only_flagged"].value = False
    assert len(table_rows(widget)) == len(ODD_SHAPES_ZYX)

    # Sorting by shape puts the thin volume first, and the selection still opens the right row.
    view = widget["images_table"].native
    view.sortItems(2)
    assert table_rows(widget)[0]["image"] == "thin.tif"

    # CSV export: every row, the table's columns.
    target = tmp_path / "table.csv"
    monkeypatch.setattr(
        "napari_autoconfig._napari.images_panel.ask_csv_path", lambda parent: str(target)
    )
    widget["export_csv"].native.click()
    with target.open(encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert [line["image"] for line in written] == sorted(ODD_SHAPES_ZYX)
    assert written[-1]["flags"] == by_name["thin.tif"]["flags"]
    assert str(target) in widget["status"].value


def test_a_row_opens_lazily_under_its_boxes_and_replaces_the_last(explored, qtbot):
    viewer, widget, kept = explored
    image = open_row(widget, qtbot, "b.tif")

    # The image and its mask, lazily, at their spacing.
    assert isinstance(image.data, da.Array)  # nothing decoded up front
    np.testing.assert_allclose(image.scale, SCALE)
    (mask,) = [lyr for lyr in viewer.layers if type(lyr).__name__ == "Labels"]
    assert mask.name == "b mask"
    np.testing.assert_allclose(mask.scale, SCALE)
    middle = ODD_SHAPES_ZYX["b.tif"][0] // 2
    np.testing.assert_array_equal(np.asarray(image.data[middle]), kept["b.tif"][0][middle])
    np.testing.assert_array_equal(np.asarray(mask.data[middle]), kept["b.tif"][1][middle])

    # The boxes sit on it, centred, inside the image (b is larger than the patch on every axis).
    assert widget.boxes.image is image
    inside = world_bounds(image)
    for name in (PATCH_NAME,):
        (box,) = [lyr for lyr in viewer.layers if lyr.name == name]
        np.testing.assert_allclose(box.scale, image.scale)
        bounds = box_world_bounds(box)
        assert np.all(bounds[0] >= inside[0] - 1e-6) and np.all(bounds[1] <= inside[1] + 1e-6)
        np.testing.assert_allclose(bounds.mean(axis=0), inside.mean(axis=0), atol=SCALE.max())
    assert "Boxes on 'b'" in widget["notes"].value

    # Another row (double-click) replaces the pair instead of piling layers up.
    before = len(viewer.layers)
    view = widget["images_table"].native
    (r,) = [r for r in range(view.rowCount()) if view.item(r, 0).text() == "thin.tif"]
    view.selectRow(r)
    with qtbot.waitSignal(widget.image_opened, timeout=30_000) as blocker:
        view.cellDoubleClicked.emit(r, 0)
    thin = blocker.args[0]
    assert len(viewer.layers) == before
    assert image not in viewer.layers and mask not in viewer.layers
    assert [lyr.name for lyr in viewer.layers if not is_box_layer(lyr)] == ["thin", "thin mask"]
    assert widget.boxes.image is thin
    box_layers = [lyr for lyr in viewer.layers if is_box_layer(lyr)]
    assert {lyr.name for lyr in box_layers} == {PATCH_NAME, AUG_NAME}
    assert viewer.layers.index(box_layers[0]) > viewer.layers.index(thin)  # drawn above it
    assert "larger than this image along z" in widget["notes"].value


def test_quick_clicks_and_the_user_s_own_changes_between_opens(explored, qtbot):
    """In a drawn viewer: a second row asked for before the first is shown, the opened mask
    deleted and the image moved by the user, the row already open opened again."""
    viewer, widget, _kept = explored
    rows = {row.image: row for row in widget.images_panel.rows}
    with qtbot.waitSignal(widget.image_opened, timeout=30_000) as blocker:
        widget.open_row(rows["a.tif"])
        widget.open_row(rows["c.tif"])  # before a.tif was shown: only c.tif is opened
    qtbot.wait(150)
    assert blocker.args[0].name == "c"
    qtbot.wait(300)  # nothing of a.tif arrives later
    assert [lyr.name for lyr in viewer.layers if not is_box_layer(lyr)] == ["c", "c mask"]

    viewer.layers.remove("c mask")  # the user deletes the mask and moves the image to the top
    viewer.layers.move(viewer.layers.index("c"), len(viewer.layers))
    qtbot.wait(150)
    b = open_row(widget, qtbot, "b.tif")
    qtbot.wait(150)
    assert [lyr.name for lyr in viewer.layers if not is_box_layer(lyr)] == ["b", "b mask"]
    assert widget.boxes.image is b

    again = open_row(widget, qtbot, "b.tif")  # the row already open
    qtbot.wait(150)
    assert again is not b and b not in viewer.layers
    assert [lyr.name for lyr in viewer.layers if not is_box_layer(lyr)] == ["b", "b mask"]
    box_layers = [lyr for lyr in viewer.layers if is_box_layer(lyr)]
    assert len(box_layers) == 2
    assert min(viewer.layers.index(lyr) for lyr in box_layers) > viewer.layers.index(again)
