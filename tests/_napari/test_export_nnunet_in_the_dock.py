"""Export nnU-Net dataset… in the Config tab: a user fingerprints a folder of ImageJ volumes with
0/255 masks, picks a new DatasetNNN_Name folder, and gets nnU-Net's raw dataset, on the worker
thread, with Cancel; a wrong folder name is one notification, never an exception."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import tifffile

from datafiles import write_case

PICK = "napari_autoconfig._napari.export_panel.ask_export_folder"


def exporter(widget):
    from napari_autoconfig._napari.export_panel import ExportPanel

    return widget.panel(ExportPanel)


@pytest.fixture
def fingerprinted(make_napari_viewer, dock_widget, run_and_wait, tmp_path):
    """A shown viewer, the dock, and three 0/255 volumes fingerprinted."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for number in range(3):
        write_case(images, masks, f"cell_{number}.tif", (6 + number, 20, 18), mask_value=255)
    viewer = make_napari_viewer(show=True)
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = images, masks
    assert run_and_wait(widget) == "done"
    return widget, masks


def test_the_export_writes_nnunets_dataset_and_says_how_to_train(
    fingerprinted, tmp_path, qtbot, monkeypatch
):
    widget, masks = fingerprinted
    target = tmp_path / "raw" / "Dataset501_Cells"
    target.mkdir(parents=True)  # made in the folder dialog, empty
    monkeypatch.setattr(PICK, lambda parent: str(target))
    assert widget["export_nnunet"].enabled

    widget["export_nnunet"].native.click()

    qtbot.waitUntil(lambda: exporter(widget).export_worker is None, timeout=30_000)
    result = widget["export_result"].value
    assert result.startswith(f"Exported 3 cases to {target} (.tif, read by nnU-Net's Tiff3DIO")
    assert "nnUNetv2_train 501 3d_fullres 0" in result
    meta = json.loads((target / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "label_255": 1}
    label = tifffile.imread(target / "labelsTr" / "cell_1.tif")
    np.testing.assert_array_equal(label, tifffile.imread(masks / "cell_1.tif") // 255)
    assert widget["export_nnunet"].enabled and not widget["cancel_nnunet_export"].enabled


def test_cancel_stops_the_export_and_leaves_nothing(fingerprinted, tmp_path, qtbot, monkeypatch):
    import napari_autoconfig._napari.export_panel as panel

    widget, _ = fingerprinted
    target = tmp_path / "Dataset502_Cells"
    monkeypatch.setattr(PICK, lambda parent: str(target))
    real = panel.export_nnunet

    def held_after_the_first_step(*args, progress, cancel, **kwargs):
        def step(done, total):
            progress(done, total)
            # the worker thread waits here until the user has clicked Cancel (10 s at most)
            for _ in range(1000):
                if cancel():
                    break
                time.sleep(0.01)

        return real(*args, progress=step, cancel=cancel, **kwargs)

    monkeypatch.setattr(panel, "export_nnunet", held_after_the_first_step)

    widget["export_nnunet"].native.click()
    qtbot.waitUntil(lambda: widget["cancel_nnunet_export"].enabled)
    widget["cancel_nnunet_export"].native.click()

    qtbot.waitUntil(lambda: exporter(widget).export_worker is None, timeout=30_000)
    assert "Export cancelled: nothing was written" in widget["export_result"].value
    assert list(tmp_path.glob("*Dataset502*")) == []


def test_a_folder_not_named_datasetnnn_is_one_notification(fingerprinted, tmp_path, monkeypatch):
    widget, _ = fingerprinted
    shown = []
    monkeypatch.setattr("napari_autoconfig._napari.widget.show_warning", shown.append)
    monkeypatch.setattr(PICK, lambda parent: str(tmp_path / "my_export"))

    widget["export_nnunet"].native.click()

    assert len(shown) == 1 and "it must read DatasetNNN_Name" in shown[0]
    assert exporter(widget).export_worker is None
    assert not (tmp_path / "my_export").exists()


def test_an_unforeseen_error_in_the_export_is_one_message(
    fingerprinted, tmp_path, qtbot, monkeypatch
):
    # run_export returns the failures it knows; a bug it does not know reaches the worker's
    # errored handler: one error notification, the panel ready again, nothing out of a Qt slot
    widget, _ = fingerprinted
    errors = []
    monkeypatch.setattr("napari_autoconfig._napari.widget.show_error", errors.append)
    monkeypatch.setattr(PICK, lambda parent: str(tmp_path / "Dataset503_Cells"))

    def broken(*_args, **_kwargs):
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr("napari_autoconfig._napari.export_panel.run_export", broken)
    widget["export_nnunet"].native.click()

    qtbot.waitUntil(lambda: exporter(widget).export_worker is None, timeout=30_000)
    assert len(errors) == 1 and "RuntimeError: the disk caught fire" in errors[0], errors
    assert "Export failed: RuntimeError: the disk caught fire" in widget["export_result"].value
    assert widget["export_nnunet"].enabled and not widget["cancel_nnunet_export"].enabled
