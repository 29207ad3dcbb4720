"""nnU-Net v2's own fingerprint and plans on generated raw datasets: the reference for ours.

Two halves:

- :data:`DATASETS` and :func:`write_dataset`: small raw nnU-Net datasets (``DatasetNNN_Name`` with
  ``imagesTr/``, ``labelsTr/``, ``dataset.json``) generated from a seed with numpy and written
  with SimpleITK (``.nii.gz``) or tifffile (``.tif`` / ``.tiff``, with nnU-Net's spacing
  files), so that the tests regenerate the very same files without nnU-Net;
- :func:`main`: run in an environment where nnunetv2 is installed, it writes every dataset,
  runs ``nnUNetv2_extract_fingerprint --clean`` and ``nnUNetv2_plan_experiment`` on them and
  records nnU-Net's ``dataset_fingerprint.json`` and ``nnUNetPlans.json`` next to the generator's
  parameters (``tests/nnunet_recorded.json``). ``--check-plans FILE`` loads a plans file with
  nnU-Net's ``PlansManager`` and prints what it reads.

Installing the reference (CPU torch; pinned, or nnunetv2's dependencies pull a CUDA build)::

    python -m venv nnunet && nnunet/bin/pip install torch==2.13.0 torchvision==0.28.0 \
        nnunetv2==2.8.1
    nnunet/bin/python benchmarks/nnunet_reference.py --record tests/nnunet_recorded.json

This module imports neither nnU-Net nor napari-autoconfig at import time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

NNUNET_VERSION = "2.8.1"

#: The generated datasets: everything that shapes the files, seeds included. Spacings and shapes
#: are in numpy order (z, y, x); ``pad`` is the width of the zero border around the content.
DATASETS: tuple[dict, ...] = (
    {
        "id": 101,
        "name": "IsoZeroBorder",
        "channels": ["MRI"],
        "classes": 2,
        "dtype": "int16",
        "cases": 5,
        "shape": [[36, 44], [40, 52], [40, 52]],  # per axis: [low, high) of the content
        "spacing": [[1.0], [1.0], [1.0]],  # per axis: the spacings drawn from
        "pad": [6, 10],
        "values": [100, 900],
        "seed": 101,
    },
    {
        "id": 102,
        "name": "AnisoFloat",
        "channels": ["T2"],
        "classes": 3,
        "dtype": "float32",
        "cases": 6,
        "shape": [[10, 16], [90, 120], [90, 120]],
        "spacing": [[4.0, 5.0, 6.0], [0.7, 0.8, 0.9], [0.7, 0.8, 0.9]],
        "pad": [0, 3],
        "values": [-2.5, 7.5],
        "seed": 102,
    },
    {
        "id": 103,
        "name": "TwoChannelCT",
        "channels": ["CT", "T2"],
        "classes": 3,
        "dtype": "int16",
        "cases": 4,
        "shape": [[30, 40], [60, 80], [60, 80]],
        "spacing": [[2.5], [1.2, 1.25], [1.2, 1.25]],
        "pad": [4, 8],
        "values": [-600, 700],
        "ct_background": -1000,  # channel 0 is CT: air everywhere, so nothing is cropped
        "seed": 103,
    },
    {
        "id": 104,
        "name": "TwelveUint8",
        "channels": ["EM"],
        "classes": 2,
        "dtype": "uint8",
        "cases": 12,
        "shape": [[30, 40], [20, 26], [40, 52]],
        "spacing": [[1.0], [3.5], [1.0]],  # the middle axis is the coarse one
        "pad": [0, 12],
        "values": [1, 255],
        "seed": 104,
    },
    {
        "id": 105,
        "name": "LargeLowres",
        "channels": ["zscore"],
        "classes": 2,
        "dtype": "uint8",
        "cases": 3,
        "shape": [[248, 264], [248, 264], [248, 264]],
        "spacing": [[1.0], [1.0], [1.0]],
        "pad": [0, 2],
        "values": [10, 250],
        "seed": 105,
    },
    {
        "id": 106,
        "name": "AnisoSpacingOnly",
        "channels": ["nonorm", "rescale_to_0_1"],
        "classes": 2,
        "dtype": "uint8",
        "cases": 3,
        "shape": [[40, 48], [40, 48], [40, 48]],
        "spacing": [[3.6, 4.0], [1.0], [1.0]],  # 4x coarser along z, but not fewer voxels
        "pad": [2, 5],
        "values": [5, 200],
        "seed": 106,
    },
    {
        "id": 107,
        "name": "Slices2D",
        "channels": ["DAPI"],
        "classes": 3,
        "dtype": "uint8",
        "cases": 7,
        "shape": [[0, 0], [100, 140], [100, 140]],  # z range [0, 0): 2D images
        "spacing": [[1.0], [0.5, 0.6], [0.5, 0.6]],
        "pad": [0, 20],
        "values": [1, 255],
        "seed": 107,
    },
    {
        "id": 108,
        "name": "CaseWithoutLabel",
        "channels": ["MRI"],
        "classes": 2,
        "dtype": "uint8",
        "cases": 4,
        "shape": [[24, 30], [40, 50], [40, 50]],
        "spacing": [[1.5], [1.0], [1.0]],
        "pad": [2, 6],
        "values": [1, 255],
        "unlabelled": [2],  # this case's label is all background: nnU-Net's float64 statistics
        "seed": 108,
    },
    # TIFF: nnU-Net's Tiff3DIO takes each case's spacing from imagesTr/<case>.json, verbatim
    {
        "id": 109,
        "name": "Tiff3D",
        "channels": ["DAPI"],
        "classes": 2,
        "dtype": "uint16",
        "cases": 4,
        "shape": [[16, 22], [36, 48], [36, 48]],
        "spacing": [[2.0], [0.5], [0.5]],
        "pad": [1, 5],
        "values": [100, 4000],
        "file_ending": ".tif",
        "no_spacing_file": [3],  # nnU-Net then assumes 1, 1, 1 (ints)
        "seed": 109,
    },
    {
        "id": 110,
        "name": "TiffTwoChannels",
        "channels": ["DAPI", "GFP"],
        "classes": 3,
        "dtype": "uint8",
        "cases": 3,
        "shape": [[12, 16], [40, 52], [40, 52]],
        "spacing": [[1.0], [0.3], [0.3]],
        "pad": [1, 4],
        "values": [1, 255],
        "file_ending": ".tif",
        "seed": 110,
    },
    {
        "id": 111,
        "name": "TiffIntSpacing",
        "channels": ["zscore"],
        "classes": 2,
        "dtype": "uint8",
        "cases": 3,
        "shape": [[14, 18], [32, 40], [32, 40]],
        "spacing": [[2], [1], [1]],  # integers in the spacing files: nnU-Net keeps them ints
        "pad": [1, 4],
        "values": [1, 255],
        "file_ending": ".tiff",
        "seed": 111,
    },
)


def dataset_folder_name(spec: dict) -> str:
    """nnU-Net's folder name of a generated dataset, ``DatasetNNN_Name``."""
    return f"Dataset{spec['id']:03d}_{spec['name']}"


