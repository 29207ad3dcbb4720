"""nnU-Net v2 raw datasets as users point at them: one- and two-channel cases, labels by case."""

from __future__ import annotations

import json

import numpy as np
import pytest

from datafiles import SHAPES_ZYX, write_image, write_nnunet
from napari_autoconfig import auto_config as ac
from napari_autoconfig.cli import main
from napari_autoconfig.dataset import open_dataset
from napari_autoconfig.errors import DatasetError, UnpairedFilesError
from napari_autoconfig.fingerprint import fingerprint_dataset
from napari_autoconfig.readers import iter_chunks, read_array, read_header, take


def _cases(channels: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    cases = {}
    for number, shape in enumerate(SHAPES_ZYX):
        label = np.zeros(shape, np.uint8)
        z, y, x = (s // 4 for s in shape)
        label[z : 3 * z, y : 3 * y, x : 3 * x] = 1
        images = [rng.integers(50, 150, size=shape).astype(np.uint16) for _ in range(channels)]
        cases[f"cell_{number:03d}"] = (images, label)
    return cases


def test_one_channel_dataset_gives_the_numbers_of_the_same_data_laid_out_for_biom3d(
    tmp_path, capsys
):
    cases = _cases(1)
    root = write_nnunet(tmp_path / "Dataset001_Cells", cases, ".nii.gz")
    for case, (channels, label) in cases.items():
        write_image(tmp_path / "images" / f"{case}.nii.gz", channels[0])
        write_image(tmp_path / "masks" / f"{case}.nii.gz", label)
    expected = ac.data_fingerprint(tmp_path / "images", tmp_path / "masks")
    for folder in (root, root / "imagesTr"):  # the dataset folder, or its imagesTr
        result = ac.data_fingerprint(folder)
        assert result[0].tolist() == expected[0].tolist()
        assert np.allclose(result[1], expected[1]) and result[2:] == expected[2:]
    dataset = open_dataset(root)
    assert dataset.pairing == "nnunet" and [c.key for c in dataset.cases] == sorted(cases)
    assert main([str(root), "--json", "--quiet"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["num_images"] == 3 and record["channels"] == 1  # labels are not images


def test_two_channel_cases_are_one_image_each(tmp_path, capsys):
    cases = _cases(2, seed=1)
    root = write_nnunet(tmp_path / "Dataset002", cases, ".tif", ("DAPI", "GFP"))
    fp = fingerprint_dataset(root)
    assert fp.num_images == 3 and fp.channels == 2
    sizes = np.array([(2, *s) for s in SHAPES_ZYX])
    assert fp.median_size == tuple(int(v) for v in np.median(sizes, axis=0).astype(int))
    # biom3d's rule on the (C, Z, Y, X) image: values under the label in every channel, C order
    drawn = []
    for channels, label in (cases[k] for k in sorted(cases)):
        values = np.stack(channels)[np.broadcast_to(label > 0, (2, *label.shape))]
        drawn.append(np.random.default_rng(42).choice(values, 10000, replace=True))
    values = np.concatenate(drawn)
    assert (fp.mean, fp.std) == (float(np.mean(values)), float(np.std(values)))
    assert fp.perc_005 == float(np.percentile(values, 0.5))
    assert fp.perc_995 == float(np.percentile(values, 99.5))

    assert main([str(root), "--json", "--quiet"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["num_images"] == 3 and record["channels"] == 2
    assert record["config"]["NUM_CHANNELS"] == 2


def test_channel_files_read_as_one_multichannel_image(tmp_path):
    cases = _cases(2, seed=2)
    root = write_nnunet(tmp_path / "d", cases, ".nii.gz", ("a", "b"))
    paths = (root / "imagesTr" / "cell_001_0000.nii.gz", root / "imagesTr" / "cell_001_0001.nii.gz")
    header = read_header(paths)
    whole = np.stack(cases["cell_001"][0])
    assert header.shape == whole.shape and header.axes == "CZYX" and header.channels == 2
    assert np.array_equal(read_array(header), whole)
    assert np.array_equal(
        np.concatenate([c.ravel() for c in iter_chunks(header, 4096)]), whole.ravel()
    )
    idx = np.sort(np.random.default_rng(0).integers(0, whole.size, 500))
    assert np.array_equal(take(header, idx), whole.ravel()[idx])


def test_incomplete_cases_and_bad_json_are_named(tmp_path):
    root = write_nnunet(tmp_path / "d", _cases(2), ".tif", ("a", "b"))
    (root / "imagesTr" / "cell_001_0001.tif").unlink()
    with pytest.raises(UnpairedFilesError, match=r"'cell_001' has channel\(s\) \[0\]"):
        open_dataset(root)
    (root / "imagesTr" / "cell_001_0000.tif").unlink()
    with pytest.raises(UnpairedFilesError, match=r"label\(s\) without a case: cell_001"):
        open_dataset(root)
    (root / "dataset.json").write_text('{"labels": {}}')
    with pytest.raises(DatasetError, match="channel_names"):
        open_dataset(root)
    with pytest.raises(DatasetError, match="labels are"):
        open_dataset(root, tmp_path)
