"""The npe2 reader, used as a user does: File > Open (``viewer.open``) with real files on disk.

Files are written with SimpleITK at a known spacing; the layers napari makes must hold the same
pixels, with the spacing as ``scale`` in (z, y, x) order.
"""

from __future__ import annotations

import npe2
import numpy as np
import pytest

from datafiles import random_volume, write_itk
from napari_autoconfig._napari.reader import get_reader, read_layers
from napari_autoconfig.errors import ImageReadError
from napari_autoconfig.readers import read_header

PLUGIN = "napari-autoconfig"
SPACING_XYZ = (0.8, 0.5, 2.0)
SPACING_ZYX = (2.0, 0.5, 0.8)
SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")


def volume(shape=(5, 6, 7), dtype=np.uint16, seed=0) -> np.ndarray:
    return random_volume(shape, dtype, seed)


def test_every_format_opens_with_its_spacing_as_scale(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer(show=True)
    for number, suffix in enumerate(SUFFIXES):
        data = volume(dtype=np.float32, seed=number)
        path = write_itk(tmp_path / f"case{number}{suffix}", data, SPACING_XYZ)

        layers = viewer.open(path, plugin=PLUGIN)

        assert len(layers) == 1, suffix
        layer = layers[0]
        assert layer._type_string == "image"
        assert layer.name == f"case{number}"
        np.testing.assert_array_equal(layer.data, data)
        assert tuple(layer.scale) == read_header(path).spacing_zyx  # exactly the file's values
        assert tuple(layer.scale) == pytest.approx(SPACING_ZYX, rel=1e-6)
        assert layer.metadata["unit"] == "mm"
        assert layer.metadata["spacing_xyz"] == pytest.approx(SPACING_XYZ, rel=1e-6)
    # NIfTI stores spacing as float32: the layer keeps 0.800000011920929, not a rounded 0.8
    assert viewer.layers["case0"].scale[2] == float(np.float32(0.8)) != 0.8


def test_2d_metaimage_opens_2d_with_yx_scale(make_napari_viewer, tmp_path):
    data = volume(shape=(6, 9), dtype=np.uint8)
    path = write_itk(tmp_path / "slice.mha", data, (0.25, 0.5))
    viewer = make_napari_viewer(show=True)

    (layer,) = viewer.open(path, plugin=PLUGIN)

    assert layer.ndim == 2
    np.testing.assert_array_equal(layer.data, data)
    assert tuple(layer.scale) == (0.5, 0.25)


@pytest.mark.parametrize("name, vector", [("vector.mha", True), ("fourd.nii.gz", False)])
def test_multichannel_image_opens_one_layer_per_channel(make_napari_viewer, tmp_path, name, vector):
    czyx = volume(shape=(2, 4, 5, 6), dtype=np.int16)
    if vector:  # vector pixels: SimpleITK takes the components last
        path = write_itk(tmp_path / name, np.moveaxis(czyx, 0, -1), SPACING_XYZ, vector=True)
    else:  # a 4D NIfTI: its 4th axis holds the channels
        path = write_itk(tmp_path / name, czyx, (*SPACING_XYZ, 1.0))
    viewer = make_napari_viewer(show=True)

    layers = viewer.open(path, plugin=PLUGIN)

    assert len(layers) == 2
    for channel, layer in enumerate(layers):
        assert layer._type_string == "image"
        np.testing.assert_array_equal(layer.data, czyx[channel])
        assert tuple(layer.scale) == pytest.approx(SPACING_ZYX, rel=1e-6)
        assert layer.metadata["unit"] == "mm"


def test_mask_named_integer_file_opens_as_labels(make_napari_viewer, tmp_path):
    mask = np.zeros((4, 5, 6), dtype=np.uint8)
    mask[1:3, 1:4, 2:5] = 1
    mask[3, 0, 0] = 2
    labels_path = write_itk(tmp_path / "Case01_Mask.nii.gz", mask, SPACING_XYZ)
    label_path = write_itk(tmp_path / "LABELS_01.nrrd", mask, SPACING_XYZ)
    plain_path = write_itk(tmp_path / "case01.nii.gz", mask, SPACING_XYZ)
    float_path = write_itk(tmp_path / "mask_prob.mha", mask.astype(np.float32), SPACING_XYZ)
    viewer = make_napari_viewer(show=True)

    (labels,) = viewer.open(labels_path, plugin=PLUGIN)
    (label,) = viewer.open(label_path, plugin=PLUGIN)
    (plain,) = viewer.open(plain_path, plugin=PLUGIN)
    (probability,) = viewer.open(float_path, plugin=PLUGIN)

    assert labels._type_string == "labels" and label._type_string == "labels"
    np.testing.assert_array_equal(labels.data, mask)
    assert tuple(labels.scale) == pytest.approx(SPACING_ZYX, rel=1e-6)
    # an integer file not named as a mask, and a float "mask", stay images
    assert plain._type_string == "image"
    assert probability._type_string == "image"


@pytest.mark.parametrize(
    "path",
    [
        "cells.tif",
        "cells.TIFF",
        "cells.ome.tif",
        "cells.npy",
        "notes.txt",
        "archive.gz",
        "folder",
        "nii",
        ".nii",
    ],
)
def test_get_reader_declines_what_it_does_not_claim(path):
    assert get_reader(path) is None


def test_get_reader_claims_its_suffixes_by_name_only(tmp_path):
    # by name, in any case, and without touching the file (it does not exist)
    for suffix in (*SUFFIXES, ".NII.GZ", ".Mha"):
        assert get_reader(str(tmp_path / f"missing{suffix}")) is read_layers
    assert get_reader([str(tmp_path / "a.nii"), str(tmp_path / "b.nrrd")]) is read_layers
    assert get_reader([str(tmp_path / "a.nii"), str(tmp_path / "b.tif")]) is None
    assert get_reader([]) is None


def test_manifest_offers_the_reader_for_its_patterns_only(tmp_path):
    # napari's builtin reader also lists these patterns (through imageio, which cannot open
    # them), so File > Open asks which plugin to use; the manifest must offer this one.
    manager = npe2.PluginManager.instance()
    manager.discover()
    for suffix in SUFFIXES:
        readers = manager.iter_compatible_readers([str(tmp_path / f"case{suffix}")])
        assert PLUGIN in [r.plugin_name for r in readers], suffix
    for name in ("cells.tif", "cells.ome.tiff", "cells.npy"):
        readers = manager.iter_compatible_readers([str(tmp_path / name)])
        assert PLUGIN not in [r.plugin_name for r in readers], name


def test_damaged_file_raises_the_core_message(make_napari_viewer, tmp_path):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"this is not a NIfTI volume" * 10)
    reader = get_reader(str(path))
    assert reader is not None  # claimed by name; the read reports the problem

    with pytest.raises(ImageReadError, match=r"broken\.nii\.gz"):
        reader(str(path))

    viewer = make_napari_viewer(show=True)
    with pytest.raises(ImageReadError, match=r"broken\.nii\.gz"):  # napari shows this message
        viewer.open(path, plugin=PLUGIN)
    assert len(viewer.layers) == 0
