"""nnU-Net v2's residual-encoder presets and other GPU targets, recorded: the reference for ours.

For every dataset of ``tests/nnunet_recorded.json`` (nnU-Net's own fingerprints of the datasets
that ``benchmarks/nnunet_reference.py`` generates) and for three large datasets given by their
fingerprint alone (:data:`FINGERPRINTED`: a stack of about 60 x 900 x 900 voxels at
4 x 0.5 x 0.5, a wide two-channel slab whose coarse axis is x, and 2D slides of about
2500 x 2000 pixels, so that the shrink loop runs many times on shapes that are not cubes), this
runs nnunetv2 2.8.1's ``nnUNetv2_plan_experiment`` entry point once per planner of
:data:`RUNS` (``-pl nnUNetPlannerResEncM/L/XL``, ResEnc M at 12 GB and the default planner at
24 GB with ``-gpu_memory_target``) and records in ``tests/nnunet_presets_recorded.json``:

- each plans file as nnU-Net wrote it, with the warnings the planner gave;
- per configuration, the feature-map count of the network nnU-Net builds from those plans
  (``compute_conv_feature_map_size`` of dynamic_network_architectures, without deep
  supervision as in nnU-Net's estimate): the number its shrink loop compared;
- ``plans_manager``: our own plans file of one preset (napari-autoconfig imported from ``src/``)
  loaded with nnU-Net's ``PlansManager``, its networks built from it.

nnU-Net's planner builds every candidate network to count its feature maps; on a CPU a network
of 140 million weights takes seconds to build, and the large datasets build hundreds. So the
networks are built on torch's ``meta`` device (shapes without weights), which leaves the count,
arithmetic over the layers' channels and strides, unchanged; the ``plans_manager`` check builds
its networks on the CPU as well and records that both counts agree.

The planner reads only ``dataset.json``, ``dataset_fingerprint.json`` and the first image (for
its reader): the recorded datasets are written again by ``nnunet_reference.write_dataset`` beside
the fingerprint nnU-Net extracted from them; the large ones are their ``dataset.json``, their
:func:`synthetic_fingerprint` and one 2-voxel stand-in image per case.

Run it in nnU-Net's environment (see ``nnunet_reference.py`` for installing it)::

    /work/envs/nnunet/bin/python benchmarks/nnunet_presets_reference.py \\
        --record tests/nnunet_presets_recorded.json

This module imports neither nnU-Net nor napari-autoconfig at import time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from nnunet_reference import dataset_folder_name, write_dataset, write_record  # noqa: E402

RECORDED = HERE.parent / "tests" / "nnunet_recorded.json"

#: The planner runs per dataset: nnU-Net's ``-pl`` and ``-gpu_memory_target`` (None: not given).
RUNS: tuple[dict, ...] = (
    {"planner": "nnUNetPlannerResEncM", "gpu_memory_target": None},
    {"planner": "nnUNetPlannerResEncL", "gpu_memory_target": None},
    {"planner": "nnUNetPlannerResEncXL", "gpu_memory_target": None},
    {"planner": "nnUNetPlannerResEncM", "gpu_memory_target": 12.0},
    {"planner": "ExperimentPlanner", "gpu_memory_target": 24.0},
)

#: Large datasets given by a fingerprint drawn from a seed: per axis (z, y, x) the [low, high)
#: of the cropped shapes and the spacings drawn from; ``two_d``: (y, x) images, whose spacing
#: nnU-Net's SimpleITK reader makes (999 * max(y, x), y, x).
FINGERPRINTED: tuple[dict, ...] = (
    {
        "id": 121,
        "name": "BigAnisoStack",
        "channels": ["MRI"],
        "classes": 3,
        "cases": 5,
        "shape": [[56, 65], [860, 941], [860, 941]],
        "spacing": [[3.5, 4.0, 4.5], [0.45, 0.5, 0.55], [0.45, 0.5, 0.55]],
        "seed": 121,
    },
    {
        "id": 122,
        "name": "WideSlabTwoChannel",
        "channels": ["CT", "T1"],
        "classes": 4,
        "cases": 4,
        "shape": [[280, 321], [1050, 1151], [380, 421]],
        "spacing": [[0.8], [0.3, 0.35], [1.0, 1.1]],  # x is the coarse axis: moved first
        "seed": 122,
    },
    {
        "id": 123,
        "name": "LargeSlides2D",
        "channels": ["H&E"],
        "classes": 2,
        "cases": 6,
        "shape": [[1, 2], [2400, 2601], [1900, 2101]],
        "spacing": [[1.0], [0.25, 0.26], [0.25, 0.26]],
        "two_d": True,
        "seed": 123,
    },
)


def dataset_json(channels: list[str], classes: int, cases: int) -> dict:
    """``dataset.json`` of a large dataset, as ``nnunet_reference.write_dataset`` writes one."""
    return {
        "channel_names": {str(i): name for i, name in enumerate(channels)},
        "labels": {"background": 0, **{f"class_{k}": k for k in range(1, classes)}},
        "numTraining": cases,
        "file_ending": ".nii.gz",
    }


def synthetic_fingerprint(spec: dict) -> dict:
    """nnU-Net's ``dataset_fingerprint.json`` of a large dataset, drawn from ``spec``'s seed."""
    rng = np.random.default_rng(spec["seed"])
    shapes, spacings = [], []
    for _ in range(spec["cases"]):
        shape = [int(rng.integers(lo, hi)) for lo, hi in spec["shape"]]
        spacing = [float(rng.choice(options)) for options in spec["spacing"]]
        if spec.get("two_d"):
            spacing[0] = 999 * max(spacing[1:])
        shapes.append(shape)
        spacings.append(spacing)
    intensities = {}
    for c in range(len(spec["channels"])):
        low, high = sorted(float(v) for v in rng.uniform(-500, 1500, 2))
        mean = float(rng.uniform(low, high))
        intensities[str(c)] = {
            "max": high,
            "mean": mean,
            "median": float(round(mean)),
            "min": low,
            "percentile_00_5": low + 1.0,
            "percentile_99_5": high - 1.0,
            "std": float(rng.uniform(10, 300)),
        }
    return {
        "foreground_intensity_properties_per_channel": intensities,
        "median_relative_size_after_cropping": float(rng.uniform(0.5, 1.0)),
        "shapes_after_crop": shapes,
        "spacings": spacings,
    }


def datasets() -> list[dict]:
    """Every dataset to plan: name, id, ``dataset.json`` and nnU-Net's fingerprint."""
    found = []
    for record in json.loads(RECORDED.read_text())["datasets"]:
        spec = record["spec"]
        found.append(
            {
                "name": dataset_folder_name(spec),
                "id": spec["id"],
                "source": "nnunet_recorded.json",
                "spec": spec,
                "fingerprint": record["fingerprint"],
            }
        )
    for spec in FINGERPRINTED:
        found.append(
            {
                "name": dataset_folder_name(spec),
                "id": spec["id"],
                "source": "synthetic_fingerprint",
                "spec": spec,
                "dataset_json": dataset_json(spec["channels"], spec["classes"], spec["cases"]),
                "fingerprint": synthetic_fingerprint(spec),
            }
        )
    return found


