"""nnU-Net raw datasets read with the reader nnU-Net itself picks: TIFF spacing files, 2D
natural images, a reader named in dataset.json, and a dataset.json that lists its files.

Labels here are all background, so nothing is drawn (nnU-Net's 1e8 draws cost seconds): the
reading, the spacing and the shapes are what these stories check. The draws on TIFF datasets are
compared with nnU-Net's own in ``test_nnunet_plan.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from datafiles import write_itk
from napari_autoconfig.cli import main
from napari_autoconfig.errors import DatasetError
from napari_autoconfig.planners import fingerprint_nnunet, plan_nnunet

SHAPE_ZYX = (6, 20, 24)


def _write_raw(
    root: Path, arrays: dict, ending: str, meta: dict | None = None, spacing: dict | None = None
) -> Path:
    """A raw dataset of single-channel cases written with tifffile (TIFF) or SimpleITK; each
    case's label is all background. ``spacing``: case -> its spacing file's list (TIFF)."""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for case, array in arrays.items():
        rgb = array.ndim == 3 and array.shape[-1] == 3
        label = np.zeros(array.shape[:2] if rgb else array.shape, np.uint8)
        for folder, name, data in (
            ("imagesTr", f"{case}_0000{ending}", array),
            ("labelsTr", f"{case}{ending}", label),
        ):
            if ending in (".tif", ".tiff"):
                tifffile.imwrite(root / folder / name, data)
            else:
                write_itk(root / folder / name, data, (0.5, 0.5, 2.0))
        if spacing and case in spacing:
            (root / "imagesTr" / f"{case}.json").write_text(json.dumps({"spacing": spacing[case]}))
    dataset = {
        "channel_names": {"0": "DAPI"},
        "labels": {"background": 0, "cell": 1},
        "numTraining": len(arrays),
        "file_ending": ending,
        **(meta or {}),
    }
    (root / "dataset.json").write_text(json.dumps(dataset))
    return root


def _volumes(count: int, shape=SHAPE_ZYX) -> dict:
    rng = np.random.default_rng(7)
    return {f"case_{i}": rng.integers(1, 200, shape).astype(np.uint8) for i in range(count)}


def test_tiff_spacing_comes_from_each_cases_json_and_a_missing_one_is_said_once(tmp_path, capsys):
    root = _write_raw(
        tmp_path / "Dataset201_Tiff",
        _volumes(3),
        ".tif",
        spacing={"case_0": [2, 0.5, 0.5]},  # verbatim: the integer stays an integer
    )

    assert main([str(root), "--planner", "nnunet", "--json", "--quiet"]) == 0

    out, err = capsys.readouterr()
    record = json.loads(out)["nnunet"]
    assert record["dataset_fingerprint"]["spacings"] == [[2, 0.5, 0.5], [1, 1, 1], [1, 1, 1]]
    assert [type(v) for v in record["dataset_fingerprint"]["spacings"][0]] == [int, float, float]
    assert record["plans"]["image_reader_writer"] == "Tiff3DIO"
    said = [line for line in err.splitlines() if "spacing file" in line]
    assert len(said) == 1 and "2 of 3 case(s)" in said[0] and "1, 1, 1" in said[0]


def test_2d_tiffs_are_natural_images_with_nnunets_spacing_999(tmp_path):
    root = _write_raw(tmp_path / "Dataset202_Slices", _volumes(2, (20, 24)), ".tif")

    fingerprint = fingerprint_nnunet(root)

    assert fingerprint.image_reader_writer == "NaturalImage2DIO"
    assert fingerprint.spacings == ((999, 1, 1), (999, 1, 1))
    assert fingerprint.shapes_after_crop == ((1, 20, 24), (1, 20, 24))
    assert plan_nnunet(fingerprint).as_json()["image_reader_writer"] == "NaturalImage2DIO"


def test_an_rgb_tiff_is_three_channels(tmp_path):
    rgb = {"photo": np.random.default_rng(1).integers(1, 255, (20, 24, 3)).astype(np.uint8)}
    root = _write_raw(tmp_path / "Dataset203_Rgb", rgb, ".tif")

    with pytest.raises(DatasetError, match=r"names 1 channel\(s\).*reads 3"):
        fingerprint_nnunet(root)

    meta = json.loads((root / "dataset.json").read_text())
    meta["channel_names"] = {"0": "R", "1": "G", "2": "B"}
    (root / "dataset.json").write_text(json.dumps(meta))
    fingerprint = fingerprint_nnunet(root)
    assert fingerprint.channel_names == ("R", "G", "B")
    assert fingerprint.spacings == ((999, 1, 1),) and fingerprint.shapes_after_crop == (
        (1, 20, 24),
    )


def test_the_reader_dataset_json_names_is_the_one_used(tmp_path):
    named = {"overwrite_image_reader_writer": "NibabelIO"}
    root = _write_raw(tmp_path / "Dataset204_Named", _volumes(2), ".nii.gz", named)

    fingerprint = fingerprint_nnunet(root)

    assert fingerprint.image_reader_writer == "NibabelIO"  # nnU-Net's choice would be SimpleITKIO
    assert fingerprint.spacings[0] == (2.0, 0.5, 0.5)


def test_an_unknown_reader_name_falls_back_as_nnunet_does_and_a_reorienting_one_is_refused(
    tmp_path,
):
    unknown = _write_raw(
        tmp_path / "Dataset205_Typo",
        _volumes(1),
        ".nii.gz",
        {"overwrite_image_reader_writer": "SimpleITK"},
    )
    fingerprint = fingerprint_nnunet(unknown)
    assert fingerprint.image_reader_writer == "SimpleITKIO"
    assert any("'SimpleITK' is not an nnU-Net reader" in note for note in fingerprint.notes)

    reorient = _write_raw(
        tmp_path / "Dataset206_Reorient",
        _volumes(1),
        ".nii.gz",
        {"overwrite_image_reader_writer": "NibabelIOWithReorient"},
    )
    with pytest.raises(DatasetError, match="reorients images"):
        fingerprint_nnunet(reorient)


def test_a_dataset_json_listing_its_files_is_read_in_its_order(tmp_path, capsys):
    root = _write_raw(tmp_path / "Dataset207_Listed", _volumes(2), ".tif", spacing={})
    # the files moved elsewhere, named freely; dataset.json lists them, case b first
    (root / "elsewhere").mkdir()
    listing = {}
    for case, spacing in (("case_1", [3.0, 1.0, 1.0]), ("case_0", [2.0, 1.0, 1.0])):
        image = root / "elsewhere" / f"{case}-raw_0000.tif"
        (root / "imagesTr" / f"{case}_0000.tif").rename(image)
        (root / "elsewhere" / f"{case}-raw.json").write_text(json.dumps({"spacing": spacing}))
        listing[case] = {"images": [f"elsewhere/{image.name}"], "label": f"labelsTr/{case}.tif"}
    meta = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**meta, "dataset": listing}))

    assert main([str(root), "--planner", "nnunet", "--json", "--quiet"]) == 0

    spacings = json.loads(capsys.readouterr().out)["nnunet"]["dataset_fingerprint"]["spacings"]
    assert spacings == [[3.0, 1.0, 1.0], [2.0, 1.0, 1.0]]  # dataset.json's order, not sorted


def test_a_listed_file_that_is_missing_is_named(tmp_path, capsys):
    root = _write_raw(tmp_path / "Dataset208_Missing", _volumes(1), ".nii.gz")
    meta = json.loads((root / "dataset.json").read_text())
    meta["dataset"] = {
        "a": {"images": ["imagesTr/nope_0000.nii.gz"], "label": "labelsTr/case_0.nii.gz"}
    }
    (root / "dataset.json").write_text(json.dumps(meta))

    assert main([str(root), "--planner", "nnunet", "--quiet"]) != 0

    err = capsys.readouterr().err
    assert "imagesTr/nope_0000.nii.gz" in err and "Traceback" not in err
