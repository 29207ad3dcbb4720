"""Which reader nnU-Net v2 picks for a file ending, and the shape and spacing it sees.

nnunetv2 2.8.1 reads a raw dataset through one reader/writer class chosen by the dataset's
``file_ending``; each returns the image as (channels, z, y, x) with a spacing in the same axis
order. This module says which class nnU-Net would choose and what geometry it would report, from
our own file headers (:func:`napari_autoconfig.readers.read_header`): nothing is read twice.
"""

from __future__ import annotations

from ..readers import ImageHeader

#: The reader nnU-Net picks for a file ending (its registry's first match that reads 3D files).
READER_OF_ENDING = {
    ".nii.gz": "SimpleITKIO",
    ".nrrd": "SimpleITKIO",
    ".mha": "SimpleITKIO",
    ".gipl": "SimpleITKIO",
    ".nii": "NibabelIO",
    ".tif": "Tiff3DIO",
    ".tiff": "Tiff3DIO",
    ".png": "NaturalImage2DIO",
    ".bmp": "NaturalImage2DIO",
}


def nnunet_geometry(header: ImageHeader) -> tuple[tuple[int, ...], tuple[float, ...], int]:
    """Spatial shape, spacing and channel count of a file as nnU-Net's SimpleITK reader has them.

    3D: shape (Z, Y, X), spacing ``|GetSpacing()|`` reversed; 2D: shape (1, Y, X), spacing
    ``(999 * max(x, y), y, x)``; a 4D file's first axis is channels. Files without a spacing
    (plain TIFF, ``.npy``) get 1 per axis, as nnU-Net's TIFF reader without its json.
    """
    zyx = header.spatial_shape_zyx
    spacing = header.spacing_zyx
    if header.is_2d:
        yx = tuple(abs(float(v)) for v in spacing[-2:]) if spacing else (1.0, 1.0)
        # nnU-Net multiplies SimpleITK's (x, y) maximum by 999
        return (1, *zyx[1:]), (max(yx[::-1]) * 999, *yx), header.channels
    values = tuple(abs(float(v)) for v in spacing) if spacing else (1.0, 1.0, 1.0)
    return zyx, values, header.channels
