"""Where MONAI's RAS array lies in our (z, y, x) arrays: its axis order, flips and spacing.

MONAI's DataAnalyzer loads a NIfTI file with nibabel (the array in the file's (i, j, k) order,
the affine nibabel picks: the sform where its code is set, else the qform, else the pixdim
diagonal with x flipped, as Analyze) and turns it to RAS (``Orientationd(axcodes="RAS")``): each
array axis goes to the world axis it points along most, flipped where it points backwards. The
spacing it reports is then the column lengths of the turned affine. Here the same geometry is read
from the NIfTI header itself (no nibabel) and given as :class:`RasGeometry`: which of our (z, y,
x) axes each RAS axis is, and whether it is flipped.

MetaImage and NRRD: MONAI reads them through ITK, whose affine is the header's direction times
its spacing, made RAS by negating its first two rows (ITK's world is LPS); the direction is read
here from the header (SimpleITK's ``ReadImageInformation``, no pixels). Other formats (TIFF,
.npy, OME-Zarr) are taken as ITK would give them with the identity direction.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..readers import ImageHeader


@dataclass(frozen=True)
class RasGeometry:
    """MONAI's RAS array of an image, in terms of our (z, y, x) array.

    Attributes
    ----------
    order_zyx : tuple of int
        For each RAS axis (0, 1, 2), the axis of our (z, y, x) array it is.
    flips : tuple of bool
        For each RAS axis, whether it runs backwards along that (z, y, x) axis.
    spacing_ras : tuple of float
        The spacing MONAI reports, in RAS axis order.
    """

    order_zyx: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    spacing_ras: tuple[float, float, float]

    def shape_ras(self, shape_zyx) -> list[int]:
        return [int(shape_zyx[a]) for a in self.order_zyx]

    def to_ras(self, array_zyx: np.ndarray) -> np.ndarray:
        """A view of a (z, y, x) array in MONAI's RAS order."""
        view = array_zyx.transpose(self.order_zyx)
        flips = tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)
        return view[flips]

    def from_ras(self, array_ras: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_ras`: a view of a RAS array in this file's (z, y, x) order."""
        flips = tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)
        return array_ras[flips].transpose(np.argsort(self.order_zyx))


def _nifti_affine(path: Path) -> np.ndarray | None:
    """The affine nibabel gives a NIfTI-1 file (sform, else qform, else Analyze's), or None
    where the header is not NIfTI-1."""
    name = path.name.lower()
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read(348)
    except OSError:
        return None
    if len(raw) < 348:
        return None
    for order in "<>":
        if struct.unpack(order + "i", raw[:4])[0] == 348:
            break
    else:
        return None
    pixdim = np.array(struct.unpack(order + "8f", raw[76:108]), dtype=np.float64)
    qform_code, sform_code = struct.unpack(order + "2h", raw[252:256])
    if sform_code != 0:
        rows = np.array(struct.unpack(order + "12f", raw[280:328]), dtype=np.float64)
        return rows.reshape(3, 4)[:, :3]
    zooms = pixdim[1:4].copy()
    if qform_code != 0:
        b, c, d = (float(np.float32(v)) for v in struct.unpack(order + "3f", raw[256:268]))
        a2 = 1.0 - (b * b + c * c + d * d)
        a = np.sqrt(a2) if a2 > 1e-7 else 0.0  # nibabel's threshold: a 180-degree turn
        rotation = np.array(
            [
                [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
                [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
            ]
        )
        if pixdim[0] < 0:  # qfac: the third axis reversed
            zooms[2] = -zooms[2]
        return rotation * zooms
    return np.diag([-zooms[0], zooms[1], zooms[2]])  # no transform: Analyze's LAS


def _io_orientation(matrix: np.ndarray) -> list[tuple[int, int]]:
    """For each array axis, the world axis it points along most and its sign (nibabel's
    ``io_orientation``: the closest rotation first, then the strongest axes chosen greedily)."""
    lengths = np.sqrt((matrix * matrix).sum(axis=0))
    lengths[lengths == 0] = 1
    u, _, vt = np.linalg.svd(matrix / lengths)
    rotation = u @ vt
    result: list[tuple[int, int]] = [(i, 1) for i in range(3)]
    for axis in np.argsort(np.min(-(rotation**2), axis=0)):
        column = rotation[:, axis]
        world = int(np.argmax(np.abs(column)))
        result[axis] = (world, 1 if column[world] >= 0 else -1)
        rotation[world, :] = 0
    return result


def _itk_affine(path: Path) -> np.ndarray | None:
    """MONAI's ITK reader's affine (3 x 3) of a MetaImage or NRRD file: direction times
    spacing, its first two rows negated (LPS to RAS); None where the header is not 3D."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    dimension = reader.GetDimension()
    if dimension < 3:
        return None
    direction = np.array(reader.GetDirection(), dtype=np.float64).reshape(dimension, dimension)
    matrix = direction[:3, :3] @ np.diag(np.array(reader.GetSpacing(), dtype=np.float64)[:3])
    return np.diag([-1.0, -1.0, 1.0]) @ matrix


def ras_geometry(header: ImageHeader) -> RasGeometry:
    """MONAI's RAS geometry of the image ``header`` describes (its first file for a case of
    several channel files)."""
    matrix = None
    if header.format == "nifti":
        matrix = _nifti_affine(Path(header.path))
    elif header.format in ("metaimage", "nrrd"):
        matrix = _itk_affine(Path(header.path))
    if matrix is None:
        spacing = header.spacing_xyz or (1.0, 1.0, 1.0)
        spacing = tuple(float(s) for s in spacing) + (1.0,) * (3 - len(spacing))
        # ITK's identity direction is LPS: MONAI's ITK reader turns it to RAS, x and y flipped
        matrix = np.diag([-spacing[0], -spacing[1], spacing[2]])
    orientation = _io_orientation(matrix)  # per file axis (i, j, k) = our (x, y, z)
    lengths = np.sqrt((matrix * matrix).sum(axis=0))
    order, flips, spacing_ras = [0, 0, 0], [False] * 3, [0.0] * 3
    for file_axis, (world, sign) in enumerate(orientation):
        order[world] = 2 - file_axis  # file axis i is our x (axis 2), k our z (axis 0)
        flips[world] = sign < 0
        spacing_ras[world] = float(lengths[file_axis])
    return RasGeometry(tuple(order), tuple(flips), tuple(spacing_ras))  # type: ignore[arg-type]
