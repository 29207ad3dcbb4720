"""nnU-Net v2's fingerprint and plans, reproduced without nnU-Net, checked against nnU-Net's own.

``nnunet_recorded.json`` holds what nnunetv2 2.8.1 wrote (``dataset_fingerprint.json`` and
``nnUNetPlans.json``) for the datasets of ``benchmarks/nnunet_reference.py``, with the
generator's parameters; the tests regenerate the same files and compare every number. Exact
(``==``) everywhere, with one exception: the standard deviation of the foreground intensities,
which nnU-Net sums in float32 over 1e8 draws and we compute from the same draws in float64
(within 1e-6 relative; it differs by one float32 step on one dataset).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nnunet_reference as reference
from napari_autoconfig.errors import DatasetError, MaskMismatchError
from napari_autoconfig.planners import (
    NnUNetFingerprint,
    fingerprint_nnunet,
    plan_nnunet,
    write_plans,
)
from napari_autoconfig.planners.float32_sum import joined_sum, split_sum
from napari_autoconfig.planners.nnunet import feature_map_size, pool_and_conv_props

RECORDED = json.loads((Path(__file__).parent / "nnunet_recorded.json").read_text())
CASES = {record["spec"]["name"]: record for record in RECORDED["datasets"]}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """nnU-Net's raw folder with every recorded dataset written again from its parameters."""
    folder = tmp_path_factory.mktemp("nnUNet_raw")
    for record in RECORDED["datasets"]:
        reference.write_dataset(record["spec"], folder)
    return folder


@pytest.fixture(scope="module")
def fingerprint_of(raw):
    """The fingerprint of a recorded dataset by name, computed once per test module (each
    draws nnU-Net's 1e8 foreground samples per channel)."""
    cache = {}

    def fingerprint(name: str):
        if name not in cache:
            spec = CASES[name]["spec"]
            cache[name] = fingerprint_nnunet(raw / reference.dataset_folder_name(spec))
        return cache[name]

    return fingerprint


