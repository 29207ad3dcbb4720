"""The dock with a GPU in mind, and with datasets as users have them.

A user types their GPU's memory and sees the plan re-made to fit it, with its memory split; saves
onto an existing config and finds a backup; updates a YAML config; points the widget at masks that
pair only by position, at an nnU-Net raw dataset, at OME-Zarr behind a URL. Every test docks the
widget through the manifest and runs the real worker on files written to tmp_path.
"""

from __future__ import annotations

import json
import math

import pytest
import tifffile

from datafiles import (
    nnunet_cells,
    rename_masks,
    serve_folder,
    serve_hostile,
    write_dataset,
    write_nnunet,
    write_ome_zarr,
)
from napari_autoconfig import auto_config as ac
from napari_autoconfig._napari.settings import settings_path
from napari_autoconfig.export import OWNED_KEYS
from napari_autoconfig.gpu_budget import budget_note, plan_for_gpu
from napari_autoconfig.memory import estimate_plan_memory
from napari_autoconfig.planners import biom3d


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer(show=True)


@pytest.fixture
def widget(viewer, dataset, dock_widget):
    """The docked widget pointed at the shared dataset."""
    w = dock_widget(viewer)
    w["images"].value, w["masks"].value = dataset
    return w


@pytest.fixture
def warnings_shown(monkeypatch):
    """The napari warning notifications the widget raises, as a list of messages."""
    shown: list[str] = []
    monkeypatch.setattr("napari_autoconfig._napari.widget.show_warning", shown.append)
    return shown


def plan_rows(widget) -> dict[str, str]:
    """The plan table as {row title: first value}, as the user reads it."""
    view = widget["plan_table"].native
    return {view.item(r, 0).text(): view.item(r, 1).text() for r in range(view.rowCount())}


def work(plan) -> int:
    """Voxels trained per step: patch volume times batch."""
    return math.prod(plan.patch) * plan.batch


def test_gpu_memory_replans_live_and_shows_the_memory(widget, run_and_wait, warnings_shown):
    assert run_and_wait(widget) == "done"
    fp = widget.result

    # Without a GPU budget: biom3d's plan, and its memory beside it (fp16 by default).
    assert widget["gpu_memory"].native.text() == "off"
    assert widget["max_dims"].enabled
    estimate = estimate_plan_memory(widget.plan, channels=fp.channels, precision="fp16")
    assert plan_rows(widget)["GPU memory (fp16)"] == f"{estimate.total_gib:.1f} GiB"
    split = widget["memory_split"].value
    assert f"activations {estimate.activations_gib:.2f}" in split
    assert f"overhead {estimate.overhead_gib:.2f}" in split
    assert not widget.snippet.startswith("#")

    # Typing a GPU memory re-plans at once: max_dims derived (greyed), the memory row follows.
    works = []
    for gib in (2, 3, 6, 12, 24):
        widget["gpu_memory"].value = gib
        chosen = plan_for_gpu(
            fp.median_size, gib, biom3d.Limits(), num_images=fp.num_images, channels=fp.channels
        )
        assert widget.plan.patch == chosen.plan.patch and widget.plan.batch == chosen.plan.batch
        assert not widget["max_dims"].enabled
        assert "derived from the GPU memory" in widget.plan.reasons[-1]
        note = budget_note(chosen.plan.limits.max_dims, gib, "fp16")
        assert widget.snippet.splitlines()[0] == f"# {note}"
        assert f"PATCH_SIZE = {list(chosen.plan.patch)}" in widget.snippet
        assert plan_rows(widget)["GPU memory (fp16)"] == f"{chosen.memory.total_gib:.1f} GiB"
        assert chosen.memory.total_gib <= gib
        derived = "x".join(map(str, chosen.plan.limits.max_dims))
        assert f"Max patch {derived}, derived to fit a GPU of {gib} GiB" in (
            widget["memory_split"].value
        )
        assert derived in widget["max_dims"].tooltip
        works.append(work(widget.plan))
    assert works == sorted(works)  # a bigger GPU never gets a smaller patch x batch
    assert works[0] < works[-1]  # and the smallest GPU really got a smaller plan

    # fp32 needs more memory for the same GPU: the plan and the row follow the precision.
    widget["gpu_memory"].value = 3
    fp16_total = widget.memory.total_gib
    widget["gpu_precision"].value = "fp32"
    assert "GPU memory (fp32)" in plan_rows(widget)
    assert widget.memory.precision == "fp32" and widget.memory.total_gib <= 3
    assert work(widget.plan) <= works[1]
    widget["gpu_memory"].value = 6
    assert widget.memory.total_gib > fp16_total

    # A GPU too small for any plan: one line in the status, no notification, nothing exportable.
    widget["gpu_memory"].value = 0.5
    assert widget.plan is None and widget.snippet == ""
    status = widget["status"].value
    assert status.startswith("Error:") and "0.5 GiB" in status
    assert warnings_shown == []
    assert not widget["save"].enabled

    # Off again: max_dims is the user's again, and so is the plan.
    widget["gpu_precision"].value = "fp16"
    widget["gpu_memory"].value = 0
    assert widget["max_dims"].enabled
    assert widget.plan.patch == biom3d.make_plan(fp.median_size).patch
    assert "Error" not in widget["status"].value

    # Remembered for the next launch.
    widget["gpu_memory"].value = 8
    stored = json.loads(settings_path().read_text())
    assert stored["gpu_memory"] == 8 and stored["precision"] == "fp16"
    again = type(widget)(widget.viewer)
    assert again["gpu_memory"].value == 8 and not again["max_dims"].enabled


