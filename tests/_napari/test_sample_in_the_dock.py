"""The sample one click away, whatever the install: a new user's first dataset in the dock.

*File > Open Sample > napari-autoconfig* opens one volume and its mask; the dock, open then or
later, takes the sample's folders, so *Fingerprint dataset* is the next click. *Use the sample*
does the same from the dock; in an install without ``resources/`` (a wheel, a git URL) it first
generates the sample into the cache folder, on a worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import napari_autoconfig.sample as sample_module
from napari_autoconfig._napari.settings import save_settings
from napari_autoconfig.sample import sample_folder


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer(show=True)


def folders_in(widget) -> tuple[str, str]:
    """The Images and Masks fields as the user reads them."""
    return widget["images"].line_edit.value, widget["masks"].line_edit.value


def sample_folders(folder: Path) -> tuple[str, str]:
    return str(folder / "images"), str(folder / "masks")


def test_opening_the_sample_fills_the_open_dock_and_fingerprint_reads_it(
    viewer, dock_widget, run_and_wait
):
    widget = dock_widget(viewer)
    assert folders_in(widget) == ("", "")  # a new user: nothing remembered

    viewer.open_sample("napari-autoconfig", "nuclei")

    assert folders_in(widget) == sample_folders(sample_folder())
    assert "Fingerprint dataset" in widget["status"].value
    assert run_and_wait(widget) == "done"
    assert widget.result.num_images == 4
    assert widget.result_folders == (sample_folder() / "images", sample_folder() / "masks")

    viewer.open_sample("napari-autoconfig", "nuclei")  # again: the form already holds its folders
    assert widget["status"].value == "Fingerprinted 4 images."


def test_a_dock_opened_after_the_sample_takes_its_folders_over_the_remembered_ones(
    viewer, dock_widget, tmp_path
):
    save_settings({"images": str(tmp_path / "mine"), "masks": None})
    viewer.open_sample("napari-autoconfig", "nuclei")

    widget = dock_widget(viewer)

    assert folders_in(widget) == sample_folders(sample_folder())


def test_use_the_sample_in_a_wheel_install_makes_it_in_the_cache_then_fingerprint_reads_it(
    viewer, dock_widget, run_and_wait, qtbot, tmp_path, monkeypatch
):
    # an installed package: no resources/ beside it, the sample goes to the user's cache folder
    monkeypatch.setattr(sample_module, "__file__", str(tmp_path / "site" / "pkg" / "sample.py"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "napari-autoconfig" / "sample"
    widget = dock_widget(viewer)
    button = widget["use_sample"].native
    assert button.text() == "Use the sample"
    qtbot.waitUntil(button.isVisible, timeout=5_000)  # in the dock, as napari shows it

    button.click()

    assert not button.isEnabled()  # the sample is being made on a worker; the GUI goes on
    qtbot.waitUntil(lambda: folders_in(widget) == sample_folders(cached), timeout=60_000)
    qtbot.waitUntil(button.isEnabled, timeout=5_000)
    assert sorted(p.name for p in (cached / "masks").iterdir()) == [
        f"nuclei_0{n}.tif" for n in range(1, 5)
    ]
    assert run_and_wait(widget) == "done"
    assert widget.result.num_images == 4
