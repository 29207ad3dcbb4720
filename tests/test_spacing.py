"""Spacing as biom3d reads it (MEDIAN_SPACING) and as people see it (napari scale, table)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from datafiles import write_imagej, write_ome_tiff
from napari_autoconfig import auto_config as ac
from napari_autoconfig.cli import main
from napari_autoconfig.fingerprint import fingerprint_dataset
from napari_autoconfig.readers import read_header


def test_a_2d_imagej_file_with_spacing_has_three_values_for_biom3d(tmp_path):
    # biom3d 0.1.2 reads this very file as spacing (0.25, 0.5, 1.5): 1/XRes, 1/YRes, spacing.
    path = tmp_path / "flat.tif"
    data = np.zeros((20, 30), np.uint16)
    tifffile.imwrite(
        path, data, imagej=True, resolution=(4.0, 2.0), metadata={"spacing": 1.5, "unit": "micron"}
    )
    header = read_header(path)
    assert header.is_2d and header.spacing_xyz == (0.25, 0.5, 1.5)
    assert header.spacing_zyx == (0.5, 0.25)  # for napari: one value per axis of the 2D image
    assert header.biom3d_sees_spacing and header.spacing_note == ""
    fp = fingerprint_dataset(tmp_path)
    assert fp.median_spacing_xyz == (0.25, 0.5, 1.5)
    _, spacing, *_ = ac.data_fingerprint(tmp_path)
    assert spacing.tolist() == [0.25, 0.5, 1.5]


def test_a_3d_imagej_file_gives_inverse_resolutions_and_its_spacing_entry(tmp_path):
    write_imagej(tmp_path / "a.tif", np.zeros((4, 8, 8), np.uint8), (3.0, 0.5, 0.25))
    header = read_header(tmp_path / "a.tif")
    assert header.spacing_xyz == (0.25, 0.5, 3.0) and header.spacing_zyx == (3.0, 0.5, 0.25)


@pytest.mark.parametrize("shape", [(6, 16, 20), (16, 20)])
def test_ome_physical_size_is_shown_but_biom3d_sees_no_spacing(tmp_path, capsys, shape):
    spacing_zyx = (2.0, 0.4, 0.2)
    (tmp_path / "img").mkdir()
    write_ome_tiff(tmp_path / "img" / "a.ome.tif", np.ones(shape, np.uint16), spacing_zyx)
    header = read_header(tmp_path / "img" / "a.ome.tif")
    assert header.format == "ome-tiff" and header.spacing_xyz is None
    assert header.spacing_zyx == spacing_zyx[-len(shape) :]
    assert header.physical_spacing_zyx == spacing_zyx[-len(shape) :] and header.unit == "micron"
    assert not header.biom3d_sees_spacing and header.spacing_note == "biom3d sees no spacing"
    # MEDIAN_SPACING stays what biom3d computes: nothing
    assert fingerprint_dataset(tmp_path / "img").median_spacing_xyz is None
    assert main([str(tmp_path / "img"), "--json", "--quiet"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["median_spacing"] == [] and record["config"]["MEDIAN_SPACING"] == []


def test_files_without_any_spacing_say_so(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 4, 5), np.uint8))
    header = read_header(tmp_path / "a.npy")
    assert header.spacing_zyx is None and header.spacing_note == "no spacing"
