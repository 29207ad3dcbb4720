"""OME-Zarr images and masks, on disk and behind a URL, give the numbers of the same TIFFs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tifffile

from datafiles import SPACING_ZYX, needs_zarr, serve_folder, write_dataset, write_ome_zarr
from napari_autoconfig import auto_config as ac
from napari_autoconfig.cli import main
from napari_autoconfig.dataset import list_images, open_dataset
from napari_autoconfig.errors import ImageReadError
from napari_autoconfig.fingerprint import fingerprint_dataset
from napari_autoconfig.readers import iter_chunks, read_array, read_header, take


@pytest.fixture(scope="module")
def tiff_and_zarr(tmp_path_factory):
    """The shared dataset as ImageJ TIFF, and the same arrays as OME-Zarr 0.4 images, 0.5 masks."""
    root = tmp_path_factory.mktemp("data")
    images, masks = write_dataset(root / "tiff")
    for folder, version in ((images, "0.4"), (masks, "0.5")):
        out = root / "zarr" / folder.name
        out.mkdir(parents=True)
        for path in sorted(folder.iterdir()):
            write_ome_zarr(out / f"{path.stem}.ome.zarr", tifffile.imread(path), version=version)
    return images, masks, root / "zarr" / "images", root / "zarr" / "masks"


def _same(result, expected):
    assert result[0].tolist() == expected[0].tolist()
    assert result[1].tolist() == expected[1].tolist()
    assert result[2:] == expected[2:]


def test_header_from_metadata_alone(tmp_path):
    data = np.arange(2 * 6 * 8 * 10, dtype=np.uint16).reshape(2, 6, 8, 10)
    for version in ("0.4", "0.5"):
        path = write_ome_zarr(tmp_path / f"v{version}.ome.zarr", data, (3.0, 0.5, 0.25), version)
        for chunk in path.glob("0/**/*"):  # no chunk is needed for the header
            if chunk.is_file() and not chunk.name.startswith((".z", "zarr.json")):
                chunk.unlink()
        header = read_header(path)
        assert (header.format, header.shape, header.axes) == ("ome-zarr", data.shape, "CZYX")
        assert header.dtype == np.uint16 and header.channels == 2
        assert header.spacing_xyz == (0.25, 0.5, 3.0) and header.spacing_zyx == (3.0, 0.5, 0.25)
        assert header.unit == "micron"


def test_pixels_in_any_axis_order_read_chunk_by_chunk(tmp_path):
    data_zcyx = np.random.default_rng(0).integers(0, 999, (5, 3, 14, 18)).astype(np.int32)
    path = write_ome_zarr(tmp_path / "a.zarr", data_zcyx, axes="zcyx", chunks=(2, 1, 5, 7))
    header = read_header(path)
    expected = np.moveaxis(data_zcyx, 1, 0)  # presented channel first
    assert header.shape == expected.shape and header.axes == "CZYX"
    assert np.array_equal(read_array(header), expected)
    pieces = list(iter_chunks(header, max_bytes=2000))
    assert len(pieces) > 1 and all(p.nbytes <= 2000 or p.shape[0] == 1 for p in pieces)
    assert np.array_equal(np.concatenate([p.ravel() for p in pieces]), expected.ravel())
    idx = np.sort(np.random.default_rng(1).integers(0, expected.size, 300))
    assert np.array_equal(take(header, idx), expected.ravel()[idx])


def test_zarr_on_disk_gives_the_numbers_of_the_same_tiffs(tiff_and_zarr, capsys):
    tiff_images, tiff_masks, zarr_images, zarr_masks = tiff_and_zarr
    images, skipped = list_images(zarr_images)
    assert [p.name for p in images] == [f"case_0{i}.ome.zarr" for i in (1, 2, 3)] and not skipped
    expected = ac.data_fingerprint(tiff_images, tiff_masks)
    _same(ac.data_fingerprint(zarr_images, zarr_masks), expected)
    assert expected[1].tolist() == list(SPACING_ZYX[::-1])
    outputs = []
    for folders in ((tiff_images, tiff_masks), (zarr_images, zarr_masks)):
        assert main([str(folders[0]), "--masks", str(folders[1]), "--json", "--quiet"]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    for key in ("median_size", "median_spacing", "mean", "std", "perc_005", "perc_995", "config"):
        assert outputs[0][key] == outputs[1][key], key


def test_zarr_over_http_gives_the_same_numbers(tiff_and_zarr, capsys):
    tiff_images, tiff_masks, zarr_images, _ = tiff_and_zarr
    expected = ac.data_fingerprint(tiff_images, tiff_masks)
    with serve_folder(zarr_images.parent) as url:
        dataset = open_dataset(f"{url}/images/", f"{url}/masks/")
        assert [c.image.name for c in dataset.cases] == [f"case_0{i}.ome.zarr" for i in (1, 2, 3)]
        assert dataset.pairing == "name"
        _same(ac.data_fingerprint(f"{url}/images/", f"{url}/masks/"), expected)
        one = fingerprint_dataset(f"{url}/images/case_02.ome.zarr")
        assert one.num_images == 1 and one.records[0].image.path.name == "case_02.ome.zarr"
        status = main([f"{url}/images", "--masks", f"{url}/masks", "--json", "--quiet"])
        assert status == 0
        assert json.loads(capsys.readouterr().out)["perc_995"] == expected[5]


def test_damaged_or_missing_zarr_gets_one_clear_message(tmp_path, capsys):
    needs_zarr()
    broken = tmp_path / "imgs" / "bad.ome.zarr"
    broken.mkdir(parents=True)
    (broken / ".zgroup").write_text('{"zarr_format": 2}')
    (broken / ".zattrs").write_text("{}")
    with pytest.raises(ImageReadError, match="no 'multiscales' entry"):
        read_header(broken)
    assert main([str(tmp_path / "imgs"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "bad.ome.zarr" in err
    shutil.rmtree(broken)
    with serve_folder(tmp_path) as url:
        assert main([f"{url}/nothing-here/", "--quiet"]) == 2
        assert "nothing-here" in capsys.readouterr().err
