"""A plain folder of images and masks written as an nnU-Net v2 raw dataset (``DatasetNNN_Name``).

nnU-Net trains on a "raw dataset": ``imagesTr/CASE_0000<ending>`` (one file per channel),
``labelsTr/CASE<ending>`` with labels 0, 1 ... K, and a ``dataset.json``; for 3D TIFF, a
``CASE.json`` holding ``{"spacing": [z, y, x]}`` beside each image and label (nnunetv2's
``Tiff3DIO`` reads no spacing from the TIFF itself). The two rules that shape it are shared with
the planner, so that a folder is planned exactly as its export:

- the labels: :func:`.planners.nnunet_labels.plan_labels` (``255 -> 1``, instance masks as
  foreground / background), written by :func:`.planners.nnunet_labels.remap_labels`;
- the file format: :func:`.planners.nnunet_layout.nnunet_format` (NIfTI and 3D TIFF kept,
  everything else written as ``.nii.gz`` with its spacing).

Where nothing changes (a single-channel image in a kept format; a label already 0 ... K) the file
is hard-linked (copied across devices); otherwise it is written. Masks are read in chunks twice
(their values, then the remapped label); a TIFF label is written plane by plane, while a label
written with SimpleITK, and a converted or split image, is held whole (one case per worker), as
SimpleITK's writer needs it.

Case names are the image keys made safe for nnU-Net: a sub-folder separator and any character
other than letters, digits, ``-`` and ``_`` become ``_`` (two keys that become the same name are
refused, naming both). The export is written into a staging folder beside the target and renamed
into place (:mod:`.atomic`): a killed export leaves no half-made dataset, only a hidden staging
folder that the next export there removes.

Array order: numpy's (z, y, x), (y, x) for 2D; spacings too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from .atomic import publish_folder, staging_folder
from .dataset import Case, nnunet_root, open_dataset
from .errors import Cancelled, ConfigError, DatasetError, MaskMismatchError, NonIntegerMaskError
from .planners.nnunet_labels import LabelPlan, plan_labels, remap_labels
from .planners.nnunet_layout import NnUNetFormat, nnunet_format
from .readers import ImageHeader, image_suffix, iter_chunks, read_array, read_header

#: nnU-Net's dataset folder name: ``Dataset`` + three digits + ``_`` + a name.
DATASET_FOLDER = re.compile(r"^Dataset(?P<id>\d{3})_(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)$")
#: The channel names written into dataset.json: nnU-Net z-scores them (as the planner assumes).
CHANNEL_NAME = "zscore"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_CHUNK_BYTES = 8 * 2**20

ProgressCallback = Callable[[int, int], None]
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class NnUNetExport:
    """What an export wrote.

    Attributes
    ----------
    path : Path
        The dataset folder (``.../DatasetNNN_Name``).
    dataset_id : int
        NNN.
    num_cases : int
        Cases in ``imagesTr`` / ``labelsTr`` (dataset.json's ``numTraining``).
    format : NnUNetFormat
        The file ending and the reader nnU-Net will use.
    labels : LabelPlan
        How mask values became classes.
    linked, copied, written : int
        Files hard-linked, copied (a link was refused, e.g. across devices) and written
        (converted, split into channels, or labels renumbered).
    two_d : bool
        2D images (nnU-Net trains its ``2d`` configuration on them).
    renamed : tuple of (str, str)
        Image keys whose case name had to change, and the name used.
    warning : str or None
        What the user should check (masks paired by sorted position: the pairs).
    """

    path: Path
    dataset_id: int
    num_cases: int
    format: NnUNetFormat
    labels: LabelPlan
    linked: int
    copied: int
    written: int
    two_d: bool = False
    renamed: tuple[tuple[str, str], ...] = ()
    warning: str | None = None

    def summary(self) -> str:
        """One line: where, how many cases, what format, how the files got there."""
        how = f"{self.linked} linked, {self.copied} copied, {self.written} written"
        return (
            f"Exported {self.num_cases} cases to {self.path} ({self.format.file_ending}, read by "
            f"nnU-Net's {self.format.reader}; {how}; {self.labels.num_classes} classes)."
        )

    def notes(self) -> tuple[str, ...]:
        """What the user should know: renumbered labels, renamed cases."""
        lines = list(self.labels.notes())
        if self.renamed:
            shown = ", ".join(f"{a!r} -> {b!r}" for a, b in self.renamed[:5])
            more = f" ... ({len(self.renamed)} in all)" if len(self.renamed) > 5 else ""
            lines.append(f"Case names made safe for nnU-Net: {shown}{more}.")
        if self.warning:
            lines.append(f"Check: {self.warning}")
        return tuple(lines)

    def training_commands(self) -> tuple[str, ...]:
        """Shell lines that train nnU-Net on the export: ``nnUNet_raw`` set to its parent, then
        nnU-Net's two commands (``nnUNet_preprocessed`` and ``nnUNet_results`` are set as
        nnU-Net's installation asks)."""
        import shlex

        return (
            f"export nnUNet_raw={shlex.quote(str(self.path.parent))}",
            f"nnUNetv2_plan_and_preprocess -d {self.dataset_id:03d} --verify_dataset_integrity",
            f"nnUNetv2_train {self.dataset_id:03d} {'2d' if self.two_d else '3d_fullres'} 0",
        )


# -------------------------------------------------------------------------- the target


def check_target(target: str | Path) -> tuple[Path, int]:
    """Check where an export goes before anything is read; return the folder and its id.

    Raises
    ------
    ConfigError
        The folder's name is not nnU-Net's ``DatasetNNN_Name``, its parent does not exist, or
        it exists and is not an empty folder.
    """
    path = Path(target).expanduser()
    match = DATASET_FOLDER.match(path.name)
    if match is None:
        raise ConfigError(
            f"{path.name!r} is not an nnU-Net dataset folder name: it must read DatasetNNN_Name "
            "(three digits, then a name of letters, digits, - and _), e.g. Dataset501_Cells."
        )
    if not path.parent.is_dir():
        raise ConfigError(
            f"Cannot export to {str(path)!r}: the folder {str(path.parent)!r} does not exist "
            "(it becomes nnU-Net's nnUNet_raw). Create it or choose another place."
        )
    if path.is_symlink() or (path.exists() and (not path.is_dir() or any(path.iterdir()))):
        raise ConfigError(
            f"{str(path)!r} already exists and is not an empty folder: it was left untouched. "
            "Choose another dataset name or number, or remove that folder."
        )
    return path, int(match["id"])


def case_names(keys: Sequence[str]) -> dict[str, str]:
    """nnU-Net case names for image keys (``"sub/cell 01"`` -> ``"sub_cell_01"``).

    Raises
    ------
    DatasetError
        When two keys become the same name.
    """
    names: dict[str, str] = {}
    taken: dict[str, str] = {}
    for key in keys:
        name = _UNSAFE.sub("_", key.replace("/", "_")) or "case"
        if name in taken:
            raise DatasetError(
                f"The images {taken[name]!r} and {key!r} would both be the nnU-Net case "
                f"{name!r} (characters other than letters, digits, - and _ become _): rename "
                "one of them."
            )
        taken[name] = key
        names[key] = name
    return names


# -------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Source:
    """One case to export: its headers and its nnU-Net name."""

    case: Case
    name: str
    image: ImageHeader
    mask: ImageHeader

    @property
    def spatial(self) -> tuple[int, ...]:
        zyx = self.image.spatial_shape_zyx
        return zyx[1:] if self.image.is_2d else zyx


def spacing_zyx(header: ImageHeader) -> tuple[float, ...]:
    """The spacing written for a file: its own (ImageJ, OME, NIfTI...), 1 per axis without."""
    axes = 2 if header.is_2d else 3
    spacing = header.spacing_zyx
    if spacing is None:
        return (1.0,) * axes
    return tuple(abs(float(v)) for v in spacing[-axes:])


def mask_values(header: ImageHeader) -> np.ndarray:
    """The distinct values of a mask, ascending, read in chunks.

    Raises
    ------
    NonIntegerMaskError
        A float mask holding non-integer values.
    """
    found = np.empty(0, dtype=np.int64)
    floating = header.dtype.kind == "f"
    for chunk in iter_chunks(header, _CHUNK_BYTES, reuse=True):
        values = np.unique(chunk)
        if floating and not np.array_equal(values, np.trunc(values)):
            raise NonIntegerMaskError(
                f"The mask {str(header.path)!r} holds non-integer values (dtype {header.dtype}). "
                "Masks must be label images (0 = background); save it as an integer image."
            )
        found = np.union1d(found, values.astype(np.int64))
    return found


def _open_source(case: Case, name: str) -> _Source:
    image = read_header(case.image)
    mask = read_header(case.mask)
    want = image.spatial_shape_zyx
    if mask.channels != 1 or mask.spatial_shape_zyx != want or mask.is_2d != image.is_2d:
        raise MaskMismatchError(
            f"The mask {str(case.mask)!r} has the shape {mask.shape}, its image {str(case.image)!r}"
            f" {image.shape}: nnU-Net needs one label per voxel of the image. Fix the pairing or "
            "the mask."
        )
    return _Source(case, name, image, mask)


# -------------------------------------------------------------------------- writing


def _link(source: Path, destination: Path) -> str:
    """Hard-link ``source`` as ``destination``, or copy it where links are refused."""
    try:
        os.link(source, destination)
        return "linked"
    except OSError:  # another device, a file system without hard links
        shutil.copyfile(source, destination)
        return "copied"


def _itk_geometry(path: Path) -> tuple[tuple, tuple] | None:
    """Origin and direction of an ITK file (header only), to keep them in a written copy."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    return reader.GetOrigin(), reader.GetDirection()


def _write(array: np.ndarray, destination: Path, spacing: tuple[float, ...], like: ImageHeader):
    """Write one channel (or label) in the export's format with its spacing."""
    if destination.name.lower().endswith((".tif", ".tiff")):
        import tifffile

        tifffile.imwrite(destination, array, compression="zlib")
        return
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    if like.format in ("nifti", "metaimage", "nrrd"):
        geometry = _itk_geometry(Path(like.path))
        if geometry is not None and len(geometry[0]) == image.GetDimension():
            image.SetOrigin(geometry[0])
            image.SetDirection(geometry[1])
    sitk.WriteImage(image, str(destination), True)


def _remapped_chunks(header: ImageHeader, plan: LabelPlan, dtype: np.dtype) -> Iterator[np.ndarray]:
    """The mask's consecutive C-order pieces (flat) with values replaced by nnU-Net classes."""
    for chunk in iter_chunks(header, _CHUNK_BYTES, reuse=True):
        try:
            yield remap_labels(chunk.reshape(-1), plan, dtype)
        except ValueError as error:
            raise DatasetError(
                f"The mask {str(header.path)!r} changed while it was exported ({error}): export "
                "again."
            ) from error


def _label_dtype(plan: LabelPlan) -> np.dtype:
    return np.dtype(np.uint8 if plan.num_classes <= 256 else np.uint16)


def _remapped(header: ImageHeader, plan: LabelPlan, shape: tuple[int, ...]) -> np.ndarray:
    """The whole remapped mask (for SimpleITK's writer), in the smallest fitting type."""
    dtype = _label_dtype(plan)
    out = np.empty(int(np.prod(shape, dtype=np.int64)), dtype=dtype)
    at = 0
    for flat in _remapped_chunks(header, plan, dtype):
        out[at : at + flat.size] = flat
        at += flat.size
    return out.reshape(shape)


def _write_tiff_label(header: ImageHeader, plan: LabelPlan, shape, destination: Path) -> None:
    """The remapped mask as a 3D TIFF, written plane by plane: one plane in memory, not the
    volume."""
    import tifffile

    dtype = _label_dtype(plan)
    plane = int(np.prod(shape[1:], dtype=np.int64))

    def planes() -> Iterator[np.ndarray]:
        pending = np.empty(0, dtype=dtype)
        for flat in _remapped_chunks(header, plan, dtype):
            pending = np.concatenate([pending, flat]) if pending.size else flat
            whole = pending.size - pending.size % plane
            for start in range(0, whole, plane):
                yield pending[start : start + plane].reshape(shape[1:])
            pending = pending[whole:].copy()

    tifffile.imwrite(destination, planes(), shape=shape, dtype=dtype, compression="zlib")


def _export_case(source: _Source, plan: LabelPlan, fmt: NnUNetFormat, root: Path) -> list[str]:
    """Write one case's images, label and spacing files; return how each file got there."""
    ending = fmt.file_ending
    spacing = spacing_zyx(source.image)
    done = []
    images = root / "imagesTr"
    single = source.image.channels == 1 and not isinstance(source.case.image, tuple)
    if single and not fmt.converted:
        done.append(_link(Path(source.case.image), images / f"{source.name}_0000{ending}"))
    else:
        whole = read_array(source.image).reshape(source.image.channels, *source.spatial)
        for channel, array in enumerate(whole):
            _write(array, images / f"{source.name}_{channel:04d}{ending}", spacing, source.image)
            done.append("written")
        del whole
    label = root / "labelsTr" / f"{source.name}{ending}"
    if plan.identity and not fmt.converted and image_suffix(source.case.mask) == ending:
        done.append(_link(Path(source.case.mask), label))
    else:
        if ending in (".tif", ".tiff"):
            _write_tiff_label(source.mask, plan, source.spatial, label)
        else:
            _write(_remapped(source.mask, plan, source.spatial), label, spacing, source.image)
        done.append("written")
    if fmt.spacing_files:
        text = json.dumps({"spacing": list(spacing)}).encode("utf-8")
        (images / f"{source.name}.json").write_bytes(text)
        (root / "labelsTr" / f"{source.name}.json").write_bytes(text)
    return done


def _run_all(
    work: Callable[[T], R],
    items: Sequence[T],
    executor: Executor | None,
    step: Callable[[], None],
    cancel: Callable[[], bool] | None,
    in_flight: int,
) -> list[R]:
    """``work`` over ``items`` in order of the results' list, a few in flight on ``executor``
    (in this thread without one), ``step()`` after each, ``cancel()`` polled in between."""
    results: list = [None] * len(items)

    def stop() -> None:
        if cancel is not None and cancel():
            raise Cancelled("Export cancelled: nothing was written to the dataset folder.")

    if executor is None:
        for i, item in enumerate(items):
            stop()
            results[i] = work(item)
            step()
        return results
    pending: dict[Future, int] = {}
    following = 0
    try:
        while following < len(items) or pending:
            stop()
            while len(pending) < in_flight and following < len(items):
                pending[executor.submit(work, items[following])] = following
                following += 1
            finished, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in finished:
                results[pending.pop(future)] = future.result()
                step()
    finally:
        for future in pending:
            future.cancel()
        wait(pending)  # no writer may still be at work when the staging folder is removed
    return results


def export_nnunet(
    images: str | Path,
    masks: str | Path | None,
    target: str | Path,
    *,
    label_mode: str = "auto",
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> NnUNetExport:
    """Write the images and masks as the nnU-Net raw dataset ``target`` (``.../DatasetNNN_Name``).

    Parameters
    ----------
    images, masks : str or Path
        The plain folders (masks are required: they become ``labelsTr``).
    target : str or Path
        The dataset folder to create; its parent is nnU-Net's ``nnUNet_raw``.
    label_mode : {"auto", "classes", "foreground"}
        How mask values become classes (:func:`.planners.nnunet_labels.plan_labels`).
    executor : Executor, optional
        Where cases run (a few in flight); in the calling thread without one.
    progress : callable, optional
        ``progress(done, total)`` after each mask read and each case written (total: twice the
        number of cases).
    cancel : callable, optional
        Polled between cases; when it returns True the export stops with :class:`Cancelled`
        and leaves nothing.

    Raises
    ------
    ConfigError, DatasetError, ImageReadError, Cancelled
        With what to do; nothing is left at ``target`` then.
    """
    path, dataset_id = check_target(target)
    if masks is None:
        raise DatasetError(
            "An nnU-Net dataset needs the masks (they become labelsTr): give the masks folder "
            "(--masks MASKS)."
        )
    if nnunet_root(images) is not None:
        raise DatasetError(
            f"{str(images)!r} is already an nnU-Net raw dataset: nnU-Net trains on it as it is."
        )
    dataset = open_dataset(images, masks)
    names = case_names([case.key for case in dataset.cases])
    sources = [_open_source(case, names[case.key]) for case in dataset.cases]
    channels = {s.image.channels for s in sources}
    dims = {s.image.is_2d for s in sources}
    if len(channels) > 1 or len(dims) > 1:
        raise DatasetError(
            f"The images of {str(images)!r} mix 2D and 3D or different channel counts: nnU-Net "
            "needs every case alike. Export them as separate datasets."
        )
    total, done = 2 * len(sources), 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    from .fingerprint import default_workers

    in_flight = 2 * default_workers()  # a few cases ahead of the workers, memory of a few cases
    values = _run_all(lambda s: mask_values(s.mask), sources, executor, step, cancel, in_flight)
    plan = plan_labels(values, label_mode)
    suffixes = [image_suffix(s.image.path) for s in sources]
    suffixes += [image_suffix(s.mask.path) for s in sources]
    if any(isinstance(s.case.image, tuple) for s in sources):
        suffixes.append(None)
    fmt = nnunet_format(suffixes, two_d=dims == {True})
    staged = staging_folder(path)
    try:
        (staged / "imagesTr").mkdir()
        (staged / "labelsTr").mkdir()
        ways = _run_all(
            lambda s: _export_case(s, plan, fmt, staged), sources, executor, step, cancel, in_flight
        )
        meta = {
            "name": DATASET_FOLDER.match(path.name)["name"],
            "description": "Exported by napari-autoconfig from plain folders of images and masks",
            "channel_names": {str(c): CHANNEL_NAME for c in range(channels.pop())},
            "labels": plan.dataset_json_labels(),
            "numTraining": len(sources),
            "file_ending": fmt.file_ending,
        }
        (staged / "dataset.json").write_text(json.dumps(meta, indent=4) + "\n", encoding="utf-8")
        publish_folder(staged, path)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    flat = [way for case in ways for way in case]
    renamed = tuple((s.case.key, s.name) for s in sources if s.case.key != s.name)
    return NnUNetExport(
        path,
        dataset_id,
        len(sources),
        fmt,
        plan,
        linked=flat.count("linked"),
        copied=flat.count("copied"),
        written=flat.count("written"),
        two_d=dims == {True},
        renamed=renamed,
        warning=dataset.warning,
    )
