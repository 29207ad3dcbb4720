"""The command line under a user's hand: Ctrl-C during nnU-Net's reading pass, and ``--workers``.

A user who presses Ctrl-C while nnU-Net's pass is reading a case (a slow disk, a stalled network
share) gets the prompt back at once, exit status 130, as in biom3d's pass: the case being read is
abandoned with the process, not waited for. A user who asks for more threads than cores (files on
a slow share) gets them all busy, not silently two per core.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from datafiles import write_case, write_dataset
from napari_autoconfig.cli import main

PACKAGE_ROOT = str(Path(__file__).resolve().parents[1] / "src")
#: A generous bound for the child to answer Ctrl-C; the interrupted run itself never ends.
ANSWER_S = 30

#: The child: the real command line, whose per-case nnU-Net read of ``held`` stalls (as on a
#: share that stopped answering) after saying so through a file the test waits for.
STALLED_READ = """
import sys, threading
from pathlib import Path
import napari_autoconfig.one_pass as one_pass
import napari_autoconfig.planners.nnunet_fingerprint as nnunet
from napari_autoconfig.cli import main

marker = Path(sys.argv[1])
read = nnunet.analyze_case

def stalled(key, *args, **kwargs):
    if key == "case_02":
        marker.write_text("reading")
        threading.Event().wait()  # the share never answers
    return read(key, *args, **kwargs)

nnunet.analyze_case = one_pass.analyze_case = stalled  # nnU-Net's pass, alone or with biom3d's
sys.exit(main(sys.argv[2:]))
"""


def _ctrl_c_as_from_a_terminal() -> None:
    """In the child: Ctrl-C does what it does under a terminal (Python raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    images, masks = write_dataset(tmp_path_factory.mktemp("workers"))
    write_case(images, masks, "case_04.tif", (8, 32, 32))
    return images, masks


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="sends SIGINT")
@pytest.mark.parametrize(
    ("planner", "workers"),
    [("nnunet", []), ("nnunet", ["--workers", "1"]), ("both", ["--workers", "1"])],
)
def test_ctrl_c_while_nnunet_reads_a_case_exits_at_once(folders, tmp_path, planner, workers):
    images, masks = folders
    marker = tmp_path / "reading"
    path = os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-c", STALLED_READ, str(marker), str(images), "--masks"]
    process = subprocess.Popen(
        [*command, str(masks), "--planner", planner, "--quiet", *workers],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        # a suite started in the background hands its children an ignored Ctrl-C
        preexec_fn=_ctrl_c_as_from_a_terminal,
    )
    try:
        for _ in range(ANSWER_S * 10):  # until the stalled case is being read
            if marker.exists() or process.poll() is not None:
                break
            time.sleep(0.1)
        assert process.poll() is None and marker.exists()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=ANSWER_S)  # today's code waited here for ever
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130
    assert err.strip().splitlines() == ["napari-autoconfig: interrupted"]


@pytest.mark.parametrize("planner", ["biom3d", "nnunet"])
def test_more_workers_than_two_per_core_all_read_at_once(folders, monkeypatch, planner):
    # a one-core machine: two per core would be two at a time; four are asked for
    import napari_autoconfig.fingerprint as biom3d_pass
    import napari_autoconfig.planners.nnunet_fingerprint as nnunet_pass

    monkeypatch.setattr(biom3d_pass, "default_workers", lambda: 1)
    workers = 4
    together = threading.Barrier(workers, timeout=ANSWER_S)  # breaks unless 4 run at once
    module, name = (
        (biom3d_pass, "fingerprint_case") if planner == "biom3d" else (nnunet_pass, "analyze_case")
    )
    read = getattr(module, name)

    def read_together(*args, **kwargs):
        together.wait()
        return read(*args, **kwargs)

    monkeypatch.setattr(module, name, read_together)
    images, masks = folders

    argv = [str(images), "--masks", str(masks), "--planner", planner, "--quiet"]
    assert main([*argv, "--workers", str(workers)]) == 0
