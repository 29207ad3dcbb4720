"""The user's story in the widget: dock it, pick folders, fingerprint, read the plan, export.

Every test docks the widget through the manifest, runs the real worker on real TIFFs written to
tmp_path and asserts real numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from napari.utils import progress
from qtpy.QtWidgets import QApplication

from datafiles import MEDIAN_ZYX, SPACING_ZYX, write_dataset
from napari_autoconfig._napari.boxes import (
    AUG_NAME,
    PATCH_NAME,
    box_world_bounds,
    is_box_layer,
    target_image,
)
from napari_autoconfig._napari.settings import settings_path
from napari_autoconfig.planners import biom3d

SCALE = np.array(SPACING_ZYX)
TRANSLATE = np.array([10.0, 3.0, -2.0])


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer(show=True)


@pytest.fixture
def widget(viewer, dataset, dock_widget):
    """The docked widget pointed at the shared dataset, with one anisotropic volume open."""
    rng = np.random.default_rng(1)
    viewer.add_image(
        rng.random((30, 90, 80), dtype=np.float32), name="volume", scale=SCALE, translate=TRANSLATE
    )
    w = dock_widget(viewer)
    images, masks = dataset
    w["images"].value = images
    w["masks"].value = masks
    return w


def rows(table) -> list[list[str]]:
    """The text of a table's rows, as the user reads them."""
    view = table.native
    return [
        [view.item(r, c).text() if view.item(r, c) else "" for c in range(view.columnCount())]
        for r in range(view.rowCount())
    ]


def cells(table) -> dict[str, str]:
    """A two-column table as {title: value}."""
    return {row[0]: row[1] for row in rows(table)}


def box(viewer, name):
    (layer,) = [lyr for lyr in viewer.layers if lyr.name == name]
    return layer


def test_fingerprint_shows_numbers_snippet_and_boxes(viewer, widget, qtbot, run_and_wait):
    assert run_and_wait(widget) == "done"
    # one activity bar per run, and none left open in napari's activity dock once the worker ended
    qtbot.waitUntil(lambda: widget.worker is None, timeout=5000)
    assert [bar for bar in progress._all_instances if "fingerprinting" in (bar.desc or "")] == []

    fp = widget.result
    assert fp.median_zyx == MEDIAN_ZYX
    assert fp.median_spacing_zyx == pytest.approx(SPACING_ZYX)
    expected = biom3d.make_plan(MEDIAN_ZYX)
    assert widget.plan.patch == expected.patch
    assert widget.plan.aug_patch == expected.aug_patch
    assert widget.plan.batch == expected.batch == 16

    summary = cells(widget["summary"])
    assert summary["Median size z, y, x"] == "22 x 66 x 62"
    assert summary["Median spacing"] == "2 x 0.5 x 0.5 µm"
    assert summary["Foreground mean ± std"] == f"{fp.mean:.4g} ± {fp.std:.4g}"
    assert summary["Foreground 0.5–99.5 %"] == f"{fp.perc_005:.4g} – {fp.perc_995:.4g}"
    plan_rows = rows(widget["plan_table"])
    assert plan_rows[0] == ["Patch", *map(str, expected.patch)]
    assert plan_rows[1] == ["Aug. patch", *map(str, expected.aug_patch)]
    assert plan_rows[2] == ["Poolings", *map(str, expected.pool)]
    assert plan_rows[3][:2] == ["Batch", "16"]
    # the reasons: words first, then the planner's arithmetic
    tip = widget["plan_table"].native.item(0, 1).toolTip()
    assert tip.startswith("The block of image the network learns from")
    assert expected.reasons[0] in tip
    assert widget["progress"].value == widget["progress"].max == 3

    snippet = widget.snippet
    assert widget["config"].value == snippet
    assert f"PATCH_SIZE = {list(expected.patch)}" in snippet
    assert "BATCH_SIZE = 16" in snippet
    assert widget["config"].read_only

    # Two box layers on the volume, in its voxel grid and world coordinates.
    image = box(viewer, "volume")
    for name, size in ((PATCH_NAME, expected.patch), (AUG_NAME, expected.aug_patch)):
        layer = box(viewer, name)
        assert is_box_layer(layer)
        np.testing.assert_allclose(layer.scale, image.scale)
        bounds = box_world_bounds(layer)
        np.testing.assert_allclose(bounds[1] - bounds[0], np.array(size) * SCALE)
        corner_vox = (np.asarray(layer.translate) - TRANSLATE) / SCALE
        np.testing.assert_allclose(corner_vox, np.round(corner_vox))  # on the image's voxel grid
    # Concentric, and centred on the view (the middle of the volume when nothing moved).
    centre = box_world_bounds(box(viewer, PATCH_NAME)).mean(axis=0)
    aug_centre = box_world_bounds(box(viewer, AUG_NAME)).mean(axis=0)
    np.testing.assert_allclose(centre, aug_centre, atol=SCALE.max())
    volume_centre = TRANSLATE + (np.array([30, 90, 80]) - 1) / 2 * SCALE
    np.testing.assert_allclose(centre, volume_centre, atol=SCALE.max())
    # The boxes are never taken for the user's image, even when selected.
    viewer.layers.selection.active = box(viewer, PATCH_NAME)
    assert target_image(viewer) is image

    # Copy puts the snippet on the clipboard.
    widget["copy"].native.click()
    assert QApplication.clipboard().text() == snippet


