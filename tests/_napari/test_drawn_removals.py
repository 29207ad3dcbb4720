"""Opening rows one after another in a drawn viewer: napari must survive every replacement.

napari frees a removed layer's OpenGL objects at once, in whichever context is current
(:mod:`napari_autoconfig._napari.gl_context`); without the canvas's context made current, the
second removal after a draw killed napari (a segmentation fault in ``glDrawArrays``) when a user
opened a second row of the images table. A crash would take pytest down with it, so the story
runs in a child process (a shown viewer under this session's virtual X server) and the test
reads how it ended.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from datafiles import write_case

STORY = textwrap.dedent(
    """
    import gc, sys, time
    import numpy as np
    import napari
    from qtpy.QtWidgets import QApplication

    images, masks, flat = sys.argv[1], sys.argv[2], sys.argv[3]
    viewer = napari.Viewer(show=True)
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-autoconfig", "Auto-configuration")
    app = QApplication.instance()
    # napari collects the garbage in full at every layer removal: what exists before the first
    # layer (napari, Qt, this viewer) is left out of those passes, as tests/conftest.py does
    gc.collect()
    gc.freeze()

    def draw_for(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    def wait_until(done, what):
        end = time.perf_counter() + 60
        while not done():
            if time.perf_counter() > end:
                sys.exit(f"timed out: {what}")
            draw_for(0.02)

    def drawn(what):
        # ask vispy's canvas (napari 0.5 to 0.9) for a paint and wait until it has painted: a
        # crash in the draw after a removal ends the story here
        scene = viewer.window._qt_viewer.canvas._scene_canvas
        draws = []
        scene.events.draw.connect(draws.append)
        scene.update()
        wait_until(lambda: draws, f"a draw after {what}")
        scene.events.draw.disconnect(draws.append)

    ends, opened = [], []
    widget.run_finished.connect(ends.append)
    widget.image_opened.connect(opened.append)

    def fingerprint(images, masks):
        widget["images"].line_edit.value, widget["masks"].line_edit.value = images, masks
        count = len(ends)
        widget["fingerprint"].native.click()
        wait_until(lambda: len(ends) > count and widget.worker is None, "fingerprint")
        print("fingerprint", ends[-1], widget["status"].value, flush=True)

    def open_rows(indices):
        for index in indices:
            widget.open_row(widget.images_panel.rows[index])
            count = len(opened)
            wait_until(lambda: len(opened) > count, f"row {index}")
            drawn(f"row {index}")
            print("opened", [layer.name for layer in viewer.layers], flush=True)

    fingerprint(images, masks)  # 3D volumes with masks
    open_rows((0, 1, 2, 1, 0))  # every row, then back (the row already open among them)
    fingerprint(flat, "")  # 2D images, no masks: the boxes become rectangles
    open_rows((0, 1))

    # napari's own layers, removed by the user one at a time, each followed by a draw
    for name in ("a", "b", "c"):
        viewer.add_image(np.zeros((32, 32), np.uint8), name=name)
    drawn("the three layers")
    for name in ("a", "b"):
        viewer.layers.remove(name)
        drawn(f"removing {name}")
    print("survived", flush=True)
    viewer.close()
    """
)


def test_rows_open_one_after_another_in_a_drawn_viewer(tmp_path):
    images, masks, flat = tmp_path / "images", tmp_path / "masks", tmp_path / "flat"
    for folder in (images, masks, flat):
        folder.mkdir()
    for name, shape in (("a.tif", (12, 40, 40)), ("b.tif", (14, 44, 40)), ("c.tif", (10, 48, 40))):
        write_case(images, masks, name, shape)
    for name, shape in (("d.tif", (40, 48)), ("e.tif", (44, 40))):
        write_case(flat, tmp_path, name, shape)  # its mask lands beside, unused
    script = tmp_path / "story.py"
    script.write_text(STORY, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(images), str(masks), str(flat)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    told = done.stdout + done.stderr
    assert done.returncode == 0, f"napari died (exit code {done.returncode}):\n{told[-3000:]}"
    assert "survived" in done.stdout
    assert [line.split()[1] for line in done.stdout.splitlines() if "fingerprint" in line] == [
        "done",
        "done",
    ]
    lines = [line for line in done.stdout.splitlines() if line.startswith("opened")]
    assert len(lines) == 7
    assert lines[0] == "opened ['a', 'a mask', 'augmentation patch', 'patch']"
    assert lines[1] == "opened ['b', 'b mask', 'augmentation patch', 'patch']"
    assert lines[4] == lines[0]
    assert lines[6] == "opened ['e', 'augmentation patch', 'patch']"
