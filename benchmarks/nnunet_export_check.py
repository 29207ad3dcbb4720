"""Our nnU-Net export, judged by nnU-Net itself: its integrity check, fingerprint and plans.

Two halves, like :mod:`nnunet_reference`:

- :data:`DATASETS` and :func:`write_plain`: small PLAIN folders (``images/`` and ``masks/``, as
  biologists have them) generated from a seed with numpy and written with tifffile / SimpleITK,
  so that the tests regenerate the very same files without nnU-Net: ImageJ TIFF 3D with 0/255
  masks, NIfTI with the labels 0/2/7, and 2D ImageJ TIFF (exported as ``.nii.gz``);
- :func:`main`: run where nnunetv2 is installed, it exports each folder with
  :func:`napari_autoconfig.nnunet_export.export_nnunet`, runs nnU-Net's
  ``nnUNetv2_extract_fingerprint --verify_dataset_integrity --clean`` (the integrity check
  raises on a dataset it refuses) and ``nnUNetv2_plan_experiment`` on the export, and records
  the fingerprint and plans nnU-Net wrote, next to the generator's parameters and the check's
  outcome (``tests/nnunet_export_recorded.json``).

Run in nnU-Net's environment (installed as :mod:`nnunet_reference` says; nnU-Net is not a
dependency of the package, and ``src/`` is put on the path)::

    nnunet/bin/python benchmarks/nnunet_export_check.py --record tests/nnunet_export_recorded.json

This module imports neither nnU-Net nor napari-autoconfig at import time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from nnunet_reference import block_noise, run_nnunet, write_record

#: The plain datasets: everything that shapes the files, seeds included. Shapes and spacings in
#: numpy order (z, y, x), or (y, x) for 2D; ``pad``: zero border around the content (cropped).
DATASETS: tuple[dict, ...] = (
    {
        "id": 601,
        "name": "TiffZeroTwoFiftyFive",
        "format": ".tif",
        "dtype": "uint16",
        "cases": 4,
        # large enough that the class count bites: 256 classes would shrink nnU-Net's patch
        "shape": [[40, 52], [170, 210], [170, 210]],
        "spacing": [[2.0], [0.5, 0.4], [0.5, 0.4]],
        "pad": [2, 5],
        "values": [200, 3000],
        "labels": [255],
        "seed": 601,
    },
    {
        "id": 602,
        "name": "NiftiSparseLabels",
        "format": ".nii.gz",
        "dtype": "float32",
        "cases": 4,
        "shape": [[14, 20], [44, 60], [44, 60]],
        "spacing": [[3.0, 4.0], [0.75], [0.75]],
        "pad": [0, 4],
        "values": [-1.5, 6.0],
        "labels": [2, 7],
        "seed": 602,
    },
    {
        "id": 603,
        "name": "Tiff2D",
        "format": ".tif",
        "dtype": "uint8",
        "cases": 6,
        "shape": [[0, 0], [60, 90], [60, 90]],
        "spacing": [[1.0], [0.3], [0.3]],
        "pad": [3, 8],
        "values": [20, 250],
        "labels": [1],
        "seed": 603,
    },
)


def dataset_folder_name(spec: dict) -> str:
    """The export's folder name, ``DatasetNNN_Name``."""
    return f"Dataset{spec['id']:03d}_{spec['name']}"


