"""Removing a layer safely: the canvas's OpenGL context is made current before napari frees it.

When a layer is removed, napari (0.6 and later, ``VispyCanvas._clean_and_update_scenegraph``)
runs the garbage collector and then ``context.finish()``: that flushes vispy's queue of GL
commands at once, outside the canvas's paint, including the deletion of the removed layer's
textures, buffers and shader programs. At that moment the current OpenGL context is usually not
the canvas's but the one Qt composes the window with (measured under a virtual X server with
Mesa: a different context in every removal). The deletions then hit that context's objects of the
same numbers, and the next draw of the canvas or the window dies in ``glDrawArrays`` (a
segmentation fault). Napari alone shows it: three layers, remove the bottom one, let it draw,
remove the next, let it draw.

:class:`CanvasContextGuard` listens to the layer list's ``removing`` event, which comes before
napari's own handler (on ``removed``), and makes the canvas's context current, as it is during a
paint; napari's deletions then land where the objects live. It guards every removal while the
dock widget is open: the plugin's own (a new row replacing the last, the preview, the boxes) and
the user's. Without a canvas it can reach (a viewer without Qt, another napari), it does nothing.
"""

from __future__ import annotations

from typing import Any

from .guard import logger


def scene_canvas(viewer: Any) -> Any | None:
    """The vispy ``SceneCanvas`` that draws ``viewer``, or None when it cannot be reached."""
    window = getattr(viewer, "window", None)
    qt_viewer = getattr(window, "_qt_viewer", None)
    canvas = getattr(qt_viewer, "canvas", None)
    if canvas is None:
        return None
    # napari >= 0.5 wraps the vispy canvas (VispyCanvas._scene_canvas); older ones subclass it
    scene = getattr(canvas, "_scene_canvas", canvas)
    return scene if callable(getattr(scene, "set_current", None)) else None


class CanvasContextGuard:
    """Makes the viewer's canvas context current before every layer removal, until closed."""

    def __init__(self, viewer: Any) -> None:
        self.viewer = viewer
        self._connected = scene_canvas(viewer) is not None
        if self._connected:
            viewer.layers.events.removing.connect(self._make_current)

    def _make_current(self, event: Any = None) -> None:
        scene = scene_canvas(self.viewer)
        if scene is None:
            return
        try:
            scene.set_current()
        except Exception:  # a canvas already closed: nothing left to protect
            logger.debug("napari-autoconfig: could not make the canvas current", exc_info=True)

    def close(self) -> None:
        """Stop guarding (the dock widget was closed)."""
        if self._connected:
            self._connected = False
            self.viewer.layers.events.removing.disconnect(self._make_current)
