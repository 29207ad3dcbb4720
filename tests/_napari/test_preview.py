"""The normalisation preview on real files: biom3d's values, lazily, following the target image."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_autoconfig._napari.preview import (
    NORMALIZED_NAME,
    PLUGIN_LAYER_KEY,
    NormalizationPreview,
    is_plugin_layer,
)
from napari_autoconfig.fingerprint import fingerprint_dataset
from napari_autoconfig.normalization import CT_NORM, EPSILON, ZSCORE


@pytest.fixture
def opened(make_napari_viewer, dataset):
    """A viewer with two of the dataset's ImageJ stacks opened as a user does (File > Open)."""
    images, masks = dataset
    viewer = make_napari_viewer(show=True)
    paths = sorted(images.iterdir())[:2]
    layers = [viewer.open(str(path))[0] for path in paths]
    layers[1].translate = (3.0, -2.0, 5.0)
    layers[1].scale = (2.0, 0.5, 0.5)
    return viewer, layers, paths, fingerprint_dataset(images, masks)


def _wait_for_layer(qtbot, preview, target):
    qtbot.waitUntil(
        lambda: preview.layer is not None and preview.layer.metadata["target"] == id(target),
        timeout=20_000,
    )
    return preview.layer


def _zscore(path):
    image = tifffile.imread(path)
    return (image - image.mean()) / (image.std() + EPSILON)  # biom3d's per-image line


def test_zscore_preview_is_biom3d_formula_and_follows_the_target(qtbot, opened):
    viewer, (first, second), paths, fp = opened
    preview = NormalizationPreview(viewer)
    preview.set_fingerprint(fp)
    preview.set_target(first)
    assert preview.layer is None  # nothing until asked
    assert preview.normalization.value == ZSCORE  # biom3d's default first

    actives = []
    viewer.layers.selection.events.active.connect(lambda event: actives.append(event.value))
    preview.preview.value = True
    layer = _wait_for_layer(qtbot, preview, first)
    assert actives == []  # adding the preview never made it the active layer, even briefly
    assert layer.name == NORMALIZED_NAME and is_plugin_layer(layer)
    assert viewer.layers.index(layer) == viewer.layers.index(first) + 1  # right above it
    assert viewer.layers.selection.active is not layer  # the user's selection is kept
    expected = _zscore(paths[0])
    assert layer.data.shape == expected.shape and layer.data.chunksize[0] == 1  # plane by plane
    for z in (0, expected.shape[0] // 2, expected.shape[0] - 1):
        np.testing.assert_allclose(np.asarray(layer.data[z]), expected[z], rtol=1e-5, atol=1e-5)
    assert layer.contrast_limits == pytest.approx([expected.min(), expected.max()], rel=1e-5)

    # the boxes move to the other image: the preview is removed there and re-added here
    preview.set_target(second)
    layer = _wait_for_layer(qtbot, preview, second)
    assert [lyr.name for lyr in viewer.layers if is_plugin_layer(lyr)] == [NORMALIZED_NAME]
    assert viewer.layers.index(layer) == viewer.layers.index(second) + 1
    np.testing.assert_array_equal(layer.scale, second.scale)
    np.testing.assert_array_equal(layer.translate, second.translate)
    np.testing.assert_allclose(
        np.asarray(layer.data[4]), _zscore(paths[1])[4], rtol=1e-5, atol=1e-5
    )

    preview.preview.value = False
    assert preview.layer is None and NORMALIZED_NAME not in viewer.layers
    preview.preview.value = True  # back on: the moments are kept, no second pass
    assert preview.layer is not None and preview.worker is None


def test_ct_norm_preview_uses_the_fingerprint(qtbot, opened):
    viewer, (first, _), paths, fp = opened
    preview = NormalizationPreview(viewer)
    preview.set_target(first)
    preview.normalization.value = CT_NORM
    preview.preview.value = True
    assert preview.layer is None and "Fingerprint" in preview.preview_status.value
    preview.set_fingerprint(fp)
    layer = preview.layer  # ct_norm needs no pass over the image: shown at once
    assert layer is not None and layer.metadata["normalization"] == CT_NORM
    image = tifffile.imread(paths[0])
    expected = (np.clip(image, fp.perc_005, fp.perc_995) - fp.mean) / (fp.std + EPSILON)
    for z in (0, 10):
        np.testing.assert_allclose(np.asarray(layer.data[z]), expected[z], rtol=1e-5, atol=1e-5)
    low, high = layer.contrast_limits
    assert (low, high) == pytest.approx(
        [(fp.perc_005 - fp.mean) / fp.std, (fp.perc_995 - fp.mean) / fp.std], rel=1e-6
    )
    # back to the per-image z-score: the same layer gets the new values
    preview.normalization.value = ZSCORE
    qtbot.waitUntil(lambda: preview.layer.metadata["normalization"] == ZSCORE, timeout=20_000)
    np.testing.assert_allclose(
        np.asarray(preview.layer.data[3]), _zscore(paths[0])[3], rtol=1e-5, atol=1e-5
    )


def test_a_layer_without_a_file_is_read_plane_by_plane(qtbot, make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    data = np.random.default_rng(4).normal(300.0, 20.0, size=(6, 30, 40)).astype(np.float32)
    image = viewer.add_image(data, name="in memory")
    preview = NormalizationPreview(viewer)
    preview.set_target(image)
    preview.preview.value = True
    layer = _wait_for_layer(qtbot, preview, image)
    values = data.astype(np.float64)
    expected = (values - values.mean()) / (values.std() + EPSILON)
    np.testing.assert_allclose(np.asarray(layer.data), expected, rtol=1e-5, atol=1e-5)
    # the user deletes the image: the preview goes with it
    viewer.layers.remove(image)
    assert preview.layer is None and preview.target is None
    assert not any(lyr.metadata.get(PLUGIN_LAYER_KEY) for lyr in viewer.layers)


def test_the_preview_follows_the_image_when_it_moves(qtbot, opened):
    viewer, (first, _), _, fp = opened
    preview = NormalizationPreview(viewer)
    preview.set_fingerprint(fp)
    preview.normalization.value = CT_NORM
    preview.set_target(first)
    preview.preview.value = True
    first.translate = (4.0, 8.0, -6.0)
    first.scale = (3.0, 0.25, 0.25)
    np.testing.assert_array_equal(preview.layer.translate, (4.0, 8.0, -6.0))
    np.testing.assert_array_equal(preview.layer.scale, (3.0, 0.25, 0.25))


def test_a_multiscale_image_gets_a_multiscale_preview(qtbot, make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    full = np.random.default_rng(1).integers(0, 1000, size=(4, 64, 64)).astype(np.uint16)
    image = viewer.add_image([full, full[:, ::2, ::2]], multiscale=True)
    preview = NormalizationPreview(viewer)
    preview.set_target(image)
    preview.preview.value = True
    layer = _wait_for_layer(qtbot, preview, image)
    assert layer.multiscale and len(layer.data) == 2
    values = full.astype(np.float64)
    expected = (values - values.mean()) / (values.std() + EPSILON)  # from the finest level
    np.testing.assert_allclose(np.asarray(layer.data[1][2]), expected[2, ::2, ::2], rtol=1e-5)