def test_limits_replan_from_cache_and_are_remembered(
    viewer, widget, qtbot, monkeypatch, run_and_wait
):
    run_and_wait(widget)
    first = widget.result

    def no_reading(*args, **kwargs):
        raise AssertionError("re-planning must not read files")

    monkeypatch.setattr("napari_autoconfig.readers.read_header", no_reading)
    monkeypatch.setattr("napari_autoconfig._napari.run.fingerprint_dataset", no_reading)

    widget["max_dims"].value = (64, 64, 64)
    expected = biom3d.make_plan(MEDIAN_ZYX, biom3d.Limits(max_dims=(64, 64, 64)))
    assert widget.result is first
    assert widget.plan.patch == expected.patch != biom3d.make_plan(MEDIAN_ZYX).patch
    assert f"PATCH_SIZE = {list(expected.patch)}" in widget.snippet
    assert box(viewer, PATCH_NAME).data.shape == expected.patch
    assert box(viewer, AUG_NAME).data.shape == tuple(expected.aug_patch)

    widget["max_batch"].value = 4
    assert widget.plan.batch == 2  # biom3d's batch for this patch is 2: within [2, 4]
    widget["max_dims"].value = (128, 128, 128)
    assert widget.plan.batch == 4 and "BATCH_SIZE = 4" in widget.snippet
    widget["batch_rule"].value = "preprocessing"  # 3 images // 20 = 0 -> min batch 2
    assert widget.plan.batch == 2

    stored = json.loads(settings_path().read_text())
    assert stored["max_dims"] == [128, 128, 128]
    assert stored["max_batch"] == 4
    assert stored["batch_rule"] == "preprocessing"
    assert stored["images"] == str(widget["images"].value)

    # A new widget (next napari launch) starts from the remembered folders and limits.
    again = type(widget)(viewer)
    assert again["max_dims"].value == (128, 128, 128)
    assert again["max_batch"].value == 4
    assert again["batch_rule"].value == "preprocessing"
    assert str(again["images"].value) == stored["images"]
    assert str(again["masks"].value) == stored["masks"]


def test_impossible_limits_leave_nothing_exportable(viewer, widget, qtbot, run_and_wait):
    assert run_and_wait(widget) == "done"
    good = widget.snippet
    assert [lyr.name for lyr in viewer.layers if is_box_layer(lyr)]

    # min(max_dims) // 2**max_pool = 16 // 32 = 0: biom3d refuses such limits.
    widget["max_dims"].value = (16, 16, 16)
    assert widget.plan is None and widget.snippet == "" and widget["config"].value == ""
    for name in ("copy", "save", "update_config", "recentre"):
        assert not widget[name].enabled, name
    assert not [lyr for lyr in viewer.layers if is_box_layer(lyr)]
    status = widget["status"].value
    assert status.startswith("Error: These limits cannot be used:") and "max_pool" in status
    assert cells(widget["summary"])["Median size z, y, x"] == "22 x 66 x 62"  # still known

    widget["max_dims"].value = (128, 128, 128)
    assert widget.snippet == good and widget["config"].value == good
    assert widget.plan.patch == biom3d.make_plan(MEDIAN_ZYX).patch
    for name in ("copy", "save", "update_config", "recentre"):
        assert widget[name].enabled, name
    qtbot.waitUntil(lambda: len([lyr for lyr in viewer.layers if is_box_layer(lyr)]) == 2)
    assert box(viewer, PATCH_NAME).data.shape == widget.plan.patch