def make_case(spec: dict, index: int) -> tuple[list[np.ndarray], np.ndarray, tuple[float, ...]]:
    """One case of a dataset: its channel arrays, its label and its spacing, all (z, y, x).

    Content: smooth noise of the dataset's value range inside a box, zeros in a border of
    ``pad`` voxels around it (CT: -1000 instead, so that nothing is cropped), and ellipsoids of
    the classes 1, 2... in the label, one of them reaching into the border so that the crop
    drops labelled voxels. A 2D dataset (``shape`` z range ``[0, 0)``) has (y, x) cases.
    """
    rng = np.random.default_rng([spec["seed"], index])
    two_d = spec["shape"][0][1] == 0
    axes = spec["shape"][1:] if two_d else spec["shape"]
    inner = [int(rng.integers(lo, hi)) for lo, hi in axes]
    pads = [int(rng.integers(*spec["pad"])) for _ in inner]
    shape = tuple(n + 2 * p for n, p in zip(inner, pads))
    spacing_axes = spec["spacing"][1:] if two_d else spec["spacing"]
    # .item(): a Python float, or an int where the spec gives ints (TIFF spacing files keep them)
    spacing = tuple(rng.choice(options).item() for options in spacing_axes)
    box = tuple(slice(p, p + n) for p, n in zip(pads, inner))
    dtype = np.dtype(spec["dtype"])
    low, high = spec["values"]
    channels = []
    for c, name in enumerate(spec["channels"]):
        content = block_noise(rng, inner, low, high, dtype)
        if name.casefold() == "ct" and "ct_background" in spec:
            image = np.full(shape, spec["ct_background"], dtype)
        else:
            image = np.zeros(shape, dtype)
        image[box] = content.astype(dtype)
        if c and dtype.kind != "f":  # a few exact zeros inside: labelled voxels valued 0
            image[box][rng.random(inner) < 0.01] = 0
        channels.append(image)
    label = np.zeros(shape, np.uint8)
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    for cls in range(1, spec["classes"]):
        centre = [rng.uniform(0.3, 0.7) * n for n in shape]
        radii = [rng.uniform(0.15, 0.3) * n for n in shape]
        distance = sum(((g - c0) / r) ** 2 for g, c0, r in zip(grid, centre, radii))
        label[distance <= 1] = cls
    # a blob at the corner: partly in the zero border, so the crop drops some labelled voxels
    corner = tuple(slice(max(0, p - 2), p + 3) for p in pads)
    label[corner] = 1
    if index in spec.get("unlabelled", ()):
        label[...] = 0
    return channels, label, spacing


