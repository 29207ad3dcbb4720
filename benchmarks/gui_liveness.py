"""How long the napari GUI freezes during each step of the widget, next to napari's own floor.

Run under a virtual X server (napari draws with Mesa's software OpenGL there)::

    xvfb-run -a python benchmarks/gui_liveness.py              # 24 volumes of 96x512x512 + masks
    xvfb-run -a python benchmarks/gui_liveness.py --images 4 --shape 48 256 256   # a quick look

A QTimer fires every 5 ms on the GUI thread; the longest interval between two of its ticks during
a step is the longest time the GUI could not react (a stall). The steps are what a user does:
fingerprint the dataset (uint16 volumes with uint8 masks, written by ``datagen.py`` as uncompressed
ImageJ TIFF), open the first row of the images table, open the next row, switch the normalisation
preview on, change a limit (the plan is made again and the boxes move), measure the objects, select
the first label's row (its largest component outlined), save MONAI's datastats, fingerprint again
for all three planners (one read of every file).
``--profile STEP`` prints where the GUI thread's time goes during one step of ours.

The floor is napari's own cost of what the step shows, done by hand in a fresh viewer of a fresh
process (first layers of a session pay napari's one-off costs, as ours do): napari's first progress
bar (the fingerprint's), adding the image (the file's data already in memory) and then, in the next
event-loop turn, its Labels layer; replacing that pair by the next one; adding one float32 image
layer (what the preview adds); giving two box layers a new size and place (a re-plan); an image
and one box layer (a label's row); a progress bar and two more box layers (nnU-Net's patch and
MONAI's ROI). A plugin cannot show the same for less. Measuring objects and saving the datastats
change no layer: no floor. The target of a step
is ``max(100 ms, 1.5 x floor)``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import datagen

TICK_MS = 5
SETTLE_MS = 300  # after a step ends: the draws it caused are part of it


def _app():
    from qtpy.QtWidgets import QApplication

    return QApplication.instance()


class StallMeter:
    """A 5 ms QTimer; :meth:`step` returns the longest gap between ticks while a step runs.

    ``profile``: the name of a step whose GUI-thread time is profiled (printed to stderr).
    """

    def __init__(self, profile: str | None = None) -> None:
        self.profile = profile
        from qtpy.QtCore import QTimer

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def spin(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        app = _app()
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)

    def step(
        self,
        name: str,
        start: Callable[[], None],
        done: Callable[[], bool],
        timeout: float = 600,
    ) -> float:
        """Run ``start`` and the event loop until ``done()``; the longest stall in ms."""
        import cProfile
        import pstats

        self.spin(0.1)
        self.ticks = []
        self.timer.start()
        self.spin(0.05)
        profiler = cProfile.Profile() if name == self.profile else None
        if profiler is not None:
            profiler.enable()
        start()
        end = time.perf_counter() + timeout
        app = _app()
        while not done():
            if time.perf_counter() > end:
                raise TimeoutError("a step did not end")
            app.processEvents()
            time.sleep(0.001)
        self.spin(SETTLE_MS / 1000)
        self.timer.stop()
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
        return 1000 * float(np.diff(self.ticks).max())


def ours(images: Path, masks: Path, profile: str | None = None) -> dict[str, float]:
    """Every step of the widget, docked through the manifest in a shown viewer."""
    import napari

    from napari_autoconfig._napari import objects_panel
    from napari_autoconfig._napari.objects_panel import LABEL_NAME
    from napari_autoconfig._napari.objects_tab import ObjectsTab
    from napari_autoconfig._napari.preview import NORMALIZED_NAME

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1366, 768)
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-autoconfig", "Auto-configuration")
    meter = StallMeter(profile)
    meter.spin(0.5)
    widget["images"].line_edit.value, widget["masks"].line_edit.value = str(images), str(masks)
    ends: list[str] = []
    opened: list = []
    widget.run_finished.connect(ends.append)
    widget.image_opened.connect(opened.append)
    stalls: dict[str, float] = {}

    stalls["fingerprint"] = meter.step(
        "fingerprint",
        widget["fingerprint"].native.click,
        lambda: bool(ends) and widget.worker is None,
    )
    assert ends == ["done"], widget["status"].value
    rows = widget.images_panel.rows

    def open_row(index: int) -> Callable[[], bool]:
        count = len(opened)
        widget.open_row(rows[index])
        return lambda: len(opened) > count

    waiting: list[Callable[[], bool]] = []
    for index, step in enumerate(("first row open", "next row open")):
        stalls[step] = meter.step(
            step, lambda i=index: waiting.append(open_row(i)), lambda: waiting[-1]()
        )

    def preview_shown() -> bool:
        return NORMALIZED_NAME in [layer.name for layer in viewer.layers] and (
            widget["preview_status"].value.startswith(f"'{NORMALIZED_NAME}'")
        )

    stalls["preview on"] = meter.step(
        "preview on", lambda: setattr(widget["preview"], "value", True), preview_shown
    )
    plan = widget.plan
    z, y, x = widget["max_dims"].value
    stalls["re-plan (limit changed)"] = meter.step(
        "re-plan (limit changed)",
        lambda: setattr(widget["max_dims"], "value", (z // 2, y // 2, x // 2)),
        lambda: widget.plan is not plan,
    )
    panel = widget.panel(ObjectsTab).objects_panel
    finished: list[str] = []
    panel.finished.connect(finished.append)
    stalls["objects measured"] = meter.step(
        "objects measured", widget["objects"].native.click, lambda: bool(finished)
    )
    # a label's row: its largest component outlined on its image (opened if it is not)
    table = widget["labels_table"].native
    stalls["label row selected"] = meter.step(
        "label row selected",
        lambda: table.selectRow(0),
        lambda: any(layer.name.startswith(LABEL_NAME) for layer in viewer.layers),
    )
    saved: list[str] = []
    panel.datastats_finished.connect(saved.append)
    target = images.parent / "liveness_datastats.yaml"
    objects_panel.ask_datastats_path = lambda parent: str(target)  # the file dialog's answer
    stalls["datastats saved"] = meter.step(
        "datastats saved", widget["save_datastats"].native.click, lambda: bool(saved)
    )
    assert saved == ["done"], widget["objects_status"].value
    # the three planners from one read of every file: biom3d, nnU-Net and MONAI's SegResNet
    widget["planner"].value = "all"
    stalls["fingerprint, all planners"] = meter.step(
        "fingerprint, all planners",
        widget["fingerprint"].native.click,
        lambda: len(ends) == 2 and widget.worker is None,
    )
    assert ends[-1] == "done" and widget.monai is not None, widget["status"].value
    viewer.close()
    return stalls


def floors(images: Path, masks: Path, profile: str | None = None) -> dict[str, float]:
    """napari alone, in a fresh viewer: the same progress bar, layers and layer changes by hand.

    The one-off imports a plugin can do in a thread (dask's scheduler, pandas, pint's unit
    registry) are done first, as the widget's worker does them.
    """
    import napari
    import pandas  # noqa: F401
    import tifffile
    from napari.utils import progress
    from qtpy.QtCore import QTimer

    from napari_autoconfig.readers import read_header

    try:
        from napari.utils._units import get_unit_registry

        get_unit_registry().micrometer  # noqa: B018 - the registry is built on its first look-up
    except ImportError:  # napari < 0.6 has no unit registry
        pass
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1366, 768)
    meter = StallMeter(profile)
    meter.spin(0.5)
    paths = sorted(images.iterdir())[:2]
    pairs = [(tifffile.imread(p), tifffile.imread(masks / p.name)) for p in paths]
    scale = read_header(paths[0]).spacing_zyx
    # the contrast limits the widget gives (from the fingerprint): napari then scans no data
    limits = (float(pairs[0][0].min()), float(pairs[0][0].max()))
    added: list = []
    result = {}

    bars: list = []

    def progress_bar() -> None:
        bar = progress(total=len(paths), desc="fingerprinting")
        bar.update(1)
        bars.append(bar)

    result["fingerprint"] = meter.step("fingerprint", progress_bar, lambda: bool(bars))
    bars[0].close()

    def add_pair(index: int) -> Callable[[], None]:
        # the widget's turns: the old mask goes; the old image goes and the new one comes; the
        # new mask comes
        def new_image() -> None:
            for layer in list(viewer.layers):
                viewer.layers.remove(layer)
            image, mask = pairs[index]
            viewer.add_image(image, scale=scale, name=f"image {index}", contrast_limits=limits)
            QTimer.singleShot(
                10, lambda: added.append(viewer.add_labels(mask, scale=scale, opacity=0.4))
            )

        def start() -> None:
            labels = [layer for layer in viewer.layers if isinstance(layer, napari.layers.Labels)]
            for layer in labels:
                viewer.layers.remove(layer)
            QTimer.singleShot(10 if labels else 0, new_image)

        return start

    result["first row open"] = meter.step("first row open", add_pair(0), lambda: len(added) == 1)
    result["next row open"] = meter.step("next row open", add_pair(1), lambda: len(added) == 2)
    volume = pairs[1][0].astype(np.float32)
    result["preview on"] = meter.step(
        "preview on",
        lambda: added.append(
            viewer.add_image(volume, scale=scale, name="float", contrast_limits=(-3.0, 3.0))
        ),
        lambda: len(added) == 3,
    )

    # two invisible box layers, as the widget draws them, given a new size and place
    def box(shape) -> napari.layers.Image:
        data = np.broadcast_to(np.zeros((), np.uint8), shape)
        layer = viewer.add_image(data, scale=scale, opacity=0.0, contrast_limits=(0, 1))
        layer.bounding_box.visible = True
        return layer

    boxes = [box((32, 256, 256)), box((40, 320, 320))]
    meter.spin(0.3)
    moved: list = []

    def move() -> None:
        for layer, shape in zip(boxes, ((16, 128, 128), (20, 160, 160))):
            layer.data = np.broadcast_to(np.zeros((), np.uint8), shape)
            layer.translate = (10.0, 20.0, 20.0)
        moved.append(True)

    result["re-plan (limit changed)"] = meter.step("re-plan (limit changed)", move, lambda: moved)

    # a label's row: the image holding its largest component added, and its outline box
    def image_and_outline() -> None:
        image = viewer.add_image(pairs[0][0], scale=scale, name="holder", contrast_limits=limits)
        added.append((image, box((8, 40, 40))))

    result["label row selected"] = meter.step(
        "label row selected", image_and_outline, lambda: len(added) == 4
    )

    # all three planners: a progress bar, then nnU-Net's patch and MONAI's ROI as two more boxes
    def two_more_boxes() -> None:
        bar = progress(total=len(paths), desc="fingerprinting")
        bar.update(len(paths))
        bar.close()
        added.append((box((28, 256, 256)), box((44, 384, 384))))

    result["fingerprint, all planners"] = meter.step(
        "fingerprint, all planners", two_more_boxes, lambda: len(added) == 5
    )
    viewer.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=24, help="number of volumes (24)")
    parser.add_argument(
        "--shape", type=int, nargs=3, default=(96, 512, 512), metavar=("Z", "Y", "X")
    )
    parser.add_argument("--out", type=Path, help="where to write the data (a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the data afterwards")
    parser.add_argument("--part", choices=("ours", "floors"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile", metavar="STEP", help="profile one step of ours (stderr)")
    args = parser.parse_args(argv)

    if args.part is not None:  # one side, in its own process: print its stalls as JSON
        images, masks = args.data / "tif" / "images", args.data / "tif" / "masks"
        measure = ours if args.part == "ours" else floors
        stalls = measure(images, masks, args.profile)
        print("STALLS " + json.dumps(stalls), flush=True)
        return 0

    root = args.out or Path(tempfile.mkdtemp(prefix="gui-liveness-"))
    try:
        if not (root / "tif" / "images").is_dir():
            print(f"Writing {args.images} volumes of {'x'.join(map(str, args.shape))} uint16 ...")
            datagen.write_dataset(root, args.images, tuple(args.shape), "uint16", ("tif",), True, 2)
        datagen.warm(root)
        measured = {}
        # the widget remembers its folders and limits: keep them out of the user's settings
        env = {**os.environ, "XDG_CONFIG_HOME": str(root / "config")}
        for part in ("floors", "ours"):
            command = [sys.executable, __file__, "--part", part, "--data", str(root)]
            if args.profile:
                command += ["--profile", args.profile]
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if args.profile and part == "ours":
                print(done.stderr[-12000:])
            lines = [line for line in done.stdout.splitlines() if line.startswith("STALLS ")]
            if done.returncode != 0 or not lines:
                print(done.stdout[-2000:], done.stderr[-4000:], sep="\n")
                return 1
            measured[part] = json.loads(lines[-1][len("STALLS ") :])
    finally:
        if not args.keep and args.out is None:
            shutil.rmtree(root, ignore_errors=True)

    import napari

    print(
        f"\nnapari {napari.__version__}; {args.images} volumes of "
        f"{'x'.join(map(str, args.shape))} uint16 + uint8 masks; a {TICK_MS} ms QTimer\n"
    )
    print("| step | our longest stall | floor (napari alone) | target | met |")
    print("|---|---:|---:|---:|:-:|")
    for step, stall in measured["ours"].items():
        floor = measured["floors"].get(step)
        target = max(100.0, 1.5 * floor) if floor is not None else 100.0
        floor_text = f"{floor:.0f} ms" if floor is not None else "-"
        met = "yes" if stall <= target else "NO"
        print(f"| {step} | {stall:.0f} ms | {floor_text} | {target:.0f} ms | {met} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