def make_case(spec: dict, index: int) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """One case: image, mask (the spec's label values) and spacing, (z, y, x) or (y, x).

    Content: block noise of the dataset's value range inside a zero border (nnU-Net crops it),
    and one ellipsoid per label value, the first one reaching into the border.
    """
    rng = np.random.default_rng([spec["seed"], index])
    two_d = spec["shape"][0][1] == 0
    axes = spec["shape"][1:] if two_d else spec["shape"]
    inner = [int(rng.integers(lo, hi)) for lo, hi in axes]
    pads = [int(rng.integers(*spec["pad"])) for _ in inner]
    shape = tuple(n + 2 * p for n, p in zip(inner, pads))
    spacing_axes = spec["spacing"][1:] if two_d else spec["spacing"]
    spacing = tuple(float(rng.choice(options)) for options in spacing_axes)
    dtype = np.dtype(spec["dtype"])
    low, high = spec["values"]
    content = block_noise(rng, inner, low, high, dtype)
    image = np.zeros(shape, dtype)
    image[tuple(slice(p, p + n) for p, n in zip(pads, inner))] = content.astype(dtype)
    mask = np.zeros(shape, np.uint8)
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    for value in spec["labels"]:
        centre = [rng.uniform(0.3, 0.7) * n for n in shape]
        radii = [rng.uniform(0.15, 0.3) * n for n in shape]
        distance = sum(((g - c0) / r) ** 2 for g, c0, r in zip(grid, centre, radii))
        mask[distance <= 1] = value
    corner = tuple(slice(max(0, p - 2), p + 3) for p in pads)
    mask[corner] = spec["labels"][0]
    return image, mask, spacing


def _write_imagej(path: Path, array: np.ndarray, spacing: tuple[float, ...]) -> None:
    import tifffile

    # a 2D file gets a spacing entry too: without one our reader (biom3d's rule) sees no spacing
    metadata = {"unit": "micron", "axes": "ZYX"[-array.ndim :], "spacing": spacing[0]}
    if array.ndim == 2:
        metadata["spacing"] = 1.0
    y, x = spacing[-2:]
    tifffile.imwrite(path, array, imagej=True, resolution=(1 / x, 1 / y), metadata=metadata)


def _write_itk(path: Path, array: np.ndarray, spacing: tuple[float, ...]) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    sitk.WriteImage(image, str(path), True)


def write_plain(spec: dict, base: Path) -> tuple[Path, Path]:
    """Write the plain folder of ``spec`` under ``base``; return its images and masks folders.

    Images and masks share their names (``cell_000.tif``...), as they pair by name.
    """
    root = Path(base) / spec["name"]
    if root.exists():
        shutil.rmtree(root)
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    write = _write_imagej if spec["format"] in (".tif", ".tiff") else _write_itk
    for index in range(spec["cases"]):
        image, mask, spacing = make_case(spec, index)
        name = f"cell_{index:03d}{spec['format']}"
        write(images / name, image, spacing)
        write(masks / name, mask, spacing)
    return images, masks


# ------------------------------------------------------------------ running nnU-Net (its venv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="write the recorded JSON here")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--only", type=int, nargs="*", help="dataset ids (default: all)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from napari_autoconfig.nnunet_export import export_nnunet

    base = args.keep or Path(tempfile.mkdtemp(prefix="nnunet_export_check_"))
    bindir = Path(sys.executable).parent
    recorded = []
    try:
        for spec in [s for s in DATASETS if not args.only or s["id"] in args.only]:
            images, masks = write_plain(spec, base / "plain")
            raw = base / "nnUNet_raw"
            raw.mkdir(parents=True, exist_ok=True)
            target = raw / dataset_folder_name(spec)
            shutil.rmtree(target, ignore_errors=True)
            export = export_nnunet(images, masks, target)
            # nnU-Net's integrity check first: it raises on a dataset it refuses
            fingerprint, plans = run_nnunet(spec["id"], base, bindir=bindir, verify=True)
            dataset_json = json.loads((target / "dataset.json").read_text())
            recorded.append(
                {
                    "spec": spec,
                    "integrity_check": "passed",
                    "dataset_json": dataset_json,
                    "fingerprint": fingerprint,
                    "plans": plans,
                }
            )
            configs = plans["configurations"]
            full = configs.get("3d_fullres", configs["2d"])
            print(
                f"{target.name}: {export.summary()} nnU-Net's integrity check passed; "
                f"{sorted(configs)}, patch {full['patch_size']}, batch {full['batch_size']}, "
                f"spacing {full['spacing']}"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    if args.record:
        write_record(args.record, recorded, numpy=np.__version__)
        print(f"recorded {len(recorded)} dataset(s) in {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