def _write_itk(array: np.ndarray, spacing: tuple[float, ...], path: Path) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    sitk.WriteImage(image, str(path), True)


def _write_tiff(array: np.ndarray, spacing: tuple[float, ...], path: Path) -> None:
    import tifffile

    # no resolution tags: nnU-Net's Tiff3DIO ignores them and reads the case's .json instead
    tifffile.imwrite(path, array, compression="zlib")


def block_noise(rng: np.random.Generator, inner, low: float, high: float, dtype) -> np.ndarray:
    """Noise in blocks of 2 voxels per axis, of shape ``inner``: varied values that still compress
    quickly; rounded for an integer ``dtype`` (the caller casts). The generated datasets of every
    reference (nnU-Net's, its export check, MONAI's) draw their content with it."""
    content = rng.uniform(low, high, [(n + 1) // 2 for n in inner])
    for axis, n in enumerate(inner):
        content = np.repeat(content, 2, axis=axis).take(range(n), axis=axis)
    return content if np.dtype(dtype).kind == "f" else np.rint(content)


def write_dataset(spec: dict, raw: Path) -> Path:
    """Write the dataset ``spec`` under ``raw`` (nnU-Net's raw folder); return its folder.

    ``.nii.gz`` (the default ``file_ending``) is written with SimpleITK and its spacing; TIFF with
    tifffile, the spacing in nnU-Net's spacing files (``imagesTr/<case>.json`` and
    ``labelsTr/<case>.json``, ``{"spacing": [z, y, x]}``), left out for the cases of
    ``no_spacing_file``.
    """
    root = Path(raw) / dataset_folder_name(spec)
    if root.exists():
        shutil.rmtree(root)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    ending = spec.get("file_ending", ".nii.gz")
    tiff = ending in (".tif", ".tiff")
    write = _write_tiff if tiff else _write_itk

    for index in range(spec["cases"]):
        channels, label, spacing = make_case(spec, index)
        case = f"case_{index:03d}"
        for c, image in enumerate(channels):
            write(image, spacing, root / "imagesTr" / f"{case}_{c:04d}{ending}")
        write(label, spacing, root / "labelsTr" / f"{case}{ending}")
        if tiff and index not in spec.get("no_spacing_file", ()):
            for folder in ("imagesTr", "labelsTr"):
                text = json.dumps({"spacing": list(spacing)})
                (root / folder / f"{case}.json").write_text(text)
    labels = {"background": 0, **{f"class_{k}": k for k in range(1, spec["classes"])}}
    meta = {
        "channel_names": {str(i): name for i, name in enumerate(spec["channels"])},
        "labels": labels,
        "numTraining": spec["cases"],
        "file_ending": ending,
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=4))
    return root


# ------------------------------------------------------------------ running nnU-Net (its venv)


def nnunet_env(base: Path) -> dict:
    """Environment naming nnU-Net's three folders under ``base``."""
    env = dict(os.environ)
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (base / name).mkdir(parents=True, exist_ok=True)
        env[name] = str(base / name)
    return env


def run_nnunet(
    dataset_id: int,
    base: Path,
    processes: int = 2,
    bindir: Path | None = None,
    verify: bool = False,
) -> tuple[dict, dict]:
    """``nnUNetv2_extract_fingerprint --clean`` then ``nnUNetv2_plan_experiment`` on one dataset
    under ``base``; return nnU-Net's fingerprint and plans as it wrote them.

    ``bindir``: the folder of nnU-Net's commands (default: this Python's). ``verify``: run
    nnU-Net's integrity check first (``--verify_dataset_integrity``: a refused dataset raises, a
    non-zero exit).
    """
    env = nnunet_env(base)
    bindir = Path(bindir) if bindir is not None else Path(sys.executable).parent
    name = next(p.name for p in (base / "nnUNet_raw").glob(f"Dataset{dataset_id:03d}_*"))
    preprocessed = base / "nnUNet_preprocessed" / name
    shutil.rmtree(preprocessed, ignore_errors=True)  # nnU-Net merges into an old plans file
    quiet = {"stdout": subprocess.DEVNULL, "env": env, "check": True}
    subprocess.run(
        [
            str(bindir / "nnUNetv2_extract_fingerprint"),
            *("-d", str(dataset_id), "-np", str(processes), "--clean"),
            *(("--verify_dataset_integrity",) if verify else ()),
        ],
        **quiet,
    )
    subprocess.run([str(bindir / "nnUNetv2_plan_experiment"), "-d", str(dataset_id)], **quiet)
    fingerprint = json.loads((preprocessed / "dataset_fingerprint.json").read_text())
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    return fingerprint, plans


def write_record(path: Path, datasets: list, **more) -> None:
    """Write a recorded reference: the versions it was made with, ``more``, then ``datasets``."""
    import importlib.metadata

    document = {"nnunetv2": importlib.metadata.version("nnunetv2")}
    for name, value in more.items():
        document[name] = value
    document["datasets"] = datasets
    path.write_text(json.dumps(document, indent=1) + "\n")


def check_plans(path: Path) -> int:
    """Load a plans file with nnU-Net's PlansManager and print what it reads of each config."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    manager = PlansManager(str(path))
    print(f"PlansManager read {path}: dataset {manager.dataset_name}, plans {manager.plans_name}")
    for name in manager.available_configurations:
        config = manager.get_configuration(name)
        print(
            f"  {name}: patch {config.patch_size}, spacing {config.spacing}, batch "
            f"{config.batch_size}, normalization {config.normalization_schemes}, network "
            f"{config.network_arch_class_name} with {config.network_arch_init_kwargs['n_stages']}"
            " stages"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="write the recorded reference JSON here")
    parser.add_argument("--only", type=int, nargs="*", help="dataset ids (default: all)")
    parser.add_argument("--check-plans", type=Path, help="load this plans file with nnU-Net")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument(
        "--merge", action="store_true", help="replace only these datasets in the --record file"
    )
    args = parser.parse_args(argv)
    if args.check_plans:
        return check_plans(args.check_plans)
    specs = [s for s in DATASETS if not args.only or s["id"] in args.only]
    base = args.keep or Path(tempfile.mkdtemp(prefix="nnunet_reference_"))
    recorded = []
    try:
        for spec in specs:
            write_dataset(spec, nnunet_env(base) and base / "nnUNet_raw")
            fingerprint, plans = run_nnunet(spec["id"], base)
            recorded.append({"spec": spec, "fingerprint": fingerprint, "plans": plans})
            full = plans["configurations"].get("3d_fullres", plans["configurations"]["2d"])
            print(
                f"{dataset_folder_name(spec)}: {sorted(plans['configurations'])}, patch "
                f"{full['patch_size']}, batch {full['batch_size']}, spacing {full['spacing']}"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    if args.record and args.merge and args.record.exists():
        done = {r["spec"]["id"] for r in recorded}
        old = json.loads(args.record.read_text())["datasets"]
        recorded = sorted(
            [r for r in old if r["spec"]["id"] not in done] + recorded,
            key=lambda r: r["spec"]["id"],
        )
    if args.record:
        write_record(args.record, recorded, numpy=np.__version__)
        print(f"recorded {len(recorded)} dataset(s) in {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
