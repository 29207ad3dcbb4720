"""nnU-Net v2's fingerprint and plan: nnunetv2's own commands against napari-autoconfig's, timed.

    python benchmarks/bench_nnunet.py --nnunet-bin NNUNET_VENV/bin [--data DIR] [--cases 24]
    python benchmarks/bench_nnunet.py --skip-nnunet [--data DIR] [--cases 24]

The data is the benchmark's .nii.gz set (``datagen.py``: 96x512x512 uint16 volumes with uint8
masks of two labels, spacing 0.5 x 0.5 x 2 µm), laid out as an nnU-Net raw dataset
(``imagesTr/case_NNNN_0000.nii.gz``, ``labelsTr/case_NNNN.nii.gz``, hard links to the files).
One run each, same machine, warm file cache:

- nnU-Net: ``nnUNetv2_extract_fingerprint -d ID -np 2 --clean`` then
  ``nnUNetv2_plan_experiment -d ID`` (its venv; the commands as users run them);
- ours, in process: :func:`fingerprint_nnunet` + :func:`plan_nnunet` (the shared thread pool,
  one thread per core);
- ours, as a command: ``napari-autoconfig DIR --planner nnunet --save plans.json`` (start-up and
  imports included, as nnU-Net's);
- ours, both planners: ``napari-autoconfig DIR --planner both --save plans.json``, which reads
  every file once for both fingerprints: its wall time against ``--planner nnunet`` alone is the
  cost of biom3d's plan on top (target: 1.15x at most).

Beside them, the floor: every byte of every image and label inflated once with isal on all cores
(``floors.inflate_all``), timed in the same run: our command's processor time over the floor's is
how far above reading the files we are (target: 1.3x at most). Each command's peak memory is its
whole process's (``ru_maxrss`` of that child alone; target: 300 MB at most).

``--draws-only`` times one case's foreground draws alone, no files, side by side in one run:
numpy's ``RandomState(1234).choice`` (what nnunetv2 runs) and ``randint`` in pieces (our numpy
path, and our compiled one before) against ours (the compiled loops' generator), then the draws'
value counts with numpy and with the compiled loops; it checks that the draws are the same.

``--skip-nnunet`` leaves nnunetv2's own commands out (then only our two commands are timed and
compared with each other).

It prints the wall-clock and processor seconds (user + system, children included: on a shared
machine the processor time moves less than the wall clock) and their ratios, and checks that the
fingerprint and the plans are nnU-Net's (every number; the std to 1e-6 relative). Exit status 1
when they differ.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from datagen import warm, write_dataset
from floors import inflate_all
from nnunet_reference import run_nnunet

SHAPE_ZYX = (96, 512, 512)
DATASET_ID = 990
NAME = f"Dataset{DATASET_ID}_Bench"


def nnunet_layout(source: Path, raw: Path) -> Path:
    """The .nii.gz images and masks of ``source`` as an nnU-Net raw dataset under ``raw``."""
    root = raw / NAME
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(exist_ok=True)
    images = sorted((source / "images").glob("*.nii.gz"))
    for image in images:
        case = image.name[: -len(".nii.gz")]
        for link, target in (
            (root / "imagesTr" / f"{case}_0000.nii.gz", image),
            (root / "labelsTr" / f"{case}.nii.gz", source / "masks" / image.name),
        ):
            if not link.exists():
                os.link(target, link)
    meta = {
        "channel_names": {"0": "fluorescence"},
        "labels": {"background": 0, "cell": 1, "nucleus": 2},
        "numTraining": len(images),
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=4))
    return root


def differences(ours, theirs, where: str = "") -> list[str]:
    """Every number that differs (the std within 1e-6 relative counts as equal)."""
    if isinstance(theirs, dict):
        keys = set(ours) | set(theirs)
        return [
            d for k in sorted(keys) for d in differences(ours.get(k), theirs.get(k), f"{where}/{k}")
        ]
    if isinstance(theirs, list) and isinstance(ours, list) and len(ours) == len(theirs):
        return [
            d
            for i, (a, b) in enumerate(zip(ours, theirs))
            for d in differences(a, b, f"{where}[{i}]")
        ]
    if where.endswith("/std") and isinstance(ours, float) and isinstance(theirs, float):
        return [] if abs(ours - theirs) <= 1e-6 * abs(theirs) else [f"{where}: {ours} != {theirs}"]
    return [] if ours == theirs else [f"{where}: {ours!r} != {theirs!r}"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _command(command: list[str]) -> tuple[float, float, float]:
    """Run ``command``; its wall and processor seconds and its own peak memory in MB."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed with status {status}")
    wall = time.perf_counter() - start
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # KiB on Linux


