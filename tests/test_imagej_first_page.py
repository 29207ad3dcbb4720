"""ImageJ stacks are read from their first IFD: the same plan as through tifffile, or tifffile reads
them. The story: a biologist's folder of Fiji/tifffile ImageJ stacks gives the same shapes,
spacings and pixels whichever way its headers are read, and anything unusual still opens."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from datafiles import write_imagej
from napari_autoconfig import readers
from napari_autoconfig.readers import _imagej, _tiff

RNG = np.random.default_rng(11)


def _vol(shape, dtype=np.uint16):
    return RNG.integers(0, 200, shape).astype(dtype)


ZYX = {"metadata": {"axes": "ZYX"}}

# (name, array, tifffile.imwrite options): what ImageJ stacks look like in the wild
IMAGEJ_STACKS = [
    ("3d_spacing", _vol((6, 20, 24)), {"resolution": (2.0, 4.0), "metadata": {"spacing": 1.5}}),
    ("3d_unit", _vol((5, 9, 7)), {"resolution": (3.0, 3.0), "metadata": {"unit": "micron"}}),
    ("2d", _vol((20, 24), np.uint8), {"metadata": {"spacing": 2.0}}),
    ("float32", _vol((4, 8, 8), np.float32), ZYX),
    ("int16", _vol((4, 8, 8), np.int16), ZYX),
    ("big_endian", _vol((4, 8, 8)), {"byteorder": ">", **ZYX}),
    ("channels", _vol((3, 2, 8, 8)), {"metadata": {"axes": "ZCYX"}}),
    ("frames", _vol((3, 8, 8)), {"metadata": {"axes": "TYX"}}),
    ("strips", _vol((4, 16, 16)), {"rowsperstrip": 4, **ZYX}),
]

# ImageJ-like files the first-page reading leaves to tifffile
LEFT_TO_TIFFFILE = [
    ("zlib", _vol((4, 8, 8)), {"compression": "zlib"}),
    ("rgb", _vol((8, 8, 3), np.uint8), {"photometric": "rgb"}),
    # tifffile's present default for 4 planes (RGBA planes), said so the file stays the same
    (
        "not_imagej",
        _vol((4, 8, 8)),
        {"imagej": False, "photometric": "rgb", "planarconfig": "separate"},
    ),
    ("ome", _vol((4, 8, 8)), {"imagej": False, "ome": True}),
]


def _write(path, array, options):
    options = {"imagej": True, **options}
    tifffile.imwrite(path, array, **options)
    return path


def _plans(path):
    size = path.stat().st_size
    stack = _imagej.read_imagej_stack(path, size)
    with tifffile.TiffFile(path) as tif:
        through_tifffile = _tiff._tiff_plan(path, tif, size)
    first_page = None if stack is None else _tiff._imagej_plan(path, stack, size)
    return first_page, through_tifffile


@pytest.mark.parametrize(
    ("name", "array", "options"), IMAGEJ_STACKS, ids=[s[0] for s in IMAGEJ_STACKS]
)
def test_an_imagej_stack_gets_tifffiles_plan_from_its_first_page(tmp_path, name, array, options):
    path = _write(tmp_path / f"{name}.tif", array, options)
    first_page, through_tifffile = _plans(path)
    assert first_page is not None, "an everyday ImageJ stack was left to tifffile"
    assert first_page == through_tifffile
    header = readers.read_header(path)
    presented = np.moveaxis(array, 1, 0) if name == "channels" else array  # channels first
    pieces = [chunk.ravel() for chunk in readers.iter_chunks(header, max_bytes=300)]
    np.testing.assert_array_equal(np.concatenate(pieces), presented.ravel())


@pytest.mark.parametrize(
    ("name", "array", "options"), LEFT_TO_TIFFFILE, ids=[s[0] for s in LEFT_TO_TIFFFILE]
)
def test_anything_else_is_left_to_tifffile(tmp_path, name, array, options):
    path = _write(tmp_path / f"{name}.tif", array, options)
    assert _imagej.read_imagej_stack(path, path.stat().st_size) is None
    assert readers.read_header(path).format.endswith("tiff")  # and it still opens


def test_the_benchmarks_big_tiff_layout_is_read_from_its_first_page(tmp_path):
    # tifffile.memmap lays out contiguous ImageJ data, as the benchmark's writer does
    path = tmp_path / "mapped.tif"
    layout = tifffile.memmap(path, shape=(5, 16, 16), dtype=np.uint16, imagej=True)
    layout[:] = _vol((5, 16, 16))
    layout.flush()
    del layout
    first_page, through_tifffile = _plans(path)
    assert first_page is not None and first_page == through_tifffile


@pytest.mark.parametrize(
    "description",
    [
        "ImageJ=1.11a\nimages=96\nslices=96\nhyperstack=true\nmode=grayscale\nspacing=2.0\n",
        "ImageJ=1.53t\nimages=6\nchannels=2\nslices=3\nunit=\\u00B5m\nloop=false\nmin=0.0\n",
        "ImageJ=\nspacing=1e-3\nunit=micron\nfinterval=0.5\nnoequal\n=x\nweird= spaced = \n",
    ],
)
def test_the_description_is_typed_as_tifffile_types_it(description):
    ours = _imagej.imagej_description_metadata(description)
    theirs = tifffile.tifffile.imagej_description_metadata(description)
    assert ours == theirs
    assert [type(v) for v in ours.values()] == [type(v) for v in theirs.values()]


def test_a_damaged_first_page_is_left_to_tifffiles_message(tmp_path):
    path = write_imagej(tmp_path / "damaged.tif", _vol((4, 8, 8)))
    data = bytearray(path.read_bytes())
    data[8:40] = b"\xff" * 32  # the first IFD's entries
    path.write_bytes(bytes(data))
    assert _imagej.read_imagej_stack(path, len(data)) is None
    with pytest.raises(readers.ImageReadError, match=r"damaged\.tif"):
        readers.read_header(path)


def test_a_cut_short_stack_says_so_instead_of_opening_as_one_plane(tmp_path):
    # tifffile only logs this file as corrupted and reads its first page: a wrong, 2D image
    path = write_imagej(tmp_path / "cut.tif", _vol((6, 16, 16)))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(readers.ImageReadError, match=r"cut\.tif.*truncated.*copy the file again"):
        readers.read_header(path)
