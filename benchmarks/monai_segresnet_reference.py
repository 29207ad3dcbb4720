"""Auto3DSeg's SegResNet template run on datastats summaries: the reference for our planner.

Two halves:

- :data:`CASES` and :func:`make_summary`: ``stats_summary`` dicts (MONAI's key names, (x, y, z)
  order) built with numpy from per-case spacings and shapes, the way ``DataAnalyzer`` summarises
  them across cases (max / mean / median / min / population stdev / linear percentiles), plus the
  foreground intensity percentiles, labels and case count the template reads;
- :func:`main`: run where monai is installed (``/work/envs/monai``: monai 1.6.1, torch, pyyaml and
  ``fire``, which the template's ``algo.py`` imports), it loads the template's own code
  (``segresnet/`` of Project-MONAI/research-contributions at the commit monai 1.6.1 downloads)
  from a folder given on the command line, or straight from a git mirror of that repository,
  writes each summary as ``datastats.yaml``, runs ``SegresnetAlgo.fill_template_config`` on it
  and records what it fills into ``hyper_parameters.yaml``; then, per GPU size, the training-time
  ``auto_adjust_network_settings`` call of ``scripts/segmenter.py`` (its arguments, with
  ``get_gpu_mem_size`` answering that size) and the segmenter's crop/epoch split. Everything goes
  to ``tests/monai_segresnet_recorded.json``, which ``tests/test_monai_segresnet.py`` reads.

Usage::

    /work/envs/monai/bin/pip install fire
    /work/envs/monai/bin/python benchmarks/monai_segresnet_reference.py \\
        --mirror /work/.mirror/Project-MONAI+research-contributions/repo \\
        --record tests/monai_segresnet_recorded.json
    # or --template DIR, a checkout's auto3dseg/algorithm_templates/segresnet

The template's code is read at run time and never copied into this repository. This module imports
neither monai nor napari-autoconfig at import time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import numpy as np

#: research-contributions commit monai 1.6.1 downloads (``MONAIEnvVars.algo_hash()``'s default).
TEMPLATE_COMMIT = "21ed8e5"
TEMPLATE_PATH = "auto3dseg/algorithm_templates/segresnet"
#: GPU sizes (GiB) the training-time adjustment is recorded for.
GPU_SIZES = (16.0, 24.0, 80.0)

#: Each case: how its summary is drawn (per-case spacings and shapes, (x, y, z)), then the
#: template's inputs from ``input.yaml``. ``spacing``/``shape``: per axis, values drawn from.
CASES: tuple[dict, ...] = (
    {
        "name": "isotropic_ct",
        "n_cases": 40,
        "spacing": [[0.8, 1.0], [0.8, 1.0], [0.8, 1.2]],
        "shape": [[180, 260], [180, 260], [120, 200]],
        "labels": [0, 1, 2, 3],
        "fg": [-150.0, 350.0],
        "input": {"modality": "ct"},
        "seed": 1,
    },
    {
        "name": "anisotropic_mri_few_cases",
        "n_cases": 12,
        "spacing": [[0.6, 0.8], [0.6, 0.8], [3.0, 4.0]],
        "shape": [[256, 320], [256, 320], [20, 36]],
        "labels": [0, 1, 2],
        "fg": [12.0, 1830.5],
        "input": {"modality": "mri"},
        "seed": 2,
    },
    {
        "name": "microscopy_resampled",
        "n_cases": 24,
        "spacing": [[0.1, 0.4], [0.1, 0.4], [0.5, 2.0]],
        "shape": [[400, 512], [400, 512], [60, 96]],
        "labels": [0, 1],
        "fg": [103.0, 2410.0],
        "input": {},  # no modality: the template warns and takes CT
        "seed": 3,
    },
    {
        "name": "many_classes_25",
        "n_cases": 100,
        "spacing": [[1.4, 1.6], [1.4, 1.6], [1.4, 1.6]],
        "shape": [[200, 260], [200, 260], [180, 240]],
        "labels": list(range(25)),
        "fg": [-90.0, 1200.0],
        "input": {"modality": "ct"},
        "seed": 4,
    },
    {
        "name": "many_classes_105",
        "n_cases": 400,
        "spacing": [[1.5, 1.5], [1.5, 1.5], [1.5, 1.5]],
        "shape": [[240, 300], [240, 300], [200, 300]],
        "labels": list(range(105)),
        "fg": [-200.0, 900.0],
        "input": {"modality": "ct"},
        "seed": 5,
    },
    {
        "name": "small_images",
        "n_cases": 300,
        "spacing": [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]],
        "shape": [[30, 50], [28, 44], [18, 26]],
        "labels": [0, 1],
        "fg": [0.5, 1.0],
        "input": {"modality": "mri"},
        "seed": 6,
    },
    {
        "name": "many_cases_median10",
        "n_cases": 2000,
        "spacing": [[0.7, 0.9], [0.7, 0.9], [1.5, 5.0]],
        "shape": [[300, 512], [300, 512], [40, 120]],
        "labels": [0, 1, 2],
        "fg": [-30.0, 260.0],
        "input": {"modality": "ct", "resample_mode": "median10"},
        "seed": 7,
    },
    {
        "name": "ones_mode",
        "n_cases": 64,
        "spacing": [[0.5, 0.7], [0.5, 0.7], [0.5, 0.7]],
        "shape": [[128, 200], [128, 200], [100, 160]],
        "labels": [0, 1, 2, 3, 4, 5],
        "fg": [20.0, 640.0],
        "input": {"modality": "mri", "resample_mode": "ones"},
        "seed": 8,
    },
    {
        "name": "thin_slab",
        "n_cases": 3,
        "spacing": [[0.3, 0.3], [0.3, 0.3], [2.0, 2.0]],
        "shape": [[600, 700], [500, 600], [3, 5]],
        "labels": [0, 1],
        "fg": [1.0, 4000.0],
        "input": {"modality": "mri"},
        "seed": 9,
    },
)


def _stats(values: np.ndarray) -> dict:
    """Across-case summary of an (n, 3) array as MONAI's ``SampleOperations`` on numpy gives it."""
    q = np.percentile(values, [0.5, 10, 90, 99.5], axis=0)
    out = {
        "max": values.max(axis=0).tolist(),
        "mean": values.mean(axis=0).tolist(),
        "median": np.median(values, axis=0).tolist(),
        "min": values.min(axis=0).tolist(),
        "stdev": values.std(axis=0).tolist(),
    }
    for key, row in zip(("00_5", "10_0", "90_0", "99_5"), q):
        out[f"percentile_{key}"] = row.tolist()
    return out