def _floor(root: Path) -> tuple[float, float]:
    """Wall and processor seconds of inflating every image and label byte once (all cores)."""
    warm(root)
    start, cpu = time.perf_counter(), time.process_time()
    inflate_all(root / "imagesTr", root / "labelsTr")
    return time.perf_counter() - start, time.process_time() - cpu


def draws_only(draws: int, voxels: int) -> int:
    """Time nnU-Net's draws of one case (uint16 voxels): numpy's against ours, same run."""
    from napari_autoconfig import _compiled
    from napari_autoconfig.planners.nnunet_case import SEED, _draw, _draw_by_randint
    from napari_autoconfig.planners.nnunet_statistics import _value_counts

    values = np.random.default_rng(0).integers(0, 4000, voxels).astype(np.uint16)
    loops = _compiled.loops
    print(f"{draws} draws among {voxels} uint16 voxels; compiled loops: {loops is not None}")
    timed = {}
    for name, run in (
        ("numpy's choice", lambda: np.random.RandomState(SEED).choice(values, draws)),
        ("randint pieces", lambda: _draw_by_randint(np.random.RandomState(SEED), values, draws)),
        ("ours (_draw)", lambda: _draw(np.random.RandomState(SEED), values, draws)),
    ):
        cpu = time.process_time()
        timed[name] = (run(), time.process_time() - cpu)
    (theirs, c_theirs), (pieces, c_pieces), (ours, c_ours) = timed.values()
    print(
        f"draws: numpy's choice {c_theirs:.2f} cpu s ({c_theirs / c_ours:.1f}x ours), randint in "
        f"pieces (numpy's path, ours before) {c_pieces:.2f} ({c_pieces / c_ours:.1f}x), "
        f"ours {c_ours:.2f}"
    )
    counted = []
    for which in (None, loops):
        _compiled.loops = which
        cpu = time.process_time()
        _value_counts(ours)
        counted.append(time.process_time() - cpu)
    _compiled.loops = loops
    print(f"value counts: numpy {counted[0]:.2f} cpu s, ours {counted[1]:.2f}")
    same = np.array_equal(ours, theirs) and np.array_equal(pieces, theirs)
    print("same draws" if same else "DIFFERENT draws")
    return 0 if same else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--nnunet-bin", type=Path, help="nnU-Net venv's bin/ (not with --skip-nnunet)"
    )
    parser.add_argument("--data", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2, help="processes writing the data")
    parser.add_argument(
        "--skip-nnunet", action="store_true", help="time our two commands only (no nnunetv2)"
    )
    parser.add_argument(
        "--draws-only", action="store_true", help="time one case's draws alone (no files)"
    )
    args = parser.parse_args()
    if args.draws_only:
        return draws_only(25_000_000, 2_000_000)  # 1e8 draws over 4 cases, as in the tests
    if args.nnunet_bin is None and not args.skip_nnunet:
        parser.error("give --nnunet-bin NNUNET_VENV/bin, or --skip-nnunet")
    base = args.data or Path(tempfile.mkdtemp(prefix="bench_nnunet_"))
    source = base / "nii.gz"
    if not (source / "images").is_dir() or len(list((source / "images").iterdir())) != args.cases:
        print(f"writing {args.cases} volumes {SHAPE_ZYX} uint16 + masks to {source}")
        write_dataset(base, args.cases, SHAPE_ZYX, "uint16", ("nii.gz",), True, args.workers)
    root = nnunet_layout(source, base / "nnUNet_raw")
    warm(root)
    load = os.getloadavg()[0]

    theirs_fp = theirs_plans = None
    t_nnunet = c_nnunet = float("nan")
    if not args.skip_nnunet:
        start, cpu = time.perf_counter(), _children_cpu()
        theirs_fp, theirs_plans = run_nnunet(DATASET_ID, base, processes=2, bindir=args.nnunet_bin)
        t_nnunet, c_nnunet = time.perf_counter() - start, _children_cpu() - cpu

    from napari_autoconfig.planners import fingerprint_nnunet, plan_nnunet

    warm(root)
    start, cpu = time.perf_counter(), time.process_time()
    fingerprint = fingerprint_nnunet(root)
    plans = plan_nnunet(fingerprint)
    t_ours, c_ours = time.perf_counter() - start, time.process_time() - cpu

    timed = {}
    for planner in ("nnunet", "both"):
        target = base / f"ours_plans_{planner}.json"
        target.unlink(missing_ok=True)
        warm(root)
        command = [sys.executable, "-m", "napari_autoconfig", str(root), "--planner", planner]
        timed[planner] = (*_command([*command, "--quiet", "--save", str(target)]), target)
    (t_command, c_command, mb_command, target) = timed["nnunet"]
    (t_both, c_both, mb_both, target_both) = timed["both"]
    t_floor, c_floor = _floor(root)

    if theirs_plans is None:  # without nnunetv2: our command's plans are the reference
        theirs_fp, theirs_plans = fingerprint.as_json(), json.loads(target.read_text())
    found = differences(fingerprint.as_json(), theirs_fp)
    found += differences(plans.as_json(), theirs_plans)
    found += differences(json.loads(target.read_text()), theirs_plans)
    found += differences(json.loads(target_both.read_text()), theirs_plans)
    full = theirs_plans["configurations"]["3d_fullres"]
    print(f"{args.cases} cases {SHAPE_ZYX} uint16 .nii.gz, {os.cpu_count()} cores")
    print(f"nnU-Net 3d_fullres: patch {full['patch_size']}, batch {full['batch_size']}")
    print(f"load average before: {load:.2f}, after: {os.getloadavg()[0]:.2f}")
    print(f"{'':36s}{'wall s':>8s}{'x':>6s}{'cpu s':>8s}{'x':>6s}")
    rows = (
        ("nnU-Net fingerprint -np 2 + plan", t_nnunet, c_nnunet),
        ("ours, in process", t_ours, c_ours),
        ("ours, the command (with start-up)", t_command, c_command),
        ("ours, --planner both (the command)", t_both, c_both),
    )
    for name, wall, processor in rows:
        ratios = f"{t_nnunet / wall:6.1f}{processor:8.2f}{c_nnunet / processor:6.1f}"
        print(f"{name:36s}{wall:8.2f}{ratios}")
    print(f"{'floor: inflate every byte (isal)':36s}{t_floor:8.2f}{'':6s}{c_floor:8.2f}")
    print(
        f"--planner both / --planner nnunet: wall {t_both / t_command:.2f}x, processor "
        f"{c_both / c_command:.2f}x (target: wall <= 1.15x)"
    )
    print(
        f"--planner nnunet / floor: processor {c_command / c_floor:.2f}x, wall "
        f"{t_command / t_floor:.2f}x (target: processor <= 1.3x)"
    )
    print(
        f"peak memory of the whole process: --planner nnunet {mb_command:.0f} MB, --planner both "
        f"{mb_both:.0f} MB (target: <= 300 MB)"
    )
    print("same numbers" if not found else "DIFFERENT:\n  " + "\n  ".join(found[:20]))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
