"""Opening one row of the images table: the image and its mask, lazily, at their spacing.

:func:`prepare_pair` runs in a worker thread: it reads the two headers, wraps each file in a lazy
dask array (:mod:`.lazy`), reads ahead the plane napari will show first and works out the contrast
limits, so that adding the layers on the GUI thread decodes nothing; what napari builds for its
first layers (pint's units, pandas) is built once beforehand by :mod:`.warmup`. The dock widget
then adds the layers (:meth:`OpenedPair.image_layer_data`) and remembers them, so that opening
another row replaces this pair instead of piling layers up.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Labels
from napari.qt.threading import create_worker
from qtpy.QtCore import QTimer

from ..errors import AutoconfigError
from ..image_table import ImageRow
from ..readers import ImageHeader, read_header
from .guard import guarded, logger
from .lazy import lazy_array
from .reader import file_stem
from .warmup import warmed

if TYPE_CHECKING:
    from napari.layers import Image

#: A short pause between two layer additions lets Qt paint and run timers in between.
TURN_MS = 10
#: Metadata key marking the layers this plugin opened from its table.
OPENED_KEY = "napari_autoconfig_opened"


@dataclass(frozen=True)
class OpenedPair:
    """What the GUI thread needs to add the image (and its mask) as layers."""

    row: ImageRow
    image: Any  # dask array
    image_kwargs: dict = field(default_factory=dict)
    mask: Any = None  # dask array or None
    mask_kwargs: dict = field(default_factory=dict)
    centre_zyx: tuple[float, ...] = ()  # the image's centre, world coordinates


def _scale(header: ImageHeader) -> tuple[float, ...] | None:
    spacing = header.spacing_zyx
    return tuple(float(s) for s in spacing) if spacing is not None else None


def _contrast(row: ImageRow, plane: np.ndarray) -> tuple[float, float]:
    """The image's own foreground percentiles when sampled, else the range of the shown plane."""
    if row.perc_005 is not None and row.perc_995 is not None and row.perc_995 > row.perc_005:
        return float(row.perc_005), float(row.perc_995)
    lo, hi = float(np.min(plane)), float(np.max(plane))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def prepare_pair(
    row: ImageRow,
    point_zyx: tuple[float, ...] | None = None,
    wanted: Callable[[], bool] = lambda: True,
) -> OpenedPair | None:
    """Headers, lazy arrays, the first planes read ahead (worker thread; raises ImageReadError).

    ``point_zyx`` is the world position the viewer shows now (its slider): the plane there is read
    ahead too, since napari draws it when the layer is added, before the view moves to the middle.
    ``wanted`` says whether the row is still the one to open: a row superseded by a later click
    reads nothing and gives None (the user ran down the table faster than files open).
    """
    if not wanted():
        return None
    header = read_header(row.image_path)
    image, reader = lazy_array(header)
    lead = header.shape[:-2]
    spatial = header.shape[-2:] if header.is_2d else header.shape[-3:]
    spatial_scale = (_scale(header) or (1.0,) * len(spatial))[-len(spatial) :]
    middle = tuple(n // 2 for n in lead)
    reader.warm(middle)
    if point_zyx is not None and not header.is_2d:
        z = round(point_zyx[-3] / spatial_scale[-3]) if len(point_zyx) >= 3 else 0
        reader.warm((*middle[:-1], z) if lead else ())
    shown = reader.plane(int(np.ravel_multi_index(middle, lead)) if lead else 0)
    name = file_stem(header.path)
    kwargs: dict[str, Any] = {
        "name": name,
        "contrast_limits": _contrast(row, shown),
        "metadata": {OPENED_KEY: True, "path": str(row.image_path), "unit": header.unit},
    }
    if header.spacing_zyx is not None:
        kwargs["scale"] = spatial_scale
    if header.channels > 1:
        kwargs["channel_axis"] = header.axes.index("C")
    centre = tuple((n - 1) / 2 * s for n, s in zip(spatial, spatial_scale))
    mask = None
    mask_kwargs: dict[str, Any] = {}
    if row.mask_path is not None:
        mask_header = read_header(row.mask_path)
        mask, mask_reader = lazy_array(mask_header)
        mask_reader.warm(tuple(n // 2 for n in mask_header.shape[:-2]))
        mask_kwargs = {
            "name": f"{name} mask",
            "opacity": 0.4,
            "metadata": {OPENED_KEY: True, "path": str(row.mask_path)},
        }
        if "scale" in kwargs:
            mask_kwargs["scale"] = kwargs["scale"]
        if not np.issubdtype(mask_header.dtype, np.integer):
            mask = None  # napari's Labels need integers; the fingerprint refused others anyway
    return OpenedPair(row, image, kwargs, mask, mask_kwargs, centre)


def fit_view(viewer: Any, image: Image) -> None:
    """Fit the camera to ``image`` where napari can, else to every layer.

    ``reset_view(layers=...)`` came with napari 0.6, and napari 0.9.2 fails in it (IndexError)
    when the image has fewer dimensions than the viewer (a 2D image beside a volume).
    """
    if "layers" in inspect.signature(viewer.reset_view).parameters and (
        image.ndim == viewer.dims.ndim
    ):
        viewer.reset_view(layers=[image])
    else:
        viewer.reset_view()


class RowOpener:
    """Opens table rows for the dock widget (``host``), one at a time, each replacing the last.

    The steps run in separate event-loop turns (napari needs tens of milliseconds to add or remove
    a layer): the worker prepares the pair; the previous mask goes; the previous image goes and
    the new one is added (the boxes move onto it); then the mask, the view reset to the image and
    its middle slice (a turn later when there is a mask); then the boxes.
    A newer request makes the steps of an older one stop.
    """

    def __init__(self, host: Any) -> None:
        self.host = host
        self.opened: list = []  # the layers the last opened row added
        self._token = 0

    @guarded
    def open(self, row: ImageRow) -> None:
        """Open the row's image and mask lazily (a worker reads ahead), then put the boxes on it."""
        self._token += 1
        token = self._token
        self.host.set_status(f"Opening {row.image} …")
        point = tuple(float(v) for v in self.host.viewer.dims.point)
        # napari's first layer needs what the warm-up builds (pint's units, pandas): a row's
        # worker waits for it rather than racing the other rows to build it
        worker = create_worker(
            warmed(prepare_pair),
            row,
            point,
            lambda: token == self._token,
            _ignore_errors=True,  # errored is handled below: superqt would also re-raise it
            _start_thread=False,
        )
        worker.returned.connect(lambda pair: self._remove_previous_mask(pair, token))
        worker.errored.connect(lambda exc: self._on_open_failed(exc, token))
        worker.start()

    @guarded
    def _on_open_failed(self, exc: Exception, token: int) -> None:
        if token != self._token:  # a row superseded by a later click goes quietly
            return
        if isinstance(exc, AutoconfigError):
            self.host.report_error(str(exc), level="warning")
        else:
            logger.error("napari-autoconfig: opening failed", exc_info=exc)
            self.host.report_error(f"{type(exc).__name__}: {exc}", level="error")

    @guarded
    def _remove_previous_mask(self, pair: OpenedPair | None, token: int) -> None:
        """The previous pair's mask goes in a turn of its own (napari collects garbage on every
        removal), before its image: so the new layers take the file's own name even when the
        same row is opened again."""
        if token != self._token or pair is None:  # another row was asked for meanwhile
            return
        viewer = self.host.viewer
        masks = [lyr for lyr in self.opened if isinstance(lyr, Labels) and lyr in viewer.layers]
        for layer in masks:
            viewer.layers.remove(layer)
        if masks:
            QTimer.singleShot(TURN_MS, lambda: self._add_image(pair, token))
        else:
            self._add_image(pair, token)

    @guarded
    def _add_image(self, pair: OpenedPair, token: int) -> None:
        if token != self._token:  # another row was asked for meanwhile
            return
        viewer = self.host.viewer
        # The box keeper looks at the layer list only in a later turn: by then the boxes are on
        # the new image.
        previous, self.opened = self.opened, []
        for layer in reversed(previous):
            if layer in viewer.layers:
                viewer.layers.remove(layer)
        added = viewer.add_image(pair.image, **pair.image_kwargs)
        layers = added if isinstance(added, list) else [added]
        self.opened = list(layers)
        image = layers[0]
        if self.host.plan is not None and self.host.boxes.image is not None:
            # existing boxes move onto the new image: no box layer re-added
            self.host.boxes.show(
                self.host.plan.patch,
                self.host.plan.aug_patch,
                image=image,
                centre_world=pair.centre_zyx,
            )
        QTimer.singleShot(TURN_MS, lambda: self._add_mask(pair, image, token))

    @guarded
    def _add_mask(self, pair: OpenedPair, image: Image, token: int) -> None:
        if token != self._token or image not in self.host.viewer.layers:
            return
        if pair.mask is not None:
            self.opened.append(self.host.viewer.add_labels(pair.mask, **pair.mask_kwargs))
            # napari's first Labels layer of a session is slow: the view moves in the next turn
            QTimer.singleShot(TURN_MS, lambda: self._show_opened(pair, image, token))
        else:
            self._show_opened(pair, image, token)

    @guarded
    def _show_opened(self, pair: OpenedPair, image: Image, token: int) -> None:
        """The boxes above, the image selected, the view on its middle slice, the row selected."""
        if token != self._token or image not in self.host.viewer.layers:
            return
        self.host.boxes.raise_to_top()
        self.host.viewer.layers.selection.active = image
        fit_view(self.host.viewer, image)
        if image.ndim >= 3:
            self.host.viewer.dims.set_point(self.host.viewer.dims.ndim - 3, pair.centre_zyx[-3])
        self.host.images_panel.select(pair.row.index)
        self.host.set_status(
            f"Opened {pair.row.image}" + (" and its mask." if pair.mask is not None else ".")
        )
        centre = pair.centre_zyx

        def done() -> None:
            self.host.image_opened.emit(image)

        if self.host.plan is None:
            done()
            return
        QTimer.singleShot(TURN_MS, lambda: self._boxes_on_opened(image, centre, done, token))

    @guarded
    def _boxes_on_opened(self, image: Image, centre, done, token: int) -> None:
        if token != self._token or image not in self.host.viewer.layers:
            return
        self.host.keeper.draw(image, then=done, centre_world=centre)