def test_memory_row_says_why_when_biom3d_cannot_train_the_plan(
    viewer, dock_widget, run_and_wait, tmp_path
):
    # images so small that biom3d's plan pools no axis: its U-Net cannot be built on them
    images, masks = write_dataset(tmp_path / "tiny", shapes=[(2, 6, 6)] * 3)
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = images, masks
    assert run_and_wait(widget) == "done"
    assert widget.plan is not None and max(widget.plan.pool) == 0
    assert plan_rows(widget)["GPU memory"] == "not estimated"
    assert "cannot train" in widget["memory_split"].value


def _save_over_my_config(widget, tmp_path, monkeypatch) -> tuple:
    """The user's own ``my_config.py`` exists; *Save as…* picks it and the file dialog's
    "replace?" is answered yes. Returns the file and the bytes it held."""
    target = tmp_path / "my_config.py"
    old = b"# my own notes\nNB_EPOCHS = 1000\n"
    target.write_bytes(old)
    monkeypatch.setattr(
        "napari_autoconfig._napari.export_panel.ask_save_path", lambda parent: str(target)
    )
    widget["save"].native.click()
    return target, old


def test_save_onto_an_existing_file_keeps_a_backup(widget, run_and_wait, tmp_path, monkeypatch):
    assert run_and_wait(widget) == "done"
    target, old = _save_over_my_config(widget, tmp_path, monkeypatch)
    assert f"PATCH_SIZE = {list(widget.plan.patch)}" in target.read_text()
    backup = tmp_path / "my_config.py.bak"
    assert backup.read_bytes() == old
    assert str(backup) in widget["status"].value

    # with a GPU budget the saved file says where max_dims came from, as the CLI's --save does
    widget["gpu_memory"].value = 12
    widget["save"].native.click()
    first = target.read_text().splitlines()[0]
    assert first == widget.snippet.splitlines()[0] and "12 GiB" in first


