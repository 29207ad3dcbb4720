"""An opened image is a lazy dask array: every slice napari asks for equals the decoded file."""

from __future__ import annotations

import numpy as np
import pytest

import napari_autoconfig._napari.lazy as lazy
from datafiles import random_volume, read_whole, write_image, write_itk
from napari_autoconfig.readers import read_header


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("stack.tif", (7, 20, 18)),
        ("plane.npy", (20, 18)),
        ("volume.nii.gz", (6, 16, 12)),
        ("volume.npy", (5, 16, 12)),
        ("channels.npy", (2, 5, 16, 12)),
    ],
)
def test_every_slice_equals_the_decoded_file(tmp_path, name, shape):
    path = write_image(tmp_path / name, random_volume(shape, np.uint16, seed=len(name)))
    whole = read_whole(path)
    array, _reader = lazy.lazy_array(read_header(path))
    assert array.shape == whole.shape and array.dtype == whole.dtype
    keys = [(0,), (-1,), (slice(1, 3),), (Ellipsis, slice(2, 9, 3), slice(None, None, 2))]
    for key in keys:
        np.testing.assert_array_equal(np.asarray(array[key]), whole[key], err_msg=str(key))
    np.testing.assert_array_equal(np.asarray(array), whole)


def test_a_plane_is_read_when_asked_and_kept(tmp_path, monkeypatch):
    path = write_itk(tmp_path / "v.nii", random_volume((8, 10, 10)), (0.5, 0.5, 2.0))
    array, _reader = lazy.lazy_array(read_header(path))
    reads = []
    real_take = lazy.take

    def counted(header, flat):
        reads.append(int(flat[0]))
        return real_take(header, flat)

    monkeypatch.setattr(lazy, "take", counted)
    np.asarray(array[3])
    np.asarray(array[3])
    assert reads == [3 * 10 * 10]  # that plane only, once: the second look is kept
