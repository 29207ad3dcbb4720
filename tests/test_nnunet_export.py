"""A user exports plain folders (ImageJ TIFF with 0/255 masks, NIfTI labelled 0/2/7, 2D TIFF) as
nnU-Net raw datasets with ``--export-nnunet``, and nnU-Net plans them as we do.

``nnunet_export_recorded.json`` holds what nnunetv2 2.8.1 did with our exports of these very
folders (``benchmarks/nnunet_export_check.py``): its integrity check passed, and its fingerprint
and plans. Here the folders are written again from the same seeds, exported through the command
line, the files checked, and ``--planner nnunet`` run on the export and on the plain folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import nnunet_export_check as check
from datafiles import read_itk
from napari_autoconfig.cli import main
from napari_autoconfig.errors import Cancelled
from napari_autoconfig.nnunet_export import export_nnunet

RECORDED = json.loads((Path(__file__).parent / "nnunet_export_recorded.json").read_text())
RECORDS = {r["spec"]["name"]: r for r in RECORDED["datasets"]}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Every recorded plain folder, written again: name -> (images, masks)."""
    base = tmp_path_factory.mktemp("plain")
    return {name: check.write_plain(r["spec"], base) for name, r in RECORDS.items()}


@pytest.fixture(scope="module")
def exported(folders, tmp_path_factory) -> dict[str, Path]:
    """Every folder exported through the command line into one nnUNet_raw: name -> dataset."""
    raw = tmp_path_factory.mktemp("nnUNet_raw")
    out = {}
    for name, (images, masks) in folders.items():
        target = raw / check.dataset_folder_name(RECORDS[name]["spec"])
        arguments = [str(images), "--masks", str(masks), "--export-nnunet", str(target)]
        assert main([*arguments, "--quiet"]) == 0
        out[name] = target
    return out


def _cases(spec: dict):
    return [check.make_case(spec, i) for i in range(spec["cases"])]


def assert_nnunets_numbers(ours: dict, theirs: dict) -> None:
    """Every value equal (types included), except each channel's ``std``: ours is computed from
    nnU-Net's very draws in float64, nnU-Net sums float32 squares (one float32 step apart at
    most, as in ``test_nnunet_plan.py``)."""

    def apart(document: dict) -> tuple[dict, list[float]]:
        document = json.loads(json.dumps(document))  # a copy
        stds = []
        for where in document.values():  # the fingerprint, the plans
            for stats in where.get("foreground_intensity_properties_per_channel", {}).values():
                stds.append(stats.pop("std"))
        return document, stds

    (ours, our_stds), (theirs, their_stds) = apart(ours), apart(theirs)
    assert ours == theirs
    assert our_stds == pytest.approx(their_stds, rel=1e-6)


def test_a_tiff_folder_with_0_255_masks_becomes_tiff_with_labels_0_1_and_spacing_files(
    folders, exported
):
    record = RECORDS["TiffZeroTwoFiftyFive"]
    images, masks = folders["TiffZeroTwoFiftyFive"]
    root = exported["TiffZeroTwoFiftyFive"]

    assert json.loads((root / "dataset.json").read_text()) == record["dataset_json"]
    assert record["dataset_json"]["labels"] == {"background": 0, "label_255": 1}
    assert record["integrity_check"] == "passed"
    for index, (_, mask, spacing) in enumerate(_cases(record["spec"])):
        case = f"cell_{index:03d}"
        # the image needed no change: the user's own file, hard-linked
        assert os.path.samefile(root / "imagesTr" / f"{case}_0000.tif", images / f"{case}.tif")
        label = tifffile.imread(root / "labelsTr" / f"{case}.tif")
        assert label.dtype == np.uint8
        np.testing.assert_array_equal(label, (mask == 255).astype(np.uint8))
        for folder in ("imagesTr", "labelsTr"):  # Tiff3DIO's spacing, numpy order
            assert json.loads((root / folder / f"{case}.json").read_text()) == {
                "spacing": list(spacing)
            }
    assert (masks / "cell_000.tif").exists()  # the user's masks are untouched
    assert sorted(p.name for p in root.iterdir()) == ["dataset.json", "imagesTr", "labelsTr"]


def test_nifti_labels_0_2_7_become_0_1_2_and_the_images_are_linked(folders, exported):
    record = RECORDS["NiftiSparseLabels"]
    images, _ = folders["NiftiSparseLabels"]
    root = exported["NiftiSparseLabels"]

    assert record["dataset_json"]["labels"] == {"background": 0, "label_2": 1, "label_7": 2}
    assert record["dataset_json"]["file_ending"] == ".nii.gz"
    for index, (_, mask, _) in enumerate(_cases(record["spec"])):
        case = f"cell_{index:03d}"
        linked = root / "imagesTr" / f"{case}_0000.nii.gz"
        assert os.path.samefile(linked, images / f"{case}.nii.gz")
        label = read_itk(root / "labelsTr" / f"{case}.nii.gz")
        np.testing.assert_array_equal(label, np.select([mask == 2, mask == 7], [1, 2], 0))
    # dataset.json only: SimpleITK reads the spacing from the files
    assert [p.name for p in root.rglob("*.json")] == ["dataset.json"]


