"""The histogram panel, as a user sees it after fingerprinting: drawn, themed, one image over it."""

from __future__ import annotations

import numpy as np
import pytest

from napari_autoconfig._napari.histogram import HistogramPanel, theme_colors
from napari_autoconfig.fingerprint import fingerprint_dataset


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])


def _count(pixels: np.ndarray, hex_color: str, tolerance: int = 6) -> int:
    """Pixels of the canvas within ``tolerance`` of a colour."""
    return int(
        (np.abs(pixels[..., :3].astype(int) - _rgb(hex_color)).max(axis=-1) <= tolerance).sum()
    )


@pytest.fixture
def fingerprint(dataset):
    images, masks = dataset
    return fingerprint_dataset(images, masks)


def test_histogram_is_drawn_for_a_real_fingerprint(make_napari_viewer, fingerprint):
    viewer = make_napari_viewer(show=True)
    panel = HistogramPanel(viewer)
    viewer.window.add_dock_widget(panel, name="Intensities")
    colors = theme_colors(viewer)
    empty = panel.pixels()
    assert _count(empty, colors["current"]) == 0  # nothing plotted yet, only a message

    panel.show_fingerprint(fingerprint)
    drawn = panel.pixels()
    background = _count(drawn, colors["background"])
    assert background < drawn.shape[0] * drawn.shape[1]  # something besides the background
    assert _count(drawn, colors["current"], tolerance=40) > 200  # the dataset's bars
    assert panel.findChild(type(panel.canvas), "histogram_canvas") is panel.canvas
    assert panel.objectName() == "histogram"
    # the markers are at the fingerprint's values
    lines = [line.get_xdata()[0] for line in panel.axes.get_lines()]
    assert sorted(lines) == sorted([fingerprint.mean, fingerprint.perc_005, fingerprint.perc_995])


def test_a_selected_image_is_drawn_over_the_dataset(make_napari_viewer, fingerprint):
    viewer = make_napari_viewer(show=True)
    panel = HistogramPanel(viewer)
    panel.show_fingerprint(fingerprint)
    warning = theme_colors(viewer)["warning"]
    assert _count(panel.pixels(), warning) == 0
    record = fingerprint.records[1]
    panel.show_image(record)
    assert _count(panel.pixels(), warning) > 50  # the image's outline
    assert record.image.path.name in [
        t.get_text().split(" ")[0] for t in panel.axes.get_legend().get_texts()
    ]
    panel.show_image(None)
    assert _count(panel.pixels(), warning) == 0


def test_the_panel_follows_napari_s_theme(make_napari_viewer, fingerprint):
    viewer = make_napari_viewer(show=True)
    panel = HistogramPanel(viewer)
    panel.show_fingerprint(fingerprint)
    viewer.theme = "dark"
    dark, dark_background = panel.pixels(), _rgb(theme_colors(viewer)["background"])
    viewer.theme = "light"
    light, light_background = panel.pixels(), _rgb(theme_colors(viewer)["background"])
    # the figure's corner is each theme's background
    assert np.abs(dark[2, 2, :3].astype(int) - dark_background).max() <= 1
    assert np.abs(light[2, 2, :3].astype(int) - light_background).max() <= 1
    assert light_background.mean() > dark_background.mean()


def test_without_masks_the_panel_says_why_it_is_empty(make_napari_viewer, dataset):
    viewer = make_napari_viewer(show=True)
    panel = HistogramPanel(viewer)
    panel.show_fingerprint(fingerprint_dataset(dataset[0]))
    panel.pixels()  # drawn (the panel, never shown here, draws when asked or shown)
    texts = [t.get_text() for t in panel.axes.texts]
    assert texts == ["No foreground samples: the intensities need masks."]