def _same_numbers(ours, theirs, where: str = "") -> list[str]:
    """Every difference between two JSON documents: exact, except ``std`` (1e-6 relative)."""
    if isinstance(theirs, dict):
        assert set(ours) == set(theirs), f"{where}: keys {sorted(ours)} != {sorted(theirs)}"
        return [d for k in theirs for d in _same_numbers(ours[k], theirs[k], f"{where}/{k}")]
    if isinstance(theirs, list):
        assert len(ours) == len(theirs), f"{where}: {ours} != {theirs}"
        return [
            d
            for i, pair in enumerate(zip(ours, theirs))
            for d in _same_numbers(*pair, where + f"[{i}]")
        ]
    if where.endswith("/std"):
        return [] if ours == pytest.approx(theirs, rel=1e-6) else [f"{where}: {ours} != {theirs}"]
    same = ours == theirs and type(ours) is type(theirs)
    return [] if same else [f"{where}: {ours!r} != {theirs!r}"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_fingerprint_and_plans_are_nnunets_own(fingerprint_of, name):
    record = CASES[name]

    fingerprint = fingerprint_of(name)

    assert _same_numbers(fingerprint.as_json(), record["fingerprint"]) == []
    plans = plan_nnunet(fingerprint)
    assert _same_numbers(plans.as_json(), record["plans"]) == []
    # the fingerprint's integers and shapes, and every intensity but the std, to the bit
    theirs = record["fingerprint"]["foreground_intensity_properties_per_channel"]
    for channel, stats in fingerprint.intensity_properties_json().items():
        assert {k: v for k, v in stats.items() if k != "std"} == {
            k: v for k, v in theirs[channel].items() if k != "std"
        }


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_planner_alone_gives_nnunets_plans_from_nnunets_fingerprint(name):
    record = CASES[name]
    dataset_json = {
        "channel_names": dict(enumerate(record["spec"]["channels"])),
        "labels": dict.fromkeys(range(record["spec"]["classes"])),
        "numTraining": record["spec"]["cases"],
        "file_ending": record["spec"].get("file_ending", ".nii.gz"),
    }
    if dataset_json["file_ending"] == ".tif":
        # without a file to try, nnU-Net's registry would name its 2D reader first for .tif
        dataset_json["overwrite_image_reader_writer"] = "Tiff3DIO"
    dataset_json["channel_names"] = {str(k): v for k, v in dataset_json["channel_names"].items()}
    fingerprint = NnUNetFingerprint.from_json(
        record["fingerprint"], dataset_json, reference.dataset_folder_name(record["spec"])
    )

    plans = plan_nnunet(fingerprint)

    assert plans.as_json() == record["plans"]  # every key, every number, every order
    assert list(plans.as_json()["configurations"]) == list(record["plans"]["configurations"])


def test_the_plans_file_reads_back_as_nnunet_wrote_it(fingerprint_of, tmp_path):
    record = CASES["LargeLowres"]  # all four configurations
    plans = plan_nnunet(fingerprint_of("LargeLowres"))

    path = write_plans(plans, tmp_path / "nnUNetPlans.json")

    assert json.loads(path.read_text()) == plans.as_json() == record["plans"]
    assert path.read_text().startswith('{\n    "dataset_name": "Dataset105_LargeLowres",')


def test_the_fullres_patch_and_spacing_come_back_in_the_images_axes(fingerprint_of):
    plans = plan_nnunet(fingerprint_of("TwelveUint8"))  # y is the coarse axis: moved first

    full = plans.fullres
    assert plans.transpose_forward == (1, 0, 2)
    assert full.spacing_zyx[1] == 3.5 and full.spacing_zyx == plans.target_spacing_zyx
    assert full.patch_size_zyx == (full.patch_size[1], full.patch_size[0], full.patch_size[2])


def test_a_plain_image_and_mask_folder_plans_like_its_nnunet_layout(raw, tmp_path):
    record = CASES["IsoZeroBorder"]
    root = raw / reference.dataset_folder_name(record["spec"])
    for image in sorted((root / "imagesTr").iterdir()):
        case = image.name.replace("_0000.nii.gz", "")
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "masks").mkdir(exist_ok=True)
        (tmp_path / "images" / f"{case}.nii.gz").write_bytes(image.read_bytes())
        label = root / "labelsTr" / f"{case}.nii.gz"
        (tmp_path / "masks" / f"{case}.nii.gz").write_bytes(label.read_bytes())

    fingerprint = fingerprint_nnunet(tmp_path / "images", tmp_path / "masks")

    assert fingerprint.as_json() == record["fingerprint"]
    assert fingerprint.channel_names == ("zscore",) and fingerprint.num_labels == 2
    plans = plan_nnunet(fingerprint).as_json()
    for name, config in record["plans"]["configurations"].items():
        assert plans["configurations"][name]["patch_size"] == config["patch_size"]
        assert plans["configurations"][name]["batch_size"] == config["batch_size"]


@pytest.mark.parametrize("sizes", [(5,), (100, 100, 100), (1000, 1000, 999), (33333, 33333)])
def test_the_float32_mean_replays_numpys_pairwise_sum_across_cases(sizes):
    rng = np.random.default_rng(sum(sizes))
    draws = [(rng.standard_normal(n) * 1000 + 3).astype(np.float32) for n in sizes]
    draws.append(rng.integers(0, 65536, 5000, dtype=np.uint16))  # summed as integers
    total = sum(d.size for d in draws)
    starts = np.cumsum([0] + [d.size for d in draws])

    pieces = [split_sum(values, int(start), total) for values, start in zip(draws, starts)]

    expected = np.add.reduce(np.concatenate([d.astype(np.float32) for d in draws]))
    assert joined_sum(pieces, total) == expected


