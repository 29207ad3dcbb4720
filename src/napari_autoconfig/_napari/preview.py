"""The normalisation preview: what biom3d's preprocessing feeds the network, over the image.

A checkbox ``preview`` and a choice ``normalization`` add a layer named ``normalized`` right above
the target image (the one the patch boxes are on), with the image's scale and translate:

- "z-score per image" (biom3d's default): ``(img - img.mean()) / (img.std() + 1e-8)``, the image's
  own moments from one streaming pass over its file
  (:func:`napari_autoconfig.normalization.image_moments`, float64 accumulators, run in a thread
  worker so the GUI never waits for it); a layer without a readable file is read plane by plane;
- "clip + dataset z-score (ct_norm)": the fingerprint's clipping bounds and moments.

The layer's data is a dask array whose blocks are the image's 2D planes, each normalised by
:func:`napari_autoconfig.normalization.normalize` when napari shows it: nothing is computed for
planes nobody looks at, and no float copy of the volume is made (in 3D display napari itself
asks for every plane). Its contrast limits are the normalised range (the image's min and max, or
the clip bounds), known without a pass over the data.

The layer carries ``metadata[PLUGIN_LAYER_KEY]`` so the widget does not take it for a user image.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label
from napari.layers import Image
from napari.qt.threading import create_worker

from ..errors import AutoconfigError
from ..normalization import (
    CT_NORM,
    ZSCORE,
    Moments,
    Normalization,
    array_moments,
    ct_norm,
    image_moments,
    normalize,
    zscore,
)
from ..readers import image_suffix
from .warmup import warmed

if TYPE_CHECKING:
    import napari

    from ..fingerprint import Fingerprint

NORMALIZED_NAME = "normalized"
#: Marks the layers this plugin adds besides the patch boxes (the preview, the largest object).
PLUGIN_LAYER_KEY = "napari_autoconfig_layer"
CHOICES = (
    ("z-score per image (biom3d's default)", ZSCORE),
    ("clip + dataset z-score (ct_norm)", CT_NORM),
)


def is_plugin_layer(layer: Any) -> bool:
    """True for a layer this module or the objects panel added (never the user's data)."""
    return bool(getattr(layer, "metadata", {}).get(PLUGIN_LAYER_KEY, False))


def source_path(layer: Image) -> Path | None:
    """The image file a layer was opened from, when a reader of this package can read it."""
    candidates = [layer.metadata.get("path"), getattr(layer.source, "path", None)]
    for candidate in candidates:
        if candidate and image_suffix(candidate) is not None and Path(candidate).is_file():
            return Path(candidate)
    return None


def insert_quietly(viewer: napari.viewer.Viewer, index: int, layer: Any) -> None:
    """Insert a layer without making it the selected one.

    napari selects every inserted layer, which would tell the widget "the user picked another
    image" and move the patch boxes onto the preview. The layer list's private switch for that is
    used when present; the selection is given back in any case.
    """
    layers = viewer.layers
    selection, active = list(layers.selection), layers.selection.active
    switch = getattr(layers, "_activate_on_insert", None)
    if switch is not None:
        layers._activate_on_insert = False
    try:
        layers.insert(index, layer)
    finally:
        if switch is not None:
            layers._activate_on_insert = switch
    if layers.selection.active is not active or set(layers.selection) != set(selection):
        layers.selection.clear()
        layers.selection.update(selection)
        layers.selection.active = active


def lazy_normalized(data: Any, params: Normalization):
    """A dask array: ``data`` normalised plane by plane (blocks of one 2D plane), computed when
    a plane is asked for."""
    import dask.array as da

    if not isinstance(data, da.Array):
        planes = (1,) * (data.ndim - 2) + tuple(data.shape[-2:])
        data = da.from_array(data, chunks=planes, asarray=True)
    return da.map_blocks(normalize, data, params=params, dtype=np.float32)


def _levels(image: Image) -> list:
    """The layer's data as a list of levels (one unless the layer is multiscale)."""
    return list(image.data) if image.multiscale else [image.data]


def _moments_of(path: Path | None, data: Any, stop: threading.Event) -> Moments:
    """Body of the worker: the image's moments from its file, else from its layer data."""
    if path is not None:
        return image_moments(path, cancel=stop.is_set)
    return array_moments(data, cancel=stop.is_set, name="the image layer")


class NormalizationPreview(Container):
    """``preview`` checkbox and ``normalization`` choice; adds/removes the ``normalized`` layer.

    Wire it with :meth:`set_fingerprint` (after each fingerprint) and :meth:`set_target` (when
    the patch boxes move to another image).
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        # Kept as attributes too, so the widgets can be moved into another container.
        self.preview_check = CheckBox(name="preview", text="Preview normalisation", value=False)
        self.normalization_choice = ComboBox(
            name="normalization", label="Normalisation", choices=CHOICES
        )
        self.status_label = Label(name="preview_status", value="")
        super().__init__(
            widgets=[self.preview_check, self.normalization_choice, self.status_label],
            labels=False,
        )
        self.viewer = getattr(viewer, "__wrapped__", viewer)
        self.fingerprint: Fingerprint | None = None
        self.target: Image | None = None
        self.worker = None
        self._moments: dict[Any, Moments] = {}
        self._stop = threading.Event()
        self._removing = False  # True while this class removes its own layer
        self.preview_check.changed.connect(self.refresh)
        self.normalization_choice.changed.connect(self.refresh)
        self.viewer.layers.events.removed.connect(self._on_removed)

    # -- inputs -----------------------------------------------------------------------------
    @property
    def layer(self) -> Image | None:
        """The ``normalized`` layer in the viewer, if shown."""
        for layer in self.viewer.layers:
            if layer.metadata.get(PLUGIN_LAYER_KEY) == NORMALIZED_NAME:
                return layer
        return None

    def set_fingerprint(self, fingerprint: Fingerprint | None) -> None:
        """The dataset whose clip bounds and moments ct_norm uses."""
        self.fingerprint = fingerprint
        if self.normalization_choice.value == CT_NORM:
            self.refresh()

    def set_target(self, image: Image | None) -> None:
        """The image the preview lies over (the one the boxes are on); None removes it."""
        if image is self.target:
            return
        self._stop_worker()
        self._remove_layer()
        self._watch(self.target, False)
        self._watch(image, True)
        self.target = image
        self.refresh()

    def _watch(self, image: Image | None, on: bool) -> None:
        """Follow (or stop following) an image's scale and translate."""
        if image is None:
            return
        for emitter in (image.events.scale, image.events.translate):
            if on:
                emitter.connect(self._follow)
            else:
                emitter.disconnect(self._follow)

    def _follow(self, event: Any = None) -> None:
        """The target image moved or was rescaled: the preview goes with it."""
        layer, image = self.layer, self.target
        if layer is not None and image is not None:
            layer.scale = image.scale
            layer.translate = image.translate

    def close_preview(self) -> None:
        """Stop the worker and let go of the viewer (the layer is removed)."""
        self._stop_worker()
        self._remove_layer()
        self._watch(self.target, False)
        self.target = None
        with contextlib.suppress(TypeError, ValueError):
            self.viewer.layers.events.removed.disconnect(self._on_removed)

    # -- showing ----------------------------------------------------------------------------
    def refresh(self, *_: Any) -> None:
        """Show, update or remove the layer after any change of the inputs."""
        image = self.target
        if not self.preview_check.value or image is None or image not in self.viewer.layers:
            self._stop_worker()
            self._remove_layer()
            self._say("" if self.preview_check.value is False else "Open an image to preview it.")
            return
        try:
            if self.normalization_choice.value == CT_NORM:
                if self.fingerprint is None:
                    raise AutoconfigError("Fingerprint the dataset first: ct_norm uses its values.")
                self._show(ct_norm(self.fingerprint), None)
                return
        except AutoconfigError as error:
            self._remove_layer()
            self._say(str(error))
            return
        key = self._key(image)
        if key in self._moments:
            moments = self._moments[key]
            self._show(zscore(moments), moments)
            return
        self._start_moments(image, key)

    def _key(self, image: Image) -> Any:
        path = source_path(image)
        return str(path) if path is not None else ("layer", id(image))

    def _start_moments(self, image: Image, key: Any) -> None:
        if self.worker is not None:
            return  # the running pass ends in refresh() again
        path = source_path(image)
        self._stop = stop = threading.Event()
        self._say(f"Reading {path.name if path else image.name} for its mean and std …")
        # a multiscale layer without a file: its finest level holds every voxel
        data = _levels(image)[0]
        worker = create_worker(
            warmed(_moments_of), path, data, stop, _ignore_errors=True, _start_thread=False
        )

        def done(moments: Moments) -> None:
            if not stop.is_set():
                self._moments[key] = moments

        def failed(error: Exception) -> None:
            if stop.is_set():  # cancelled because the target moved or the preview was switched off
                return
            self._say(f"Could not compute the image's statistics: {error}")

        def finished() -> None:
            if self.worker is worker:
                self.worker = None
            if not stop.is_set() and key in self._moments:
                self.refresh()

        worker.returned.connect(done)
        worker.errored.connect(failed)
        worker.finished.connect(finished)
        self.worker = worker
        worker.start()

    def _stop_worker(self) -> None:
        self._stop.set()
        self.worker = None

    def _show(self, params: Normalization, moments: Moments | None) -> None:
        image = self.target
        limits = params.value_range
        if limits is None and moments is not None:
            scale = params.std + 1e-8
            limits = (
                (moments.minimum - params.mean) / scale,
                (moments.maximum - params.mean) / scale,
            )
        if limits is None or not limits[1] > limits[0]:
            limits = (-1.0, 1.0) if limits is None else (limits[0], limits[0] + 1.0)
        levels = [lazy_normalized(level, params) for level in _levels(image)]
        data = levels if image.multiscale else levels[0]
        layer = self.layer
        if layer is not None and layer.metadata.get("target") == id(image):
            layer.data = data
            layer.contrast_limits = limits
            layer.metadata["normalization"] = params.kind
        else:
            self._remove_layer()
            layer = Image(
                data,
                name=NORMALIZED_NAME,
                scale=image.scale,
                translate=image.translate,
                contrast_limits=limits,
                multiscale=image.multiscale,
                colormap="gray",
                metadata={
                    PLUGIN_LAYER_KEY: NORMALIZED_NAME,
                    "normalization": params.kind,
                    "target": id(image),
                },
            )
            self._insert_above(layer, image)
        label = dict((value, text) for text, value in CHOICES)[params.kind]
        self._say(f"'{NORMALIZED_NAME}': {image.name} as {label}.")

    def _insert_above(self, layer: Image, image: Image) -> None:
        insert_quietly(self.viewer, self.viewer.layers.index(image) + 1, layer)

    def _remove_layer(self) -> None:
        layer = self.layer
        if layer is not None:
            self._removing = True
            try:
                self.viewer.layers.remove(layer)
            finally:
                self._removing = False

    def _on_removed(self, event: Any) -> None:
        removed = event.value
        self._moments.pop(("layer", id(removed)), None)  # its id may be reused by a new layer
        if removed is self.target:
            self.set_target(None)
        elif (
            not self._removing
            and getattr(removed, "metadata", {}).get(PLUGIN_LAYER_KEY) == NORMALIZED_NAME
        ):
            self.preview_check.value = False  # the user deleted the preview layer: switch it off

    def _say(self, text: str) -> None:
        self.status_label.value = text
