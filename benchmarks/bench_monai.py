"""MONAI Auto3DSeg's DataAnalyzer against napari-autoconfig's ``--datastats``, timed, one run.

    python benchmarks/bench_monai.py [--monai-python /work/envs/monai/bin/python] [--data DIR]
    python benchmarks/bench_monai.py --quick        # 4 small cases, while developing

The data is the benchmark's .nii.gz set (``datagen.py``: 24 volumes of 96x512x512 uint16 with
uint8 masks of two labels, spacing 0.5 x 0.5 x 2 µm), written by MONAI's Python (``datagen``
writes the NIfTI headers with nibabel), with a MONAI datalist of the cases. One run each, same
machine, warm file cache:

- MONAI: ``DataAnalyzer(datalist, dataroot, output_path, device="cpu")`` (its defaults
  otherwise: ``average=True``, ``do_ccp=False``, 4 loading workers), in its own Python;
- ours, in process: :func:`compute_datastats` + :func:`write_datastats` (the shared thread pool,
  one thread per core);
- ours, the command: ``napari-autoconfig datalist.json --datastats FILE.yaml`` (start-up
  included);
- the floor: every byte of every image and mask inflated once with isal on all cores
  (``floors.inflate_all``).

It prints wall and processor seconds (children included) and their ratios, each command's own
peak memory (``ru_maxrss``), against the targets: at least 25x faster than MONAI in wall time,
processor time at most 1.5x the floor's, peak memory at most 300 MB; and it checks that our two
files equal MONAI's (``monai_reference.differences``). Exit status 1 when they differ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_nnunet import _command
from datagen import warm
from floors import inflate_all
from monai_reference import differences

SHAPE_ZYX = (96, 512, 512)
QUICK_SHAPE_ZYX = (48, 256, 256)
MONAI_PYTHON = "/work/envs/monai/bin/python"

_MONAI_RUN = """
import sys
from monai.apps.auto3dseg import DataAnalyzer
DataAnalyzer(sys.argv[1], sys.argv[2], output_path=sys.argv[3], device="cpu").get_all_case_stats()
"""


def write_data(base: Path, cases: int, shape: tuple[int, int, int], python: str) -> Path:
    """The benchmark's .nii.gz cases (written by ``python``, which has nibabel) and a datalist
    of them; return the datalist."""
    source = base / "nii.gz"
    if not (source / "images").is_dir() or len(list((source / "images").iterdir())) != cases:
        print(f"writing {cases} volumes {shape} uint16 + masks to {source}")
        here = str(Path(__file__).parent)
        script = (
            f"import sys; sys.path.insert(0, {here!r}); from pathlib import Path; "
            "from datagen import write_dataset; "
            f"write_dataset(Path({str(base)!r}), {cases}, {tuple(shape)}, 'uint16', "
            "('nii.gz',), True, 2)"
        )
        subprocess.run([python, "-c", script], check=True)
    names = sorted(p.name for p in (source / "images").iterdir())
    training = [{"image": f"images/{n}", "label": f"masks/{n}"} for n in names]
    datalist = source / "datalist.json"
    datalist.write_text(json.dumps({"training": training}, indent=1))
    return datalist


def load(path: Path) -> dict:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(path.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monai-python", default=MONAI_PYTHON, help="a Python with monai 1.6.1")
    parser.add_argument("--data", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--quick", action="store_true", help=f"4 cases of {QUICK_SHAPE_ZYX}")
    parser.add_argument("--skip-monai", action="store_true", help="time ours only")
    args = parser.parse_args()
    shape, cases = (QUICK_SHAPE_ZYX, 4) if args.quick else (SHAPE_ZYX, args.cases)
    base = args.data or Path(tempfile.mkdtemp(prefix="bench_monai_"))
    datalist = write_data(base, cases, shape, args.monai_python)
    root = datalist.parent
    load_before = os.getloadavg()[0]

    theirs = root / "monai" / "datastats.yaml"
    t_monai = c_monai = mb_monai = float("nan")
    if not args.skip_monai:
        theirs.parent.mkdir(exist_ok=True)
        warm(root)
        command = [args.monai_python, "-c", _MONAI_RUN, str(datalist), str(root), str(theirs)]
        t_monai, c_monai, mb_monai = _command(command)

    from napari_autoconfig.dataset import open_datalist
    from napari_autoconfig.planners.monai import compute_datastats, write_datastats

    warm(root)
    start, cpu = time.perf_counter(), time.process_time()
    ours_in = write_datastats(compute_datastats(open_datalist(datalist)), root / "ours_in.yaml")
    t_ours, c_ours = time.perf_counter() - start, time.process_time() - cpu

    target = root / "ours.yaml"
    warm(root)
    command = [sys.executable, "-m", "napari_autoconfig", str(datalist), "--quiet"]
    t_cmd, c_cmd, mb_cmd = _command([*command, "--datastats", str(target)])

    warm(root)
    start, cpu = time.perf_counter(), time.process_time()
    inflate_all(root / "images", root / "masks")
    t_floor, c_floor = time.perf_counter() - start, time.process_time() - cpu

    found = []
    if not args.skip_monai:
        by_case = root / "monai" / "datastats_by_case.yaml"
        for ours, monais in ((target, theirs), (root / "ours_by_case.yaml", by_case)):
            found += differences(load(ours), load(monais), ours.name)
        found += differences(load(ours_in[0]), load(theirs), ours_in[0].name)
    print(f"{cases} cases {shape} uint16 .nii.gz, {os.cpu_count()} cores")
    print(f"load average before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f}")
    print(f"{'':40s}{'wall s':>8s}{'x':>7s}{'cpu s':>8s}{'peak MB':>9s}")
    rows = (
        ('MONAI DataAnalyzer(device="cpu")', t_monai, c_monai, mb_monai),
        ("ours, in process", t_ours, c_ours, float("nan")),
        ("ours, the command (with start-up)", t_cmd, c_cmd, mb_cmd),
        ("floor: inflate every byte (isal)", t_floor, c_floor, float("nan")),
    )
    for name, wall, processor, mb in rows:
        print(f"{name:40s}{wall:8.2f}{t_monai / wall:7.1f}{processor:8.2f}{mb:9.0f}")
    print(
        f"the command: {t_monai / t_cmd:.1f}x faster than MONAI in wall time (target >= 25x), "
        f"processor {c_cmd / c_floor:.2f}x the floor's (target <= 1.5x), peak memory "
        f"{mb_cmd:.0f} MB (target <= 300 MB)"
    )
    if not args.skip_monai:
        print("same datastats" if not found else "DIFFERENT:\n  " + "\n  ".join(found[:20]))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
