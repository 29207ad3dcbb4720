"""Listing a folder of images, pairing images with masks, and skipping stray files.

biom3d pairs masks with images by their position in the sorted listings, so one missing or extra
file silently shifts every pair. Here pairing goes, in this order:

1. **same name**: a mask pairs with the image of the same relative path and name, whatever the
   image extension (``a.tif`` with ``a.tiff``, ``b.nii`` with ``b.nii.gz``);
2. **naming conventions**: the images and masks left over pair when their names agree once a
   mask's affix (:data:`MASK_SUFFIXES`, :data:`MASK_PREFIXES`, any case) and an image's nnU-Net
   channel suffix ``_0000`` are set aside (``img_000_mask.tif`` or ``mask_img_000.tif`` with
   ``img_000.tif``; ``case_0000.nii.gz`` with ``case.nii.gz``);
3. **sorted position**, biom3d's own rule, only when nothing pairs by name and the counts match;
   the :class:`Dataset` then carries a warning listing the pairs, for the user to check.

Anything else (some files pair by name, others do not) is refused, naming the files left over.

An **nnU-Net v2 raw dataset** (a folder holding ``imagesTr/``, ``labelsTr/`` and ``dataset.json``)
is recognised wherever an images folder is accepted (or its ``imagesTr/``): ``dataset.json`` gives
the ``file_ending`` and ``channel_names``; the channel files ``case_0000``, ``case_0001``... of one
case form one multichannel image (read as (C, Z, Y, X)), and its label ``labelsTr/case`` pairs by
case id (for C channels it masks every channel, so each image draws over all its channels). A
``dataset`` key in ``dataset.json`` listing each case's files is followed instead, in its order,
as nnU-Net does.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .errors import (
    Cancelled,
    DatasetError,
    EmptyDatasetError,
    FolderNotFoundError,
    UnpairedFilesError,
)
from .readers import ZARR_SUFFIXES, Location, image_suffix, is_url
from .readers._remote import describe_remote_error, remote_listing_fs

T = TypeVar("T")
#: Polled during long waits; True means "stop".
CancelCheck = Callable[[], bool]

# Companion files of formats whose header and pixels live apart (.mhd + .raw, .nhdr + .raw):
# they belong to an image, so they are neither read nor reported as strays.
_DATA_COMPANIONS = (".raw", ".zraw", ".raw.gz")


@dataclass(frozen=True)
class Case:
    """One image of a collection and, when masks are used, its mask.

    Attributes
    ----------
    key : str
        The image's path relative to its folder without the image extension (``"sub/cell_01"``),
        or an nnU-Net case id; a mask pairs with the image of the same key.
    image : Path or tuple of Path
        The image file; for an image stored one channel per file (nnU-Net), the channel files
        in channel order (:func:`napari_autoconfig.readers.read_header` stacks them).
    mask : Path, tuple of Path, or None
        The mask file, ``None`` when the collection is fingerprinted without masks; for a
        multichannel nnU-Net case, its label file once per channel, so that it has the image's
        (C, Z, Y, X) shape.
    """

    key: str
    image: Path | tuple[Path, ...]
    mask: Path | tuple[Path, ...] | None = None


#: Mask name endings that mean "the mask of the image named without it" (compared in any case).
MASK_SUFFIXES = (
    "_masks",
    "_mask",
    "_labels",
    "_label",
    "_seg",
    "_gt",
    "_annotations",
    "_annotation",
)
#: Mask name beginnings with the same meaning.
MASK_PREFIXES = ("masks_", "mask_", "labels_", "label_")
#: nnU-Net's channel suffix on image names (``case_0000``: channel 0 of ``case``).
CHANNEL_SUFFIX = re.compile(r"_\d{4}$")


@dataclass(frozen=True)
class Unreadable:
    """An entry of a folder that could not be looked at, and why: it was passed over.

    Attributes
    ----------
    path : Path
        The entry (a link, a folder).
    why : str
        Why, in words ("a link to nothing", "a link that loops", "permission denied").
    """

    path: Path
    why: str

    def __str__(self) -> str:
        return f"{str(self.path)!r} ({self.why})"


def describe_unreadable(entries: tuple[Unreadable, ...] | list[Unreadable], most: int = 5) -> str:
    """One sentence naming the entries passed over and why ("" when there is none)."""
    if not entries:
        return ""
    shown = "; ".join(str(e) for e in entries[:most])
    more = f"; and {len(entries) - most} more" if len(entries) > most else ""
    return (
        f"Passed over {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} that cannot be "
        f"read: {shown}{more}. Images there are not counted: fix the links or permissions to "
        "include them."
    )


#: How the masks of a :class:`Dataset` were paired with its images.
PAIRING_METHODS = ("none", "name", "convention", "position", "nnunet", "datalist")


@dataclass(frozen=True)
class Dataset:
    """A collection ready to fingerprint: the cases, sorted by image path, and the skipped files.

    Attributes
    ----------
    cases : tuple of Case
        Sorted by image path.
    skipped : tuple of Path
        Files no reader claims, in either folder.
    pairing : str
        How masks were paired (one of :data:`PAIRING_METHODS`): ``"none"`` without masks,
        ``"name"``, ``"convention"``, ``"position"`` (biom3d's rule) or ``"nnunet"`` (case ids
        of an nnU-Net raw dataset).
    warning : str or None
        Something the user should check before trusting the numbers (set with ``"position"``:
        it lists the pairs); the command line prints it, the widget shows it.
    unreadable : tuple of Unreadable
        Entries of either folder that could not be looked at (dangling or looping links,
        folders that cannot be listed), with why: images there are not in ``cases``.
    """

    cases: tuple[Case, ...]
    skipped: tuple[Path, ...] = ()
    pairing: str = "none"
    warning: str | None = None
    unreadable: tuple[Unreadable, ...] = ()

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


def _walk_files(root: Path) -> tuple[list[Path], list[Unreadable]]:
    """Every file under ``root``, following symbolic links to folders (each folder once), and the
    entries that could not be looked at.

    An OME-Zarr image (a ``.zarr`` / ``.ome.zarr`` folder) counts as one file: it is listed, and
    its metadata and chunks are not. A folder that cannot be listed, a link to nothing and a link
    that loops (``ln -s self self``) are passed over and returned with why, never raised: the
    user hears of them, and the rest is listed.
    """
    files: list[str] = []
    unreadable: list[Unreadable] = []
    seen: set[tuple[int, int]] = set()
    folders = [os.fspath(root)]
    while folders:
        folder = folders.pop()
        try:
            info = os.stat(folder)
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name, reverse=True)
        except OSError as error:
            unreadable.append(Unreadable(Path(folder), _why(error, "folder")))
            continue
        if (info.st_dev, info.st_ino) in seen:  # a link back up the tree: do not loop
            continue
        seen.add((info.st_dev, info.st_ino))
        # the entries' types come with the listing: no stat per file, unlike Path.is_file
        for entry in entries:
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError as error:  # a link that loops (ELOOP), a name too long...
                unreadable.append(Unreadable(Path(entry.path), _why(error, "entry")))
                continue
            if is_dir:
                if entry.name.lower().endswith(ZARR_SUFFIXES):
                    files.append(entry.path)
                else:
                    folders.append(entry.path)  # visited in name order: the first path wins
            elif is_file:
                files.append(entry.path)
            elif entry.is_symlink():
                unreadable.append(Unreadable(Path(entry.path), _broken_link(entry.path)))
    return sorted(Path(f) for f in files), sorted(unreadable, key=lambda u: u.path)


def _why(error: OSError, what: str) -> str:
    """An OSError in words: "permission denied", "a link that loops"..."""
    if error.errno == errno.ELOOP:
        return "a link that loops"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: the {what} cannot be read"
    return (error.strerror or type(error).__name__).lower()


def _broken_link(path: str) -> str:
    """Why a link is neither a file nor a folder: it points to nothing (or to something else)."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ENOENT:
            return f"a link to nothing ({os.readlink(path)!r} does not exist)"
        return _why(error, "link")
    return "a link to something that is neither a file nor a folder"


