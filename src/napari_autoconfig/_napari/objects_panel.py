"""The objects panel: how large the objects in the masks are, against the patch.

A button ``objects`` labels the connected foreground components of every mask
(:func:`napari_autoconfig.objects.objects_dataset`, in a thread worker, one napari progress step
per mask, cancellable) and shows their count and their median and largest extents (z, y, x) in
voxels and physical units, and whether the patch is smaller than the largest objects along an
axis (such an object never fits whole in a patch). A second button, ``draw_largest``, outlines the
largest object on its image, opening the image when it is not open yet.

The outline is drawn the way the patch boxes are: an invisible ``Image`` layer of the object's
bounding-box shape whose ``bounding_box`` overlay is on, with the image's scale and a translate
that puts its first voxel on the object's first voxel. napari then draws the rectangle on every
slice the object spans (and on no other) in 2D, and a wireframe cuboid in 3D, with no handlers.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import Container, Label, PushButton, TextEdit
from napari.layers import Image
from napari.qt.threading import create_worker
from psygnal import Signal as PsygnalSignal
from qtpy.QtCore import QObject, Signal

from ..errors import AutoconfigError, Cancelled
from ..objects import ObjectBox, ObjectSummary, describe_objects, objects_dataset
from ..readers import read_header
from .activity import ActivityBar
from .preview import PLUGIN_LAYER_KEY, insert_quietly, is_plugin_layer, source_path
from .warmup import warmed

if TYPE_CHECKING:
    import napari

    from ..fingerprint import Fingerprint
    from ..planners.biom3d import Plan

LARGEST_NAME = "largest object"
LARGEST_COLOR = "#ff4fd8"  # magenta: apart from the patch boxes' yellow and cyan


class _Relay(QObject):
    """Carries per-mask progress from the worker thread to the GUI thread (queued signal)."""

    step = Signal(int, int)


def _run_objects(
    fingerprint: Fingerprint, stop: threading.Event, relay: _Relay
) -> ObjectSummary | str:
    """Body of the worker: the summary, or a message for people when it could not be made."""
    try:
        return objects_dataset(
            fingerprint,
            progress=lambda done, total, found: relay.step.emit(done, total),
            cancel=stop.is_set,
        )
    except (AutoconfigError, Cancelled) as error:
        return str(error)


class ObjectsPanel(Container):
    """``objects`` button, the result text, ``draw_largest`` button.

    Wire it with :meth:`set_fingerprint` (each new fingerprint), :meth:`set_plan` (each new
    plan: the patch the objects are measured against) and :meth:`set_image` (the image the
    patch boxes are on, preferred when it is the largest object's file).
    """

    #: "done", "cancelled" or "error", once per run, when it has ended (its activity bar closed)
    finished = PsygnalSignal(str)

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        # Kept as attributes too, so the widgets can be moved into another container.
        self.measure_button = PushButton(
            name="objects",
            text="Measure the objects in the masks",
            enabled=False,
            tooltip="Label the connected objects of every mask (26-connectivity) and compare "
            "their size with the patch.",
        )
        self.status_label = Label(
            name="objects_status", value="Fingerprint a dataset with masks first."
        )
        self.result_text = TextEdit(name="objects_result", value="")
        self.draw_button = PushButton(
            name="draw_largest", text="Show the largest object", enabled=False
        )
        super().__init__(
            widgets=[self.measure_button, self.status_label, self.result_text, self.draw_button],
            labels=False,
        )
        self.viewer = getattr(viewer, "__wrapped__", viewer)
        self.fingerprint: Fingerprint | None = None
        self.plan: Plan | None = None
        self.image: Image | None = None
        self.summary: ObjectSummary | None = None
        self.worker = None
        self._stop = threading.Event()
        self._relay = _Relay()
        self._relay.step.connect(self._on_step)
        self._bar = ActivityBar("napari-autoconfig: objects")
        self._ending = "error"  # what the running labelling came to (see ``finished``)
        self._closed = False
        self.result_text.read_only = True
        self.status_label.native.setWordWrap(True)
        self.measure_button.changed.connect(self.start)
        self.draw_button.changed.connect(self.show_largest)

    # -- inputs -----------------------------------------------------------------------------
    def set_fingerprint(self, fingerprint: Fingerprint | None) -> None:
        """A new dataset: the previous objects no longer apply."""
        self.cancel()
        self.fingerprint = fingerprint
        self.summary = None
        self.result_text.value = ""
        self.draw_button.enabled = False
        usable = fingerprint is not None and fingerprint.has_masks
        self.measure_button.enabled = usable
        self.status_label.value = (
            "Measure the objects to compare them with the patch."
            if usable
            else "The objects are counted in the masks: fingerprint with a masks folder."
        )

    def set_plan(self, plan: Plan | None) -> None:
        """The plan whose patch the objects are measured against."""
        self.plan = plan
        self._show_summary()

    def set_image(self, image: Image | None) -> None:
        """The image the patch boxes are on."""
        self.image = image

    # -- the run ----------------------------------------------------------------------------
    def start(self, *_: Any) -> None:
        """Label every mask's objects in a worker thread."""
        if self.worker is not None or self.fingerprint is None:
            return
        self._stop = stop = threading.Event()
        self._ending = "error"  # until the result or the error tells; said once the worker ends
        self.measure_button.enabled = False
        self.status_label.value = "Labelling the objects of the masks …"
        worker = create_worker(
            warmed(_run_objects), self.fingerprint, stop, self._relay, _start_thread=False
        )
        fingerprint = self.fingerprint
        worker.returned.connect(lambda outcome: self._on_returned(outcome, fingerprint))
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        worker.start()

    def cancel(self) -> None:
        """Stop a running labelling (it stops within about one mask)."""
        self._stop.set()

    def close_panel(self) -> None:
        """Stop a running labelling for good: its end no longer touches the (closed) widgets."""
        self._closed = True
        self.cancel()

    def _on_step(self, done: int, total: int) -> None:
        if self._closed:
            return
        # The words first: napari's progress bar processes the pending events while it is built
        # and updated, among them the later steps and the result, whose words must stay.
        self.status_label.value = f"Labelled the objects of {done} of {total} masks."
        self._bar.step(done, total, running=lambda: self.worker is not None)

    def _on_returned(self, outcome: ObjectSummary | str, fingerprint: Fingerprint) -> None:
        if (
            self._closed or fingerprint is not self.fingerprint
        ):  # a run for a dataset replaced meanwhile
            self._ending = "cancelled"
            return
        if isinstance(outcome, str):
            self.status_label.value = outcome
            self._ending = "cancelled" if self._stop.is_set() else "error"
            return
        self.summary = outcome
        self.status_label.value = f"Found {outcome.count} objects."
        self._show_summary()
        self._ending = "done"

    def _on_errored(self, error: Exception) -> None:
        # _run_objects returns every expected failure; this is for a bug or a surprise
        if self._closed:
            self._ending = "cancelled"
            return
        self.status_label.value = f"Labelling failed: {type(error).__name__}: {error}"
        self._ending = "error"

    def _on_finished(self) -> None:
        self.worker = None
        self._bar.close()
        if not self._closed:
            self.measure_button.enabled = (
                self.fingerprint is not None and self.fingerprint.has_masks
            )
        # said last: whoever waits for the end finds the bar closed and the button back
        self.finished.emit(self._ending)

    def _show_summary(self) -> None:
        summary = self.summary
        if summary is None:
            return
        patch = self.plan.patch if self.plan is not None else None
        spacing = self.fingerprint.median_spacing_xyz if self.fingerprint is not None else None
        self.result_text.value = "\n".join(describe_objects(summary, patch, spacing))
        self.draw_button.enabled = summary.largest is not None

    # -- the largest object -----------------------------------------------------------------
    def show_largest(self, *_: Any) -> Image | None:
        """Outline the largest object on its image (opened if needed); return the outline layer."""
        if self.summary is None or self.summary.largest is None:
            return None
        box = self.summary.largest
        image = self._image_of(box.image)
        if image is None:
            self.status_label.value = f"Could not open {box.image.name} to show the object."
            return None
        layer = self._outline(box, image)
        self._look_at(layer)
        self.status_label.value = (
            f"'{LARGEST_NAME}' outlines the largest object on {image.name} "
            f"(z {box.start_zyx[0]}-{box.stop_zyx[0]})."
        )
        return layer

    def _image_of(self, path: Path) -> Image | None:
        """The open image layer of ``path`` (the boxes' image first), else open the file."""
        candidates = [self.image] if self.image is not None else []
        candidates += [lyr for lyr in self.viewer.layers if isinstance(lyr, Image)]
        for layer in candidates:
            if layer in self.viewer.layers and not is_plugin_layer(layer):
                found = source_path(layer)
                if found is not None and found.resolve() == Path(path).resolve():
                    return layer
        opened = [lyr for lyr in self.viewer.open(str(path)) if isinstance(lyr, Image)]
        if not opened:
            return None
        image = opened[0]
        header = read_header(path)
        if header.spacing_zyx is not None and np.allclose(image.scale, 1.0):
            # napari's TIFF reader ignores ImageJ's spacing; the file's spacing is biom3d's
            image.scale = tuple(header.spacing_zyx)[-image.ndim :]
        return image

    def _outline(self, box: ObjectBox, image: Image) -> Image:
        k = 2 if image.ndim == 2 else 3
        start = np.asarray(box.start_zyx[-k:], dtype=float)
        extent = box.extent_zyx[-k:]
        lead = image.ndim - k  # axes before the spatial ones (time, channel...): at 0
        # copies: napari hands out the layer's own arrays, and the image must not move
        scale = np.array(image.scale, dtype=float)
        translate = np.array(image.translate, dtype=float)
        translate[lead:] += start * scale[lead:]
        for layer in list(self.viewer.layers):
            if layer.metadata.get(PLUGIN_LAYER_KEY) == LARGEST_NAME:
                self.viewer.layers.remove(layer)
        shape = (1,) * lead + tuple(int(e) for e in extent)
        layer = Image(
            np.broadcast_to(np.zeros((), dtype=np.uint8), shape),
            name=LARGEST_NAME,
            opacity=0.0,
            contrast_limits=(0, 1),
            blending="additive",
            scale=scale,
            translate=translate,
            metadata={PLUGIN_LAYER_KEY: LARGEST_NAME, "image": str(box.image)},
        )
        layer.bounding_box.visible = True
        layer.bounding_box.points = False
        layer.bounding_box.line_color = LARGEST_COLOR
        layer.bounding_box.line_thickness = 2
        insert_quietly(self.viewer, len(self.viewer.layers), layer)
        return layer

    def _look_at(self, layer: Image) -> None:
        """Show the object's middle slice and centre the camera on the object."""
        shape = np.asarray(layer.data.shape, dtype=float)
        middle = np.asarray(layer.translate) + (shape - 1) // 2 * np.asarray(layer.scale)
        centre = np.asarray(layer.translate) + (shape - 1) / 2.0 * np.asarray(layer.scale)
        if self.viewer.dims.ndisplay == 2 and layer.ndim >= 3:
            self.viewer.dims.set_point(layer.ndim - 3, float(middle[-3]))
        viewer = self.viewer
        camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari 0.9
        camera.center = tuple(float(c) for c in centre[-viewer.dims.ndisplay :])