def test_update_a_yaml_config_changes_only_the_owned_keys(
    widget, run_and_wait, tmp_path, monkeypatch
):
    # (the dialog's .py/.yaml/.yml filter is checked in test_widget.py)
    assert run_and_wait(widget) == "done"
    config = tmp_path / "config.yaml"
    original = (
        "# logged by biom3d\n"
        "DESC: 'nuclei'   # my dataset\n"
        "BATCH_SIZE: 99\n"
        "PATCH_SIZE: [1, 2, 3]  # keep this comment\n"
        "NB_EPOCHS: 1000\n"
    )
    config.write_text(original)
    monkeypatch.setattr(
        "napari_autoconfig._napari.export_panel.ask_config_path", lambda parent: str(config)
    )
    widget["update_config"].native.click()
    lines = config.read_text().splitlines()
    before = original.splitlines()
    assert lines[:2] == before[:2] and "NB_EPOCHS: 1000" in lines
    assert f"BATCH_SIZE: {widget.plan.batch}" in lines
    assert lines[3].startswith("PATCH_SIZE: [") and lines[3].endswith("# keep this comment")
    assert str(list(widget.plan.patch)).replace(" ", "") in lines[3].replace(" ", "")
    changed = {line.split(":")[0] for line in set(lines) - set(before)}
    assert changed == {"BATCH_SIZE", "PATCH_SIZE"} | (changed & set(OWNED_KEYS))
    backup = tmp_path / "config.yaml.bak"
    assert backup.read_text() == original
    assert str(backup) in widget["status"].value


def test_saving_twice_keeps_every_backup_and_updating_a_yaml_anchor_says_who_follows(
    widget, run_and_wait, tmp_path, monkeypatch
):
    assert run_and_wait(widget) == "done"
    target, old = _save_over_my_config(widget, tmp_path, monkeypatch)
    saved = target.read_bytes()
    widget["gpu_memory"].value = 12  # a second save, with other numbers
    widget["save"].native.click()
    assert (tmp_path / "my_config.py.bak").read_bytes() == old  # the user's file, never lost
    assert (tmp_path / "my_config.py.bak.1").read_bytes() == saved
    assert str(tmp_path / "my_config.py.bak.1") in widget["status"].value

    # a YAML whose PATCH_SIZE carries an anchor that the training dataset refers to
    config = tmp_path / "config.yaml"
    config.write_text(
        "PATCH_SIZE: &id001 [1, 2, 3]\nAUG_PATCH_SIZE: *id001\n"
        "TRAIN_DATASET:\n  kwargs:\n    patch_size: *id001\n"
    )
    monkeypatch.setattr(
        "napari_autoconfig._napari.export_panel.ask_config_path", lambda parent: str(config)
    )
    widget["update_config"].native.click()
    text = config.read_text()
    assert text.startswith(f"PATCH_SIZE: &id001 {list(widget.plan.patch)}\n")
    assert f"AUG_PATCH_SIZE: {list(widget.plan.aug_patch)}\n" in text
    assert "TRAIN_DATASET.kwargs.patch_size changed with PATCH_SIZE" in widget["status"].value


def test_masks_paired_by_position_are_shown_to_check(
    viewer, dock_widget, run_and_wait, tmp_path, warnings_shown
):
    images, masks = write_dataset(tmp_path / "data")
    # biom3d pairs these by sorted position: nothing in the names says which goes with which
    rename_masks(images, lambda stem: f"img_{int(stem[-2:]) - 1:03d}")
    rename_masks(masks, lambda stem: f"lbl_{int(stem[-2:]) - 1:03d}")
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = images, masks
    assert run_and_wait(widget) == "done"

    status = widget["status"].value
    assert "sorted position" in status and "img_000.tif <- lbl_000.tif" in status
    assert len(warnings_shown) == 1 and "img_002.tif <- lbl_002.tif" in warnings_shown[0]
    # the numbers are biom3d's own for these folders
    assert widget.result.mean == pytest.approx(ac.data_fingerprint(images, masks)[2])
    # and the images table shows each image's mask
    view = widget["images_table"].native
    titles = [view.horizontalHeaderItem(c).text() for c in range(view.columnCount())]
    pairs = {
        view.item(r, 0).text(): view.item(r, titles.index("mask")).text()
        for r in range(view.rowCount())
    }
    assert pairs == {f"img_00{i}.tif": f"lbl_00{i}.tif" for i in range(3)}