def _list_url(url: str, role: str) -> tuple[list[Location], list[Location]]:
    """The OME-Zarr images one level under a URL (fsspec's listing), and the other entries.

    A URL that is itself a ``.zarr`` image is a collection of that one image.
    """
    root = Location(url)
    if root.name.lower().endswith(ZARR_SUFFIXES):
        return [root], []
    try:
        fs, path = remote_listing_fs(url)
        entries = fs.ls(path, detail=False)
    except ImportError as error:
        raise FolderNotFoundError(
            f"Listing {url!r} needs fsspec (and for http(s) aiohttp, for s3 s3fs): "
            'pip install "napari-autoconfig[zarr]".'
        ) from error
    except Exception as error:  # unreachable host, 404, refused listing, timeout...
        what = describe_remote_error(url, error) or f"{type(error).__name__}: {error}"
        raise FolderNotFoundError(
            f"The {role} URL {url!r} cannot be listed ({what}). Check the address, or give the "
            "URL of one .zarr image."
        ) from error
    images: list[Location] = []
    skipped: list[Location] = []
    base = url.rstrip("/")
    for entry in sorted(str(e).rstrip("/") for e in entries):
        name = entry.rsplit("/", 1)[-1]
        location = Location(entry if "://" in entry else f"{base}/{name}")
        if location == Location(base) or name.startswith("."):
            continue
        (images if name.lower().endswith(ZARR_SUFFIXES) else skipped).append(location)
    return images, skipped


