"""What an install tells its user about itself: ``napari-autoconfig --version`` and ``--json`` say
whether the compiled loops are in use (pip hides the build's warning when no compiler is found).

The builds themselves (the LICENSE in the sdist and the wheel, the sdist's tests, no stale compiled
module) are checked by ``scripts/check_packaging.py``: they download setuptools and compile, too
slow for the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import napari_autoconfig
from napari_autoconfig import _compiled
from napari_autoconfig.cli import main

PACKAGE = Path(napari_autoconfig.__file__).resolve().parent
HANG = 60


def _version(package_root: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "napari_autoconfig", "--version"],
        capture_output=True,
        text=True,
        timeout=HANG,
        env={**os.environ, "PYTHONPATH": str(package_root), **env},
        cwd=package_root,
    )


def test_version_says_the_compiled_loops_are_in_use_or_disabled():
    if _compiled.loops is None:
        pytest.skip("the compiled loops were not built (no C compiler at install)")
    done = _version(PACKAGE.parent, NAPARI_AUTOCONFIG_NO_COMPILED="")
    assert done.returncode == 0
    assert (
        done.stdout
        == f"napari-autoconfig {napari_autoconfig.__version__} (compiled loops: in use)\n"
    )
    done = _version(PACKAGE.parent, NAPARI_AUTOCONFIG_NO_COMPILED="1")
    assert done.stdout == (
        f"napari-autoconfig {napari_autoconfig.__version__} "
        "(compiled loops: disabled by NAPARI_AUTOCONFIG_NO_COMPILED, numpy loops)\n"
    )


def test_version_says_when_the_install_built_no_compiled_loops(tmp_path):
    # the package as an install without a C compiler has it: every file but the compiled module
    shutil.copytree(
        PACKAGE,
        tmp_path / "napari_autoconfig",
        ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"),
    )
    done = _version(tmp_path, NAPARI_AUTOCONFIG_NO_COMPILED="")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"napari-autoconfig {napari_autoconfig.__version__} "
        "(compiled loops: not built, numpy loops)\n"
    )


def test_json_says_whether_the_compiled_loops_read_the_masks(monkeypatch, capsys):
    assert main(["--median", "48", "384", "384", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["compiled_loops"] is (_compiled.loops is not None)
    monkeypatch.setattr(_compiled, "loops", None)  # as NAPARI_AUTOCONFIG_NO_COMPILED=1 leaves it
    assert main(["--median", "48", "384", "384", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["compiled_loops"] is False