def test_an_nnunet_dataset_folder_with_no_masks_field(
    viewer, dock_widget, run_and_wait, tmp_path, warnings_shown
):
    cases = nnunet_cells(2)
    root = write_nnunet(tmp_path / "Dataset001_Cells", cases, ".tif", ("DAPI", "GFP"))

    widget = dock_widget(viewer)
    widget["images"].value = root
    widget["masks"].value = None
    assert run_and_wait(widget) == "done"
    fp = widget.result
    assert fp.num_images == len(cases) and fp.channels == 2  # labels are not images
    assert fp.has_masks and fp.mean > 0
    assert widget.plan is not None and warnings_shown == []
    assert widget.memory.parameters > 0  # the estimate counts two input channels


def test_a_url_reaches_the_core_as_typed(viewer, dock_widget, run_and_wait, tmp_path):
    images, masks = write_dataset(tmp_path / "tiff")
    served = tmp_path / "served"
    for folder in (images, masks):
        (served / folder.name).mkdir(parents=True)
        for path in sorted(folder.iterdir()):
            write_ome_zarr(served / folder.name / f"{path.stem}.ome.zarr", tifffile.imread(path))
    expected = ac.data_fingerprint(images, masks)

    widget = dock_widget(viewer)
    with serve_folder(served) as url:
        widget["images"].line_edit.value = f"{url}/images/"
        widget["masks"].line_edit.value = f"{url}/masks/"
        form_images, form_masks = widget.panels[0].folders()
        assert form_images == f"{url}/images/" and form_masks == f"{url}/masks/"
        assert run_and_wait(widget) == "done"
        assert widget.result_folders == (f"{url}/images/", f"{url}/masks/")
    fp = widget.result
    assert fp.num_images == 3
    assert list(fp.median_size) == expected[0].tolist()
    assert fp.perc_995 == pytest.approx(expected[5])
    # remembered as typed, and typed back as such at the next launch
    assert json.loads(settings_path().read_text())["images"] == f"{url}/images/"
    again = type(widget)(viewer)
    assert again["images"].line_edit.value == f"{url}/images/"


def test_a_silent_server_does_not_hold_the_cancel(viewer, dock_widget, qtbot):
    # a server that accepts and never answers: the listing waits on it (up to the read timeout,
    # 30 s), and Cancel is heard meanwhile
    widget = dock_widget(viewer)
    server = serve_hostile("silent")
    outcomes: list[str] = []
    widget.run_finished.connect(outcomes.append)
    with server as url:
        widget["images"].line_edit.value = f"{url}/images/"
        widget["masks"].line_edit.value = ""
        widget["fingerprint"].native.click()
        qtbot.waitUntil(lambda: server.requests > 0, timeout=20_000)
        widget["cancel"].native.click()
        qtbot.waitUntil(lambda: bool(outcomes) and widget.worker is None, timeout=20_000)
    assert outcomes == ["cancelled"]
    assert "Cancelled" in widget["status"].value
    assert widget["fingerprint"].enabled


def test_an_unusable_remembered_gpu_memory_starts_off(make_napari_viewer, dock_widget):
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"gpu_memory": -3, "precision": "fp8"}))
    viewer = make_napari_viewer(show=True)
    with pytest.warns(UserWarning, match="gpu_memory = -3") as caught:
        widget = dock_widget(viewer)
    assert str(path) in str(caught[0].message)
    assert widget["gpu_memory"].native.text() == "off" and widget["max_dims"].enabled
    assert widget["gpu_precision"].value == "fp16"  # an unknown precision is not used