def _cancellable(work: Callable[[], T], cancel: CancelCheck | None, what: str) -> T:
    """``work()``, in a thread of its own when ``cancel`` is given, so that a cancel is heard
    while it waits on a server: the waiting thread is then left to end on its own (a daemon: it
    never holds up the interpreter's exit)."""
    if cancel is None:
        return work()
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as error:  # handed to the caller's thread
            outcome.append((False, error))

    thread = threading.Thread(target=run, name="listing", daemon=True)
    thread.start()
    while thread.is_alive():
        if cancel():
            raise Cancelled(f"{what} cancelled.")
        thread.join(0.1)
    done, value = outcome[0]
    if not done:
        raise value
    return value


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
    images, skipped, _ = list_folder(folder, role)
    return images, skipped


def list_folder(
    folder: str | Path, role: str = "images"
) -> tuple[list[Path], list[Path], list[Unreadable]]:
    """:func:`list_images`, and the entries that could not be looked at (with why).

    A link to nothing, a link that loops and a folder that cannot be listed are passed over (and
    returned here), never raised; hidden ones are not mentioned.
    """
    root = _check_folder(folder, role)
    images: list[Path] = []
    skipped: list[Path] = []
    files, unreadable = _walk_files(root)
    for path in files:
        relative = path.parts[len(root.parts) :]  # _walk_files' paths all start with root's
        hidden = any(part.startswith(".") for part in relative)
        if not hidden and image_suffix(path) is not None:
            images.append(path)
        elif not path.name.lower().endswith(_DATA_COMPANIONS):
            skipped.append(path)
    shown = [
        u for u in unreadable if not any(p.startswith(".") for p in u.path.parts[len(root.parts) :])
    ]
    return images, skipped, shown


def _relative(path: Path | Location, root: Path | str) -> str:
    """``path`` relative to ``root``, with ``/`` (for a URL: its last segment)."""
    if isinstance(path, Location):
        return path.name
    return path.relative_to(root).as_posix()


def case_key(path: Path, root: Path) -> str:
    """The pairing key of an image: its relative path without the image extension."""
    relative = _relative(path, root)
    suffix = image_suffix(path) or ""
    return relative[: len(relative) - len(suffix)] if suffix else relative


