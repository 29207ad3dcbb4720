"""Listing folders and pairing masks with images, as a user lays them out."""

from __future__ import annotations

import numpy as np
import pytest

from datafiles import write_npy
from napari_autoconfig.dataset import list_images, open_dataset
from napari_autoconfig.errors import EmptyDatasetError, FolderNotFoundError, UnpairedFilesError


def _touch_npy(path, shape=(2, 3, 4)):
    write_npy(path, np.zeros(shape, np.uint8))


def _touch(path, content=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def test_lists_recursively_sorted_and_skips_strays(tmp_path):
    for name in (
        "b.tif",
        "a.nii.gz",
        "sub/c.npy",
        "z.mha",
        "w.mhd",
        "w.raw",
        "README.txt",
        ".DS_Store",
        ".hidden/d.tif",
        "notes.md",
    ):
        _touch(tmp_path / name)
    images, skipped = list_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in images] == [
        "a.nii.gz",
        "b.tif",
        "sub/c.npy",
        "w.mhd",
        "z.mha",
    ]
    # the .raw of an .mhd belongs to it: neither listed nor reported
    assert sorted(p.relative_to(tmp_path).as_posix() for p in skipped) == [
        ".DS_Store",
        ".hidden/d.tif",
        "README.txt",
        "notes.md",
    ]


def test_pairs_by_relative_name_whatever_the_extension_variant(tmp_path):
    for name in (
        "img/a.tif",
        "img/b.nii",
        "img/sub/c.tiff",
        "msk/a.tiff",
        "msk/b.nii.gz",
        "msk/sub/c.tif",
        "msk/Thumbs.db",
    ):
        _touch(tmp_path / name)
    dataset = open_dataset(tmp_path / "img", tmp_path / "msk")
    pairs = [(c.key, c.image.name, c.mask.name) for c in dataset.cases]
    assert pairs == [
        ("a", "a.tif", "a.tiff"),
        ("b", "b.nii", "b.nii.gz"),
        ("sub/c", "c.tiff", "c.tif"),
    ]
    assert dataset.has_masks
    assert [p.name for p in dataset.skipped] == ["Thumbs.db"]


def test_unpaired_files_are_named(tmp_path):
    for name in ("img/a.tif", "img/b.tif", "img/c.tif", "msk/a.tif", "msk/x.tif"):
        _touch(tmp_path / name)
    with pytest.raises(UnpairedFilesError) as info:
        open_dataset(tmp_path / "img", tmp_path / "msk")
    message = str(info.value)
    assert "'b'" in message.replace(".tif", "") and "'c.tif'" in message and "'x.tif'" in message
    assert "without a mask" in message and "without an image" in message


def test_same_name_twice_cannot_pair(tmp_path):
    for name in ("img/a.tif", "img/a.tiff", "msk/a.tif"):
        _touch(tmp_path / name)
    with pytest.raises(UnpairedFilesError, match="share the name 'a'"):
        open_dataset(tmp_path / "img", tmp_path / "msk")


def test_missing_folder_file_and_empty_folder(tmp_path):
    with pytest.raises(FolderNotFoundError, match="does not exist"):
        open_dataset(tmp_path / "nowhere")
    _touch(tmp_path / "file.tif")
    with pytest.raises(FolderNotFoundError, match="is a file, not a folder"):
        open_dataset(tmp_path / "file.tif")
    (tmp_path / "empty").mkdir()
    _touch(tmp_path / "empty" / "README.txt")
    with pytest.raises(EmptyDatasetError, match="No image found") as info:
        open_dataset(tmp_path / "empty")
    # biom3d's type and sentence belong to the seed API only (test_auto_config)
    assert not isinstance(info.value, AssertionError)
    assert "List of sizes" not in str(info.value) and "README.txt" in str(info.value)
    with pytest.raises(FolderNotFoundError, match="masks folder"):
        open_dataset(tmp_path, tmp_path / "no masks")


def test_spaces_accents_and_symlinks(tmp_path):
    real = tmp_path / "données brutes"
    _touch_npy(real / "cellule 1.npy")
    link = tmp_path / "link to data"
    link.symlink_to(real, target_is_directory=True)
    (real / "alias.npy").symlink_to(real / "cellule 1.npy")
    dataset = open_dataset(link)
    assert [c.key for c in dataset.cases] == ["alias", "cellule 1"]


def test_linked_subfolders_are_listed_once_even_in_a_loop(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    _touch_npy(elsewhere / "y.npy")
    root = tmp_path / "data"
    _touch_npy(root / "x.npy")
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "back").symlink_to(root, target_is_directory=True)  # a loop
    images, skipped = list_images(root)
    names = [p.relative_to(root).as_posix() for p in images]
    assert "linked/y.npy" in names and "x.npy" in names
    assert len(names) == len(set(p.resolve() for p in images)) and not skipped
