"""Fixtures of the GUI tests: a real dataset on disk, the widget docked through the manifest.

The GUI tests run under pytest-xvfb (a virtual X server): napari renders there with Mesa's software
OpenGL. One small anisotropic dataset is written once per session and shared by the widget tests.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from datafiles import write_dataset

# the module whose first test last froze the heap (a list: set from the hook below)
_frozen_for: list[object] = [None]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a GUI module's first test (its fixtures not made yet, the last module's gone),
    freeze what is alive out of the garbage collector's passes, as tests/conftest.py does once
    the tests are collected.

    napari imports its Qt side, vispy and their plugins lazily, in the first GUI test: some
    200 000 objects more, which every full pass then walked again (napari runs one per removed
    layer: 0.2 s each, 40 CPU-s in all). What is alive between two modules lives to the end (a
    test's viewer is closed and checked to be freed by the end of the test).
    """
    if item.module is not _frozen_for[0]:
        _frozen_for[0] = item.module
        gc.collect()
        gc.freeze()


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
