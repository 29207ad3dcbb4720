"""Shared fixtures for the widget tests: a real dataset on disk, the widget docked via the manifest.

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


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch) -> Path:
    """Keep the widget's remembered settings out of the user's real config folder."""
    config = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config


def dock_widget(viewer):
    """Dock the widget the way a user does: through the manifest, from the Plugins menu."""
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-autoconfig", "Auto-configuration")
    return widget


def run_and_wait(qtbot, widget, timeout: int = 60_000) -> str:
    """Click Fingerprint and wait until the run has ended; return how it ended."""
    outcomes: list[str] = []
    widget.run_finished.connect(outcomes.append)
    try:
        widget["fingerprint"].native.click()
        qtbot.waitUntil(lambda: bool(outcomes) and widget.worker is None, timeout=timeout)
    finally:
        widget.run_finished.disconnect(outcomes.append)
    return outcomes[0]