def open_dataset(
    images: str | Path, masks: str | Path | None = None, cancel: CancelCheck | None = None
) -> Dataset:
    """List a collection of images (and masks) and pair them (see the module's pairing order).

    Parameters
    ----------
    images : str or Path
        Folder of images, listed recursively.
    masks : str or Path, optional
        Folder of masks. Masks pair with images by name, then by naming convention, then (only
        when no name matches and the counts agree) by sorted position, as biom3d does.
    cancel : callable, optional
        Polled while a URL is listed (a server may take up to the read timeout to answer); when
        it returns True the listing is abandoned with :class:`~.errors.Cancelled`.

    Returns
    -------
    Dataset
        Cases sorted by image path, the files skipped in either folder, how the masks were
        paired and, for positional pairing, a warning listing the pairs.

    Raises
    ------
    FolderNotFoundError
        If a folder does not exist.
    EmptyDatasetError
        If the image folder holds no image.
    UnpairedFilesError
        If an image has no mask or a mask no image; the message lists them by name.
    """
    nnunet = None if is_url(images) else nnunet_root(images)
    if nnunet is not None:
        return open_nnunet(nnunet, masks)
    image_root, image_paths, skipped, unreadable = _listing(images, "images", cancel)
    if not image_paths:
        found = f" (only {len(skipped)} other file(s), e.g. {skipped[0].name!r})" if skipped else ""
        passed = f" {describe_unreadable(unreadable)}" if unreadable else ""
        raise EmptyDatasetError(
            f"No image found in {str(image_root)!r}{found}. Pick the folder that holds the images."
            f" Readable formats: .tif/.tiff (also OME and ImageJ), .nii/.nii.gz, "
            f".mha/.mhd, .nrrd/.nhdr, .npy.{passed}"
        )
    keys = _unique_keys(image_paths, image_root, "image")
    if masks is None:
        cases = tuple(Case(key, path) for key, path in keys.items())
        return Dataset(cases, tuple(skipped), unreadable=tuple(unreadable))

    mask_root, mask_paths, mask_skipped, mask_unreadable = _listing(masks, "masks", cancel)
    unreadable = unreadable + mask_unreadable
    mask_keys = _unique_keys(mask_paths, mask_root, "mask")
    pairs, method = pair_by_name(keys, mask_keys)
    lonely_images = [keys[k] for k in keys if k not in pairs]
    lonely_masks = [m for m in mask_keys.values() if m not in set(pairs.values())]
    warning = None
    if not pairs and keys and len(keys) == len(mask_keys):
        # Nothing pairs by name: biom3d's rule, sorted position, with the pairs shown to check.
        pairs = dict(zip(keys, sorted(mask_keys.values()), strict=True))
        method, lonely_images, lonely_masks = "position", [], []
        warning = _position_warning(keys, pairs, image_root, mask_root)
    if lonely_images or lonely_masks:
        passed = f" {describe_unreadable(unreadable)}" if unreadable else ""
        raise UnpairedFilesError(
            _unpaired_message(lonely_images, lonely_masks, image_root, mask_root) + passed
        )
    cases = tuple(Case(key, path, pairs[key]) for key, path in keys.items())
    return Dataset(cases, tuple(skipped + mask_skipped), method, warning, tuple(unreadable))


def _listing(folder: str | Path, role: str, cancel: CancelCheck | None = None):
    """A folder's (or a URL's) root, images, skipped entries and unreadable entries."""
    if is_url(folder):
        found = _cancellable(lambda: _list_url(str(folder), role), cancel, f"Listing {folder}")
        return (Location(str(folder)), *found, [])
    root = Path(folder).expanduser()
    return (root, *list_folder(root, role))


def image_stem(key: str) -> str:
    """An image's pairing key without nnU-Net's channel suffix (``"a/c_0000"`` -> ``"a/c"``)."""
    return CHANNEL_SUFFIX.sub("", key)


def mask_stem(key: str) -> str:
    """A mask's pairing key without one conventional affix (``"a/x_mask"`` -> ``"a/x"``)."""
    folder, _, name = key.rpartition("/")
    lower = name.lower()
    for suffix in MASK_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    else:
        for prefix in MASK_PREFIXES:
            if lower.startswith(prefix) and len(name) > len(prefix):
                name = name[len(prefix) :]
                break
    return f"{folder}/{name}" if folder else name


def pair_by_name(images: dict[str, Path], masks: dict[str, Path]) -> tuple[dict[str, Path], str]:
    """Pair image keys with mask files: same key first, then by naming convention.

    Parameters
    ----------
    images, masks : dict
        Pairing key (relative path without extension) to file, as :func:`case_key` gives.

    Returns
    -------
    pairs : dict
        Image key to its mask, for the images that pair; a convention pairs only one image with
        one mask (two candidates for one name pair neither).
    method : str
        ``"name"`` when every pair shares its key, else ``"convention"``.
    """
    pairs = {key: masks[key] for key in images if key in masks}
    left_images = [key for key in images if key not in pairs]
    left_masks = [key for key in masks if key not in images]
    by_stem_image: dict[str, list[str]] = {}
    for key in left_images:
        by_stem_image.setdefault(image_stem(key), []).append(key)
    by_stem_mask: dict[str, list[str]] = {}
    for key in left_masks:
        by_stem_mask.setdefault(image_stem(mask_stem(key)), []).append(key)
    convention = False
    for stem, image_keys in by_stem_image.items():
        mask_keys = by_stem_mask.get(stem, [])
        if len(image_keys) == 1 and len(mask_keys) == 1:
            pairs[image_keys[0]] = masks[mask_keys[0]]
            convention = True
    ordered = {key: pairs[key] for key in images if key in pairs}
    return ordered, "convention" if convention else "name"