def write_planner_inputs(dataset: dict, base: Path) -> Path:
    """The raw dataset (a recorded one written again; a large one as its ``dataset.json`` and a
    stand-in image and label per case) and its fingerprint, in nnU-Net's raw and preprocessed
    folders under ``base``; ``dataset["dataset_json"]`` set; return the preprocessed folder."""
    import SimpleITK as sitk

    raw = base / "nnUNet_raw" / dataset["name"]
    preprocessed = base / "nnUNet_preprocessed" / dataset["name"]
    for folder in (raw, preprocessed):
        shutil.rmtree(folder, ignore_errors=True)
    preprocessed.mkdir(parents=True)
    (preprocessed / "dataset_fingerprint.json").write_text(json.dumps(dataset["fingerprint"]))
    if dataset["source"] == "nnunet_recorded.json":
        write_dataset(dataset["spec"], base / "nnUNet_raw")
        dataset["dataset_json"] = json.loads((raw / "dataset.json").read_text())
        return preprocessed
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "labelsTr").mkdir()
    meta = dataset["dataset_json"]
    ending = meta["file_ending"]
    stand_in = sitk.GetImageFromArray(np.zeros((2, 2, 2), np.uint8))
    for case in range(meta["numTraining"]):
        for channel in range(len(meta["channel_names"])):
            sitk.WriteImage(
                stand_in, str(raw / "imagesTr" / f"case_{case:03d}_{channel:04d}{ending}")
            )
        sitk.WriteImage(stand_in, str(raw / "labelsTr" / f"case_{case:03d}{ending}"))
    (raw / "dataset.json").write_text(json.dumps(meta, indent=4))
    return preprocessed


