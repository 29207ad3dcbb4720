"""Build the sdist and the wheel as a release would, and check what they carry.

    python scripts/check_packaging.py          # needs `build` (pip install build) and pip's index

Checks, each said as it passes (exit status 1 at the first that fails):

1. the sdist holds the LICENSE, and every file its tests need: every tracked file under
   ``tests/`` and ``benchmarks/`` (the ``pythonpath`` of ``[tool.pytest.ini_options]``) and the
   top-level ``napari.yaml``; no compiled module;
2. the sdist's tests run: unpacked, ``pytest --collect-only`` imports every test module, and a few
   quick test files pass, importing the unpacked package;
3. the wheel holds the LICENSE (``.dist-info/licenses/``) and, where a C compiler is found, the
   compiled loops;
4. no stale compiled module: a clone whose ``build/`` holds an earlier ``_loops`` module (newer
   than ``_loops.c``) gets freshly compiled loops in its wheel, and none at all when the compiler
   fails (``CC=false``), rather than the earlier one.

Everything happens in a temporary copy of the checkout (tracked and untracked files that git does
not ignore): the checkout itself gets no ``build/`` or ``dist/``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")
#: Quick test files run from the unpacked sdist (a few seconds; no sample, no viewer).
QUICK_TESTS = ["tests/test_what_is_said_is_true.py", "tests/test_manifest.py"]


def say(text: str) -> None:
    print(f"check_packaging: {text}", flush=True)


def fail(text: str) -> None:
    say(f"FAILED: {text}")
    sys.exit(1)


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env={**os.environ, **env}
    )
    if done.returncode != 0:
        fail(f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def checkout_files() -> list[str]:
    listed = run(["git", "ls-files", "-co", "--exclude-standard"], ROOT).stdout.splitlines()
    return [name for name in listed if (ROOT / name).is_file() and not name.endswith(".so")]


def copy_checkout(target: Path) -> None:
    for name in checkout_files():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)


def build(source: Path, out: Path, *what: str, **env: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "build", *what, "--outdir", str(out), str(source)], source, **env)
    return sorted(out.iterdir())


def check_sdist(sdist: Path, work: Path) -> Path:
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        archive.extractall(work, filter="data")
    top = names[0].split("/")[0]
    held = {name.split("/", 1)[1] for name in names if "/" in name}
    tracked = run(["git", "ls-files", "tests", "benchmarks"], ROOT).stdout.splitlines()
    needed = ["LICENSE", "napari.yaml", "pyproject.toml", "setup.py", *tracked]
    missing = [name for name in needed if name not in held]
    if missing:
        fail(f"the sdist lacks {missing}")
    compiled = [name for name in held if name.endswith((".so", ".pyd"))]
    if compiled:
        fail(f"the sdist carries compiled modules {compiled}")
    say(f"sdist {sdist.name}: LICENSE and the {len(tracked)} files of tests/ and benchmarks/")
    return work / top


def check_sdist_tests(unpacked: Path) -> None:
    env = {"PYTHONPATH": str(unpacked / "src"), "NAPARI_AUTOCONFIG_NO_COMPILED": "1"}
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    collected = run([*pytest, "--collect-only"], unpacked, **env).stdout
    count = collected.strip().splitlines()[-1]
    probe = [sys.executable, "-c", "import napari_autoconfig; print(napari_autoconfig.__file__)"]
    imported = run(probe, unpacked, **env).stdout.strip()
    if not imported.startswith(str(unpacked)):
        fail(f"the sdist's tests imported {imported}, not the unpacked package")
    run([*pytest, *QUICK_TESTS], unpacked, **env)
    say(f"the sdist's tests: {count}; {', '.join(QUICK_TESTS)} pass from the unpacked sdist")


def wheel_loops(wheel: Path) -> bytes | None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
            fail(f"the wheel {wheel.name} lacks .dist-info/licenses/LICENSE")
        loops = [
            n
            for n in names
            if n.startswith("napari_autoconfig/_loops.") and n.endswith((".so", ".pyd"))
        ]
        return archive.read(loops[0]) if loops else None


def plant_stale_module(source: Path) -> bytes:
    """An earlier build's module in ``build/``, newer than ``_loops.c`` (as a clone that built
    before, or sources copied with their old times, would hold); returns its bytes."""
    platform = f"lib.{sysconfig.get_platform()}-{sys.implementation.cache_tag}"
    stale = source / "build" / platform / "napari_autoconfig" / f"_loops{EXT_SUFFIX}"
    stale.parent.mkdir(parents=True, exist_ok=True)
    data = b"\x7fELF stale module from an earlier build"
    stale.write_bytes(data)
    later = time.time() + 86400
    os.utime(stale, (later, later))
    return data


def main() -> None:
    if importlib.util.find_spec("build") is None:
        fail("the `build` package is missing: pip install build")
    with tempfile.TemporaryDirectory(prefix="napari-autoconfig-packaging-") as temporary:
        work = Path(temporary)
        source = work / "checkout"
        copy_checkout(source)
        say("building the sdist and, from it, the wheel (python -m build)")
        built = build(source, work / "dist")
        sdist = next(p for p in built if p.name.endswith(".tar.gz"))
        wheel = next(p for p in built if p.suffix == ".whl")
        unpacked = check_sdist(sdist, work / "unpacked")
        check_sdist_tests(unpacked)
        fresh = wheel_loops(wheel)
        have_compiler = fresh is not None
        say(
            f"wheel {wheel.name}: LICENSE, "
            + ("the compiled loops" if have_compiler else "no compiled loops (no C compiler)")
        )

        stale = plant_stale_module(source)
        rebuilt = wheel_loops(build(source, work / "dist-stale", "--wheel")[0])
        if rebuilt == stale:
            fail("the wheel carries the earlier build's module, not freshly compiled loops")
        if have_compiler and rebuilt is None:
            fail("the wheel built over an earlier build/ has no compiled loops")
        say("over an earlier build/: the wheel's loops are compiled afresh")

        stale = plant_stale_module(source)
        failed = wheel_loops(build(source, work / "dist-no-cc", "--wheel", CC="false")[0])
        if failed is not None:
            fail("with a compiler that fails, the wheel still carries a compiled module")
        say("with a compiler that fails: the wheel has no compiled loops (numpy's run)")
    say("all checks passed")


if __name__ == "__main__":
    main()
