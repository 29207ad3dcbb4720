"""Make resources/screenshot.png: the widget docked, the sample fingerprinted, boxes on the volume.

Run it from the repository (it needs a display; on a headless machine use a virtual one)::

    xvfb-run -a python resources/make_screenshot.py

It does what a user does: File > Open Sample (the bundled nuclei volume and mask), Plugins >
Auto-configuration, the sample's folders, Fingerprint; then it takes a picture of the whole window.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_autoconfig.sample import sample_folder

OUT = Path(__file__).resolve().parent / "screenshot.png"


def wait_for(condition, timeout: float = 120.0) -> None:
    """Process Qt events until ``condition()`` is true."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the widget did not finish in time")
        QApplication.processEvents()
        time.sleep(0.01)


def main() -> int:
    # Do not read or overwrite the user's remembered folders and limits.
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="napari-autoconfig-shot-")
    viewer = napari.Viewer(show=True, title="napari-autoconfig")
    viewer.window.resize(1500, 950)
    viewer.open_sample("napari-autoconfig", "nuclei")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-autoconfig", "Auto-configuration")
    folder = sample_folder()
    widget["images"].value = folder / "images"
    widget["masks"].value = folder / "masks"
    widget["max_dims"].value = (64, 64, 64)  # a patch smaller than the sample volume, to see it
    image = next(lyr for lyr in viewer.layers if type(lyr).__name__ == "Image")
    viewer.layers.selection.active = image

    done: list[str] = []
    widget.run_finished.connect(done.append)
    widget["fingerprint"].native.click()
    wait_for(lambda: bool(done) and widget.worker is None)
    if done != ["done"]:
        print(widget["status"].value, file=sys.stderr)
        return 1

    # The mask hides the boxes in 3D; the volume alone shows them best.
    next(lyr for lyr in viewer.layers if type(lyr).__name__ == "Labels").visible = False
    viewer.dims.ndisplay = 3
    viewer.scene.camera.angles = (-15, 35, 130)
    viewer.scene.camera.zoom *= 0.7
    wait_for(lambda: True)
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    viewer.screenshot(str(OUT), canvas_only=False, flash=False)
    print(f"wrote {OUT}")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