def test_closing_the_dock_lets_go_of_the_viewer(viewer, widget, qtbot, run_and_wait, dock_widget):
    assert run_and_wait(widget) == "done"
    qtbot.waitUntil(lambda: len([lyr for lyr in viewer.layers if is_box_layer(lyr)]) == 2)
    boxes = widget.boxes
    patch = box(viewer, PATCH_NAME)
    assert boxes._on_click in viewer.mouse_drag_callbacks
    listened = len(patch.events.affine.callbacks)

    viewer.window.remove_dock_widget(widget.native)  # what the dock's close button does
    assert boxes._on_click not in viewer.mouse_drag_callbacks
    assert len(patch.events.affine.callbacks) == listened - 1
    assert boxes._handlers == []
    # The viewer's events no longer reach the widget: removing the image is not an error.
    viewer.layers.remove(box_layer_free(viewer, "volume"))
    assert not widget["status"].value.startswith("Error:")
    widget.closed()  # a second call (the Qt object's destruction later) is harmless


def test_out_of_range_settings_fall_back_to_defaults(
    make_napari_viewer, isolated_config, dock_widget
):
    path = isolated_config / "napari-autoconfig" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {"max_batch": 0, "min_batch": 5000, "max_dims": [64, 8192, 64], "batch_rule": "fixed"}
        )
    )
    viewer = make_napari_viewer(show=True)
    with pytest.warns(UserWarning) as caught:
        w = dock_widget(viewer)
    ignored = [str(x.message) for x in caught if "ignoring" in str(x.message)]
    assert len(ignored) == 3
    for what in ("max_dims = [64, 8192, 64]", "max_batch = 0", "min_batch = 5000"):
        assert any(what in message and str(path) in message for message in ignored), what
    defaults = biom3d.Limits()
    assert w["max_batch"].value == defaults.max_batch
    assert w["min_batch"].value == defaults.min_batch
    assert w["max_dims"].value == defaults.max_dims


def test_update_dialog_offers_python_and_yaml_configs(viewer, widget, monkeypatch):
    from napari_autoconfig._napari import export_panel

    asked = []

    def fake_dialog(parent, caption, folder, filters):
        asked.append(filters)
        return "", ""

    monkeypatch.setattr(export_panel.QFileDialog, "getOpenFileName", fake_dialog)
    assert export_panel.ask_config_path(None) == ""
    assert asked == ["biom3d config (*.py *.yaml *.yml)"]


def test_cancel_keeps_previous_result(viewer, widget, qtbot, tmp_path, run_and_wait):
    run_and_wait(widget)
    first, snippet = widget.result, widget.snippet

    # Many small files, cancelled on the first progress step: it stops well before the end.
    many_images, many_masks = write_dataset(tmp_path / "many", shapes=[(4, 16, 16)] * 80)
    widget["images"].value = many_images
    widget["masks"].value = many_masks
    steps: list[int] = []

    def cancel_on_first(done, total, name):
        steps.append(done)
        if len(steps) == 1:
            widget["cancel"].native.click()

    widget._relay.step.connect(cancel_on_first)
    outcomes = []
    widget.run_finished.connect(outcomes.append)
    widget["fingerprint"].native.click()
    assert not widget["fingerprint"].enabled and widget["cancel"].enabled
    qtbot.waitUntil(lambda: bool(outcomes) and widget.worker is None, timeout=60_000)
    assert outcomes == ["cancelled"]
    assert max(steps) < 80
    assert widget.result is first and widget.snippet == snippet
    assert "Cancelled" in widget["status"].value
    assert widget["fingerprint"].enabled and not widget["cancel"].enabled


def test_empty_folder_is_a_clear_error(viewer, widget, qtbot, tmp_path, run_and_wait):
    empty = tmp_path / "empty"
    empty.mkdir()
    widget["images"].value = empty
    widget["masks"].value = None
    assert run_and_wait(widget) == "error"
    status = widget["status"].value
    assert status.startswith("Error:")
    assert str(empty) in status
    assert "Traceback" not in status
    assert widget.result is None and widget.snippet == ""
    assert widget["fingerprint"].enabled
    assert not [lyr for lyr in viewer.layers if is_box_layer(lyr)]


def test_boxes_follow_the_selected_image_and_warn_when_too_big(viewer, widget, qtbot, run_and_wait):
    small = viewer.add_image(np.zeros((8, 40, 40), np.uint8), name="small", scale=(3, 1, 1))
    viewer.layers.selection.active = box_layer_free(viewer, "volume")
    run_and_wait(widget)
    assert widget.boxes.image.name == "volume"
    assert "larger than this image" not in widget["notes"].value

    viewer.layers.selection.active = small  # the boxes follow a turn later
    qtbot.waitUntil(lambda: widget.boxes.image is small, timeout=5000)
    qtbot.waitUntil(lambda: np.allclose(box(viewer, PATCH_NAME).scale, (3, 1, 1)), timeout=5000)
    bounds = box_world_bounds(box(viewer, PATCH_NAME))
    np.testing.assert_allclose(bounds[1] - bounds[0], np.array(widget.plan.patch) * (3, 1, 1))
    text = widget["notes"].value
    assert "larger than this image along z" in text and "Boxes on 'small'" in text


