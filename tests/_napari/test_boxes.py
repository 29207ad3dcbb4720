"""The patch boxes: drawn where they must be (and nowhere else), in 2D and 3D, and movable.

The rendering tests look at real screenshots of a shown viewer (under Xvfb) and count pixels of
the boxes' colours: present on every slice the box spans, absent outside it, a wireframe in 3D.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.transforms import Affine

from napari_autoconfig._napari.boxes import (
    AUG_COLOR,
    AUG_NAME,
    PATCH_COLOR,
    PATCH_NAME,
    PatchBoxes,
    box_world_bounds,
    box_world_centre,
    user_image_layers,
)

SCALE = (2.0, 0.5, 0.5)
TRANSLATE = (10.0, 5.0, 0.0)
SHAPE = (40, 200, 180)
PATCH, AUG = (8, 64, 64), (8, 90, 90)


def colour_pixels(viewer, hex_colour: str, tol: int = 40) -> int:
    """Number of canvas pixels within ``tol`` of a colour in a fresh screenshot."""
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    return int(np.all(np.abs(shot - rgb) < tol, axis=-1).sum())


@pytest.fixture
def scene(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(900, 700)
    rng = np.random.default_rng(0)
    # Dark grey noise: no pixel of the volume is yellow or cyan.
    data = rng.integers(0, 60, SHAPE, dtype=np.uint8)
    image = viewer.add_image(data, name="volume", scale=SCALE, translate=TRANSLATE)
    boxes = PatchBoxes(viewer)
    boxes.show(PATCH, AUG)
    return viewer, image, boxes


def layer(viewer, name):
    return next(lyr for lyr in viewer.layers if lyr.name == name)


def test_box_drawn_on_every_slice_it_spans_and_nowhere_else(scene):
    viewer, image, _boxes = scene
    bounds = box_world_bounds(layer(viewer, PATCH_NAME))
    z_slices = TRANSLATE[0] + np.arange(SHAPE[0]) * SCALE[0]  # world z of every image slice
    inside = [z for z in z_slices if bounds[0, 0] < z < bounds[1, 0]]
    assert len(inside) == PATCH[0]
    # The selection was given back to the user's image, and the slice the user was on kept.
    assert viewer.layers.selection.active is image
    assert user_image_layers(viewer) == [image]
    for z in z_slices:
        if z in (inside[0], inside[-1], inside[len(inside) // 2]) or z in (
            inside[0] - SCALE[0],
            inside[-1] + SCALE[0],
            z_slices[0],
        ):
            viewer.dims.set_point(0, z)
            drawn = colour_pixels(viewer, PATCH_COLOR)
            if z in inside:
                assert drawn > 400, f"box missing on slice z={z}"
            else:
                assert drawn == 0, f"box drawn outside its span, on z={z}"


def test_box_is_a_wireframe_in_3d(scene):
    viewer, _image, _boxes = scene
    viewer.dims.ndisplay = 3
    viewer.scene.camera.angles = (10, 30, 60)
    patch_px = colour_pixels(viewer, PATCH_COLOR)
    aug_px = colour_pixels(viewer, AUG_COLOR)
    assert patch_px > 400 and aug_px > 400
    # A wireframe, not a filled block: the box's pixels are a small part of its screen area.
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    ys, xs = np.nonzero(np.all(np.abs(shot - [255, 212, 0]) < 40, axis=-1))
    area = (ys.max() - ys.min()) * (xs.max() - xs.min())
    assert patch_px < 0.2 * area


def test_moving_one_box_moves_the_other_and_keeps_the_size(scene):
    viewer, _image, boxes = scene
    patch, aug = layer(viewer, PATCH_NAME), layer(viewer, AUG_NAME)
    # What napari's transform tool does when the user drags the box: a new affine.
    patch.affine = Affine(translate=(4.0, 10.0, -6.0))
    np.testing.assert_allclose(box_world_centre(aug), box_world_centre(patch))
    size = box_world_bounds(patch)[1] - box_world_bounds(patch)[0]
    np.testing.assert_allclose(size, np.array(PATCH) * SCALE)
    # Rotating or scaling is undone: the box keeps the patch's size and the image's axes.
    patch.affine = Affine(rotate=30, scale=(1, 2, 2), translate=(4.0, 10.0, -6.0), ndim=3)
    size = box_world_bounds(patch)[1] - box_world_bounds(patch)[0]
    np.testing.assert_allclose(size, np.array(PATCH) * SCALE)

    # Re-centring puts both boxes back on the image's voxel grid around the point.
    target = np.array([40.0, 60.0, 50.0])
    boxes.recentre(target)
    np.testing.assert_allclose(box_world_centre(patch), target, atol=max(SCALE))
    np.testing.assert_allclose(np.asarray(patch.affine.affine_matrix), np.eye(4))
    corner = (np.asarray(patch.translate) - TRANSLATE) / SCALE
    np.testing.assert_allclose(corner, np.round(corner))


def test_re_showing_keeps_the_centre_and_2d_images_get_rectangles(scene):
    viewer, _image, boxes = scene
    boxes.recentre((30.0, 40.0, 30.0))
    centre = box_world_centre(layer(viewer, PATCH_NAME))
    boxes.show((4, 32, 32), (4, 45, 45))  # a re-plan: new size, same place
    np.testing.assert_allclose(box_world_centre(layer(viewer, PATCH_NAME)), centre, atol=1.0)
    assert layer(viewer, PATCH_NAME).data.shape == (4, 32, 32)

    plane = viewer.add_image(np.zeros((120, 100), np.uint8), name="plane", scale=(0.3, 0.3))
    boxes.show(boxes.patch_zyx, boxes.aug_zyx, image=plane)  # the widget, on a new selection
    assert layer(viewer, PATCH_NAME).ndim == 2
    bounds = box_world_bounds(layer(viewer, PATCH_NAME))
    np.testing.assert_allclose(bounds[1] - bounds[0], np.array([32, 32]) * 0.3)
    viewer.layers.selection.active = plane
    assert colour_pixels(viewer, PATCH_COLOR) > 100
    boxes.remove()
    assert [lyr.name for lyr in viewer.layers] == ["volume", "plane"]


def test_shift_click_recentres_at_the_cursor(scene):
    viewer, _image, boxes = scene
    patch = layer(viewer, PATCH_NAME)
    before = box_world_centre(patch)

    class Press:  # what napari passes to a mouse callback
        type = "mouse_press"
        modifiers = ("Shift",)
        position = (30.0, 80.0, 70.0)

    boxes._on_click(viewer, Press())
    np.testing.assert_allclose(box_world_centre(patch), Press.position, atol=max(SCALE))
    Press.modifiers, Press.position = (), (30.0, 20.0, 20.0)
    boxes._on_click(viewer, Press())  # a plain click does not move the boxes
    assert not np.allclose(box_world_centre(patch), before)
    np.testing.assert_allclose(box_world_centre(patch), (30.0, 80.0, 70.0), atol=max(SCALE))