def test_2d_tiffs_become_nifti_with_their_spacing(folders, exported):
    import SimpleITK as sitk

    record = RECORDS["Tiff2D"]
    root = exported["Tiff2D"]

    assert record["dataset_json"]["file_ending"] == ".nii.gz"
    for index, (image, mask, spacing) in enumerate(_cases(record["spec"])):
        case = f"cell_{index:03d}"
        written = sitk.ReadImage(str(root / "imagesTr" / f"{case}_0000.nii.gz"))
        assert written.GetSpacing() == pytest.approx(spacing[::-1], rel=1e-6)  # (x, y)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(written), image)
        np.testing.assert_array_equal(read_itk(root / "labelsTr" / f"{case}.nii.gz"), mask)
    # nnU-Net plans it in 2D only, at the spacing of the written files
    assert list(record["plans"]["configurations"]) == ["2d"]


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_our_nnunet_plan_of_the_export_is_nnunets(exported, name, capsys):
    assert main([str(exported[name]), "--planner", "nnunet", "--json", "--quiet"]) == 0

    ours = json.loads(capsys.readouterr().out)["nnunet"]
    assert_nnunets_numbers(
        {"fingerprint": ours["dataset_fingerprint"], "plans": ours["plans"]},
        {"fingerprint": RECORDS[name]["fingerprint"], "plans": RECORDS[name]["plans"]},
    )


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_the_plain_folder_is_planned_as_nnunet_plans_its_export(folders, name, capsys):
    images, masks = folders[name]

    assert (
        main([str(images), "--masks", str(masks), "--planner", "nnunet", "--json", "--quiet"]) == 0
    )

    ours = json.loads(capsys.readouterr().out)["nnunet"]
    recorded = dict(RECORDS[name]["plans"])
    # the only difference allowed: the plain folder has no DatasetNNN_Name to be called by
    assert ours["plans"].pop("dataset_name") == images.name
    recorded.pop("dataset_name")
    assert_nnunets_numbers(
        {"fingerprint": ours["dataset_fingerprint"], "plans": ours["plans"]},
        {"fingerprint": RECORDS[name]["fingerprint"], "plans": recorded},
    )


def test_the_command_prints_nnunets_two_training_commands(folders, tmp_path, capsys):
    images, masks = folders["Tiff2D"]
    target = tmp_path / "Dataset603_Cells"

    assert main([str(images), "--masks", str(masks), "--export-nnunet", str(target)]) == 0

    out = capsys.readouterr().out
    assert f"export nnUNet_raw={tmp_path}\n" in out
    assert "nnUNetv2_plan_and_preprocess -d 603 --verify_dataset_integrity\n" in out
    assert "nnUNetv2_train 603 2d 0\n" in out
    assert "Exported 6 cases" in out


@pytest.mark.parametrize(
    ("target", "with_masks", "message"),
    [
        ("Cells", True, "is not an nnU-Net dataset folder name: it must read DatasetNNN_Name"),
        ("Dataset7_Cells", True, "three digits"),
        ("Dataset007_Cells", False, "needs the masks (they become labelsTr): add --masks"),
        ("Dataset008_Full", True, "already exists and is not an empty folder"),
        ("missing/Dataset009_Cells", True, "does not exist (it becomes nnU-Net's nnUNet_raw)"),
    ],
)
def test_a_wrong_target_or_no_masks_is_refused_in_one_line_and_nothing_is_written(
    folders, tmp_path, capsys, target, with_masks, message
):
    images, masks = folders["Tiff2D"]
    full = tmp_path / "Dataset008_Full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    arguments = [str(images), "--export-nnunet", str(tmp_path / target)]

    assert main(arguments + (["--masks", str(masks)] if with_masks else [])) == 2

    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dataset008_Full"]
    assert (full / "notes.txt").read_text() == "mine"


def test_an_empty_target_folder_is_filled(folders, tmp_path):
    images, masks = folders["Tiff2D"]
    (tmp_path / "Dataset010_Cells").mkdir()

    export_nnunet(images, masks, tmp_path / "Dataset010_Cells")

    assert (tmp_path / "Dataset010_Cells" / "dataset.json").exists()


def test_a_cancelled_export_leaves_nothing(folders, tmp_path):
    images, masks = folders["NiftiSparseLabels"]
    steps = []

    with pytest.raises(Cancelled, match="nothing was written"):
        export_nnunet(
            images,
            masks,
            tmp_path / "Dataset011_Cells",
            progress=lambda done, total: steps.append(done),
            cancel=lambda: len(steps) >= 6,  # four masks read, two cases written
        )

    assert len(steps) == 6
    assert list(tmp_path.iterdir()) == []