def _position_warning(
    keys: dict[str, Path], pairs: dict[str, Path], image_root: Path, mask_root: Path, most: int = 10
) -> str:
    listed = [
        f"{_relative(keys[k], image_root)} <- {_relative(m, mask_root)}" for k, m in pairs.items()
    ]
    shown = "; ".join(listed[:most])
    more = f"; and {len(listed) - most} more" if len(listed) > most else ""
    return (
        f"No mask name matches an image name, so the {len(pairs)} masks were paired with the "
        "images by sorted position, as biom3d does. Check the pairs (image <- mask): "
        f"{shown}{more}. Rename the masks like their images to pair them by name."
    )


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
        shown = ", ".join(repr(_relative(p, root)) for p in paths[:most])
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
        + ". A mask must have the same relative path and name as its image (the extension may "
        "differ, e.g. .tif/.tiff or .nii/.nii.gz), or that name with a mask suffix or prefix "
        "(_mask, _label, _seg, _gt, _annotation, mask_, label_); folders where no name matches "
        "pair by sorted position only when they hold as many masks as images."
    )


# --------------------------------------------------------------------------- nnU-Net v2


def nnunet_root(folder: str | Path) -> Path | None:
    """The nnU-Net v2 raw dataset ``folder`` is (or whose ``imagesTr/`` it is), else None.

    A raw dataset holds ``imagesTr/``, ``labelsTr/`` and ``dataset.json``.
    """
    path = Path(folder).expanduser()
    for root in (path, path.parent) if path.name == "imagesTr" else (path,):
        if (
            (root / "dataset.json").is_file()
            and (root / "imagesTr").is_dir()
            and (root / "labelsTr").is_dir()
        ):
            return root
    return None


def _read_dataset_json(root: Path) -> tuple[str, list[str], dict]:
    """``file_ending``, the channel names (in channel order) and the whole of an nnU-Net
    dataset.json."""
    path = root / "dataset.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(
            f"{str(path)!r} cannot be read as JSON ({error}). Check the nnU-Net dataset.json."
        ) from error
    channels = meta.get("channel_names", meta.get("modality")) if isinstance(meta, dict) else None
    ending = meta.get("file_ending") if isinstance(meta, dict) else None
    if not isinstance(channels, dict) or not channels or not isinstance(ending, str) or not ending:
        raise DatasetError(
            f"{str(path)!r} lacks 'channel_names' or 'file_ending': it is not an nnU-Net v2 "
            'dataset.json. Add them (e.g. "channel_names": {"0": "DAPI"}, '
            '"file_ending": ".tif").'
        )
    try:
        order = sorted(channels, key=int)
    except ValueError as error:
        raise DatasetError(
            f'{str(path)!r}: channel_names keys must be channel numbers ("0", "1"...).'
        ) from error
    if order != [str(i) for i in range(len(order))]:
        raise DatasetError(
            f"{str(path)!r}: channel_names must be numbered 0, 1, 2... without gaps, not "
            f"{', '.join(order)}."
        )
    return ending, [str(channels[k]) for k in order], meta


def _nnunet_files(
    folder: Path, ending: str, unreadable: list[Unreadable] | None = None
) -> tuple[dict[str, Path], list[Path]]:
    """Files of one nnU-Net folder ending in ``file_ending``, by name without it; the others.

    Entries that cannot be looked at (a link to nothing or that loops) go to ``unreadable``; a
    folder that cannot be listed is refused.
    """
    named: dict[str, Path] = {}
    others: list[Path] = []
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        raise DatasetError(
            f"The nnU-Net folder {str(folder)!r} cannot be listed ({_why(error, 'folder')}). "
            "Check its permissions."
        ) from error
    for path in entries:
        if path.name.startswith("."):
            continue
        if not path.is_file():  # pathlib answers False for a link to nothing or that loops
            if path.is_symlink() and unreadable is not None and not path.is_dir():
                unreadable.append(Unreadable(path, _broken_link(str(path))))
            continue
        if path.name.endswith(ending) and len(path.name) > len(ending):
            named[path.name[: -len(ending)]] = path
        else:
            others.append(path)
    return named, others


