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
        The file read.
    format : str
        "tiff", "ome-tiff", "imagej-tiff", "nifti", "metaimage", "nrrd" or "npy".
    shape : tuple of int
        Shape of the presented pixel array, numpy C order, channel first.
    axes : str
        One letter of "CZYX" per entry of ``shape``.
    dtype : numpy.dtype
        Native-byte-order dtype of the presented array.
    spacing_xyz : tuple of float or None
        biom3d's spacing, (x, y, z) or (x, y) for 2D; None when the file has none.
    unit : str or None
        Unit of the spacing when known ("micron", "mm").
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
        """The spacing in (z, y, x) order (for display), or None."""
        return None if self.spacing_xyz is None else tuple(reversed(self.spacing_xyz))

    @property
    def nbytes(self) -> int:
        """Bytes of the whole presented array."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
