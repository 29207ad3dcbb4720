"""``--planner both`` reads every file once: one task per case feeds both planners' fingerprints.

A user asks for both plans on a folder of compressed NIfTI volumes and masks. nnU-Net's pass
reads every voxel of each label and image; biom3d's record is made from the same pieces as they go
by, so biom3d's own reads (its mask pass, its sampled image reads) never happen, and both
fingerprints are exactly those of the two passes run apart.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import monai_reference
from datafiles import nnunet_cells, write_image, write_nnunet
from napari_autoconfig.cli import main
from napari_autoconfig.dataset import open_dataset
from napari_autoconfig.fingerprint import fingerprint_dataset
from napari_autoconfig.one_pass import MonaiOptions, fingerprint_all, fingerprint_both
from napari_autoconfig.planners import fingerprint_nnunet, open_nnunet_source
from napari_autoconfig.planners.monai import compute_datastats
from test_monai_datastats import RUNS, SPECS


@pytest.fixture(autouse=True)
def fewer_nnunet_draws():
    """nnU-Net draws 1e8 intensity samples over a dataset: 25 million a case for these four.
    These stories compare one pass with the passes apart, which draw alike at any count (the
    recorded 1e8 is checked against nnU-Net in tests/test_nnunet_plan.py): 200,000 in all.
    A patch of its own, which the stories' ``monkeypatch.undo()`` leaves in place."""
    from napari_autoconfig import one_pass
    from napari_autoconfig.planners import nnunet_fingerprint

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nnunet_fingerprint, "SAMPLES_IN_TOTAL", 200_000)
        patch.setattr(one_pass, "SAMPLES_IN_TOTAL", 200_000)
        yield


def write_folders(root: Path, suffix: str, dtype, mask_values=(1, 2)) -> tuple[Path, Path]:
    """Images and masks of four cases, ``suffix`` files: noise, a foreground block of two
    labels, one case whose mask is empty."""
    rng = np.random.default_rng(3)
    images, masks = root / "images", root / "masks"
    for number, shape in enumerate([(10, 40, 36), (12, 36, 40), (9, 40, 40), (10, 32, 32)]):
        image = rng.integers(1, 3000, shape).astype(dtype)
        mask = np.zeros(shape, np.uint8)
        if number != 3:
            mask[2:8, 5:30, 6:28] = mask_values[0]
            mask[4:6, 10:20, 10:20] = mask_values[1]
        write_image(images / f"cell_{number}{suffix}", image)
        write_image(masks / f"cell_{number}{suffix}", mask)
    return images, masks


def same_biom3d(one, apart) -> None:
    for a, b in zip(one.records, apart.records, strict=True):
        assert a.samples.dtype == b.samples.dtype and np.array_equal(a.samples, b.samples)
        assert (a.image, a.mask_path, a.foreground, a.mask_max) == (
            b.image,
            b.mask_path,
            b.foreground,
            b.mask_max,
        )
    for field in fields(one):
        if field.name != "records":
            assert getattr(one, field.name) == getattr(apart, field.name), field.name


def test_both_fingerprints_from_one_pass_are_those_of_the_two_passes(tmp_path):
    # float32 ImageJ TIFFs (the .nii.gz uint16 case is the command line's test below)
    images, masks = write_folders(tmp_path, ".tif", np.float32)

    biom3d, nnunet = fingerprint_both(
        open_dataset(images, masks), open_nnunet_source(images, masks), seed=7, num_samples=500
    )

    same_biom3d(biom3d, fingerprint_dataset(images, masks, seed=7, num_samples=500))
    assert nnunet == fingerprint_nnunet(images, masks)


def test_a_multichannel_nnunet_dataset_is_read_by_each_planner_on_its_own(
    tmp_path,
):
    cases = nnunet_cells(channels=2)
    root = write_nnunet(tmp_path / "Dataset002_Two", cases, ".nii.gz", ("DAPI", "GFP"))

    biom3d, nnunet = fingerprint_both(open_dataset(root), open_nnunet_source(root))

    same_biom3d(biom3d, fingerprint_dataset(root))
    # nnU-Net's side of such a case is its own pass's function (analyze_case, unwatched): its
    # numbers are checked against nnU-Net's recorded ones in tests/test_nnunet_plan.py
    assert nnunet.keys == ("cell_000", "cell_001", "cell_002")
    assert nnunet.channel_names == ("DAPI", "GFP") and len(nnunet.intensities) == 2