def test_a_killed_exports_staging_folder_is_not_a_dataset_and_is_removed_by_the_next(
    folders, tmp_path
):
    from napari_autoconfig import atomic

    images, masks = folders["Tiff2D"]
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    stale = (
        tmp_path / f".Dataset012_Cells.autoconfig-{gone.stdout.strip()}-{atomic._HOST}-ab.staging"
    )
    (stale / "imagesTr").mkdir(parents=True)
    # nnU-Net finds a dataset by a folder name starting with DatasetNNN: not this one
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("Dataset012")]

    export_nnunet(images, masks, tmp_path / "Dataset012_Cells")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dataset012_Cells"]


def test_odd_image_names_become_safe_case_names_and_clashes_are_refused(tmp_path, capsys):
    from datafiles import write_case

    images, masks = tmp_path / "images", tmp_path / "masks"
    (images / "day 1").mkdir(parents=True)
    (masks / "day 1").mkdir(parents=True)
    write_case(images, masks, "day 1/cell+a.tif", (8, 16, 16), mask_value=3)
    write_case(images, masks, "b_0000.tif", (8, 16, 16), mask_value=3)

    assert (
        main(
            [
                str(images),
                "--masks",
                str(masks),
                "--export-nnunet",
                str(tmp_path / "Dataset013_Odd"),
            ]
        )
        == 0
    )

    out = capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "Dataset013_Odd" / "imagesTr").iterdir())
    assert names == ["b_0000.json", "b_0000_0000.tif", "day_1_cell_a.json", "day_1_cell_a_0000.tif"]
    assert "Case names made safe for nnU-Net: 'day 1/cell+a' -> 'day_1_cell_a'" in out
    assert "3 -> 1" in out

    (images / "day_1").mkdir()
    (masks / "day_1").mkdir()
    write_case(images, masks, "day_1/cell_a.tif", (8, 16, 16))
    assert (
        main(
            [
                str(images),
                "--masks",
                str(masks),
                "--export-nnunet",
                str(tmp_path / "Dataset014_Odd"),
            ]
        )
        == 2
    )
    assert "would both be the nnU-Net case 'day_1_cell_a'" in capsys.readouterr().err


def test_a_two_channel_imagej_stack_is_split_one_tiff_per_channel(tmp_path):
    import datafiles

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    stack = datafiles.random_volume((6, 2, 16, 14), seed=3)  # ImageJ's (z, c, y, x)
    tifffile.imwrite(
        images / "cell.tif",
        stack,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"axes": "ZCYX", "spacing": 1.5, "unit": "micron"},
    )
    mask = np.zeros((6, 16, 14), np.uint8)
    mask[2:4, 4:10, 4:10] = 1
    datafiles.write_imagej(masks / "cell.tif", mask, (1.5, 0.5, 0.5))

    result = export_nnunet(images, masks, tmp_path / "Dataset020_TwoChannels")

    root = result.path
    for channel in (0, 1):
        written = tifffile.imread(root / "imagesTr" / f"cell_{channel:04d}.tif")
        np.testing.assert_array_equal(written, stack[:, channel])
    assert os.path.samefile(root / "labelsTr" / "cell.tif", masks / "cell.tif")  # already 0/1
    assert json.loads((root / "imagesTr" / "cell.json").read_text()) == {"spacing": [1.5, 0.5, 0.5]}
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "zscore", "1": "zscore"}
    assert (result.linked, result.written) == (1, 2)


def test_where_hard_links_are_refused_the_files_are_copied(folders, tmp_path, monkeypatch):
    import errno

    images, masks = folders["NiftiSparseLabels"]

    def other_device(source, destination, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", other_device)

    result = export_nnunet(images, masks, tmp_path / "Dataset021_Copied")

    assert (result.linked, result.copied, result.written) == (0, 4, 4)
    copy = result.path / "imagesTr" / "cell_000_0000.nii.gz"
    assert not os.path.samefile(copy, images / "cell_000.nii.gz")
    assert copy.read_bytes() == (images / "cell_000.nii.gz").read_bytes()


def test_masks_paired_by_position_are_exported_with_the_pairs_to_check(tmp_path, capsys):
    from datafiles import write_case

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    write_case(images, masks, "a.tif", (6, 12, 12))
    (masks / "a.tif").rename(masks / "first.tif")  # no name in common: biom3d's sorted position

    assert (
        main(
            [
                str(images),
                "--masks",
                str(masks),
                "--export-nnunet",
                str(tmp_path / "Dataset022_Pairs"),
            ]
        )
        == 0
    )

    out = capsys.readouterr().out
    assert "# Check: " in out and "first.tif" in out