def _scalar_stats(low: float, high: float) -> dict:
    """A 9-key intensity summary whose percentiles 0.5 / 99.5 are ``low`` / ``high``."""
    span = high - low
    return {
        "max": high + 0.1 * span,
        "mean": low + 0.45 * span,
        "median": low + 0.4 * span,
        "min": low - 0.1 * span,
        "stdev": 0.2 * span,
        "percentile_00_5": low,
        "percentile_10_0": low + 0.1 * span,
        "percentile_90_0": low + 0.8 * span,
        "percentile_99_5": high,
    }


def make_summary(case: dict) -> dict:
    """The ``stats_summary`` of a case of :data:`CASES`, drawn from its seed (numpy only)."""
    rng = np.random.default_rng(case["seed"])
    n = case["n_cases"]
    spacing = np.stack([rng.uniform(lo, hi, n) for lo, hi in case["spacing"]], axis=1)
    spacing = np.round(spacing, 4)
    shape = np.stack([rng.integers(lo, hi + 1, n) for lo, hi in case["shape"]], axis=1)
    sizemm = shape * spacing
    cropped = np.maximum(1, shape - rng.integers(0, 4, (n, 3)))
    channels = np.ones((n, 1))
    return {
        "image_stats": {
            "shape": _stats(shape.astype(float)),
            "channels": {k: v[0] for k, v in _stats(channels).items()},
            "cropped_shape": _stats(cropped.astype(float)),
            "spacing": _stats(spacing),
            "sizemm": _stats(sizemm),
            "intensity": _scalar_stats(case["fg"][0] - 50.0, case["fg"][1] + 50.0),
        },
        "image_foreground_stats": {"intensity": _scalar_stats(*case["fg"])},
        "label_stats": {"labels": list(case["labels"])},
        "n_cases": n,
    }