def test_the_topology_and_memory_estimate_of_a_known_network():
    # nnU-Net's 3d_fullres of an isotropic 1 mm dataset: 128^3, six stages, strides 2 (one at 1)
    topology = pool_and_conv_props([1.0, 1.0, 1.0], [128, 128, 128])
    assert topology.patch_size == (128, 128, 128)
    assert topology.strides == ((1, 1, 1),) + ((2, 2, 2),) * 5
    features = (32, 64, 128, 256, 320, 320)
    # two convolutions per encoder stage, three per decoder stage, two output classes
    sizes = [128**3 // 8**k for k in range(6)]
    expected = sum(2 * f * s for f, s in zip(features, sizes))
    expected += sum(3 * f * s for f, s in zip(features[:-1], sizes[:-1])) + 2 * sizes[0]
    assert feature_map_size(topology.patch_size, topology.strides, features, 2) == expected


def test_a_label_of_another_shape_is_named(raw, tmp_path):
    record = CASES["IsoZeroBorder"]
    root = tmp_path / "Dataset101_IsoZeroBorder"
    reference.write_dataset(record["spec"], tmp_path)
    other = reference.make_case(record["spec"], 3)[1]
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(other), str(root / "labelsTr" / "case_000.nii.gz"))

    with pytest.raises(MaskMismatchError, match=r"case_000\.nii\.gz.*must have its image's shape"):
        fingerprint_nnunet(root)


def test_a_dataset_json_without_labels_says_what_to_add(raw, tmp_path):
    reference.write_dataset(CASES["IsoZeroBorder"]["spec"], tmp_path)
    root = tmp_path / "Dataset101_IsoZeroBorder"
    meta = json.loads((root / "dataset.json").read_text())
    del meta["labels"]
    (root / "dataset.json").write_text(json.dumps(meta))

    with pytest.raises(DatasetError, match="has no 'labels'"):
        fingerprint_nnunet(root)


def test_tiff_planes_of_an_odd_size_crop_and_draw_as_nnunet_reads_them(tmp_path):
    # plain TIFF stacks are streamed plane by plane (13 x 11 voxels: not whole bytes of flags)
    import tifffile

    rng = np.random.default_rng(3)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name in ("a", "b"):
        image = np.zeros((7, 13, 11), np.uint16)
        image[1:6, 2:12, 3:9] = rng.integers(1, 500, (5, 10, 6))
        label = (rng.random(image.shape) < 0.3).astype(np.uint8)
        tifffile.imwrite(tmp_path / "images" / f"{name}.tif", image)
        tifffile.imwrite(tmp_path / "masks" / f"{name}.tif", label)

    fingerprint = fingerprint_nnunet(tmp_path / "images", tmp_path / "masks")

    # nnU-Net's rules on the whole arrays: crop to the non-zero box, draw 1e8 // 2 per case
    draws = []
    for name in ("a", "b"):
        image = tifffile.imread(tmp_path / "images" / f"{name}.tif").astype(np.float32)
        label = tifffile.imread(tmp_path / "masks" / f"{name}.tif")
        box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(image))
        assert fingerprint.shapes_after_crop[len(draws)] == image[box].shape
        values = image[box][label[box] > 0]
        draws.append(np.random.RandomState(1234).choice(values, int(1e8 // 2)))
    draws = np.concatenate(draws)
    stats = fingerprint.intensities[0]
    if _numpy_sums_as_replayed():
        assert stats.mean == float(np.mean(draws))
    else:  # numpy < 2.3 sums 8192 values at a time: its own mean differs in the last bits
        assert stats.mean == pytest.approx(float(np.mean(draws)), rel=1e-6)
    assert (stats.min, stats.max) == (float(draws.min()), float(draws.max()))
    low, median, high = np.percentile(draws, (0.5, 50.0, 99.5))
    assert (stats.percentile_00_5, stats.median, stats.percentile_99_5) == (low, median, high)
    assert stats.std == pytest.approx(float(np.std(draws)), rel=1e-6)
    assert fingerprint.spacings == ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0))  # no spacing: nnU-Net's 1


def _numpy_sums_as_replayed() -> bool:
    """Whether this numpy sums a long float32 array the way nnU-Net's reference (numpy 2.4.6) did.

    The fingerprint's mean replays numpy 2.3+'s pairwise summation (the numbers nnunetv2 wrote with
    numpy 2.4.6, held in tests/nnunet_recorded.json). numpy 2.2 and older, the newest on Python
    3.10, sum a long array in buffers of 8192 values, so their float32 mean of 1e8 draws differs
    in its last bits from ours and from the recorded nnU-Net's alike.
    """
    values = np.random.default_rng(0).random(5_000_001, dtype=np.float32)
    pieces = split_sum(values, 0, values.size)
    return joined_sum([pieces], values.size) == np.add.reduce(values)
