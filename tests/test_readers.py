"""Readers: header facts and pixel access on real files written here, for every format."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest
import SimpleITK as sitk
import tifffile

from datafiles import read_itk, write_dataset, write_itk
from napari_autoconfig import readers
from napari_autoconfig.errors import ImageReadError

RNG = np.random.default_rng(0)
# How tifffile stores a stack whose first axis has 3 or 4 planes today (RGB(A) planes), said
# explicitly: the files these tests write stay the same when tifffile changes its default
# (it announces MINISBLACK pages instead).
RGB_PLANES = {"photometric": "rgb", "planarconfig": "separate"}


def _vol(shape, dtype=np.uint16):
    return RNG.integers(0, 1000, shape).astype(dtype)


def _check_pixels(header, expected):
    """iter_chunks, take and read_array all agree with the reference array."""
    expected = np.ascontiguousarray(expected)
    assert header.shape == expected.shape
    assert header.dtype == expected.dtype
    chunks = list(readers.iter_chunks(header, max_bytes=700))
    plane = expected.shape[-1] * expected.shape[-2] * expected.itemsize
    assert max(c.nbytes for c in chunks) <= max(700, plane)  # at most max_bytes or one plane
    np.testing.assert_array_equal(np.concatenate([c.ravel() for c in chunks]), expected.ravel())
    np.testing.assert_array_equal(
        np.concatenate([c.ravel() for c in readers.iter_chunks(header)]), expected.ravel()
    )
    idx = np.sort(RNG.integers(0, expected.size, 500)).astype(np.int64)
    idx = np.sort(np.concatenate([idx, idx[:50], [0, expected.size - 1]]))  # repeats and ends
    np.testing.assert_array_equal(readers.take(header, idx), expected.ravel()[idx])
    np.testing.assert_array_equal(readers.read_array(header), expected)


def _sitk_write(path, array, spacing_xyz, vector=False, compress=False):
    """Write with SimpleITK and return what SimpleITK reads back (the expected pixels)."""
    return read_itk(write_itk(path, array, spacing_xyz, vector, compress))


# ----------------------------------------------------------------------------- suffixes


def test_image_suffix_longest_and_case_insensitive():
    assert readers.image_suffix("a/b.OME.TIF") == ".ome.tif"
    assert readers.image_suffix("b.nii.gz") == ".nii.gz"
    assert readers.image_suffix("b.Tiff") == ".tiff"
    assert readers.image_suffix("notes.txt") is None
    assert readers.image_suffix("b.gz") is None


# ----------------------------------------------------------------------------- TIFF


def test_imagej_single_channel_zyx_with_spacing(tmp_path):
    data = _vol((6, 20, 30))
    path = tmp_path / "one.tif"
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.3, 1 / 0.3),
        metadata={"spacing": 2.0, "unit": "micron", "axes": "ZYX"},
    )
    h = readers.read_header(path)
    assert (h.format, h.shape, h.axes, h.channels, h.is_2d) == (
        "imagej-tiff",
        (6, 20, 30),
        "ZYX",
        1,
        False,
    )
    with tifffile.TiffFile(path) as tif:
        xres = tif.pages[0].tags["XResolution"].value
    # 1/XResolution from the stored rational, exactly (not 0.3 itself)
    assert h.spacing_xyz == (xres[1] / xres[0], xres[1] / xres[0], 2.0)
    assert h.unit == "micron"
    assert h.size == (6, 20, 30)
    assert h.spatial_shape_zyx == (6, 20, 30)
    assert h.spacing_zyx == (2.0, xres[1] / xres[0], xres[1] / xres[0])
    assert h.nbytes == data.nbytes
    _check_pixels(h, data)


def test_imagej_two_channels_is_channel_first(tmp_path):
    data_zcyx = _vol((5, 2, 20, 30))
    path = tmp_path / "two.tif"
    tifffile.imwrite(
        path,
        data_zcyx,
        imagej=True,
        resolution=(2.0, 4.0),
        metadata={"spacing": 1.5, "unit": "micron", "axes": "ZCYX"},
    )
    h = readers.read_header(path)
    assert (h.shape, h.axes, h.channels) == ((2, 5, 20, 30), "CZYX", 2)
    assert h.spacing_xyz == (0.5, 0.25, 1.5)
    assert h.size == (2, 5, 20, 30)
    _check_pixels(h, np.moveaxis(data_zcyx, 1, 0))


def test_imagej_compressed_two_channels(tmp_path):
    data_zcyx = _vol((4, 3, 16, 20))
    path = tmp_path / "zip.tif"
    tifffile.imwrite(path, data_zcyx, imagej=True, compression="zlib", metadata={"axes": "ZCYX"})
    h = readers.read_header(path)
    assert (h.shape, h.axes, h.spacing_xyz, h.unit) == ((3, 4, 16, 20), "CZYX", None, None)
    _check_pixels(h, np.moveaxis(data_zcyx, 1, 0))


def test_plain_tiff_keeps_file_order_and_has_no_spacing(tmp_path):
    data = _vol((4, 50, 60))  # biom3d would move the 4 planes last: a bug not copied
    path = tmp_path / "plain.tif"
    # tifffile's default for 3 or 4 planes: one planar "RGB" page (the file biom3d misreads)
    tifffile.imwrite(path, data, resolution=(2.0, 2.0), photometric="rgb", planarconfig="separate")
    path2 = tmp_path / "pages.tif"
    tifffile.imwrite(path2, data, photometric="minisblack")
    for p in (path, path2):
        h = readers.read_header(p)
        assert (h.format, h.shape, h.axes, h.spacing_xyz, h.unit) == (
            "tiff",
            (4, 50, 60),
            "ZYX",
            None,
            None,
        )
        _check_pixels(h, data)


def test_plain_compressed_tiled_tiff(tmp_path):
    data = _vol((3, 40, 50))
    path = tmp_path / "tiled.tiff"
    tifffile.imwrite(path, data, compression="zlib", tile=(16, 16), **RGB_PLANES)
    h = readers.read_header(path)
    assert h.shape == (3, 40, 50)
    _check_pixels(h, tifffile.imread(path))


def test_plain_4d_tiff_keeps_order(tmp_path):
    data = _vol((2, 3, 10, 12))
    path = tmp_path / "four.tif"
    tifffile.imwrite(path, data, **RGB_PLANES)
    h = readers.read_header(path)
    assert (h.shape, h.axes, h.channels) == ((2, 3, 10, 12), "CZYX", 2)
    _check_pixels(h, data)


def test_ome_tiff_channel_first_without_spacing(tmp_path):
    data_zcyx = _vol((4, 2, 10, 12))
    path = tmp_path / "img.ome.tif"
    tifffile.imwrite(path, data_zcyx, ome=True, metadata={"axes": "ZCYX", "PhysicalSizeX": 0.2})
    h = readers.read_header(path)
    assert (h.format, h.shape, h.axes, h.spacing_xyz) == ("ome-tiff", (2, 4, 10, 12), "CZYX", None)
    _check_pixels(h, np.moveaxis(data_zcyx, 1, 0))


def test_rgb_tiff_samples_become_channels(tmp_path):
    data = RNG.integers(0, 255, (3, 20, 30, 3)).astype(np.uint8)
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, data, photometric="rgb", compression="zlib")
    h = readers.read_header(path)
    assert (h.shape, h.axes, h.channels) == ((3, 3, 20, 30), "CZYX", 3)
    _check_pixels(h, np.moveaxis(data, -1, 0))
    path2 = tmp_path / "rgb2d.tif"
    tifffile.imwrite(path2, data[0], photometric="rgb")
    h2 = readers.read_header(path2)
    assert (h2.shape, h2.axes, h2.is_2d, h2.size) == ((3, 20, 30), "CYX", True, (3, 1, 20, 30))
    _check_pixels(h2, np.moveaxis(data[0], -1, 0))


def test_2d_tiff(tmp_path):
    data = _vol((20, 30))
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(4.0, 4.0), metadata={"spacing": 1.0})
    h = readers.read_header(path)
    assert (h.shape, h.axes, h.is_2d, h.size) == ((20, 30), "YX", True, (1, 20, 30))
    assert h.spatial_shape_zyx == (1, 20, 30)
    # biom3d reads three values from a 2D ImageJ file with a spacing entry; people see (y, x)
    assert h.spacing_xyz == (0.25, 0.25, 1.0) and h.spacing_zyx == (0.25, 0.25)
    _check_pixels(h, data)


def test_big_endian_tiff(tmp_path):
    data = _vol((3, 10, 12))
    path = tmp_path / "be.tif"
    tifffile.imwrite(path, data, byteorder=">", **RGB_PLANES)
    h = readers.read_header(path)
    assert h.dtype == np.dtype(np.uint16)
    _check_pixels(h, data)


# ----------------------------------------------------------------------------- ITK formats


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz", "v.mha", "v.mhd", "v.nrrd", "v.nhdr"])
def test_itk_formats_spacing_and_pixels(tmp_path, name):
    data = _vol((5, 12, 14), np.int16)
    expected = _sitk_write(tmp_path / name, data, (0.8, 0.5, 2.0))
    h = readers.read_header(tmp_path / name)
    assert (h.shape, h.axes, h.channels, h.is_2d, h.unit) == ((5, 12, 14), "ZYX", 1, False, "mm")
    if name.startswith("v.nii"):  # NIfTI stores float32: biom3d's exact values
        assert h.spacing_xyz == (0.800000011920929, 0.5, 2.0)
    else:
        assert h.spacing_xyz == (0.8, 0.5, 2.0)
    assert all(type(s) is float for s in h.spacing_xyz)
    _check_pixels(h, expected)


@pytest.mark.parametrize("name", ["c.mha", "c.nrrd", "c.nii.gz"])
def test_itk_compressed_formats_stream(tmp_path, name):
    data = _vol((6, 16, 18), np.float32)
    expected = _sitk_write(tmp_path / name, data, (1.0, 1.0, 3.0), compress=True)
    h = readers.read_header(tmp_path / name)
    assert h.dtype == np.dtype(np.float32)
    _check_pixels(h, expected)


@pytest.mark.parametrize("name", ["vec.mha", "vec.nrrd", "vec.nii.gz", "vecz.mha"])
def test_vector_pixels_are_channel_first(tmp_path, name):
    data = _vol((4, 10, 12, 3), np.uint8)
    expected = _sitk_write(
        tmp_path / name, data, (1.0, 1.0, 1.0), vector=True, compress=name.startswith("vecz")
    )
    h = readers.read_header(tmp_path / name)
    assert (h.shape, h.axes, h.channels) == ((3, 4, 10, 12), "CZYX", 3)
    _check_pixels(h, np.moveaxis(expected, -1, 0))


def test_2d_nifti_and_4d_nifti(tmp_path):
    flat = _vol((12, 14))
    expected = _sitk_write(tmp_path / "flat.nii.gz", flat, (0.5, 0.25))
    h = readers.read_header(tmp_path / "flat.nii.gz")
    assert (h.shape, h.axes, h.is_2d, h.spacing_xyz) == ((12, 14), "YX", True, (0.5, 0.25))
    _check_pixels(h, expected)
    four = _vol((2, 3, 12, 14))
    expected = _sitk_write(tmp_path / "four.nii", four, (0.5, 0.5, 2.0, 1.0))
    h = readers.read_header(tmp_path / "four.nii")
    assert (h.shape, h.axes, h.channels, h.spacing_xyz) == (
        (2, 3, 12, 14),
        "CZYX",
        2,
        (0.5, 0.5, 2.0),
    )
    _check_pixels(h, expected)


@pytest.mark.parametrize("name", ["scaled.nii", "scaled.nii.gz"])
def test_scaled_nifti_matches_simpleitk(tmp_path, name):
    nib = pytest.importorskip("nibabel")
    data = _vol((4, 5, 6), np.int16)
    image = nib.Nifti1Image(data.T, np.diag([0.8, 0.8, 2.0, 1.0]))
    image.header.set_slope_inter(0.37, -12.1)
    nib.save(image, tmp_path / name)
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / name)))
    h = readers.read_header(tmp_path / name)
    assert h.dtype == np.dtype(np.float32)
    _check_pixels(h, expected)


def test_big_endian_metaimage(tmp_path):
    data = _vol((3, 8, 9))
    path = tmp_path / "be.mha"
    header = (
        "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = True\n"
        "ElementSpacing = 1 1 4\nDimSize = 9 8 3\nElementType = MET_USHORT\n"
        "ElementDataFile = LOCAL\n"
    )
    path.write_bytes(header.encode() + data.astype(">u2").tobytes())
    h = readers.read_header(path)
    assert h.spacing_xyz == (1.0, 1.0, 4.0)
    _check_pixels(h, data)


# ----------------------------------------------------------------------------- npy


def test_npy_c_and_fortran(tmp_path):
    data = _vol((4, 10, 12))
    np.save(tmp_path / "c.npy", data)
    np.save(tmp_path / "f.npy", np.asfortranarray(data))
    for name in ("c.npy", "f.npy"):
        h = readers.read_header(tmp_path / name)
        assert (h.format, h.shape, h.axes, h.spacing_xyz, h.unit) == (
            "npy",
            (4, 10, 12),
            "ZYX",
            None,
            None,
        )
        _check_pixels(h, data)
    np.save(tmp_path / "m.npy", _vol((2, 4, 10, 12), np.uint8))
    h = readers.read_header(tmp_path / "m.npy")
    assert (h.axes, h.channels, h.size) == ("CZYX", 2, (2, 4, 10, 12))


def test_unsorted_indices_are_accepted(tmp_path):
    data = _vol((4, 10, 12))
    np.save(tmp_path / "c.npy", data)
    h = readers.read_header(tmp_path / "c.npy")
    idx = np.array([400, 3, 3, 17], dtype=np.int64)
    np.testing.assert_array_equal(readers.take(h, idx), data.ravel()[idx])
    assert readers.take(h, np.array([], dtype=np.int64)).size == 0


# ----------------------------------------------------------------------------- errors


def _writers():
    data = _vol((4, 32, 32))

    def tif(p):
        tifffile.imwrite(p, data, **RGB_PLANES)

    def tifz(p):
        tifffile.imwrite(p, data, compression="zlib", **RGB_PLANES)

    def sitk_(p):
        _sitk_write(p, data, (1.0, 1.0, 1.0))

    return {
        "a.tif": tif,
        "z.tif": tifz,
        "a.npy": lambda p: np.save(p, data),
        "a.nii": sitk_,
        "a.mha": sitk_,
        "a.nrrd": sitk_,
    }


@pytest.mark.parametrize("name", ["a.tif", "a.nii.gz", "a.npy", "a.mha", "a.nrrd", "a.nii"])
def test_zero_byte_and_garbage_files(tmp_path, name):
    empty = tmp_path / name
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        readers.read_header(empty)
    junk = tmp_path / ("junk_" + name)
    junk.write_bytes(b"this is not an image at all\n" * 50)
    with pytest.raises(ImageReadError, match="junk_"):
        readers.read_header(junk)


@pytest.mark.parametrize("name", ["a.tif", "z.tif", "a.npy", "a.nii", "a.mha", "a.nrrd"])
def test_truncated_raw_files_fail_at_header(tmp_path, name):
    path = tmp_path / name
    _writers()[name](path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 700 if name != "z.tif" else size // 2)
    with pytest.raises(ImageReadError, match=name):
        readers.read_header(path)


def test_truncated_nii_gz_fails_at_its_header(tmp_path):
    # the header is intact, but the gzip trailer's size (ISIZE) is not the one it declares
    path = tmp_path / "cut.nii.gz"
    _sitk_write(path, _vol((8, 64, 64)), (1.0, 1.0, 1.0), compress=True)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.nii\.gz.*truncated"):
        readers.read_header(path)


def test_damaged_gzip_fails_cleanly(tmp_path):
    path = tmp_path / "bad.nii.gz"
    _sitk_write(path, _vol((8, 64, 64)), (1.0, 1.0, 1.0), compress=True)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2 : len(blob) // 2 + 64] = os.urandom(64)
    path.write_bytes(bytes(blob))
    with pytest.raises(ImageReadError, match=r"bad\.nii\.gz"):  # at the header or at the pixels
        list(readers.iter_chunks(readers.read_header(path)))


def test_zero_size_images(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((0, 5, 5), np.uint8))
    with pytest.raises(ImageReadError, match="zero-size"):
        readers.read_header(tmp_path / "z.npy")
    path = tmp_path / "z.mha"
    path.write_bytes(
        b"ObjectType = Image\nNDims = 3\nDimSize = 4 4 0\nElementType = MET_UCHAR\n"
        b"ElementDataFile = LOCAL\n"
    )
    with pytest.raises(ImageReadError, match=r"z\.mha"):
        readers.read_header(path)


def test_unclaimed_suffix_and_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="no reader"):
        readers.read_header(tmp_path / "notes.txt")
    with pytest.raises(ImageReadError, match=r"missing\.tif"):
        readers.read_header(tmp_path / "missing.tif")


# ----------------------------------------------------------------------------- paths


def test_paths_with_spaces_accents_and_symlinks(tmp_path):
    folder = tmp_path / "données brutes été"
    folder.mkdir()
    data = _vol((3, 10, 12))
    for name in ("cellule n°1.tif", "cellule é.nii.gz", "cellule ü.mha", "noyau à.npy"):
        path = folder / name
        if name.endswith(".tif"):
            tifffile.imwrite(path, data, compression="zlib", **RGB_PLANES)
        elif name.endswith(".npy"):
            np.save(path, data)
        else:
            _sitk_write(path, data, (1.0, 1.0, 1.0), compress=name.endswith(".gz"))
        link = tmp_path / ("lien " + name)
        link.symlink_to(path)
        for p in (path, link):
            h = readers.read_header(p)
            assert h.shape == (3, 10, 12)
            _check_pixels(h, data)


def test_header_is_picklable(tmp_path):
    import pickle

    np.save(tmp_path / "c.npy", _vol((2, 3, 4)))
    h = readers.read_header(tmp_path / "c.npy")
    assert pickle.loads(pickle.dumps(h)) == h


def test_gzip_fallback_module_gives_same_values(tmp_path, monkeypatch):
    path = tmp_path / "g.nii.gz"
    expected = _sitk_write(path, _vol((3, 10, 12)), (1.0, 1.0, 1.0), compress=True)
    # without isal, the standard library's gzip and zlib inflate the same bytes
    monkeypatch.setattr(readers._stream, "_codecs", lambda: (gzip, zlib))
    _check_pixels(readers.read_header(path), expected)


def test_lean_pixel_paths_are_used(tmp_path):
    """Regression guard for speed: no format silently falls back to a whole SimpleITK read."""
    data = _vol((3, 10, 12))
    expected_kind = {
        "a.nii": readers._Raw,
        "a.nii.gz": readers._Stream,
        "a.mha": readers._Raw,
        "a.mhd": readers._Raw,
        "a.nrrd": readers._Raw,
        "z.mha": readers._Stream,
        "z.nrrd": readers._Stream,
        "v.nii.gz": readers._Stream,
    }
    for name, kind in expected_kind.items():
        if name.startswith("v."):
            _sitk_write(
                tmp_path / name, _vol((3, 10, 12, 2)), (1.0, 1.0, 1.0), vector=True, compress=True
            )
        else:
            _sitk_write(
                tmp_path / name,
                data,
                (1.0, 1.0, 1.0),
                compress=name.startswith("z.") or name.endswith(".gz"),
            )
        assert isinstance(readers._layout(readers.read_header(tmp_path / name)), kind), name
    tifffile.imwrite(tmp_path / "a.tif", data, **RGB_PLANES)
    assert readers._layout(readers.read_header(tmp_path / "a.tif")).dataoffset is not None


# ----------------------------------------------------------------------------- lean imports


@pytest.mark.parametrize(
    "variant", ["qform", "sform", "both", "none", "micron", "2d", "big-endian", "scaled"]
)
def test_nifti_header_read_without_simpleitk_gives_simpleitk_numbers(tmp_path, variant):
    """Headers written by another library (nibabel), in every form we parse ourselves or hand on."""
    nib = pytest.importorskip("nibabel")
    data = _vol((5, 7, 9) if variant != "2d" else (7, 9)).astype(np.int16)
    xyz = data.T  # nibabel arrays are (x, y, z)
    if variant == "big-endian":
        xyz = xyz.astype(">i2")
    zooms = (0.8, 0.3, 2.2)[: xyz.ndim]  # not exact in float32: SimpleITK widens the float32
    image = nib.Nifti1Image(xyz, np.diag([*zooms, *[1.0] * (4 - len(zooms))]))
    image.header.set_zooms(zooms)
    image.header.set_qform(image.affine, code=0 if variant in ("sform", "none") else 1)
    image.header.set_sform(image.affine, code=0 if variant in ("qform", "none") else 1)
    if variant == "micron":
        image.header.set_xyzt_units("micron")
    if variant == "scaled":
        image.header.set_slope_inter(0.5, 3.0)
    path = tmp_path / "n.nii.gz"
    nib.save(image, path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    header = readers.read_header(path)
    assert header.spacing_xyz == tuple(reader.GetSpacing())
    assert header.shape == tuple(reversed(reader.GetSize()))
    _check_pixels(header, read_itk(path))


def _python_modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return set(run.stdout.split())


def test_tiff_run_imports_no_simpleitk_nor_inflaters_nor_tifffile(tmp_path):
    # ImageJ stacks are read from their first IFD: not even tifffile is needed
    write_dataset(tmp_path, shapes=((4, 16, 16), (5, 16, 16)))
    modules = _python_modules_after(
        "from napari_autoconfig.auto_config import compute_median, data_fingerprint\n"
        f"data_fingerprint({str(tmp_path / 'images')!r}, {str(tmp_path / 'masks')!r})\n"
        f"compute_median({str(tmp_path / 'images')!r})"
    )
    assert "napari_autoconfig.fingerprint" in modules  # the run did fingerprint the folder
    assert not {"SimpleITK", "isal", "gzip", "tifffile"} & modules


def test_plain_nifti_needs_no_simpleitk(tmp_path):
    write_itk(tmp_path / "a.nii.gz", _vol((3, 8, 9)), (0.8, 0.8, 2.0), compress=True)
    code = (
        "from napari_autoconfig.fingerprint import fingerprint_case\n"
        f"record = fingerprint_case({str(tmp_path / 'a.nii.gz')!r})\n"
        "assert record.image.spacing_xyz == (0.800000011920929, 0.800000011920929, 2.0)"
    )
    assert "SimpleITK" not in _python_modules_after(code)


@pytest.mark.parametrize("dtype", [np.uint8, ">u2", "<i4", np.float32, ">f8"], ids=str)
def test_raw_pixels_are_taken_alike_by_both_gathers(tmp_path, compiled_or_numpy, dtype):
    """Drawn voxels read from a memory map, by the compiled gather or numpy's, in any byte order."""
    data = _vol((6, 20, 30)).astype(dtype)
    np.save(tmp_path / "v.npy", data)
    h = readers.read_header(tmp_path / "v.npy")
    idx = np.sort(RNG.integers(0, data.size, 900)).astype(np.int64)
    np.testing.assert_array_equal(readers.take(h, idx), data.ravel()[idx])
