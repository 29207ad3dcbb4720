"""Which file format a plain folder becomes in its nnU-Net export, and so which reader nnU-Net uses.

nnU-Net reads a raw dataset with one ``file_ending`` and the reader its registry picks for it.
A plain folder is planned as its export (:mod:`.nnunet_labels` for the labels, this module for the
files), so the planner and the exporter ask the same question here:

- files nnU-Net reads as they are, with the spacing we read, keep their format: ``.nii.gz``,
  ``.nrrd``, ``.mha`` (SimpleITKIO), ``.nii`` (NibabelIO), and 3D TIFF (``.tif`` / ``.tiff``,
  Tiff3DIO, with the spacing written into its ``<case>.json`` file);
- everything else is written as ``.nii.gz`` (SimpleITKIO) with its spacing: 2D TIFF and PNG
  (nnU-Net's 2D image reader would give them the spacing 999, 1, 1), MetaImage pairs
  (``.mhd`` + raw), ``.npy``, OME-Zarr, and folders mixing formats.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: The endings kept as they are, with the reader nnunetv2 2.8.1 picks for each.
KEPT_ENDINGS = {
    ".nii.gz": "SimpleITKIO",
    ".nrrd": "SimpleITKIO",
    ".mha": "SimpleITKIO",
    ".nii": "NibabelIO",
    ".tif": "Tiff3DIO",
    ".tiff": "Tiff3DIO",
}
#: Endings kept only for 3D images (a 2D TIFF would go to NaturalImage2DIO: spacing lost).
_3D_ONLY = {".tif", ".tiff"}
#: Endings whose headers hold the spacing as float32 (NIfTI's ``pixdim``).
FLOAT32_SPACING_ENDINGS = (".nii.gz", ".nii")
#: The format written when a folder's own cannot be kept.
CONVERTED_ENDING = ".nii.gz"


@dataclass(frozen=True)
class NnUNetFormat:
    """The export's files: nnU-Net's ``file_ending`` and the reader it will use for them.

    Attributes
    ----------
    file_ending : str
        dataset.json's ``file_ending`` (``".tif"``, ``".nii.gz"``...).
    reader : str
        The nnU-Net reader class for it (``"Tiff3DIO"``, ``"SimpleITKIO"``...).
    converted : bool
        True when the folder's files are written in another format (not linked or copied).
    spacing_files : bool
        True when nnU-Net reads the spacing from a ``<case>.json`` beside each file (TIFF).
    """

    file_ending: str
    reader: str
    converted: bool

    @property
    def spacing_files(self) -> bool:
        return self.reader == "Tiff3DIO"

    @property
    def float32_spacing(self) -> bool:
        """True when the files store their spacing as float32 (NIfTI's ``pixdim``): nnU-Net
        then reads 0.3 as 0.30000001192092896, and so must the plan of the plain folder."""
        return self.file_ending in FLOAT32_SPACING_ENDINGS


def nnunet_format(suffixes: Iterable[str | None], two_d: bool) -> NnUNetFormat:
    """The export format of a plain folder whose files end in ``suffixes`` (images and masks).

    Parameters
    ----------
    suffixes : iterable of str
        Every file's image suffix (:func:`napari_autoconfig.readers.image_suffix`, lower case);
        None for something that is not a single file (a case split over channel files, an
        OME-Zarr folder is ``".zarr"``).
    two_d : bool
        True for 2D images.
    """
    found = set(suffixes)
    if len(found) == 1:
        (only,) = found
        if only in KEPT_ENDINGS and not (two_d and only in _3D_ONLY):
            return NnUNetFormat(only, KEPT_ENDINGS[only], converted=False)
    return NnUNetFormat(CONVERTED_ENDING, KEPT_ENDINGS[CONVERTED_ENDING], converted=True)
