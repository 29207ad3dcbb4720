"""Shared fixtures for the widget tests: a real dataset on disk, the widget docked via the manifest.

The GUI tests run under pytest-xvfb (a virtual X server): napari renders there with Mesa's software
OpenGL. One small anisotropic dataset is written once per session and shared by the widget tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

# The shared dataset: three ImageJ volumes whose per-axis median is (22, 66, 62), spacing z 2 µm,
# y/x 0.5 µm, each with a cuboid of foreground in its mask.
SHAPES_ZYX = ((20, 64, 60), (24, 70, 66), (22, 66, 62))
MEDIAN_ZYX = (22, 66, 62)
SPACING_ZYX = (2.0, 0.5, 0.5)


def write_imagej(path: Path, data: np.ndarray, spacing_zyx=SPACING_ZYX) -> None:
    """Write a (Z, Y, X) ImageJ TIFF with its voxel spacing in microns."""
    z, y, x = spacing_zyx
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / x, 1 / y),
        metadata={"spacing": z, "unit": "micron", "axes": "ZYX"},
    )


def write_dataset(folder: Path, shapes=SHAPES_ZYX, seed: int = 0) -> tuple[Path, Path]:
    """Write images/ and masks/ under ``folder``; return both folders."""
    rng = np.random.default_rng(seed)
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for number, shape in enumerate(shapes, start=1):
        image = rng.integers(50, 150, size=shape, dtype=np.uint16)
        mask = np.zeros(shape, dtype=np.uint8)
        z, y, x = (s // 4 for s in shape)
        mask[z : 3 * z, y : 3 * y, x : 3 * x] = 1
        image[mask > 0] += 100
        write_imagej(images / f"case_{number:02d}.tif", image)
        write_imagej(masks / f"case_{number:02d}.tif", mask)
    return images, masks


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