def open_nnunet(root: Path, masks: str | Path | None = None) -> Dataset:
    """The cases of an nnU-Net v2 raw dataset: one (multichannel) image and its label per case.

    From ``imagesTr/`` and ``labelsTr/`` (cases sorted by id), or from dataset.json's ``dataset``
    key when it has one (its files, its order). A case of one file per case may hold every
    channel (an RGB image); the channel count is checked when the files are read.

    Parameters
    ----------
    root : Path
        The dataset folder (``imagesTr/``, ``labelsTr/``, ``dataset.json``).
    masks : str or Path, optional
        Only ``labelsTr/`` itself may be given: the labels come with the dataset.

    Raises
    ------
    DatasetError
        ``dataset.json`` unreadable or without ``channel_names`` / ``file_ending``; another masks
        folder than ``labelsTr/``.
    EmptyDatasetError
        No case in ``imagesTr/``.
    UnpairedFilesError
        A case missing a channel file or its label, or a label without a case (named).
    """
    labels = root / "labelsTr"
    if masks is not None and Path(masks).expanduser().resolve() != labels.resolve():
        raise DatasetError(
            f"{str(root)!r} is an nnU-Net dataset: its labels are {str(labels)!r}. Give no masks "
            "folder (or that one)."
        )
    ending, channel_names, meta = _read_dataset_json(root)
    if "dataset" in meta:
        return _listed_cases(root, meta["dataset"], len(channel_names))
    unreadable: list[Unreadable] = []
    images, skipped = _nnunet_files(root / "imagesTr", ending, unreadable)
    label_files, label_skipped = _nnunet_files(labels, ending, unreadable)
    channels: dict[str, dict[int, Path]] = {}
    for name, path in images.items():
        match = CHANNEL_SUFFIX.search(name)
        if match is None:
            skipped.append(path)  # not a channel file: nnU-Net would not read it either
            continue
        channels.setdefault(name[: match.start()], {})[int(match.group(0)[1:])] = path
    if not channels:
        raise EmptyDatasetError(
            f"No case found in {str(root / 'imagesTr')!r}: nnU-Net names its files "
            f"CASE_0000{ending} (CASE_0001{ending}... for more channels), as dataset.json's "
            f"file_ending {ending!r} says."
        )
    wanted = set(range(len(channel_names)))
    if all(set(found) == {0} for found in channels.values()):
        wanted = {0}  # one file per case holding every channel (RGB), checked when read
    incomplete = [
        f"{case!r} has channel(s) {sorted(found)}"
        for case, found in channels.items()
        if set(found) != wanted
    ]
    if incomplete:
        raise UnpairedFilesError(
            f"In {str(root / 'imagesTr')!r}, cases lack channel files: {'; '.join(incomplete[:5])}"
            f"; dataset.json names {len(channel_names)} channel(s) "
            f"({', '.join(channel_names)}), so each case needs "
            + ", ".join(f"_{i:04d}{ending}" for i in sorted(wanted))
            + "."
        )
    no_label = [case for case in channels if case not in label_files]
    no_case = [name for name in label_files if name not in channels]
    if no_label or no_case:
        parts = []
        if no_label:
            parts.append(f"{len(no_label)} case(s) without a label: {', '.join(no_label[:5])}")
        if no_case:
            parts.append(f"{len(no_case)} label(s) without a case: {', '.join(no_case[:5])}")
        passed = f" {describe_unreadable(unreadable)}" if unreadable else ""
        raise UnpairedFilesError(
            f"The nnU-Net dataset {str(root)!r} does not pair up: {'; '.join(parts)}. Each "
            f"imagesTr/CASE_0000{ending} needs labelsTr/CASE{ending}.{passed}"
        )
    cases = []
    for case in sorted(channels):
        files = tuple(channels[case][i] for i in sorted(wanted))
        label = label_files[case]
        if len(files) == 1:
            cases.append(Case(case, files[0], label))
        else:
            cases.append(Case(case, files, (label,) * len(files)))
    return Dataset(tuple(cases), tuple(skipped + label_skipped), "nnunet", None, tuple(unreadable))


