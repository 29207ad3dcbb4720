"""The npe2 reader: NIfTI, MetaImage and NRRD files open in napari at their physical voxel size.

napari opens none of these formats by itself. This reader hands them over with the file's voxel
spacing as the layer ``scale`` in numpy (z, y, x) order, so an anisotropic volume looks as it is
and the patch boxes of the widget sit on it in physical units.

Claimed suffixes (case-insensitive): ``.nii``, ``.nii.gz``, ``.mha``, ``.mhd``, ``.nrrd``,
``.nhdr``. TIFF is deliberately not claimed: napari's builtin reader opens ImageJ and OME TIFFs,
and a plugin must not override it.

What the layers look like:

- ``scale`` is :attr:`ImageHeader.spacing_zyx` exactly as the file stores it (a float32 0.8 in a
  NIfTI is 0.800000011920929); no scale when the file has no spacing.
- A multichannel image ((C, Z, Y, X) or (C, Y, X): a 4D NIfTI or vector pixels) is passed with
  ``channel_axis=0``, so napari shows one layer per channel, each with the spatial scale.
- ``metadata`` holds the spacing unit (``"unit"``, e.g. ``"mm"`` -- ITK's convention for these
  formats -- or the unit an NRRD states), the spacing in biom3d's (x, y, z) order, the format and
  the path. The unit is not given as the layer's ``units``: napari then ignores units whenever the
  viewer also holds layers without them (the widget's box layers), with a warning each time.
- Image or Labels: always an Image layer, except when the file name contains ``mask`` or
  ``label`` (any case) and the pixels are integers; then a Labels layer. A multichannel file is
  always an Image (Labels have no channel axis). Any other integer image (a mask named otherwise)
  opens as an Image, which napari converts with Layers > Convert to Labels.

Errors follow napari's convention: :func:`get_reader` looks at the file name only and returns
None for anything it does not claim; the returned function raises the core's
:class:`~napari_autoconfig.errors.ImageReadError` (which names the file, the problem and the fix)
when the file turns out unreadable, and napari shows that message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..readers import ImageHeader, image_suffix, read_array, read_header
from .warmup import settled

# The formats napari cannot open by itself; TIFF and .npy stay with napari's builtins.
READER_SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")
# Name parts that mark a label image (with integer pixels) to be opened as Labels.
LABEL_NAME_HINTS: tuple[str, ...] = ("mask", "label")

LayerData = tuple[np.ndarray, dict, str]
ReaderFunction = Callable[[str | Sequence[str]], list[LayerData]]


def get_reader(path: str | Sequence[str]) -> ReaderFunction | None:
    """Return :func:`read_layers` when every path has a claimed suffix, else None.

    Looks at the names only (napari calls this for every file it is asked to open); the file is
    read, and its problems reported, by the returned function.

    Parameters
    ----------
    path : str or sequence of str
        One path, or the list napari passes when several files are opened together.

    Returns
    -------
    callable or None
    """
    paths = [path] if isinstance(path, str | Path) else list(path)
    if not paths or not all(_claimed(p) for p in paths):
        return None
    return read_layers


def read_layers(path: str | Sequence[str]) -> list[LayerData]:
    """Read each file whole into one napari layer-data tuple (several for a multichannel image).

    Raises
    ------
    ImageReadError
        A file that is missing, empty, truncated or not an image of its suffix.
    """
    paths = [path] if isinstance(path, str | Path) else list(path)
    settled()  # napari adds the layers next, on this thread: never during the dock's warm-up
    return [layer_data(read_header(p)) for p in paths]


def layer_data(header: ImageHeader) -> LayerData:
    """The (data, kwargs, layer type) tuple napari adds for one file, read whole."""
    data = read_array(header)
    kind = layer_type(header)
    kwargs: dict = {
        "name": file_stem(header.path),
        "metadata": {
            "unit": header.unit,
            "spacing_xyz": header.spacing_xyz,
            "format": header.format,
            "path": str(header.path),
        },
    }
    if header.spacing_zyx is not None:
        # spatial axes only: with channel_axis napari gives every channel layer this scale
        kwargs["scale"] = tuple(float(s) for s in header.spacing_zyx)
    if header.channels > 1:
        kwargs["channel_axis"] = header.axes.index("C")
    return data, kwargs, kind


def layer_type(header: ImageHeader) -> str:
    """Return "labels" for an integer, single-channel file named as a mask / label, else "image"."""
    name = header.path.name.lower()
    if (
        header.channels == 1
        and np.issubdtype(header.dtype, np.integer)
        and any(hint in name for hint in LABEL_NAME_HINTS)
    ):
        return "labels"
    return "image"


def _claimed(path: str | Path) -> bool:
    return image_suffix(path) in READER_SUFFIXES


def file_stem(path: Path) -> str:
    """The file name without its image suffix ("brain" for brain.nii.gz)."""
    suffix = image_suffix(path) or path.suffix
    return path.name[: len(path.name) - len(suffix)]