def template_dir(mirror: Path, commit: str, into: Path) -> Path:
    """The template folder at ``commit`` of a git mirror, extracted under ``into``."""
    blob = subprocess.run(
        ["git", "-C", str(mirror), "archive", "--format=tar", commit, TEMPLATE_PATH],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into / TEMPLATE_PATH


def run_template(template: Path, case: dict, summary: dict, work: Path) -> dict:
    """Fill ``hyper_parameters.yaml`` with the template's ``fill_template_config``; then the
    segmenter's training-time adjustment per GPU size."""
    import shutil

    import yaml

    sys.path.insert(0, str(template.parent))
    try:
        algo = importlib.import_module(f"{template.name}.scripts.algo")
        utils = importlib.import_module(f"{template.name}.scripts.utils")
    finally:
        sys.path.pop(0)

    work.mkdir(parents=True)
    stats_file = work / "datastats.yaml"
    stats_file.write_text(yaml.safe_dump({"stats_summary": summary, "stats_by_cases": []}))
    datalist = work / "datalist.json"
    datalist.write_text(json.dumps({"training": []}))
    input_cfg = {"dataroot": str(work), "datalist": str(datalist), **case["input"]}
    input_file = work / "input.yaml"
    input_file.write_text(yaml.safe_dump(input_cfg))
    bundle = work / "bundle"
    shutil.copytree(template / "configs", bundle / "configs")

    bundle_algo = algo.SegresnetAlgo(template_path=str(template))
    bundle_algo.set_data_source(str(input_file))
    here = os.getcwd()
    os.chdir(work)  # the template's logger_configure opens runner.log in the working directory
    try:
        filled = bundle_algo.fill_template_config(
            data_stats_file=str(stats_file), output_path=str(bundle)
        )
    finally:
        os.chdir(here)
    config = filled["hyper_parameters.yaml"]
    keep = (
        "modality", "input_channels", "output_classes", "intensity_bounds", "normalize_mode",
        "resample_resolution", "anisotropic_scales", "spacing_median", "spacing_lower",
        "spacing_upper", "resample", "image_size_mm_median", "image_size_mm_90", "image_size",
        "num_epochs", "roi_size", "batch_size", "network#blocks_down", "network#init_filters",
        "crop_mode",
    )  # fmt: skip
    record = {k: _plain(config[k]) for k in keep}

    # what segmenter.py does when training starts, with the template's own hyper_parameters.yaml
    hyper = yaml.safe_load((bundle / "configs" / "hyper_parameters.yaml").read_text())
    assert hyper["auto_scale_allowed"] and hyper["auto_scale_batch"]
    assert not hyper["auto_scale_roi"] and not hyper["auto_scale_filters"]
    training = {}
    for gpu in GPU_SIZES:
        utils.get_gpu_mem_size = lambda gpu=gpu: gpu  # the segmenter asks torch; we say `gpu`
        roi, _, init_filters, batch = utils.auto_adjust_network_settings(
            auto_scale_batch=hyper["auto_scale_batch"],
            auto_scale_roi=hyper["auto_scale_roi"],
            auto_scale_filters=hyper["auto_scale_filters"],
            image_size_mm=hyper["image_size_mm_median"],
            spacing=hyper["resample_resolution"],
            anisotropic_scales=hyper["anisotropic_scales"],
            levels=len(hyper["network"]["blocks_down"]),
            output_classes=hyper["output_classes"],
        )
        # Segmenter.train: with auto_scale_allowed and num_steps_per_image null, "ratio" crops
        # take the batch as crops per image; epochs are divided by min(3, crops)
        crops = batch if hyper["crop_mode"] == "ratio" else 1
        training[str(gpu)] = {
            "roi_size": _plain(roi),
            "batch_size": 1 if hyper["crop_mode"] == "ratio" else batch,
            "num_crops_per_image": crops,
            "num_epochs": max(1, hyper["num_epochs"] // min(3, crops)),
            "init_filters": init_filters,
        }
    record["levels"] = len(hyper["network"]["blocks_down"])
    return {"template": record, "training": training}


def _plain(value):
    """JSON-ready copies of numpy scalars and lists."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--mirror", type=Path, help="git directory of research-contributions")
    where.add_argument("--template", type=Path, help="folder algorithm_templates/segresnet")
    parser.add_argument("--commit", default=TEMPLATE_COMMIT)
    parser.add_argument("--record", type=Path, required=True)
    args = parser.parse_args(argv)

    import monai

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.mirror is not None:
            template = template_dir(args.mirror, args.commit, tmp / "src")
            source = f"Project-MONAI/research-contributions@{args.commit}:{TEMPLATE_PATH}"
        else:
            template = args.template.resolve()
            source = str(template)
        cases = []
        for case in CASES:
            summary = make_summary(case)
            result = run_template(template, case, summary, tmp / case["name"])
            cases.append({"case": case, "stats_summary": summary, **result})
            print(case["name"], result["template"]["roi_size"], result["training"])
    record = {
        "monai": monai.__version__,
        "template": source,
        "gpu_sizes": list(GPU_SIZES),
        "cases": cases,
    }
    args.record.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
