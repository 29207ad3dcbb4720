"""The patch boxes drawn over the user's image: ``patch`` and ``augmentation patch`` (biom3d's),
``nnU-Net patch`` when nnU-Net's plan was made, and ``MONAI SegResNet ROI`` when MONAI's was.

nnU-Net's box is its 3d_fullres patch as nnU-Net's network sees it: the patch in voxels at
nnU-Net's target spacing, i.e. a physical size (:attr:`PatchBoxes.nnunet_world_zyx`, already in
the images' (z, y, x) order, transposed back from nnU-Net's axes), converted to the opened
image's voxels through the image layer's ``scale`` (its spacing, in the same unit as the
dataset's). So on an image at the target spacing it covers exactly the patch's voxels; on an image
at another spacing it covers what nnU-Net's patch covers after resampling. MONAI's box is
SegResNet's training ROI the same way: its voxels at the template's resample spacing as a physical
size (:attr:`PatchBoxes.monai_world_zyx`), drawn in the opened image's voxels; when the template
does not resample (its ``resample: false``), each image trains at its own spacing and the box is
the ROI's voxels on the opened image (:attr:`PatchBoxes.monai_voxels_zyx`).

How a box is drawn (of the ways napari can draw a box, the one that needs no event handler of
ours; see the ``bounding_box`` overlay of napari's layers,
https://napari.org/stable/api/napari.layers.Image.html): each box is an
*invisible* napari ``Image`` layer of the patch's shape (``opacity=0``, zero-stride data, so it
costs one byte in memory and a small texture in 3D) whose ``bounding_box`` overlay is switched on.
napari then draws, with no event handlers of ours:

- in 2D, the rectangle on every slice the box spans and on no slice outside it (the layer only
  has data there);
- in 3D, a wireframe cuboid;
- always in world coordinates, because the box layer copies the image layer's ``scale`` and its
  ``translate`` is the image's plus the box corner in the image's voxels times that scale.

A box voxel ``j`` sits exactly on image voxel ``corner + j``, so the box outlines the patch's voxels
of the image (its drawn edges are the voxels' edges). The user moves a box with napari's
transform tool (the layer's affine; rotation and scaling are undone so the box keeps the patch's
size), re-centres both on the view (:meth:`PatchBoxes.recentre`, the widget's button) or
Shift-clicks where they should go; the boxes stay concentric.

The box layers carry ``metadata[BOX_KEY] = True`` so nothing (this widget included) mistakes them
for the user's images: :func:`user_image_layers` filters them out, and the plugin's other layers
(the ``normalized`` preview, the largest object's outline: :func:`.preview.is_plugin_layer`) too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from napari.layers import Image, Layer
from napari.utils.transforms import Affine

from .preview import is_plugin_layer

BOX_KEY = "napari_autoconfig_box"
PATCH_NAME = "patch"
AUG_NAME = "augmentation patch"
PATCH_COLOR = "#ffd400"  # yellow: the training patch
AUG_COLOR = "#00e1ff"  # cyan: the larger patch cropped before augmentation
NNUNET_NAME = "nnU-Net patch"
NNUNET_COLOR = "#3cff3c"  # green: nnU-Net's 3d_fullres patch (magenta is the largest object's)
MONAI_NAME = "MONAI SegResNet ROI"
MONAI_COLOR = "#ff8c1a"  # orange: MONAI Auto3DSeg SegResNet's training ROI
#: The boxes of the other planners: shown whatever biom3d's, they come and go with its patch box
OTHER_BOXES = (NNUNET_NAME, MONAI_NAME)


def is_box_layer(layer: Layer) -> bool:
    """Return True for the layers this plugin draws (never the user's data)."""
    return bool(getattr(layer, "metadata", {}).get(BOX_KEY, False))


def user_image_layers(viewer) -> list[Image]:
    """Return the viewer's Image layers that belong to the user (this plugin's layers excluded:
    the boxes, the normalisation preview, the largest object's outline)."""
    return [
        lyr
        for lyr in viewer.layers
        if isinstance(lyr, Image) and not is_box_layer(lyr) and not is_plugin_layer(lyr)
    ]


def target_image(viewer) -> Image | None:
    """Return the image the boxes belong on.

    The active (selected) user Image layer if there is one, else the selected one if exactly one
    user image is selected, else the only user Image layer, else None.
    """
    images = user_image_layers(viewer)
    active = viewer.layers.selection.active
    if active in images:
        return active
    selected = [lyr for lyr in viewer.layers.selection if lyr in images]
    if len(selected) == 1:
        return selected[0]
    if len(images) == 1:
        return images[0]
    return None


def spatial_ndim(image: Image) -> int:
    """Number of trailing axes of ``image`` the boxes live in: 2 for a 2D image, else 3."""
    return 2 if image.ndim == 2 else 3


def box_world_bounds(layer: Image) -> np.ndarray:
    """World coordinates of the drawn box's edges, shape (2, ndim): row 0 min, row 1 max.

    The outline napari draws runs along the voxel edges, from data coordinate -0.5 to
    ``shape - 0.5``; the corners are mapped through the layer's full transform (scale, translate,
    affine).
    """
    shape = np.asarray(layer.data.shape, dtype=float)
    lo, hi = -0.5 * np.ones_like(shape), shape - 0.5
    corners = (
        np.array(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij")).reshape(len(shape), -1).T
    )
    world = np.array([layer.data_to_world(c) for c in corners])
    return np.vstack([world.min(axis=0), world.max(axis=0)])


def box_world_centre(layer: Image) -> np.ndarray:
    """World coordinates of the box's centre."""
    return box_world_bounds(layer).mean(axis=0)


def view_centre(viewer, ndim: int) -> np.ndarray:
    """The world point the user looks at, for the last ``ndim`` world axes.

    The current slice position (``dims.point``) for axes not displayed and the camera centre for
    the displayed ones.
    """
    point = np.array(viewer.dims.point, dtype=float)
    displayed = list(viewer.dims.displayed)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari >= 0.9
    centre = np.asarray(camera.center, dtype=float)[-len(displayed) :]
    point[displayed] = centre
    return point[-ndim:]


class PatchBoxes:
    """The two box layers of one viewer, kept concentric, on one target image.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer to draw on.
    """

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.image: Image | None = None
        self.patch_zyx: tuple[int, int, int] | None = None
        self.aug_zyx: tuple[int, int, int] | None = None
        #: nnU-Net's patch in physical units (z, y, x) at its target spacing; None: no third box
        self.nnunet_world_zyx: tuple[float, ...] | None = None
        #: MONAI SegResNet's ROI in physical units (z, y, x) at its resample spacing; None: no box
        self.monai_world_zyx: tuple[float, ...] | None = None
        #: the ROI in voxels of whichever image (z, y, x), when MONAI does not resample
        self.monai_voxels_zyx: tuple[int, ...] | None = None
        #: False while nnU-Net's plan alone is shown: biom3d's two boxes stay, hidden
        self.biom3d_shown = True
        self._placing = False  # True while we move the layers ourselves (not the user)
        # (layer, handler) for every box layer we listen to, so close() can let go of them.
        self._handlers: list[tuple[Image, Callable[..., None]]] = []
        viewer.mouse_drag_callbacks.append(self._on_click)

    # -- layers -----------------------------------------------------------------------------
    def layers(self) -> list[Image]:
        """The box layers currently in the viewer (0 to 4 of them)."""
        return [lyr for lyr in self.viewer.layers if is_box_layer(lyr)]

    def expected_layers(self) -> int:
        """How many box layers a drawn plan has: 2, one more for nnU-Net's and for MONAI's."""
        monai = self.monai_world_zyx is not None or self.monai_voxels_zyx is not None
        return 2 + (self.nnunet_world_zyx is not None) + monai

    def nnunet_voxels(self, image: Image) -> tuple[int, ...] | None:
        """nnU-Net's patch in ``image``'s voxels along its last 2 or 3 axes (None: no box).

        Its physical size divided by the image's spacing (the layer's ``scale``), rounded to
        whole voxels (at least 1).
        """
        return _world_voxels(self.nnunet_world_zyx, image)

    def monai_voxels(self, image: Image) -> tuple[int, ...] | None:
        """MONAI SegResNet's ROI in ``image``'s voxels, as :meth:`nnunet_voxels`, or as it is when
        MONAI trains at each image's own spacing (None: no box)."""
        k = spatial_ndim(image)
        if self.monai_voxels_zyx is not None and len(self.monai_voxels_zyx) >= k:
            return tuple(int(v) for v in self.monai_voxels_zyx[-k:])
        return _world_voxels(self.monai_world_zyx, image)

    def _layer(self, name: str) -> Image | None:
        for lyr in self.layers():
            if lyr.metadata.get(BOX_KEY) == name:
                return lyr
        return None

    def _make_layer(
        self, name: str, color: str, shape: Sequence[int], placement: dict[str, Any]
    ) -> Image:
        # Placed when built: moving a layer already in the viewer costs a refresh per property.
        layer = Image(
            _box_data(shape),
            name=name,
            opacity=0.0,
            contrast_limits=(0, 1),
            blending="additive",
            metadata={BOX_KEY: name},
            **placement,
        )
        box = layer.bounding_box
        box.visible = True
        box.points = False
        box.line_color = color
        box.line_thickness = {AUG_NAME: 1.5, NNUNET_NAME: 5, MONAI_NAME: 8}.get(name, 2)

        def on_affine(_event, lyr=layer) -> None:
            self._on_user_move(lyr)

        layer.events.affine.connect(on_affine)
        self._handlers.append((layer, on_affine))
        # Adding a layer selects it; give the selection back to the user's image (only layers
        # still in the list: napari may still hold one it is removing).
        layers = self.viewer.layers
        selection = [lyr for lyr in layers.selection if lyr in layers]
        active = layers.selection.active
        layers.append(layer)
        layers.selection.clear()
        layers.selection.update(selection)
        if active in layers:
            layers.selection.active = active
        return layer

    # -- placing ----------------------------------------------------------------------------
    def show(
        self,
        patch_zyx: Sequence[int],
        aug_zyx: Sequence[int],
        image: Image | None = None,
        centre_world: Sequence[float] | None = None,
        names: Sequence[str] = (AUG_NAME, PATCH_NAME),
    ) -> None:
        """Draw (or update) the boxes on ``image`` (default: :func:`target_image`).

        The boxes keep their current centre when they are already on that image; otherwise they
        start centred on what the user looks at. ``centre_world`` forces the centre. ``names``
        limits the call to some of the boxes (napari needs tens of milliseconds to add a layer,
        so a caller may add them in separate event-loop turns).
        """
        image = image if image is not None else target_image(self.viewer)
        if image is None:
            self.remove()
            return
        self.patch_zyx = tuple(int(v) for v in patch_zyx)
        self.aug_zyx = tuple(int(v) for v in aug_zyx)
        k = spatial_ndim(image)
        if centre_world is None and image is self.image:
            for layer in (self._layer(PATCH_NAME), self._layer(AUG_NAME)):
                if layer is not None and layer.ndim == k:
                    centre_world = box_world_centre(layer)
                    break
        self.image = image
        if centre_world is None:
            centre_world = view_centre(self.viewer, k)
        self._place(np.asarray(centre_world, dtype=float)[-k:], k, names)
        layers, boxes = self.viewer.layers, self.layers()
        if boxes and image in layers:
            if min(layers.index(b) for b in boxes) < layers.index(image):
                self.raise_to_top()  # an image opened later lies above them: they would be hidden

    def has_layer(self, name: str, ndim: int) -> bool:
        """True if the box layer ``name`` exists with ``ndim`` dimensions (no layer to add)."""
        layer = self._layer(name)
        return layer is not None and layer.ndim == ndim

    def recentre(self, centre_world: Sequence[float] | None = None) -> None:
        """Move both boxes so they are centred on ``centre_world`` (default: the view centre)."""
        if self.image is None or self.patch_zyx is None:
            return
        k = spatial_ndim(self.image)
        if centre_world is None:
            centre_world = view_centre(self.viewer, k)
        self._place(np.asarray(centre_world, dtype=float)[-k:], k)

    def _on_click(self, viewer, event) -> None:
        """Shift-click on the canvas re-centres the boxes at the cursor.

        Only while an Image layer (the user's or a box) is active: Points, Shapes and Labels
        layers use Shift-click themselves.
        """
        if "Shift" not in event.modifiers or self.image is None or event.type != "mouse_press":
            return
        if not isinstance(viewer.layers.selection.active, Image):
            return
        self.recentre(np.asarray(event.position, dtype=float))

    def raise_to_top(self) -> None:
        """Move the box layers above every other layer (an image added later would hide them)."""
        layers = self.viewer.layers
        for layer in self.layers():
            layers.move(layers.index(layer), len(layers))

    def remove(self) -> None:
        """Remove both box layers from the viewer."""
        for lyr in self.layers():
            self._remove_layer(lyr)
        self.image = None

    def close(self) -> None:
        """Stop listening to the viewer and the box layers (the widget's dock was closed).

        The box layers stay in the viewer, as plain layers nothing moves any more; calling this
        twice is harmless.
        """
        callbacks = self.viewer.mouse_drag_callbacks
        while self._on_click in callbacks:
            callbacks.remove(self._on_click)
        for layer, handler in self._handlers:
            layer.events.affine.disconnect(handler)
        self._handlers.clear()

    def _remove_layer(self, layer: Image) -> None:
        """Remove one box layer from the viewer and stop listening to it."""
        for entry in [e for e in self._handlers if e[0] is layer]:
            layer.events.affine.disconnect(entry[1])
            self._handlers.remove(entry)
        self.viewer.layers.remove(layer)

    def _place(
        self, centre_world: np.ndarray, k: int, names: Sequence[str] = (AUG_NAME, PATCH_NAME)
    ) -> None:
        """Put both boxes on the image's voxel grid, centred as close as possible to the point."""
        image = self.image
        scale = np.asarray(image.scale, dtype=float)[-k:]
        translate = np.asarray(image.translate, dtype=float)[-k:]
        # The point in the image's voxel coordinates (through the image's own affine too).
        centre_vox = np.asarray(image.world_to_data(_pad(centre_world, image.ndim)))[-k:]
        # Keep the centre inside the image so a box never starts off the volume.
        shape = np.asarray(image.level_shapes[0], dtype=float)[-k:]
        centre_vox = np.clip(centre_vox, 0, shape - 1)
        # Adding or moving a layer changes the dims range, which can move the sliders: keep the
        # slice the user looks at.
        point = self.viewer.dims.point
        self._placing = True
        try:
            for name, color, size in (
                (AUG_NAME, AUG_COLOR, self.aug_zyx),
                # MONAI's and nnU-Net's boxes before (under) biom3d's patch, each thicker than
                # the one above it: where patches share an edge, every colour shows at its sides
                (MONAI_NAME, MONAI_COLOR, self.monai_voxels(image)),
                (NNUNET_NAME, NNUNET_COLOR, self.nnunet_voxels(image)),
                (PATCH_NAME, PATCH_COLOR, self.patch_zyx),
            ):
                # the other planners' boxes come and go with biom3d's patch box
                if name not in names and not (name in OTHER_BOXES and PATCH_NAME in names):
                    continue
                if size is None:  # no such plan (any more): no such box
                    old = self._layer(name)
                    if old is not None:
                        self._remove_layer(old)
                    continue
                size_k = np.asarray(size[-k:], dtype=int)
                corner = np.round(centre_vox - (size_k - 1) / 2.0)
                layer = self._layer(name)
                if layer is not None and layer.ndim != k:
                    self._remove_layer(layer)
                    layer = None
                placement = {
                    "scale": scale,
                    "translate": translate + corner * scale,
                    "affine": _image_linear_affine(image, k),
                }
                shown = name in OTHER_BOXES or self.biom3d_shown
                if layer is None:
                    self._make_layer(name, color, size_k, {**placement, "visible": shown})
                    continue
                if layer.visible != shown:
                    layer.visible = shown
                if tuple(layer.data.shape) != tuple(size_k):
                    layer.data = _box_data(size_k)
                # each change costs napari a refresh (tens of ms): change only what moved
                if not np.allclose(layer.scale, placement["scale"]):
                    layer.scale = placement["scale"]
                if not np.allclose(layer.translate, placement["translate"]):
                    layer.translate = placement["translate"]
                wanted = placement["affine"].affine_matrix
                if not np.allclose(layer.affine.affine_matrix, wanted):
                    layer.affine = placement["affine"]
        finally:
            self._placing = False
            self.viewer.dims.point = point

    def _on_user_move(self, moved: Image) -> None:
        """The user moved a box (transform tool): keep its size, move the other box along.

        napari's transform tool rebuilds the affine from the one at mouse press on every move, so
        the moved layer keeps its affine (only rotation/scaling are undone: a box has the patch's
        size and the image's orientation); the other box copies it and stays concentric.
        """
        if self._placing or self.image is None or self.patch_zyx is None:
            return
        k = moved.ndim
        self._placing = True
        try:
            wanted = _image_linear_affine(self.image, k).affine_matrix
            matrix = np.array(moved.affine.affine_matrix, dtype=float)
            if not np.allclose(matrix[:k, :k], wanted[:k, :k]):
                matrix[:k, :k] = wanted[:k, :k]
                moved.affine = Affine(affine_matrix=matrix)
            for other in self.layers():
                if other is moved or other.ndim != k:
                    continue
                offset = (np.asarray(moved.data.shape) - np.asarray(other.data.shape)) / 2.0
                other.translate = np.asarray(moved.translate) + offset * np.asarray(moved.scale)
                other.affine = Affine(affine_matrix=matrix)
        finally:
            self._placing = False


def _world_voxels(size: Sequence[float] | None, image: Image) -> tuple[int, ...] | None:
    """A physical size (z, y, x) in ``image``'s voxels along its last 2 or 3 axes: divided by
    the image's spacing (the layer's ``scale``), rounded to whole voxels (at least 1)."""
    k = spatial_ndim(image)
    if size is None or len(size) < k:
        return None
    scale = np.asarray(image.scale, dtype=float)[-k:]
    return tuple(max(1, round(float(v))) for v in np.asarray(size[-k:], dtype=float) / scale)


def _box_data(shape: Sequence[int]) -> np.ndarray:
    """A read-only array of zeros of ``shape`` that takes one byte of memory."""
    return np.broadcast_to(np.zeros((), dtype=np.uint8), tuple(int(s) for s in shape))


def _pad(point: np.ndarray, ndim: int) -> np.ndarray:
    """Left-pad a point with zeros to ``ndim`` coordinates."""
    point = np.asarray(point, dtype=float)
    return np.concatenate([np.zeros(ndim - len(point)), point])


def _image_linear_affine(image: Image, k: int) -> Affine:
    """The image's own affine restricted to its last ``k`` axes (identity for most images)."""
    matrix = np.asarray(image.affine.affine_matrix)
    n = image.ndim
    sub = np.eye(k + 1)
    sub[:k, :k] = matrix[n - k : n, n - k : n]
    sub[:k, k] = matrix[n - k : n, n]
    return Affine(affine_matrix=sub)
