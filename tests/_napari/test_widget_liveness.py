"""The GUI stays live while the widget fingerprints: the Qt event loop is never blocked for long.

A 5 ms QTimer runs on the GUI thread during a real run over the benchmark's default dataset
(24 uint16 volumes of 96x512x512 with their masks: 1.7 GB of uncompressed TIFFs, written in a few
seconds and deleted afterwards); the longest interval between two ticks while the files are read
is the worst time the GUI could not react. Showing the result (tables, histogram, and napari's
patch-box layer, created once) is timed apart, and so is opening one row of the images table under
its boxes (napari's first Labels layer of a session costs a few hundred ms by itself). The target is
100 ms for our own work; shared machines are noisy, so the assertions allow 1 s and the measured
times are printed (run with ``-s``).
"""

from __future__ import annotations

import shutil
import time

import numpy as np
from qtpy.QtCore import QTimer

from datafiles import write_imagej

N_FILES = 24
SHAPE_ZYX = (96, 512, 512)  # 48 MiB of uint16 per file, as in benchmarks/


def test_event_loop_never_blocked_during_fingerprinting(
    make_napari_viewer, qtbot, tmp_path, dock_widget
):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(3)
    volume = rng.integers(0, 4000, SHAPE_ZYX, dtype=np.uint16)
    mask = np.zeros(SHAPE_ZYX, np.uint8)
    mask[16:80, 64:448, 64:448] = 1
    for i in range(N_FILES):
        write_imagej(images / f"big_{i:02d}.tif", np.roll(volume, i, axis=2))
        write_imagej(masks / f"big_{i:02d}.tif", mask)

    viewer = make_napari_viewer(show=True)
    viewer.add_image(volume, scale=(2.0, 0.5, 0.5), name="volume")
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = images, masks

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    outcomes: list[str] = []
    widget.run_finished.connect(outcomes.append)

    # when the result reaches the GUI thread: the ticks before it are the fingerprinting proper,
    # the gap around it is the result being shown (tables, histogram, boxes: napari's own layer)
    handling: list[float] = []
    show_result = widget._on_outcome

    def timed_show_result(outcome):
        handling.append(time.perf_counter())
        show_result(outcome)
        handling.append(time.perf_counter())

    widget._on_outcome = timed_show_result  # start() connects the worker to it
    timer.start()
    qtbot.wait(50)  # a baseline of ticks before the run starts
    widget["fingerprint"].native.click()
    qtbot.waitUntil(lambda: bool(outcomes) and widget.worker is None, timeout=120_000)
    qtbot.wait(50)
    timer.stop()

    # Opening the last image of the table (48 MiB, with its mask) under its boxes.
    open_ticks: list[float] = []
    timer.timeout.disconnect()
    timer.timeout.connect(lambda: open_ticks.append(time.perf_counter()))
    view = widget["images_table"].native
    view.selectRow(view.rowCount() - 1)
    timer.start()
    qtbot.wait(50)
    with qtbot.waitSignal(widget.image_opened, timeout=60_000):
        widget["open"].native.click()
    qtbot.wait(50)
    timer.stop()
    open_worst_ms = 1000 * float(np.diff(open_ticks).max())
    print(
        f"\nevent loop while opening one volume under its boxes: worst gap {open_worst_ms:.1f} ms"
    )

    shutil.rmtree(images)
    shutil.rmtree(masks)
    assert open_worst_ms < 1000
    assert outcomes == ["done"]
    assert widget.result.num_images == N_FILES
    during = np.array([t for t in ticks if t < handling[0]])
    gaps = np.diff(during)
    worst_ms = 1000 * float(gaps.max())
    showing_ms = 1000 * (handling[1] - handling[0])
    print(
        f"\nevent loop during fingerprinting of {N_FILES} files "
        f"({N_FILES * volume.nbytes / 2**20:.0f} MiB): {len(during)} ticks, "
        f"worst gap {worst_ms:.1f} ms, median {1000 * float(np.median(gaps)):.1f} ms; "
        f"showing the result took {showing_ms:.1f} ms"
    )
    assert worst_ms < 1000
    assert showing_ms < 1000
