"""One row per image of a fingerprint: what the file is, and what about it deserves a look.

The rows are made from the fingerprint's per-image records (:class:`~.fingerprint.CaseRecord`), so
they come from the same single pass over the files as the dataset summary: nothing is read again.
Shapes and spacings are in numpy order, (z, y, x); a 2D image has z = 1 and a (y, x) spacing.

A flag is a sentence for people. An image is flagged when

- it is smaller than the training patch along an axis (biom3d pads it, so part of every patch
  drawn from it is padding);
- its spacing is 2 times or more off the median spacing along an axis, or it has no spacing while
  other images have one (the network then sees its objects at another size);
- its mask has no foreground voxel (it teaches background only, and adds nothing to the intensity
  statistics);
- its mask's largest label differs from the one most masks share (a 0/255 mask among 0/1 masks:
  biom3d would see a class 255);
- its channel count or pixel type differs from the one most images share;
- some of its voxels drawn inside the mask are NaN or infinite (they are left out of the
  intensity statistics; its own percentiles are those of its finite values);
- (only when nnU-Net's plan was made) nnU-Net would resample it by 2 times or more along an axis:
  its spacing against nnU-Net's target spacing (the network then sees it enlarged or shrunk, and
  a shrunk image loses detail).

"Most" means more than half of the images (or of the non-empty masks): with no such majority
there is no "rest" to differ from, and nothing is flagged.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .fingerprint import CaseRecord, Fingerprint
    from .planners.biom3d import Plan
    from .planning import NnUNetResampling

AXES_ZYX = ("z", "y", "x")
#: An axis' spacing this many times larger or smaller than the median's is flagged.
SPACING_FACTOR = 2.0

#: Column titles of :meth:`ImageRow.cells`, for tables (the CLI's, the widget's, the CSV's).
COLUMNS = (
    "image",
    "flags",
    "shape (z, y, x)",
    "channels",
    "spacing (z, y, x)",
    "dtype",
    "foreground %",
    "p0.5",
    "p99.5",
    "mask",
)


@dataclass(frozen=True)
class ImageRow:
    """What the table shows about one image.

    Attributes
    ----------
    index : int
        Position of the image in the dataset (the fingerprint's order, sorted by path).
    image, mask : str
        Paths relative to the images (masks) folder, with ``/``; ``mask`` is ``""`` without one.
    image_path, mask_path : Path or None
        The files themselves (to open them).
    shape_zyx : tuple of int
        Spatial size (z, y, x), z = 1 for a 2D image.
    channels : int
        Number of channels (1 without a channel axis).
    spacing_zyx : tuple of float or None
        Voxel spacing in numpy order, (z, y, x) or (y, x); None when the file gives none.
    unit : str or None
        Unit of the spacing, as the file states it ("micron", "mm").
    dtype : str
        Pixel type ("uint8", "float32").
    foreground_percent : float or None
        Share of the mask's voxels that are > 0, in percent; None without a mask.
    perc_005, perc_995 : float or None
        0.5th and 99.5th percentiles of this image's own sampled foreground voxels; None when
        nothing was sampled (no mask, or an empty one).
    mask_max : int or None
        Largest label value in the mask; None without a mask.
    flags : tuple of str
        What deserves a look, in words; empty when nothing does.
    """

    index: int
    image: str
    mask: str
    image_path: Path
    mask_path: Path | None
    shape_zyx: tuple[int, int, int]
    channels: int
    spacing_zyx: tuple[float, ...] | None
    unit: str | None
    dtype: str
    foreground_percent: float | None
    perc_005: float | None
    perc_995: float | None
    mask_max: int | None
    flags: tuple[str, ...] = ()

    @property
    def flagged(self) -> bool:
        """Whether any flag is raised."""
        return bool(self.flags)

    def cells(self) -> tuple[str, ...]:
        """The row as text, one entry per :data:`COLUMNS` title."""
        return (
            self.image,
            "; ".join(self.flags),
            " x ".join(str(v) for v in self.shape_zyx),
            str(self.channels),
            spacing_text(self.spacing_zyx, self.unit),
            self.dtype,
            _number(self.foreground_percent, ".3g"),
            _number(self.perc_005, ".6g"),
            _number(self.perc_995, ".6g"),
            self.mask,
        )

    def as_dict(self) -> dict[str, object]:
        """The row as plain JSON values (the command line's ``--json`` ``images`` entries)."""
        return {
            "index": self.index,
            "image": self.image,
            "mask": self.mask or None,
            "shape_zyx": list(self.shape_zyx),
            "channels": self.channels,
            "spacing_zyx": list(self.spacing_zyx) if self.spacing_zyx is not None else None,
            "unit": self.unit,
            "dtype": self.dtype,
            "foreground_percent": self.foreground_percent,
            "perc_005": self.perc_005,
            "perc_995": self.perc_995,
            "mask_max": self.mask_max,
            "flags": list(self.flags),
        }


def spacing_text(spacing_zyx: Sequence[float] | None, unit: str | None) -> str:
    """``"2 x 0.5 x 0.5 µm"``; ``"none"`` without a spacing. "micron" is written µm."""
    if spacing_zyx is None:
        return "none"
    shown = {"micron": "µm", "um": "µm", "microns": "µm"}.get(unit or "", unit)
    return " x ".join(f"{v:g}" for v in spacing_zyx) + (f" {shown}" if shown else "")


def _number(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _majority(values: Sequence[Hashable]) -> Hashable | None:
    """The value more than half of ``values`` share, else None."""
    if not values:
        return None
    value, count = Counter(values).most_common(1)[0]
    return value if 2 * count > len(values) else None


def _common_root(paths: Sequence[Path]) -> Path | None:
    try:
        return Path(os.path.commonpath([str(p.parent) for p in paths])) if paths else None
    except ValueError:  # paths on different drives
        return None


def _relative(path: Path | None, root: Path | None) -> str:
    if path is None:
        return ""
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            pass
    return Path(path).name


def _size_flags(shape_zyx: Sequence[int], plan: Plan | None) -> list[str]:
    if plan is None:
        return []
    return [
        f"smaller than the patch along {axis} ({size} < {patch}): training pads it"
        for axis, size, patch in zip(AXES_ZYX, shape_zyx, plan.patch)
        if size < patch
    ]


def _spacing_flags(record: CaseRecord, median_zyx: Sequence[float] | None, others: int) -> list:
    spacing = record.image.spacing_zyx
    if spacing is None:
        return ["no spacing while other images have one"] if others else []
    if median_zyx is None or len(median_zyx) != len(spacing):
        return []
    axes = AXES_ZYX[-len(spacing) :]
    flags = []
    for axis, own, median in zip(axes, spacing, median_zyx):
        if own <= 0 or median <= 0:
            continue
        ratio = own / median
        if ratio >= SPACING_FACTOR or ratio <= 1 / SPACING_FACTOR:
            flags.append(f"spacing along {axis} is {ratio:.2g}x the median ({own:g} vs {median:g})")
    return flags


def _resample_flags(own: Sequence[float], target_zyx: Sequence[float]) -> list:
    """nnU-Net resamples every image to its target spacing: say where that is a 2x change or more.

    Compared per axis, the case's spacing as nnU-Net reads it against the spacing its
    configuration trains at, over the axes the configuration has (a 2D image's (y, x): nnU-Net's
    2d configuration never resamples z, whose spacing it sets to 999 times the largest).
    """
    own = tuple(own)
    n = min(len(own), len(target_zyx))
    if n == 0:
        return []
    flags = []
    for axis, mine, target in zip(AXES_ZYX[-n:], own[-n:], tuple(target_zyx)[-n:]):
        if mine <= 0 or target <= 0:
            continue
        factor = mine / target  # > 1: nnU-Net enlarges the image along the axis (upsamples)
        if factor >= SPACING_FACTOR:
            flags.append(
                f"nnU-Net upsamples it {factor:.2g}x along {axis} (spacing {mine:g} vs its "
                f"target {target:g})"
            )
        elif factor <= 1 / SPACING_FACTOR:
            flags.append(
                f"nnU-Net downsamples it {1 / factor:.2g}x along {axis} (spacing {mine:g} vs its "
                f"target {target:g})"
            )
    return flags


def image_rows(
    fingerprint: Fingerprint,
    plan: Plan | None = None,
    images_root: str | Path | None = None,
    masks_root: str | Path | None = None,
    *,
    nnunet_resampling: NnUNetResampling | None = None,
) -> tuple[ImageRow, ...]:
    """One :class:`ImageRow` per image of the fingerprint, in dataset order, with its flags.

    Parameters
    ----------
    fingerprint : Fingerprint
        The fingerprint (its records give every value: no file is read).
    plan : Plan, optional
        The plan; without one, no image is flagged as smaller than the patch.
    images_root, masks_root : str or Path, optional
        The folders the paths are shown relative to; default: the folder the files share.
    nnunet_resampling : NnUNetResampling, optional
        From nnU-Net's planner (:attr:`~napari_autoconfig.planning.TrainingPlan.nnunet_resampling`),
        when its plan was made: each case's spacing as nnU-Net reads it and the spacing it trains
        at; images it would resample by 2x or more along an axis are flagged.

    Returns
    -------
    tuple of ImageRow
    """
    records = fingerprint.records
    image_root = Path(images_root) if images_root else _common_root([r.image.path for r in records])
    masks = [r.mask_path for r in records if r.mask_path is not None]
    mask_root = Path(masks_root) if masks_root else _common_root(masks)
    median_spacing = fingerprint.median_spacing_zyx
    with_spacing = sum(r.image.spacing_xyz is not None for r in records)
    usual_channels = _majority([r.image.channels for r in records])
    usual_dtype = _majority([str(r.image.dtype) for r in records])
    usual_labels = _majority([r.mask_max for r in records if r.mask_path and r.foreground])

    resampling = nnunet_resampling
    if resampling is not None and len(resampling.spacings_zyx) != len(records):
        resampling = None  # not the same cases: nothing to say about them
    rows = []
    for index, record in enumerate(records):
        header = record.image
        has_mask = record.mask_path is not None
        flags = _size_flags(header.spatial_shape_zyx, plan)
        flags += _spacing_flags(record, median_spacing, with_spacing)
        if resampling is not None:  # nnU-Net's own spacing of the case, from its planner
            flags += _resample_flags(resampling.spacings_zyx[index], resampling.target_zyx)
        if has_mask and record.foreground == 0:
            flags.append("mask without foreground")
        elif has_mask and usual_labels is not None and record.mask_max != usual_labels:
            flags.append(
                f"mask labels up to {record.mask_max} where most masks go up to {usual_labels}"
            )
        if usual_channels is not None and header.channels != usual_channels:
            flags.append(f"{header.channels} channel(s) where most images have {usual_channels}")
        if usual_dtype is not None and str(header.dtype) != usual_dtype:
            flags.append(f"pixel type {header.dtype} where most images are {usual_dtype}")
        voxels = int(np.prod(header.shape, dtype=np.int64))
        samples = record.samples
        if record.non_finite:
            flags.append(
                f"NaN or infinite voxels: {record.non_finite} of {samples.size} drawn values "
                "(left out of the statistics)"
            )
            samples = samples[np.isfinite(samples)]
        rows.append(
            ImageRow(
                index=index,
                image=_relative(header.path, image_root),
                mask=_relative(record.mask_path, mask_root),
                image_path=Path(header.path),
                mask_path=Path(record.mask_path) if has_mask else None,
                shape_zyx=tuple(int(v) for v in header.spatial_shape_zyx),
                channels=int(header.channels),
                spacing_zyx=header.spacing_zyx,
                unit=header.unit if header.spacing_xyz is not None else None,
                dtype=str(header.dtype),
                foreground_percent=100.0 * record.foreground / voxels if has_mask else None,
                perc_005=float(np.percentile(samples, 0.5)) if samples.size else None,
                perc_995=float(np.percentile(samples, 99.5)) if samples.size else None,
                mask_max=int(record.mask_max) if has_mask else None,
                flags=tuple(flags),
            )
        )
    return tuple(rows)


def rows_csv(rows: Sequence[ImageRow]) -> str:
    """The rows as CSV text (a header line, then one line per row, the table's columns)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row.cells())
    return out.getvalue()


def rows_text(rows: Sequence[ImageRow], width: Callable[[str], int] = len) -> str:
    """The rows as an aligned plain-text table (the command line's ``--per-image``)."""
    table = [COLUMNS, *(row.cells() for row in rows)]
    widths = [max(width(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell + " " * (w - width(cell)) for cell, w in zip(line, widths)).rstrip()
        for line in table
    ]
    return "\n".join(lines)
