"""Which reader nnU-Net v2 picks for a raw dataset, and the shape and spacing it sees.

nnunetv2 2.8.1 reads a raw dataset through one reader/writer class: the one dataset.json names
in ``overwrite_image_reader_writer``, else the first class of its registry
(:data:`NNUNET_READERS`, in its order) that lists the ``file_ending`` and reads the first case's
first image. Each returns the image as (channels, z, y, x) with a spacing in the same order:

- ``SimpleITKIO`` (``.nii.gz .nrrd .mha .gipl``) and ``NibabelIO`` (``.nii``, 3D only): the
  header's spacing, (z, y, x); a 2D image is ``(1, Y, X)`` with the spacing
  ``(999 * max(y, x), y, x)``;
- ``Tiff3DIO`` (``.tif .tiff``): the 3 axes ``tifffile.imread`` gives, one channel per file,
  the spacing from a json file beside the images (:func:`tiff_spacing_file`), used verbatim
  (integers stay integers), and ``(1, 1, 1)`` without one;
- ``NaturalImage2DIO`` (``.png .bmp .tif``): a 2D image ``(C, 1, Y, X)`` (RGB: 3 channels), the
  spacing ``(999, 1, 1)``.

The answers come from our own file headers (:func:`napari_autoconfig.readers.read_header`):
nothing is read twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..readers import ImageHeader, tiff_series

#: nnunetv2 2.8.1's ``LIST_OF_IO_CLASSES``, in its order, with each class's file endings.
NNUNET_READERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("NaturalImage2DIO", (".png", ".bmp", ".tif")),
    ("SimpleITKIO", (".nii.gz", ".nrrd", ".mha", ".gipl")),
    ("Tiff3DIO", (".tif", ".tiff")),
    ("NibabelIO", (".nii", ".nii.gz")),
    ("NibabelIOWithReorient", (".nii", ".nii.gz")),
)
#: Readers that reorient the image (to RAS / LPS) before handing it over: not reproduced here.
_REORIENTING = ("NibabelIOWithReorient", "SimpleITKIOWithReorient")
#: Every class dataset.json's ``overwrite_image_reader_writer`` may name in nnU-Net's imageio.
_KNOWN = (*(name for name, _ in NNUNET_READERS), "SimpleITKIOWithReorient")
#: NaturalImage2DIO's spacing of every image.
NATURAL_2D_SPACING = (999, 1, 1)
#: Tiff3DIO's spacing without a spacing file.
NO_SPACING_FILE = (1, 1, 1)


def reader_by_ending(file_ending: str) -> str:
    """The reader nnU-Net picks for ``file_ending`` without a file to try (its registry's
    first class listing it); SimpleITKIO for an ending none lists."""
    ending = file_ending.lower()
    return next((name for name, endings in NNUNET_READERS if ending in endings), "SimpleITKIO")


def choose_reader(
    file_ending: str, first_image: ImageHeader, overwrite: object = None, where: str = ""
) -> tuple[str, tuple[str, ...]]:
    """The reader nnU-Net uses for a raw dataset, and the notes to tell the user.

    Parameters
    ----------
    file_ending : str
        dataset.json's ``file_ending``.
    first_image : ImageHeader
        The first case's first image file (nnU-Net tries to read it).
    overwrite : object
        dataset.json's ``overwrite_image_reader_writer`` (None when absent).
    where : str
        The dataset.json path, for messages.

    Raises
    ------
    DatasetError
        A reorienting reader named (not reproduced), or no reader reads the file.
    """
    notes: list[str] = []
    if overwrite is not None and overwrite != "None":
        if overwrite in _REORIENTING:
            raise DatasetError(
                f"{where!r} names the reader {overwrite!r}, which reorients images before nnU-Net "
                "sees them: napari-autoconfig does not reproduce that. Remove "
                "'overwrite_image_reader_writer' to plan with the reader nnU-Net picks otherwise."
            )
        if overwrite in _KNOWN:
            return str(overwrite), ()
        # nnU-Net warns and picks by the file ending, as here
        notes.append(
            f"{where}: overwrite_image_reader_writer {overwrite!r} is not an nnU-Net reader; "
            "nnU-Net, like this plan, picks the reader by the file ending."
        )
    ending = file_ending.lower()
    tried = []
    for name, endings in NNUNET_READERS:
        if ending in endings:
            why_not = cannot_read(name, first_image)
            if why_not is None:
                return name, tuple(notes)
            tried.append(f"{name} ({why_not})")
    raise DatasetError(
        f"nnU-Net finds no reader for {str(first_image.path)!r} (file_ending {file_ending!r}): "
        + ("; ".join(tried) if tried else "no nnU-Net reader takes that ending")
        + ". nnU-Net would stop there too: save the images as nnU-Net reads them "
        "(.nii.gz, or 3D .tif with a spacing file)."
    )


def cannot_read(reader: str, header: ImageHeader) -> str | None:
    """Why nnU-Net's ``reader`` cannot read the file of ``header``, or None when it can (and
    this package sees its voxels as that reader does)."""
    series = tiff_series(header)
    if reader == "Tiff3DIO":
        if series is None:
            return "not a TIFF"
        shape, in_order = series
        if len(shape) != 3:
            return f"tifffile reads it with {len(shape)} axes {shape}, Tiff3DIO wants 3"
        if not in_order:
            return f"tifffile's axes {shape} are not read here in their order"
        return None
    if reader == "NaturalImage2DIO":
        if series is None:
            return "not a TIFF this package reads as nnU-Net's 2D image reader does"
        shape, in_order = series
        if len(shape) == 2:
            return None
        if len(shape) == 3 and shape[-1] in (3, 4):
            # RGB(A) samples last: nnU-Net moves them first, as the presented array has them
            if header.axes == "CYX" and header.shape == (shape[-1], *shape[:2]):
                return None
            return f"its {shape[-1]} planes would be taken for RGB samples"
        return f"a 2D image reader, and tifffile reads it with shape {shape}"
    if reader in ("NibabelIO", *_REORIENTING):
        if header.is_2d or header.channels != 1:
            return "only 3D single-channel files"
        return None
    return None  # SimpleITKIO reads whatever the package reads in these formats


def nnunet_geometry(
    header: ImageHeader,
    reader: str | None = None,
    spacing: tuple[float, ...] | None = None,
    float32_spacing: bool = False,
) -> tuple[tuple[int, ...], tuple[float, ...], int]:
    """Spatial shape (z, y, x), spacing and channel count of a file as nnU-Net's reader has them.

    Parameters
    ----------
    header : ImageHeader
        The file's header.
    reader : str, optional
        nnU-Net's reader class; None: the file as this package reads it, with SimpleITK's
        rules (a plain folder's export: its spacing goes into the export).
    spacing : tuple, optional
        Tiff3DIO's spacing from the case's spacing file (None: none, so (1, 1, 1)).
    float32_spacing : bool
        With ``reader`` None: the file is written into a plain folder's export in a format
        that stores its spacing as float32 (NIfTI), so nnU-Net reads it so rounded, before
        its 2D rule multiplies it by 999.

    Notes
    -----
    SimpleITK: 3D shape (Z, Y, X), spacing ``|GetSpacing()|`` reversed; 2D shape (1, Y, X),
    spacing ``(999 * max(x, y), y, x)``; a 4D file's first axis is channels. Files without a
    spacing (plain TIFF, ``.npy``) get 1.0 per axis.
    """
    if reader == "Tiff3DIO":
        shape = tiff_series(header)[0]  # type: ignore[index]  # checked by cannot_read
        return shape, spacing if spacing is not None else NO_SPACING_FILE, 1
    if reader == "NaturalImage2DIO":
        shape = tiff_series(header)[0]  # type: ignore[index]
        channels = 1 if len(shape) == 2 else shape[-1]
        return (1, *shape[:2]), NATURAL_2D_SPACING, channels
    zyx = header.spatial_shape_zyx
    values = header.spacing_zyx
    if values and float32_spacing:
        values = tuple(float(np.float32(v)) for v in values)
    if header.is_2d:
        yx = tuple(abs(float(v)) for v in values[-2:]) if values else (1.0, 1.0)
        # nnU-Net multiplies SimpleITK's (x, y) maximum by 999
        return (1, *zyx[1:]), (max(yx[::-1]) * 999, *yx), header.channels
    values = tuple(abs(float(v)) for v in values) if values else (1.0, 1.0, 1.0)
    return zyx, values, header.channels


def tiff_spacing_file(image: str | Path, label: bool = False) -> Path:
    """Where Tiff3DIO looks for a file's spacing: the image's name without its channel suffix
    and ending (``imagesTr/case_0000.tif`` -> ``imagesTr/case.json``), a label's without its
    ending (``labelsTr/case.tif`` -> ``labelsTr/case.json``).

    nnU-Net cuts characters off the path, whatever they are: the same cut here.
    """
    text = str(image)
    ending = "." + text.split(".")[-1]
    cut = len(ending) + (0 if label else 5)  # 5: "_0000"
    return Path(text[:-cut] + ".json")


def read_spacing_file(path: Path, label: bool = False) -> tuple[float, ...] | None:
    """A Tiff3DIO spacing file's ``spacing`` (verbatim: integers stay integers), or None when
    there is no such file.

    Raises
    ------
    DatasetError
        The file is unreadable, or its spacing is not three numbers (positive, for a label):
        nnU-Net would stop on it.
    """
    if not path.is_file():
        return None
    try:
        spacing = json.loads(path.read_text(encoding="utf-8"))["spacing"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(
            f"{str(path)!r} cannot be read as nnU-Net's spacing file ({error!r}). It should hold "
            '{"spacing": [z, y, x]}, in the image array\'s axis order.'
        ) from error
    numbers = isinstance(spacing, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in spacing
    )
    if not numbers or len(spacing) != 3 or (label and not all(v > 0 for v in spacing)):
        raise DatasetError(
            f"{str(path)!r}: 'spacing' must be three {'positive ' if label else ''}numbers, "
            f"one per axis of the image array, not {spacing!r}."
        )
    return tuple(spacing)
