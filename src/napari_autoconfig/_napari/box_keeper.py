"""Keeping the patch boxes on an image while the user works in the viewer.

:class:`BoxKeeper` decides where the boxes (:class:`.boxes.PatchBoxes`) go: on the selected image
when the plan changes or the selection does; onto the next image when theirs is deleted (or
nowhere), never onto one of the plugin's own layers (the boxes, the ``normalized`` preview, the
largest object's outline: :func:`.boxes.user_image_layers` leaves them out); placed again when
their image gets new data or moves. It never changes the layer list inside one of its events:
napari may be removing several layers, some of them ours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QTimer

from .boxes import AUG_NAME, PATCH_NAME, PatchBoxes, is_box_layer, spatial_ndim, target_image
from .guard import guarded
from .preview import is_plugin_layer

if TYPE_CHECKING:
    from napari.layers import Image

#: Image-layer events after which the boxes are placed again (the image moved or changed).
_IMAGE_EVENTS = ("data", "scale", "translate", "affine")
#: A short pause between two layer additions lets Qt paint and run timers in between.
_TURN_MS = 10


class BoxKeeper:
    """The boxes of the dock widget (``host``): where they are drawn, and when they move.

    The panels hear of every move through the host's ``show_boxes`` hook.
    """

    def __init__(self, host: Any) -> None:
        self.host = host
        self.boxes = PatchBoxes(host.viewer)
        self._box_image: Image | None = None  # the image whose events we listen to
        self._layers_pending = False
        self._active_pending = False
        layers = host.viewer.layers
        self._connections = [
            (layers.selection.events.active, self._on_active_layer),
            (layers.events.inserted, self._on_layers_changed),
            (layers.events.removed, self._on_layers_changed),
            (layers.events.changed, self._on_layers_changed),
        ]
        for emitter, slot in self._connections:
            emitter.connect(slot)

    def close(self) -> None:
        """Stop listening to the viewer, the image and the box layers (they stay, as layers)."""
        for emitter, slot in self._connections:
            emitter.disconnect(slot)
        self._connections = []
        self._watch_image(None)
        self.boxes.close()

    def clear(self) -> None:
        """No plan: no boxes."""
        self.boxes.remove()
        self._watch_image(None)
        self.host.tell("show_boxes", None)

    def draw(
        self,
        image: Image | None = None,
        then: Callable[[], None] | None = None,
        centre_world: Any = None,
    ) -> None:
        """Draw the boxes on ``image`` (default: the target image), then tell the panels.

        Adding a layer costs napari about 50-70 ms on the GUI thread; when both box layers are
        new the second is added in a later event-loop turn so the GUI never stalls for both.
        """
        image = image if image is not None else target_image(self.host.viewer)
        if self.host.plan is None or image is None:
            self._shown(then)
            return
        plan, k = self.host.plan, spatial_ndim(image)
        if self.boxes.has_layer(AUG_NAME, k) or self.boxes.has_layer(PATCH_NAME, k):
            self.boxes.show(plan.patch, plan.aug_patch, image=image, centre_world=centre_world)
            self._shown(then)
            return
        self.boxes.show(
            plan.patch, plan.aug_patch, image=image, centre_world=centre_world, names=(AUG_NAME,)
        )
        QTimer.singleShot(_TURN_MS, lambda: self._second_box(image, then))

    @guarded
    def _second_box(self, image: Image, then: Callable[[], None] | None) -> None:
        try:
            if (
                self.host.plan is not None
                and image in self.host.viewer.layers
                and image is self.boxes.image
            ):
                plan = self.host.plan
                self.boxes.show(plan.patch, plan.aug_patch, image=image, names=(PATCH_NAME,))
        finally:
            self._shown(then)

    def _shown(self, then: Callable[[], None] | None) -> None:
        image = self.boxes.image if self.boxes.image in self.host.viewer.layers else None
        self._watch_image(image)
        self.host.tell("show_boxes", image)
        if then is not None:
            then()

    def _watch_image(self, image: Image | None) -> None:
        """Listen to the image under the boxes: renamed, moved or given new data."""
        old = self._box_image
        if old is image:
            return
        if old is not None:
            old.events.name.disconnect(self._on_image_renamed)
            for name in _IMAGE_EVENTS:
                getattr(old.events, name).disconnect(self._on_image_changed)
        self._box_image = image
        if image is not None:
            image.events.name.connect(self._on_image_renamed)
            for name in _IMAGE_EVENTS:
                getattr(image.events, name).connect(self._on_image_changed)

    @guarded
    def _on_image_renamed(self, event: Any = None) -> None:
        self.host.tell("show_boxes", self._box_image)

    @guarded
    def _on_image_changed(self, event: Any = None) -> None:
        # the image got new data or moved: place the boxes again, after napari's own handlers
        QTimer.singleShot(0, self._replace_boxes)

    @guarded
    def _replace_boxes(self) -> None:
        image = self._box_image
        if self.host.plan is None or image is None or image not in self.host.viewer.layers:
            return
        centre = np.asarray(image.data_to_world(np.asarray(image.data.shape) / 2 - 0.5))
        self.draw(image, centre_world=centre[-spatial_ndim(image) :])

    @guarded
    def recentre(self, *_: Any) -> None:
        """Centre both boxes on what the user looks at (slice and camera centre)."""
        if self.boxes.image is None:
            self.draw()
        else:
            self.boxes.recentre()

    # -- the viewer's events ---------------------------------------------------------------------
    @guarded
    def _on_active_layer(self, event: Any = None) -> None:
        # in a later turn: napari makes a layer active while adding it, and adding a box layer
        # in the same turn would double the time the GUI waits
        if not self._active_pending:
            self._active_pending = True
            QTimer.singleShot(_TURN_MS, self._after_active_layer)

    @guarded
    def _after_active_layer(self) -> None:
        self._active_pending = False
        layer = self.host.viewer.layers.selection.active
        if self.host.plan is None or layer is None or is_box_layer(layer) or is_plugin_layer(layer):
            return  # the user picked one of our layers (a box, the preview): the boxes stay
        image = target_image(self.host.viewer)
        if image is not None and image is not self.boxes.image:
            self.draw(image)

    @guarded
    def _on_layers_changed(self, event: Any = None) -> None:
        # Never change the layer list inside its own event (napari may be removing several
        # layers, some of them ours): look again once napari is done.
        if not self._layers_pending:
            self._layers_pending = True
            QTimer.singleShot(0, self._after_layers_changed)

    @guarded
    def _after_layers_changed(self) -> None:
        self._layers_pending = False
        if self.boxes.image is not None and self.boxes.image not in self.host.viewer.layers:
            self.boxes.remove()
            self._watch_image(None)
        if (
            self.boxes.image is not None
            and self.host.plan is not None
            and len(self.boxes.layers()) < self.boxes.expected_layers()
        ):
            self.draw(self.boxes.image)  # the user deleted one box: it comes back
        elif self.boxes.image is None:
            if self.host.plan is not None and target_image(self.host.viewer) is not None:
                self.draw()
            else:
                self.boxes.remove()  # box layers left without an image to sit on
                self._shown(None)