def box_layer_free(viewer, name):
    return next(lyr for lyr in viewer.layers if lyr.name == name)


def test_2d_dataset_gets_rectangles(make_napari_viewer, qtbot, tmp_path, run_and_wait, dock_widget):
    import tifffile

    viewer = make_napari_viewer(show=True)
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(2)
    for i, shape in enumerate(((96, 80), (100, 84), (98, 82))):
        tifffile.imwrite(images / f"im{i}.tif", rng.integers(0, 255, shape, dtype=np.uint8))
        tifffile.imwrite(masks / f"im{i}.tif", (rng.random(shape) > 0.5).astype(np.uint8))
    viewer.add_image(rng.random((98, 82)), name="plane", scale=(0.4, 0.4))
    w = dock_widget(viewer)
    w["images"].value, w["masks"].value = images, masks
    assert run_and_wait(w) == "done"
    assert w.result.is_2d
    assert cells(w["summary"])["Median size z, y, x"] == "98 x 82 (2D)"
    layer = box(viewer, PATCH_NAME)
    assert layer.ndim == 2
    bounds = box_world_bounds(layer)
    np.testing.assert_allclose(bounds[1] - bounds[0], np.array(w.plan.patch[1:]) * 0.4)


def test_save_and_update_config(viewer, widget, qtbot, tmp_path, monkeypatch, run_and_wait):
    run_and_wait(widget)
    target = tmp_path / "new_config.py"
    monkeypatch.setattr(
        "napari_autoconfig._napari.export_panel.ask_save_path", lambda parent: str(target)
    )
    widget["save"].native.click()
    text = target.read_text()
    assert f"PATCH_SIZE = {list(widget.plan.patch)}" in text
    assert str(target) in widget["status"].value

    existing = tmp_path / "biom3d_config.py"
    original = (
        b"# my training\nDESC = 'nuclei'\nBATCH_SIZE = 99\n"
        b"PATCH_SIZE = [1, 2, 3]\nNB_EPOCHS = 1000\n"
    )
    existing.write_bytes(original)
    monkeypatch.setattr(
        "napari_autoconfig._napari.export_panel.ask_config_path", lambda parent: str(existing)
    )
    widget["update_config"].native.click()
    updated = existing.read_text()
    assert "BATCH_SIZE = 16" in updated and "NB_EPOCHS = 1000" in updated
    assert "DESC = 'nuclei'" in updated
    status = widget["status"].value
    assert "BATCH_SIZE: 99 -> 16" in status and "Backup:" in status
    backup = tmp_path / "biom3d_config.py.bak"
    assert str(backup) in status
    assert backup.read_bytes() == original

    # A config that cannot be parsed: a clear message, the file untouched, no exception.
    broken = tmp_path / "broken.py"
    broken.write_text("BATCH_SIZE = (\n")
    monkeypatch.setattr(
        "napari_autoconfig._napari.export_panel.ask_config_path", lambda parent: str(broken)
    )
    widget["update_config"].native.click()
    assert widget["status"].value.startswith("Error:") and "broken.py" in widget["status"].value
    assert broken.read_text() == "BATCH_SIZE = (\n"


def test_unreadable_file_is_a_clear_error(viewer, widget, qtbot, tmp_path, run_and_wait):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "garbage.tif").write_bytes(b"this is not a tiff")
    widget["images"].value = bad
    widget["masks"].value = None
    assert run_and_wait(widget) == "error"
    assert "garbage.tif" in widget["status"].value
    assert "Traceback" not in widget["status"].value


def test_sample_data_opens_volume_and_mask_at_their_spacing(viewer):
    from napari_autoconfig.sample import sample_folder

    layers = viewer.open_sample("napari-autoconfig", "nuclei")
    kinds = sorted(type(lyr).__name__ for lyr in layers)
    assert kinds == ["Image", "Labels"]
    for lyr in layers:
        np.testing.assert_allclose(lyr.scale, (2.0, 0.5, 0.5))
    image = next(lyr for lyr in layers if type(lyr).__name__ == "Image")
    mask = next(lyr for lyr in layers if type(lyr).__name__ == "Labels")
    assert image.data.ndim == 3
    assert (image.name, mask.name) == ("nuclei_01", "nuclei_01 mask")
    assert mask.opacity == pytest.approx(0.4)
    assert image.metadata["path"] == str(sample_folder() / "images" / "nuclei_01.tif")
    assert mask.metadata["path"] == str(sample_folder() / "masks" / "nuclei_01.tif")
    assert image.metadata["spacing_xyz"] == pytest.approx((0.5, 0.5, 2.0))
    assert (sample_folder() / "images").is_dir()
