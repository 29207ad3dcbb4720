"""Listing a folder of images, pairing images with masks, and skipping stray files.

biom3d pairs masks with images by their position in the sorted listings. Here a mask pairs with the
image of the same relative path and name, whatever the image extension (``a.tif`` with ``a.tiff``,
``b.nii`` with ``b.nii.gz``), so one missing or extra file cannot silently shift every pair.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import EmptyDatasetError, FolderNotFoundError, UnpairedFilesError
from .readers import image_suffix

# Companion files of formats whose header and pixels live apart (.mhd + .raw, .nhdr + .raw):
# they belong to an image, so they are neither read nor reported as strays.
_DATA_COMPANIONS = (".raw", ".zraw", ".raw.gz")


@dataclass(frozen=True)
class Case:
    """One image of a collection and, when masks are used, its mask.

    Attributes
    ----------
    key : str
        The image's path relative to its folder without the image extension (``"sub/cell_01"``); a
        mask pairs with the image of the same key.
    image : Path
        The image file.
    mask : Path or None
        The mask file, ``None`` when the collection is fingerprinted without masks.
    """

    key: str
    image: Path
    mask: Path | None = None


@dataclass(frozen=True)
class Dataset:
    """A collection ready to fingerprint: the cases, sorted by image path, and the skipped files."""

    cases: tuple[Case, ...]
    skipped: tuple[Path, ...] = ()

    @property
    def has_masks(self) -> bool:
        """Whether every case comes with a mask."""
        return bool(self.cases) and all(case.mask is not None for case in self.cases)


def _check_folder(folder: str | Path, role: str) -> Path:
    path = Path(folder).expanduser()
    if not path.exists():
        raise FolderNotFoundError(
            f"The {role} folder {str(path)!r} does not exist. "
            "Check the path, or pick the folder again."
        )
    if not path.is_dir():
        raise FolderNotFoundError(
            f"{str(path)!r} is a file, not a folder. Give the folder that holds the {role}."
        )
    return path


def _walk_files(root: Path) -> list[Path]:
    """Every file under ``root``, following symbolic links to folders (each folder once)."""
    files: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in seen:  # a link back up the tree: do not loop
            subfolders.clear()
            continue
        seen.add((info.st_dev, info.st_ino))
        files.extend(Path(folder, name) for name in names if Path(folder, name).is_file())
    return sorted(files)


def list_images(folder: str | Path, role: str = "images") -> tuple[list[Path], list[Path]]:
    """List the images under a folder, recursively, sorted by path.

    Parameters
    ----------
    folder : str or Path
        The folder to list. Symbolic links to files and to folders are followed (a linked folder
        is listed once, even when links make a loop).
    role : str
        What the folder holds ("images" or "masks"), for error messages.

    Returns
    -------
    images : list of Path
        Files a reader claims, sorted by path (biom3d's order).
    skipped : list of Path
        Files no reader claims (``README.txt``, ``.DS_Store``, hidden files...), sorted by path;
        companion data files of ``.mhd``/``.nhdr`` headers are neither listed nor skipped.

    Raises
    ------
    FolderNotFoundError
        If the folder does not exist or is a file.
    """
    root = _check_folder(folder, role)
    images: list[Path] = []
    skipped: list[Path] = []
    for path in _walk_files(root):
        relative = path.relative_to(root)
        hidden = any(part.startswith(".") for part in relative.parts)
        if not hidden and image_suffix(path) is not None:
            images.append(path)
        elif not path.name.lower().endswith(_DATA_COMPANIONS):
            skipped.append(path)
    return images, skipped


def case_key(path: Path, root: Path) -> str:
    """The pairing key of an image: its relative path without the image extension."""
    relative = path.relative_to(root).as_posix()
    suffix = image_suffix(path) or ""
    return relative[: len(relative) - len(suffix)] if suffix else relative


def open_dataset(images: str | Path, masks: str | Path | None = None) -> Dataset:
    """List a collection of images (and masks) and pair them by relative path and name.

    Parameters
    ----------
    images : str or Path
        Folder of images, listed recursively.
    masks : str or Path, optional
        Folder of masks. Each image needs the mask of the same relative path and name (any image
        extension).

    Returns
    -------
    Dataset
        Cases sorted by image path, and the files skipped in either folder.

    Raises
    ------
    FolderNotFoundError
        If a folder does not exist.
    EmptyDatasetError
        If the image folder holds no image.
    UnpairedFilesError
        If an image has no mask or a mask no image; the message lists them by name.
    """
    image_root = Path(images).expanduser()
    image_paths, skipped = list_images(image_root, "images")
    if not image_paths:
        found = f" (only {len(skipped)} other file(s), e.g. {skipped[0].name!r})" if skipped else ""
        raise EmptyDatasetError(
            f"No image found in {str(image_root)!r}{found}. Pick the folder that holds the images."
            f" Readable formats: .tif/.tiff (also OME and ImageJ), .nii/.nii.gz, "
            ".mha/.mhd, .nrrd/.nhdr, .npy."
        )
    keys = _unique_keys(image_paths, image_root, "image")
    if masks is None:
        cases = tuple(Case(key, path) for key, path in keys.items())
        return Dataset(cases, tuple(skipped))

    mask_root = Path(masks).expanduser()
    mask_paths, mask_skipped = list_images(mask_root, "masks")
    mask_keys = _unique_keys(mask_paths, mask_root, "mask")
    lonely_images = [keys[k] for k in keys if k not in mask_keys]
    lonely_masks = [mask_keys[k] for k in mask_keys if k not in keys]
    if lonely_images or lonely_masks:
        raise UnpairedFilesError(
            _unpaired_message(lonely_images, lonely_masks, image_root, mask_root)
        )
    cases = tuple(Case(key, path, mask_keys[key]) for key, path in keys.items())
    return Dataset(cases, tuple(skipped + mask_skipped))


def _unique_keys(paths: list[Path], root: Path, role: str) -> dict[str, Path]:
    """Map each file's pairing key to the file; two files with one key cannot be paired."""
    keys: dict[str, Path] = {}
    for path in paths:
        key = case_key(path, root)
        if key in keys:
            raise UnpairedFilesError(
                f"Two {role} files share the name {key!r}: {keys[key].name!r} and {path.name!r} in "
                f"{str(path.parent)!r}. Keep one of them so that images and masks pair by name."
            )
        keys[key] = path
    return keys


def _unpaired_message(
    images: list[Path], masks: list[Path], image_root: Path, mask_root: Path, most: int = 5
) -> str:
    def names(paths: list[Path], root: Path) -> str:
        shown = ", ".join(repr(p.relative_to(root).as_posix()) for p in paths[:most])
        more = f" and {len(paths) - most} more" if len(paths) > most else ""
        return shown + more

    parts = []
    if images:
        parts.append(
            f"{len(images)} image(s) without a mask in {str(mask_root)!r}: "
            f"{names(images, image_root)}"
        )
    if masks:
        parts.append(
            f"{len(masks)} mask(s) without an image in {str(image_root)!r}: "
            f"{names(masks, mask_root)}"
        )
    return (
        "Images and masks do not pair up: "
        + "; ".join(parts)
        + ". A mask must have the same relative path and name as its image "
        "(the extension may differ, e.g. .tif/.tiff or .nii/.nii.gz)."
    )