def plan_with_nnunet(dataset: dict, run: dict, preprocessed: Path) -> dict:
    """``nnUNetv2_plan_experiment -d ID -pl PLANNER [-gpu_memory_target GB]`` in this process;
    the plans file it wrote, its warnings and its networks' feature-map counts."""
    from nnunetv2.experiment_planning.plan_and_preprocess_entrypoints import plan_experiment_entry

    for old in preprocessed.glob("nnUNet*Plans*.json"):
        old.unlink()  # nnU-Net merges configurations into an existing plans file
    argv = ["nnUNetv2_plan_experiment", "-d", str(dataset["id"]), "-pl", run["planner"]]
    if run["gpu_memory_target"] is not None:
        argv += ["-gpu_memory_target", str(run["gpu_memory_target"])]
    saved = sys.argv
    sys.argv = argv
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("always")
            plan_experiment_entry()
    finally:
        sys.argv = saved
    (written,) = preprocessed.glob("nnUNet*Plans*.json")
    plans = json.loads(written.read_text())
    return {
        **run,
        "file": written.name,
        "warnings": [str(w.message) for w in caught if "gpu_memory_target" in str(w.message)],
        "feature_map_voxels": feature_maps(plans, dataset["dataset_json"]),
        "plans": plans,
    }


def feature_maps(plans: dict, meta: dict) -> dict:
    """Per configuration, ``compute_conv_feature_map_size`` of the network nnU-Net builds from
    the plans (as its planner's estimate: no deep supervision)."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    counts = {}
    for name, config in plans["configurations"].items():
        if "architecture" not in config:
            continue  # 3d_cascade_fullres inherits
        arch = config["architecture"]
        net = get_network_from_plans(
            arch["network_class_name"],
            arch["arch_kwargs"],
            arch["_kw_requires_import"],
            len(meta["channel_names"]),
            len(meta["labels"]),
            allow_init=False,
        )
        counts[name] = int(net.compute_conv_feature_map_size(config["patch_size"]))
    return counts


def check_our_plans_file(dataset: dict, preset: str, folder: Path) -> dict:
    """Our plans of ``dataset`` by ``preset`` (napari-autoconfig from ``src/``), written with
    :func:`write_plans` and loaded with nnU-Net's ``PlansManager``: what it read."""
    sys.path.insert(0, str(HERE.parent / "src"))
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from napari_autoconfig.planners import NnUNetFingerprint, write_plans
    from napari_autoconfig.planners.nnunet import plan_nnunet

    fingerprint = NnUNetFingerprint.from_json(
        dataset["fingerprint"], dataset["dataset_json"], dataset["name"]
    )
    plans = plan_nnunet(fingerprint, preset=preset)
    path = write_plans(plans, folder / f"{plans.plans_name}.json")
    manager = PlansManager(str(path))
    read = {}
    for name in manager.available_configurations:
        config = manager.get_configuration(name)
        net = config.network_arch_class_name
        read[name] = {
            "patch_size": list(config.patch_size),
            "batch_size": config.batch_size,
            "network": net,
            "data_identifier": config.data_identifier,
        }
    import torch

    our_counts = {c.name: c.feature_map_voxels for c in plans.configurations}
    nnunet_counts = feature_maps(json.loads(path.read_text()), dataset["dataset_json"])
    with torch.device("cpu"):  # networks with their weights, as nnU-Net trains them
        cpu_counts = feature_maps(json.loads(path.read_text()), dataset["dataset_json"])
    print(f"PlansManager loaded our {path.name} of {dataset['name']}: {sorted(read)}")
    return {
        "dataset": dataset["name"],
        "preset": preset,
        "plans_name": manager.plans_name,
        "loaded": True,
        "configurations": read,
        "feature_maps_equal": our_counts == nnunet_counts == cpu_counts,
        "feature_map_voxels": cpu_counts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="write the recorded reference JSON here")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="nnunet_presets_"))
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (base / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(base / name)  # before nnU-Net is imported: it reads them once
    import torch

    torch.set_default_device("meta")  # see the module's docstring: the counts stay nnU-Net's
    recorded = []
    try:
        every = datasets()
        for dataset in every:
            preprocessed = write_planner_inputs(dataset, base)
            runs = [plan_with_nnunet(dataset, run, preprocessed) for run in RUNS]
            recorded.append({**dataset, "runs": runs})
            for run in runs:
                full = run["plans"]["configurations"]
                full = full.get("3d_fullres", full["2d"])
                print(
                    f"{dataset['name']} {run['planner']} {run['gpu_memory_target']}: "
                    f"{sorted(run['plans']['configurations'])}, patch {full['patch_size']}, "
                    f"batch {full['batch_size']}"
                )
        big = next(d for d in every if d["name"].endswith("BigAnisoStack"))
        checked = check_our_plans_file(big, "ResEncL", base)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    if args.record:
        import importlib.metadata

        write_record(
            args.record,
            recorded,
            dynamic_network_architectures=importlib.metadata.version(
                "dynamic_network_architectures"
            ),
            numpy=np.__version__,
            plans_manager=checked,
        )
        print(f"recorded {len(recorded)} dataset(s) x {len(RUNS)} planner runs in {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
