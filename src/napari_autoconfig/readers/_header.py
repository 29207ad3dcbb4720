"""The header facts of one image file (:class:`ImageHeader`), in the array order the package
presents; every format's reader fills one in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ImageHeader:
    """What the header of one image file says, in the array order the package presents.

    Attributes
    ----------
    path : Path
        The file read (an OME-Zarr folder; for a URL, a ``Location``: the URL as text; for an
        image over several channel files, the first of them).
    format : str
        "tiff", "ome-tiff", "imagej-tiff", "nifti", "metaimage", "nrrd", "npy" or "ome-zarr" (the
        first file's format for an image over several channel files).
    shape : tuple of int
        Shape of the presented pixel array, numpy C order, channel first.
    axes : str
        One letter of "CZYX" per entry of ``shape``.
    dtype : numpy.dtype
        Native-byte-order dtype of the presented array.
    spacing_xyz : tuple of float or None
        The spacing biom3d reads, in its (x, y, z) order: (x, y) for a 2D image in formats that
        store two, three values for an ImageJ TIFF with a ``spacing`` entry, 2D included (as
        biom3d reads it); None when biom3d sees no spacing. This is what ``MEDIAN_SPACING`` is
        made of.
    unit : str or None
        Unit of the spacing when known ("micron", "mm").
    physical_spacing_zyx : tuple of float or None
        A spacing the file states that biom3d does not read (OME-TIFF ``PhysicalSize``, OME-Zarr
        scales), one value per spatial axis, (z, y, x) or (y, x): shown to people (napari scale,
        per-image table), never used for ``MEDIAN_SPACING``. None when there is none.
    layout : object
        Where the pixels lie in the file, found while reading the header, so that reading pixels
        does not parse the header again (private to the readers; not compared, not shown).
    """

    path: Path
    format: str
    shape: tuple[int, ...]
    axes: str
    dtype: np.dtype
    spacing_xyz: tuple[float, ...] | None
    unit: str | None
    layout: object = field(default=None, compare=False, repr=False)
    physical_spacing_zyx: tuple[float, ...] | None = None

    def _axis_len(self, letter: str) -> int:
        return self.shape[self.axes.index(letter)] if letter in self.axes else 1

    @property
    def spatial_shape_zyx(self) -> tuple[int, int, int]:
        """(Z, Y, X) sizes; Z is 1 for a 2D image."""
        return (self._axis_len("Z"), self._axis_len("Y"), self._axis_len("X"))

    @property
    def channels(self) -> int:
        """Number of channels (1 when there is no C axis)."""
        return self._axis_len("C")

    @property
    def is_2d(self) -> bool:
        """True when the image has no Z axis."""
        return "Z" not in self.axes

    @property
    def size(self) -> tuple[int, ...]:
        """biom3d's median shape: (C, Z, Y, X) with channels, else (Z, Y, X); Z = 1 in 2D."""
        zyx = self.spatial_shape_zyx
        return (self.channels, *zyx) if self.channels > 1 else zyx

    @property
    def spacing_zyx(self) -> tuple[float, ...] | None:
        """The spacing to show people and give napari as ``scale``: one value per spatial axis,
        (z, y, x) or (y, x) for 2D, or None.

        biom3d's spacing reversed when it reads one (a 2D ImageJ file's third value, its
        ``spacing`` entry, is left out: the image has no z); else the file's own physical spacing
        (:attr:`physical_spacing_zyx`, e.g. OME-TIFF ``PhysicalSize``).
        """
        if self.spacing_xyz is not None:
            return tuple(reversed(self.spacing_xyz))[-(2 if self.is_2d else 3) :]
        return self.physical_spacing_zyx

    @property
    def biom3d_sees_spacing(self) -> bool:
        """Whether biom3d reads a spacing from this file (else its ``MEDIAN_SPACING`` skips it)."""
        return self.spacing_xyz is not None

    @property
    def spacing_note(self) -> str:
        """Words for the per-image table: where the spacing shown comes from, or that it is none.

        ``""`` when biom3d reads the spacing shown; "biom3d sees no spacing" when only the file's
        own metadata gives one (the napari scale uses it, ``MEDIAN_SPACING`` does not); "no
        spacing" when neither has one.
        """
        if self.spacing_xyz is not None:
            return ""
        if self.physical_spacing_zyx is not None:
            return "biom3d sees no spacing"
        return "no spacing"

    @property
    def nbytes(self) -> int:
        """Bytes of the whole presented array."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
