"""Make resources/screenshot.png: the sample fingerprinted on a laptop-sized window.

Run it from the repository (it needs a display; on a headless machine use a virtual one)::

    xvfb-run -a -s "-screen 0 1366x768x24" python resources/make_screenshot.py \
        [W H [OUT [TAB [PLANNER]]]]

It does what a user does, with the default limits: File > Open Sample, Plugins >
Auto-configuration, the sample's folders, Fingerprint; then, in the Images tab, it opens the
flagged image with one click. The window is 1366 x 768 (a common laptop screen) unless told
otherwise (give the virtual screen that size too: the dock sizes itself to the window). The folders
are given relative to ``resources/``, so no machine path shows. TAB ("Plan", "Images",
"Intensities", "Objects", "Config") is the tab shown; "Intensities" also ticks the normalisation
preview (the opened image's histogram is drawn over the dataset's), "Objects" measures the objects.
``resources/screenshot-intensities.png`` is made with
``... make_screenshot.py 1366 768 resources/screenshot-intensities.png Intensities``. PLANNER
(a name of ``planning.PLANNER_CHOICES``: "biom3d", "nnunet", "both", "monai", "all") is the
planner chosen before Fingerprint;
``resources/screenshot-nnunet.png`` (both plans in columns, the three boxes) is made with
``... make_screenshot.py 1366 768 resources/screenshot-nnunet.png Plan both``;
``resources/screenshot-segresnet.png`` (the three plans, MONAI SegResNet's ROI the fourth, orange
box) with ``... make_screenshot.py 1366 768 resources/screenshot-segresnet.png Plan all``. TAB
"Labels" shows the Objects tab's per-label table on a three-label copy of the sample written to a
temporary folder (:func:`write_labelled_sample`: nuclei 1, a one-voxel rim around each 2, and in
the first two volumes only a few nuclei marked 3), with label 1's largest nucleus outlined:
``... make_screenshot.py 1366 768 resources/screenshot_labels_1366x768.png Labels``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

HERE = Path(__file__).resolve().parent
OUT = HERE / "screenshot.png"


def wait_for(condition, timeout: float = 120.0) -> None:
    """Process Qt events until ``condition()`` is true."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the widget did not finish in time")
        QApplication.processEvents()
        time.sleep(0.01)


def settle(seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def write_labelled_sample(folder: Path) -> tuple[str, str]:
    """The sample with three labels (relative folder names returned): nuclei 1, their rim 2
    (one voxel around each in y and x), and every fifth nucleus 3 in the first two volumes only
    (a label that not every mask has)."""
    import numpy as np
    import tifffile
    from scipy import ndimage

    images, masks = folder / "labels" / "images", folder / "labels" / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for number, path in enumerate(sorted((HERE / "sample" / "masks").glob("*.tif"))):
        nuclei = tifffile.imread(path) > 0
        rim = ndimage.binary_dilation(nuclei, structure=np.ones((1, 3, 3), bool)) & ~nuclei
        mask = nuclei.astype(np.uint8) + 2 * rim.astype(np.uint8)
        if number < 2:
            found, n = ndimage.label(nuclei)
            marked = np.isin(found, np.arange(5, n + 1, 5))
            mask[marked] = 3
        source = HERE / "sample" / "images" / path.name
        with tifffile.TiffFile(source) as tif:
            resolution = tif.pages[0].resolution
            metadata = tif.imagej_metadata
            image = tif.asarray()
        for target, data in ((images / path.name, image), (masks / path.name, mask)):
            tifffile.imwrite(
                target,
                data,
                imagej=True,
                resolution=resolution,
                metadata={
                    "axes": "ZYX",
                    "unit": metadata.get("unit"),
                    "spacing": metadata.get("spacing"),
                },
            )
    return "labels/images", "labels/masks"


def main(
    width: int = 1366,
    height: int = 768,
    out: Path = OUT,
    tab: str = "Images",
    planner: str = "biom3d",
) -> int:
    out = Path(out).resolve()  # before the chdir below: OUT is relative to where it is run
    # Do not read or overwrite the user's remembered folders and limits.
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="napari-autoconfig-shot-")
    os.chdir(HERE)  # relative folders: the screenshot shows "sample/images", no machine path
    folders = ("sample/images", "sample/masks")
    labels = tab == "Labels"
    if labels:
        tab = "Objects"
        os.chdir(tempfile.mkdtemp(prefix="napari-autoconfig-labels-"))
        folders = write_labelled_sample(Path.cwd())
    viewer = napari.Viewer(show=True, title="napari-autoconfig")
    viewer.window._qt_window.showNormal()
    viewer.window.resize(width, height)
    if not labels:
        viewer.open_sample("napari-autoconfig", "nuclei")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-autoconfig", "Auto-configuration")
    # the line edits themselves: the folder fields would show the absolute path
    widget["images"].line_edit.value, widget["masks"].line_edit.value = folders
    widget["planner"].value = planner

    done: list[str] = []
    widget.run_finished.connect(done.append)
    widget["fingerprint"].native.click()
    wait_for(lambda: bool(done) and widget.worker is None)
    if done != ["done"]:
        print(widget["status"].value, file=sys.stderr)
        return 1

    # The Images tab, and the flagged image opened under its boxes.
    widget.tabs.setCurrentIndex(1)
    panel = next(p for p in widget.panels if p.title == "Images")
    flagged = next(row for row in panel.rows if row.flagged)
    panel.select(flagged.index)
    opened: list = []
    widget.image_opened.connect(opened.append)
    widget["open"].native.click()
    wait_for(lambda: bool(opened))
    widget.tabs.setCurrentIndex([p.title for p in widget.panels if p.title].index(tab))
    if tab == "Intensities":
        widget["preview"].value = True
        wait_for(lambda: any(layer.name == "normalized" for layer in viewer.layers))
    elif tab == "Objects":
        measured: list[str] = []
        objects = widget["objects"]
        panel = next(p for p in widget.panels if p.title == "Objects")
        panel.objects_panel.finished.connect(measured.append)
        objects.native.click()
        wait_for(lambda: bool(measured))
        if labels:  # label 1's largest nucleus outlined (its image opened if need be)
            table = widget["labels_table"].native
            table.selectRow(0)
    settle(1.0)
    print("dock widget", widget.native.sizeHint(), "min", widget.native.minimumSizeHint())
    for p in widget.panels:
        print(p.title or "top", p.native.sizeHint(), p.native.minimumSizeHint())
    viewer.screenshot(str(out), canvas_only=False, flash=False)
    print(f"wrote {out}")
    viewer.close()
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    size = (int(args[0]), int(args[1])) if len(args) >= 2 else (1366, 768)
    raise SystemExit(
        main(*size, Path(args[2]) if len(args) >= 3 else OUT, *(args[3:5] or ["Images"]))
    )