def test_the_command_line_reads_every_file_once_for_both_plans(tmp_path, monkeypatch, capsys):
    images, masks = write_folders(tmp_path, ".nii.gz", np.uint16)
    argv = [str(images), "--masks", str(masks), "--quiet", "--json"]
    assert main(argv) == 0
    biom3d_alone = json.loads(capsys.readouterr().out)
    assert main([*argv, "--planner", "nnunet"]) == 0
    nnunet_alone = json.loads(capsys.readouterr().out)["nnunet"]

    import napari_autoconfig.fingerprint as biom3d_pass

    def second_read(*args, **kwargs):
        raise AssertionError("biom3d read a file nnU-Net's pass had read")

    # biom3d's own reads: the mask's pass and the image's sampled values
    monkeypatch.setattr(biom3d_pass, "draw_foreground", second_read)
    monkeypatch.setattr(biom3d_pass, "take", second_read)

    assert main([*argv, "--planner", "both"]) == 0

    both = json.loads(capsys.readouterr().out)
    assert both.pop("nnunet") == nnunet_alone
    assert both == biom3d_alone


# MONAI's datastats from the same pass: on the datasets monai 1.6.1's own DataAnalyzer recorded
# (tests/monai_recorded.json); resized_labels is left out (its labels are off their images'
# shapes: biom3d and nnU-Net refuse them) and large_case (the same path as uint16_labels, bigger).
ONE_PASS_RUNS = [
    ("uint16_labels", True, 0, 0),  # streamed beside the image; components from the pass's label
    ("oblique_axes", True, 0, 0),  # NIfTI turned to RAS: components in MONAI's order
    ("metaimage_axes", True, 0, 0),  # int16 .mha, ITK's direction
    ("float_negatives", False, 12, 3),  # float images: MONAI's own read of every case
]


@pytest.fixture(scope="module")
def monai_folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("monai_one_pass")
    names = {run[0] for run in ONE_PASS_RUNS} | {"two_channels"}
    return {name: monai_reference.write_dataset(SPECS[name], root) for name in names}


def own_monai_reads(monkeypatch) -> list:
    """MONAI's own reads of a case (what the one pass saves), listed as they happen."""
    from napari_autoconfig.planners import monai

    reads = []

    def counted(*args, **kwargs):
        reads.append(args[0])
        return analyze_case(*args, **kwargs)

    analyze_case = monai.analyze_case
    monkeypatch.setattr(monai, "analyze_case", counted)
    return reads


@pytest.mark.parametrize(("name", "do_ccp", "hist_bins", "own_reads"), ONE_PASS_RUNS)
def test_all_three_fingerprints_from_one_pass_are_those_of_the_three_passes(
    monai_folders, monkeypatch, name, do_ccp, hist_bins, own_reads
):
    folder = monai_folders[name]
    images, labels = folder / "images", folder / "labels"
    dataset = open_dataset(images, labels)
    reads = own_monai_reads(monkeypatch)

    fingerprints = fingerprint_all(
        dataset,
        open_nnunet_source(images, labels),
        planners=("biom3d", "nnunet", "monai"),
        monai_options=MonaiOptions(do_ccp=do_ccp, hist_bins=hist_bins),
    )

    assert len(reads) == own_reads  # only float images need MONAI's own read
    monkeypatch.undo()
    same_biom3d(fingerprints.biom3d, fingerprint_dataset(images, labels))
    assert fingerprints.nnunet == fingerprint_nnunet(images, labels)
    alone = compute_datastats(dataset, do_ccp=do_ccp, hist_bins=hist_bins)
    assert fingerprints.monai == alone  # to the bit: floats compared with ==
    # and MONAI's own numbers, recorded
    run = RUNS[f"{name}-ccp{int(do_ccp)}-h{hist_bins}"]
    by_case = json.loads(json.dumps(fingerprints.monai.documents()[1]))
    for case in by_case["stats_by_cases"]:
        for key in ("image_filepath", "label_filepath"):
            case[key] = str(Path(case[key]).relative_to(folder))
    assert not monai_reference.differences(by_case, run["datastats_by_case"])


