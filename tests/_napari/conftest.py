"""Fixtures of the GUI tests: a real dataset on disk, the widget docked through the manifest.

The GUI tests run under pytest-xvfb (a virtual X server): napari renders there with Mesa's software
OpenGL. One small anisotropic dataset is written once per session and shared by the widget tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from datafiles import write_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> tuple[Path, Path]:
    """The shared anisotropic 3D dataset (images folder, masks folder)."""
    return write_dataset(tmp_path_factory.mktemp("dataset"))


@pytest.fixture
def dock_widget():
    """Dock the widget the way a user does: through the manifest, from the Plugins menu."""

    def dock(viewer):
        _dock, widget = viewer.window.add_plugin_dock_widget(
            "napari-autoconfig", "Auto-configuration"
        )
        return widget

    return dock


@pytest.fixture
def run_and_wait(qtbot):
    """Click Fingerprint and wait until the run and its boxes are done; return how it ended."""

    def run(widget, timeout: int = 60_000) -> str:
        outcomes: list[str] = []
        widget.run_finished.connect(outcomes.append)
        try:
            widget["fingerprint"].native.click()
            qtbot.waitUntil(lambda: bool(outcomes) and widget.worker is None, timeout=timeout)
        finally:
            widget.run_finished.disconnect(outcomes.append)
        return outcomes[0]

    return run