def open_datalist(datalist: str | Path, dataroot: str | Path | None = None) -> Dataset:
    """The cases of a MONAI datalist JSON, as MONAI's ``datafold_read(datalist, dataroot,
    fold=-1, key="training")`` gives them to Auto3DSeg's DataAnalyzer.

    ``{"training": [{"image": "imagesTr/a.nii.gz", "label": "labelsTr/a.nii.gz"}, ...]}``: each
    path joined to ``dataroot`` (default: the datalist's folder) unless absolute; an image given
    as a list of files is one image of that many channels. Entries whose ``fold`` is -1 are the
    ones ``fold=-1`` holds out, so, as in MONAI, they are not analysed. The order is the
    datalist's.

    Raises
    ------
    DatasetError
        The file cannot be read, is not JSON, has no ``training`` list, or an entry has no
        ``image`` (the message names the entry and shows the expected layout).
    EmptyDatasetError
        No entry is left to analyse.
    """
    path = Path(datalist).expanduser()
    root = Path(dataroot).expanduser() if dataroot is not None else path.parent
    layout = (
        'A MONAI datalist looks like {"training": [{"image": "imagesTr/a.nii.gz", '
        '"label": "labelsTr/a.nii.gz"}, ...]}, its paths relative to --dataroot.'
    )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(
            f"The datalist {str(path)!r} cannot be read ({error}). {layout}"
        ) from error
    entries = meta.get("training") if isinstance(meta, dict) else None
    if not isinstance(entries, list):
        raise DatasetError(f'The datalist {str(path)!r} has no "training" list. {layout}')

    def joined(value: object, where: str) -> Path:
        if not isinstance(value, str) or not value:
            raise DatasetError(
                f"The datalist {str(path)!r}: {where} is {value!r}, not a file path. {layout}"
            )
        return Path(os.path.join(root, value))

    cases = []
    for number, entry in enumerate(entries):
        where = f"training entry {number}"
        if not isinstance(entry, dict) or "image" not in entry:
            raise DatasetError(f'The datalist {str(path)!r}: {where} has no "image". {layout}')
        if entry.get("fold") == -1:
            continue  # datafold_read(fold=-1) holds these out: MONAI does not analyse them
        image = entry["image"]
        if isinstance(image, list):
            files = tuple(joined(v, f"{where}'s image") for v in image)
            image_path: Path | tuple[Path, ...] = files[0] if len(files) == 1 else files
        else:
            image_path = joined(image, f"{where}'s image")
        label = entry.get("label")
        mask = joined(label, f"{where}'s label") if label is not None else None
        key = image if isinstance(image, str) else str(image[0])
        cases.append(Case(key, image_path, mask))
    if not cases:
        raise EmptyDatasetError(f"The datalist {str(path)!r} lists no training case. {layout}")
    return Dataset(tuple(cases), pairing="datalist")


def _listed_path(root: Path, text: object, where: str) -> Path:
    """A path of dataset.json's ``dataset`` key as nnU-Net resolves it: environment variables
    expanded, relative to the dataset folder."""
    if not isinstance(text, str) or not text:
        raise DatasetError(f"{where}: a file path is expected, not {text!r}.")
    path = Path(os.path.expandvars(text))
    path = path if path.is_absolute() else Path(os.path.abspath(root / path))
    if not path.is_file():
        raise UnpairedFilesError(
            f"{where} lists {text!r}, which is not a file ({str(path)!r}). Fix the path in "
            "dataset.json, or add the file."
        )
    return path


def _listed_cases(root: Path, listing: object, num_channels: int) -> Dataset:
    """The cases a dataset.json lists under ``dataset`` (``{case: {"images": [...], "label":
    ...}}``), in its order, as nnU-Net takes them instead of listing ``imagesTr/``."""
    where = str(root / "dataset.json")
    if not isinstance(listing, dict) or not listing:
        raise DatasetError(
            f"{where!r}: 'dataset' must map each case to its files, e.g. "
            '{"case_0": {"images": ["imagesTr/case_0_0000.nii.gz"], "label": '
            '"labelsTr/case_0.nii.gz"}}.'
        )
    cases = []
    for key, entry in listing.items():
        images = entry.get("images") if isinstance(entry, dict) else None
        if (
            not isinstance(images, list)
            or len(images) not in (1, num_channels)
            or ("label" not in entry)
        ):
            raise DatasetError(
                f"{where!r}: the case {key!r} of 'dataset' needs 'images' (a list of "
                f"{num_channels} file(s), one per channel_names entry) and 'label'."
            )
        files = tuple(_listed_path(root, i, f"{where!r}, case {key!r},") for i in images)
        label = _listed_path(root, entry["label"], f"{where!r}, case {key!r},")
        if len(files) == 1:
            cases.append(Case(str(key), files[0], label))
        else:
            cases.append(Case(str(key), files, (label,) * len(files)))
    return Dataset(tuple(cases), (), "nnunet", None, ())