def test_a_multichannel_case_and_a_case_monai_skips_are_read_by_monai_on_its_own(
    monai_folders, monkeypatch
):
    folder = monai_folders["two_channels"]  # two-channel images, case 1 without a voxel > 0
    images, labels = folder / "images", folder / "labels"
    dataset = open_dataset(images, labels)
    reads = own_monai_reads(monkeypatch)

    fingerprints = fingerprint_all(
        dataset, open_nnunet_source(images, labels), planners=("nnunet", "monai")
    )

    assert len(reads) == 3 and fingerprints.biom3d is None
    monkeypatch.undo()
    assert fingerprints.monai == compute_datastats(dataset)
    assert [s.file.name for s in fingerprints.monai.skipped] == ["case_001.nii.gz"]
    assert fingerprints.nnunet == fingerprint_nnunet(images, labels)


def test_a_case_monai_skips_from_the_pass_is_said_as_its_own_pass_says_it(tmp_path, monkeypatch):
    images, masks = write_folders(tmp_path, ".nii.gz", np.uint16)
    write_image(images / "cell_3.nii.gz", np.zeros((10, 32, 32), np.uint16))  # no voxel > 0
    dataset = open_dataset(images, masks)
    reads = own_monai_reads(monkeypatch)

    fingerprints = fingerprint_all(dataset, open_nnunet_source(images, masks))

    assert reads == []
    monkeypatch.undo()
    assert fingerprints.monai == compute_datastats(dataset)
    assert [s.file.name for s in fingerprints.monai.skipped] == ["cell_3.nii.gz"]


def count_pixel_reads(monkeypatch) -> Counter:
    """Each file's streamed reads, counted as they start; biom3d's own reads (its mask pass,
    its sampled image values) refused: in one pass they never happen."""
    import napari_autoconfig.fingerprint as biom3d_pass
    from napari_autoconfig.planners import monai_case, nnunet_case

    reads: Counter = Counter()
    for module in (nnunet_case, monai_case):

        def counted(header, *args, real=module.iter_chunks, **kwargs):
            reads[Path(header.path).parent.name, Path(header.path).name] += 1
            return real(header, *args, **kwargs)

        monkeypatch.setattr(module, "iter_chunks", counted)

    def second_read(*args, **kwargs):
        raise AssertionError("biom3d read a file the one pass had read")

    monkeypatch.setattr(biom3d_pass, "draw_foreground", second_read)
    monkeypatch.setattr(biom3d_pass, "take", second_read)
    return reads


def every_file_once(*folders: Path) -> Counter:
    return Counter({(f.name, p.name): 1 for f in folders for p in f.iterdir()})


def test_the_command_line_reads_every_file_once_for_all_three_plans(tmp_path, monkeypatch, capsys):
    images, masks = write_folders(tmp_path, ".nii.gz", np.uint16)
    argv = [str(images), "--masks", str(masks), "--quiet", "--json"]
    assert main([*argv, "--planner", "both"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert main([*argv, "--planner", "monai"]) == 0
    monai_alone = json.loads(capsys.readouterr().out)["monai"]
    reads = count_pixel_reads(monkeypatch)

    assert main([*argv, "--planner", "all"]) == 0

    assert reads == every_file_once(images, masks)
    every = json.loads(capsys.readouterr().out)
    assert every.pop("monai") == monai_alone  # the datastats and SegResNet's plan
    assert every == both


@pytest.mark.parametrize("planner", ["both", "nnunet"])
def test_datastats_beside_nnunets_plans_read_every_file_once(
    tmp_path, monkeypatch, capsys, planner
):
    images, masks = write_folders(tmp_path, ".nii.gz", np.uint16)
    argv = [str(images), "--masks", str(masks), "--quiet", "--datastats-ccp"]
    assert main([*argv, "--datastats", str(tmp_path / "alone.yaml")]) == 0  # biom3d: apart
    reads = count_pixel_reads(monkeypatch)

    assert main([*argv, "--planner", planner, "--datastats", str(tmp_path / "one.yaml")]) == 0

    assert reads == every_file_once(images, masks)
    for name in ("{}.yaml", "{}_by_case.yaml"):
        one = (tmp_path / name.format("one")).read_text()
        assert one == (tmp_path / name.format("alone")).read_text()
