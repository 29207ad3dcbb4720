"""The sample a new user meets first, as an install from a wheel has it (no ``resources/``): made
once into the cache folder, whole or not at all, whatever else runs at the same moment.

The runs are ``napari-autoconfig`` with no folder (the command line's first-run path). One sample
is made by the concurrent first runs (a module fixture: making it takes seconds); the other cases
start from copies of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import napari_autoconfig
from napari_autoconfig import atomic, sample
from napari_autoconfig.cli import main

PACKAGE_ROOT = str(Path(napari_autoconfig.__file__).resolve().parents[1])
#: Seconds a run may take before the test calls it hung (not a timing assertion).
HANG = 120
#: ``napari-autoconfig ARGS`` as installed from a wheel: the checkout's resources/sample hidden.
_AS_FROM_A_WHEEL = """
import sys
from pathlib import Path
import napari_autoconfig.sample as sample
sample.SHIPPED_FOLDER = Path(sys.argv.pop(1))
from napari_autoconfig.cli import main
sys.exit(main(sys.argv[1:]))
"""
#: The rounds: how the cache starts, and the start offsets (seconds) of the runs, which overlap
#: while the first is still making the sample, as two terminals opened one after the other would.
ROUNDS = (("empty", (0.0, 0.3)), ("half-written", (0.0, 0.6)))


def _whole_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.tif"))}


def _left_by_killed_runs(folder: Path) -> None:
    """What runs killed while making the sample leave: an earlier version's, writing in place (a
    first file cut short, nothing else), and this version's temporary folder, its process gone."""
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "nuclei_01.tif").write_bytes(b"II*\x00" + bytes(4092))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **_TEXT)
    left = folder.parent / f".sample.autoconfig-{int(gone.stdout)}-{atomic._HOST}-0badc0de.tmp"
    (left / "images").mkdir(parents=True)
    (left / "images" / "nuclei_01.tif").write_bytes(b"II*\x00")


_TEXT = {"capture_output": True, "text": True, "timeout": HANG}


def _runs_together(cache: Path, delays: tuple[float, ...], hidden: Path) -> list:
    """``napari-autoconfig --json`` started at each delay, as from a wheel, with ``cache`` as
    XDG_CACHE_HOME; their (status, stdout, stderr)."""
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(cache),
        "PYTHONPATH": os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-c", _AS_FROM_A_WHEEL, str(hidden), "--json", "--quiet"]
    runs, start = [], time.monotonic()
    for delay in delays:
        time.sleep(max(0.0, start + delay - time.monotonic()))
        runs.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    results = []
    for run in runs:
        out, err = run.communicate(timeout=HANG)
        results.append((run.returncode, out, err))
    return results


@pytest.fixture(scope="module")
def first_runs(tmp_path_factory):
    """Each of :data:`ROUNDS` (a bounded loop): the cache, its runs' (status, stdout, stderr)."""
    root = tmp_path_factory.mktemp("first-runs")
    rounds = []
    for start, delays in ROUNDS:
        cache = root / f"cache-{start}"
        if start == "half-written":
            _left_by_killed_runs(cache / "napari-autoconfig" / "sample")
        rounds.append((cache, _runs_together(cache, delays, root / "no-resources")))
    return rounds


@pytest.fixture
def as_from_a_wheel(monkeypatch, tmp_path):
    """This process, as an install from a wheel: no resources/sample beside the package."""
    monkeypatch.setattr(sample, "SHIPPED_FOLDER", tmp_path / "no-resources")


def test_first_runs_started_together_all_succeed_on_one_whole_sample(first_runs):
    """On an empty cache, and on one that runs killed mid-way left half-written."""
    for cache, runs in first_runs:
        folder = cache / "napari-autoconfig" / "sample"
        for status, _out, err in runs:
            assert status == 0, err
            assert f"bundled sample in {folder}" in err
            assert "error" not in err and "note" not in err
        assert len({out for _, out, _ in runs}) == 1, "the runs saw different samples"
        assert json.loads(runs[0][1])["num_images"] == len(sample.SAMPLE_SHAPES_ZYX)
        # one whole sample, and nothing left of the runs that lost the race or were killed
        assert sorted(_whole_files(folder)) == [
            f"{kind}/nuclei_{i:02d}.tif"
            for kind in ("images", "masks")
            for i in range(1, len(sample.SAMPLE_SHAPES_ZYX) + 1)
        ]
        assert sorted(p.name for p in folder.parent.iterdir()) == ["sample"]
    # every round made the same files (the sample is deterministic)
    made = {tuple(_whole_files(c / "napari-autoconfig" / "sample").items()) for c, _ in first_runs}
    assert len(made) == 1


def test_a_cache_that_cannot_be_written_falls_back_to_a_temporary_folder(
    first_runs, as_from_a_wheel, tmp_path, monkeypatch, capsys
):
    whole = first_runs[0][0] / "napari-autoconfig" / "sample"
    in_the_way = tmp_path / "cache"
    in_the_way.write_text("a file where the cache folder should be\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(in_the_way))
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    # a sample an earlier run made there (making one is what the first fixture shows)
    fallback = sample._fallback_folder()
    assert fallback.parent.parent == temporary
    shutil.copytree(whole, fallback)

    assert main(["--json", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == json.loads(first_runs[0][1][0][1])
    (note,) = [line for line in err.splitlines() if "note:" in line]
    assert str(in_the_way / "napari-autoconfig" / "sample") in note
    assert "a file is in the way" in note and str(fallback) in note
    assert f"bundled sample in {fallback}" in err
    assert "Traceback" not in err and "This is a bug" not in err


def test_no_folder_to_write_the_sample_into_is_one_line(
    as_from_a_wheel, tmp_path, monkeypatch, capsys
):
    in_the_way = tmp_path / "file"
    in_the_way.write_text("not a folder\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(in_the_way))
    monkeypatch.setattr(tempfile, "tempdir", str(in_the_way))

    assert main(["--quiet"]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and out == ""
    assert lines[0].startswith("napari-autoconfig: error: Cannot write the sample dataset")
    assert "XDG_CACHE_HOME" in lines[0]
