"""MONAI Auto3DSeg's own ``DataAnalyzer`` on generated datasets: the reference for our datastats.

Two halves:

- :data:`DATASETS` and :func:`write_dataset`: small datasets (an ``images/`` and a ``labels/``
  folder of ``.nii.gz`` or ``.mha`` files and a MONAI datalist ``datalist.json``) generated from a
  seed with numpy and written with SimpleITK, so that the tests regenerate the very same files
  without MONAI, torch or nibabel;
- :func:`main`: run in an environment where monai 1.6.1 is installed (with scikit-image for
  ``do_ccp``, itk for MetaImage), it writes every dataset, runs ``DataAnalyzer(datalist,
  dataroot, output_path, device="cpu", average=True, do_ccp=..., hist_bins=...)`` once per
  recorded run and records both YAML files it wrote, parsed, with the versions
  (``tests/monai_recorded.json``).

Running it::

    /work/envs/monai/bin/python benchmarks/monai_reference.py --record tests/monai_recorded.json

This module imports neither MONAI nor napari-autoconfig at import time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from nnunet_reference import block_noise

#: The generated datasets. Shapes are numpy (z, y, x); ``direction`` is the ITK direction matrix
#: (row-major, 3 x 3, in ITK's (x, y, z) order); ``runs`` are the DataAnalyzer settings recorded.
DATASETS: tuple[dict, ...] = (
    {
        # uint16, labels 0 / 1 / 3 (non-consecutive), case 2 without label 1, zero borders
        "name": "uint16_labels",
        "dtype": "uint16",
        "cases": 4,
        "shape": [[18, 22], [36, 44], [36, 44]],
        "pad": [0, 4],
        "spacing": [[2.0, 2.5], [0.8], [0.8, 0.9]],
        "values": [1, 900],
        "labels": [1, 3],
        "missing": {"2": [1]},
        "runs": [{"do_ccp": False, "hist_bins": 0}, {"do_ccp": True, "hist_bins": 0}],
        "seed": 1,
    },
    {
        # float32 with negatives: the crop box is of intensity > 0, negatives inside it count
        "name": "float_negatives",
        "dtype": "float32",
        "cases": 3,
        "shape": [[16, 20], [30, 40], [34, 40]],
        "pad": [2, 5],
        "spacing": [[3.0], [0.7, 0.75], [0.7, 0.75]],
        "values": [-300.0, 700.0],
        "labels": [1, 2],
        "runs": [{"do_ccp": False, "hist_bins": 12}],
        "seed": 2,
    },
    {
        # one case of more than 1e6 voxels in its crop box: MONAI's np.percentile path
        "name": "large_case",
        "dtype": "int16",
        "cases": 2,
        "shape": [[110, 111], [100, 101], [100, 101]],
        "pad": [0, 1],
        "spacing": [[1.0], [1.0], [1.0]],
        "values": [-50, 2000],
        "labels": [1],
        "small": {"1": [[20, 30, 30]]},
        "runs": [{"do_ccp": False, "hist_bins": 0}, {"do_ccp": False, "hist_bins": 20}],
        "seed": 3,
    },
    {
        # a direction that is not RAS (axes swapped and flipped): MONAI reorients to RAS
        "name": "oblique_axes",
        "dtype": "uint8",
        "cases": 3,
        "shape": [[12, 16], [24, 30], [28, 34]],
        "pad": [1, 3],
        "spacing": [[1.5], [0.6], [0.9]],
        "values": [1, 250],
        "labels": [1, 2],
        "direction": [0, 0, -1, -1, 0, 0, 0, 1, 0],
        "runs": [{"do_ccp": True, "hist_bins": 0}],
        "seed": 4,
    },
    {
        # MetaImage (.mha, zlib), read by MONAI through ITK: its direction (LPS) turned to RAS
        "name": "metaimage_axes",
        "dtype": "int16",
        "cases": 2,
        "shape": [[12, 16], [22, 28], [18, 24]],
        "pad": [1, 3],
        "spacing": [[1.25], [0.5], [0.75]],
        "values": [-40, 600],
        "labels": [1, 2],
        "suffix": ".mha",
        "direction": [0, 1, 0, 0, 0, -1, 1, 0, 0],
        "runs": [{"do_ccp": True, "hist_bins": 0}],
        "seed": 7,
    },
    {
        # labels 2 voxels longer in x than their images: MONAI resizes them (nearest-exact)
        "name": "resized_labels",
        "dtype": "uint8",
        "cases": 2,
        "shape": [[10, 14], [20, 26], [20, 26]],
        "pad": [1, 3],
        "spacing": [[2.0], [1.0], [1.0]],
        "values": [1, 200],
        "labels": [1, 2],
        "label_pad_zyx": [0, 0, 2],
        "runs": [{"do_ccp": True, "hist_bins": 0}],
        "seed": 6,
    },
    {
        # two channels in one 4D file; a case whose image has no voxel > 0 (MONAI skips it)
        "name": "two_channels",
        "dtype": "int16",
        "cases": 3,
        "channels": 2,
        "shape": [[10, 14], [20, 26], [20, 26]],
        "pad": [1, 3],
        "spacing": [[2.0], [1.0], [1.0]],
        "values": [-20, 400],
        "labels": [1, 2],
        "empty": [1],
        "runs": [{"do_ccp": False, "hist_bins": 0}],
        "seed": 5,
    },
)


def make_case(spec: dict, index: int) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """One case: its image ((z, y, x), or (c, z, y, x) with channels), its label (z, y, x) and
    its spacing (z, y, x).

    Content: blocky noise of the dataset's value range inside a box, zeros in a border of
    ``pad`` voxels around it, and ellipsoids of the dataset's label values in the label (later
    labels over earlier ones), one of them in two pieces so that components count.
    """
    rng = np.random.default_rng([spec["seed"], index])
    small = spec.get("small", {}).get(str(index))
    inner = small[0] if small else [int(rng.integers(lo, hi)) for lo, hi in spec["shape"]]
    pads = [int(rng.integers(*spec["pad"])) for _ in inner]
    shape = tuple(n + 2 * p for n, p in zip(inner, pads))
    spacing = tuple(float(rng.choice(options)) for options in spec["spacing"])
    box = tuple(slice(p, p + n) for p, n in zip(pads, inner))
    dtype = np.dtype(spec["dtype"])
    low, high = spec["values"]
    channels = []
    for _ in range(spec.get("channels", 1)):
        content = block_noise(rng, inner, low, high, dtype)
        image = np.zeros(shape, dtype)
        image[box] = content.astype(dtype)
        if index in spec.get("empty", ()):
            image[...] = 0
        channels.append(image)
    label = np.zeros(shape, np.uint8)
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    missing = spec.get("missing", {}).get(str(index), [])
    for value in spec["labels"]:
        if value in missing:
            continue
        for _ in range(2):  # two blobs per label: often two components
            centre = [rng.uniform(0.25, 0.75) * n for n in shape]
            radii = [rng.uniform(0.08, 0.2) * n for n in shape]
            distance = sum(((g - c0) / r) ** 2 for g, c0, r in zip(grid, centre, radii))
            label[distance <= 1] = value
    image = np.stack(channels) if len(channels) > 1 else channels[0]
    if "label_pad_zyx" in spec:  # a label a few voxels off its image's shape
        grown = np.pad(label, [(0, p) for p in spec["label_pad_zyx"]], mode="edge")
        label = np.ascontiguousarray(grown)
    return image, label, spacing


def _write_itk(array: np.ndarray, spacing: tuple[float, ...], path: Path, spec: dict) -> None:
    import SimpleITK as sitk

    vector = array.ndim == 4
    image = sitk.GetImageFromArray(array, isVector=False)
    image.SetSpacing(tuple(float(s) for s in spacing[::-1]) + ((1.0,) if vector else ()))
    if "direction" in spec:
        direction = [float(d) for d in spec["direction"]]
        if vector:  # a 4D image: the 4th axis keeps its own direction
            rows = [[*direction[3 * r : 3 * r + 3], 0.0] for r in range(3)]
            direction = [*(v for row in rows for v in row), 0.0, 0.0, 0.0, 1.0]
        image.SetDirection(direction)
    sitk.WriteImage(image, str(path), True)


def write_dataset(spec: dict, root: Path) -> Path:
    """Write the dataset ``spec`` into ``root/<name>`` (``images/``, ``labels/`` and
    ``datalist.json``, its paths relative to that folder); return the folder."""
    folder = Path(root) / spec["name"]
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    training = []
    for index in range(spec["cases"]):
        image, label, spacing = make_case(spec, index)
        name = f"case_{index:03d}{spec.get('suffix', '.nii.gz')}"
        _write_itk(image, spacing, folder / "images" / name, spec)
        _write_itk(label, spacing, folder / "labels" / name, spec)
        training.append({"fold": index % 2, "image": f"images/{name}", "label": f"labels/{name}"})
    datalist = {"training": training}
    (folder / "datalist.json").write_text(json.dumps(datalist, indent=1))
    return folder


def run_monai(folder: Path, output: Path, do_ccp: bool, hist_bins: int) -> tuple[dict, dict]:
    """MONAI's DataAnalyzer on the CPU over ``folder``'s datalist; both YAML files, parsed."""
    import yaml
    from monai.apps.auto3dseg import DataAnalyzer

    analyzer = DataAnalyzer(
        str(folder / "datalist.json"),
        str(folder),
        output_path=str(output),
        device="cpu",
        average=True,
        do_ccp=do_ccp,
        hist_bins=hist_bins,
        worker=0,
    )
    analyzer.get_all_case_stats()
    by_case = output.with_name(output.name.replace(".yaml", "_by_case.yaml"))
    summary = yaml.safe_load(output.read_text())
    cases = yaml.safe_load(by_case.read_text())
    return summary, cases


def relative_paths(document: dict, folder: Path) -> dict:
    """The by-case file paths made relative to the dataset folder (the tests' folder differs)."""
    for case in document.get("stats_by_cases") or []:
        for key in ("image_filepath", "label_filepath"):
            if case.get(key) not in (None, "None"):
                case[key] = str(Path(case[key]).relative_to(folder))
    return document


#: float32 rounding: torch adds a mean's float32 voxels in float32 (about 1e-6 apart at most)
RELATIVE = 2e-6


def differences(ours, monais, where: str = "", relative: float = RELATIVE) -> list[str]:
    """Where ``ours`` differs from MONAI's: keys (and their order), types, whole numbers, or a
    float more than ``relative`` apart. Empty: the same datastats."""
    if isinstance(monais, dict):
        if not isinstance(ours, dict) or list(ours) != list(monais):
            keys = list(ours) if isinstance(ours, dict) else ours
            return [f"{where}: keys {keys!r} != {list(monais)!r}"]
        return [
            d for k in monais for d in differences(ours[k], monais[k], f"{where}.{k}", relative)
        ]
    if isinstance(monais, list):
        if not isinstance(ours, list) or len(ours) != len(monais):
            return [f"{where}: {str(ours)[:60]} != {str(monais)[:60]}"]
        found = []
        for index, (a, b) in enumerate(zip(ours, monais)):
            found += differences(a, b, f"{where}[{index}]", relative)
        return found
    if type(ours) is not type(monais):
        return [f"{where}: {ours!r} ({type(ours).__name__}) != {monais!r}"]
    if isinstance(monais, float):
        close = ours == monais or abs(ours - monais) <= relative * max(abs(ours), abs(monais))
        return (
            []
            if close or (ours != ours and monais != monais)
            else [f"{where}: {ours!r} != {monais!r}"]
        )
    return [] if ours == monais else [f"{where}: {ours!r} != {monais!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="write the recorded reference JSON here")
    parser.add_argument("--only", nargs="*", help="dataset names (default: all)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    import importlib.metadata

    specs = [s for s in DATASETS if not args.only or s["name"] in args.only]
    base = args.keep or Path(tempfile.mkdtemp(prefix="monai_reference_"))
    recorded = []
    try:
        for spec in specs:
            folder = write_dataset(spec, base).resolve()
            for run in spec["runs"]:
                output = base / f"{spec['name']}_ccp{int(run['do_ccp'])}_h{run['hist_bins']}.yaml"
                summary, cases = run_monai(folder, output, run["do_ccp"], run["hist_bins"])
                recorded.append(
                    {
                        "dataset": spec["name"],
                        "run": run,
                        "datastats": summary,
                        "datastats_by_case": relative_paths(cases, folder),
                    }
                )
                n = summary["stats_summary"]["n_cases"]
                print(f"{spec['name']} {run}: {n} of {spec['cases']} cases analysed")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    if args.record:
        document = {
            "monai": importlib.metadata.version("monai"),
            "torch": importlib.metadata.version("torch"),
            "scikit-image": importlib.metadata.version("scikit-image"),
            "itk": importlib.metadata.version("itk"),
            "numpy": importlib.metadata.version("numpy"),
            "datasets": list(DATASETS),
            "runs": recorded,
        }
        args.record.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
