"""How large the objects in the masks are, against the training patch.

A patch that is smaller than an object along an axis never shows that object whole: the network
then learns it only in pieces. This module labels the connected foreground components (mask > 0)
of every mask and reports their count and their median and largest extents, in voxels and in
physical units.

Memory stays bounded whatever the mask's size: a mask is streamed through the readers in slabs of
whole z planes; each slab is labelled on its own with :func:`scipy.ndimage.label`, and labels that
touch across the face between two slabs are merged afterwards (a union-find, solved as the
connected components of a sparse graph). Only one slab of labels, the last plane of the previous
slab and a few numbers per slab label are held at once.

Connectivity: full 26-connectivity in 3D (8 in 2D), voxels touching by a face, an edge or a
corner belong together. That is scikit-image's default connectivity, the one biom3d's
post-processing (``utils/filtering.py``, ``measure.label``) uses when it keeps or removes
components, so the objects counted here are the objects biom3d sees.

Channels: a mask with a channel axis (one-hot, one channel per class) is labelled channel by
channel; components never join across channels. A 2D mask is one plane (Z = 1).

Order: every array and tuple here is (z, y, x) unless its name ends in ``_xyz`` (biom3d's spacing
order, as in the readers' headers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import AutoconfigError, DatasetError, ImageReadError, MaskMismatchError
from .readers import ImageHeader, iter_chunks, read_header

#: Voxels touching by a face, an edge or a corner are one object (scikit-image's default, the
#: connectivity of biom3d's post-processing).
CONNECTIVITY = 26
_STRUCTURE = np.ones((3, 3, 3), dtype=bool)
#: Bytes of labels (int32) per slab: bounds the memory of one mask's labelling.
SLAB_BYTES = 16 * 2**20
AXES_ZYX = ("z", "y", "x")

ProgressCallback = Callable[[int, int, "MaskObjects"], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class ObjectBox:
    """Where one object lies: its mask, its bounding box and its size.

    Attributes
    ----------
    image : Path
        The image the mask belongs to (where the GUI draws the box).
    mask : Path
        The mask the object was found in.
    start_zyx, stop_zyx : tuple of int
        The bounding box in voxels, (z, y, x), ``stop`` exclusive (a Python slice's bounds).
    voxels : int
        Foreground voxels of the object.
    channel : int
        The mask channel it lies in (0 for masks without a channel axis).
    """

    image: Path
    mask: Path
    start_zyx: tuple[int, int, int]
    stop_zyx: tuple[int, int, int]
    voxels: int
    channel: int = 0

    @property
    def extent_zyx(self) -> tuple[int, int, int]:
        """Size of the bounding box in voxels, (z, y, x)."""
        return tuple(b - a for a, b in zip(self.start_zyx, self.stop_zyx))  # type: ignore[return-value]


@dataclass(frozen=True)
class MaskObjects:
    """The objects of one mask.

    Attributes
    ----------
    image, mask : Path
        The pair the objects come from.
    extents_zyx : numpy.ndarray
        (count, 3) int64: each object's bounding-box extent in voxels, (z, y, x).
    voxels : numpy.ndarray
        (count,) int64: each object's number of foreground voxels.
    spacing_zyx : tuple of float or None
        The image's voxel spacing in (z, y, x) order (from its header), None when it has none.
    unit : str or None
        The unit of the spacing.
    largest : ObjectBox or None
        The object with the largest bounding box (most voxels among equal boxes); None when the
        mask is empty.
    """

    image: Path
    mask: Path
    extents_zyx: np.ndarray = field(repr=False, compare=False)
    voxels: np.ndarray = field(repr=False, compare=False)
    spacing_zyx: tuple[float, float, float] | None = None
    unit: str | None = None
    largest: ObjectBox | None = None

    @property
    def count(self) -> int:
        """Number of objects."""
        return int(self.extents_zyx.shape[0])


@dataclass(frozen=True)
class ObjectSummary:
    """The objects of a dataset: count, median and largest extents, the largest object.

    Attributes
    ----------
    records : tuple of MaskObjects
        One per mask, in case order.
    count : int
        Objects over all masks.
    median_extent_zyx, max_extent_zyx : tuple of float / int
        Per axis, the median and the largest bounding-box extent over all objects, in voxels,
        (z, y, x); each axis on its own (the largest z and the largest x may be two objects).
        Zeros when there is no object.
    median_extent_physical_zyx, max_extent_physical_zyx : tuple of float or None
        The same in physical units (each object's extent times its image's spacing), (z, y, x);
        None unless every image gives a spacing.
    unit : str or None
        The unit of the physical extents when all images share one.
    largest : ObjectBox or None
        The object with the largest bounding box in the dataset (physical volume when every image
        has a spacing, else voxels).
    """

    records: tuple[MaskObjects, ...]
    count: int
    median_extent_zyx: tuple[float, float, float]
    max_extent_zyx: tuple[int, int, int]
    median_extent_physical_zyx: tuple[float, float, float] | None = None
    max_extent_physical_zyx: tuple[float, float, float] | None = None
    unit: str | None = None
    largest: ObjectBox | None = None


# --------------------------------------------------------------------------------------------
# One mask


def _slab_plan(header: ImageHeader, slab_bytes: int) -> list[tuple[int, int, int]]:
    """(channel, first z, end z) of each slab, in the file's C order; never across channels."""
    z_size, y_size, x_size = header.spatial_shape_zyx
    planes = max(1, slab_bytes // (4 * y_size * x_size))  # labels are int32
    return [
        (channel, z0, min(z0 + planes, z_size))
        for channel in range(header.channels)
        for z0 in range(0, z_size, planes)
    ]


def _iter_slabs(
    header: ImageHeader, slab_bytes: int, values: bool = False
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (channel, first z, slab (nz, Y, X)) in order, streaming the file.

    The slab is the foreground (``> 0``, bool), or with ``values`` the voxels themselves (the
    file's dtype). The readers give C-order pieces of any length; they are cut into whole planes
    here. Two files of one shape are cut into the same slabs (the plan depends on the shape only).
    """
    _, y_size, x_size = header.spatial_shape_zyx
    plane = y_size * x_size
    plan = iter(_slab_plan(header, slab_bytes))
    channel, z0, z1 = next(plan)
    dtype = header.dtype if values else bool
    buffer = np.empty((z1 - z0) * plane, dtype=dtype)
    filled = 0
    for chunk in iter_chunks(header, max_bytes=min(slab_bytes, 8 * 2**20)):
        flat = chunk.ravel()
        pos = 0
        while pos < flat.size:
            n = min(buffer.size - filled, flat.size - pos)
            if values:
                buffer[filled : filled + n] = flat[pos : pos + n]
            else:
                np.greater(flat[pos : pos + n], 0, out=buffer[filled : filled + n])
            filled += n
            pos += n
            if filled == buffer.size:
                yield channel, z0, buffer.reshape(z1 - z0, y_size, x_size)
                nxt = next(plan, None)
                if nxt is None:
                    return
                channel, z0, z1 = nxt
                buffer = np.empty((z1 - z0) * plane, dtype=dtype)
                filled = 0
    raise ImageReadError(
        f"The file {str(header.path)!r} ended before all the voxels its header announces were "
        "read. The file is damaged or truncated: export it again."
    )


def _face_pairs(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """(n, 2) pairs of global labels touching across two adjacent planes (26-connectivity)."""
    y_size, x_size = previous.shape
    pairs = []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            # previous[y, x] touches current[y + dy, x + dx]
            a = previous[max(0, -dy) : y_size - max(0, dy), max(0, -dx) : x_size - max(0, dx)]
            b = current[max(0, dy) : y_size + min(0, dy), max(0, dx) : x_size + min(0, dx)]
            both = (a > 0) & (b > 0)
            if both.any():
                pairs.append(np.stack([a[both], b[both]], axis=1))
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(pairs)
    if pairs.max() >= 2**31:  # too many labels to pack two in one int64: the slow way
        return np.unique(pairs, axis=0)
    # one int64 per pair: a 1D unique is many times faster than numpy's row-wise one
    packed = np.unique(pairs[:, 0] << 32 | pairs[:, 1])
    return np.stack([packed >> 32, packed & (2**32 - 1)], axis=1)


def _merge(
    n_labels: int, pairs: list[np.ndarray], starts: np.ndarray, stops: np.ndarray, voxels
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge the slab labels (global, 1-based) that ``pairs`` join across slab faces.

    Returns, per object: bounding-box start and stop (z, y, x), voxels, and the 0-based index of
    one of its slab labels (to look up per-label facts such as the channel).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.concatenate(pairs) if pairs else np.empty((0, 2), dtype=np.int64)
    if not len(edges):
        return starts, stops, voxels, np.arange(n_labels)
    # labels are 1-based; the graph's nodes are label - 1
    graph = coo_matrix(
        (np.ones(len(edges), dtype=np.int8), (edges[:, 0] - 1, edges[:, 1] - 1)),
        shape=(n_labels, n_labels),
    )
    _, component = connected_components(graph, directed=False)
    order = np.argsort(component, kind="stable")
    bounds = np.flatnonzero(np.diff(component[order], prepend=-1))
    merged_starts = np.minimum.reduceat(starts[order], bounds, axis=0)
    merged_stops = np.maximum.reduceat(stops[order], bounds, axis=0)
    merged_voxels = np.add.reduceat(voxels[order], bounds)
    return merged_starts, merged_stops, merged_voxels, order[bounds]


def _box_size(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    return np.prod(stops - starts, axis=1, dtype=np.int64)


@dataclass(frozen=True)
class _Components:
    """Every connected component of one mask, one entry per component (C order of discovery
    after merging across slabs): bounding box (z, y, x), voxels, channel and mask value (the
    value is 1 for every component when the mask was labelled as foreground)."""

    starts: np.ndarray
    stops: np.ndarray
    voxels: np.ndarray
    channel: np.ndarray
    value: np.ndarray


def _label_foreground(slab: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """Slab labels of the voxels > 0 (one component may hold several values); all valued 1."""
    from scipy import ndimage

    labels, n = ndimage.label(slab, structure=_STRUCTURE)
    return labels, n, np.ones(n, dtype=np.int64)


def _value_keys(slab: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The slab as non-negative keys, 0 for background, and the mask value of each key (None:
    the key is the value). Negative, float or huge values are ranked instead."""
    if slab.dtype.kind in "ub" or (
        slab.dtype.kind == "i" and slab.size and slab.min() >= 0 and slab.max() < 2**24
    ):
        return slab, None
    values = slab.astype(np.int64, copy=False)  # masks are integer classes; floats truncated
    found, rank = np.unique(values, return_inverse=True)
    keys = rank.reshape(slab.shape) + 1
    keys[values == 0] = 0
    return keys, found


def _label_values(slab: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """Slab labels of the components of each non-zero value: voxels join only voxels of their
    own value (as scikit-image's ``measure.label`` connects them). Each value is labelled inside
    its own bounding box, so instance masks (hundreds of small objects) cost about one pass."""
    from scipy import ndimage

    keys, key_values = _value_keys(slab)
    labels = np.zeros(slab.shape, dtype=np.int32)
    values: list[np.ndarray] = []
    n = 0
    for key, box in enumerate(ndimage.find_objects(keys), start=1):
        if box is None:
            continue
        own = keys[box] == key
        parts, found = ndimage.label(own, structure=_STRUCTURE)
        inside = labels[box]
        inside[own] = parts[own] + n
        values.append(np.full(found, key if key_values is None else key_values[key - 1]))
        n += found
    value_of = np.concatenate(values).astype(np.int64) if values else np.empty(0, np.int64)
    return labels, n, value_of


def _label_slabs(
    mask: ImageHeader,
    slab_bytes: int,
    by_value: bool = False,
    on_slab: Callable[[int, int, np.ndarray], None] | None = None,
) -> _Components:
    """Label a mask slab by slab and merge the components that touch across slab faces.

    ``by_value``: components of each mask value on their own (two touching values are two
    components), else of the voxels > 0. ``on_slab(channel, z0, values)`` sees each slab's mask
    values (only with ``by_value``), e.g. to read the image under them in step.
    """
    from scipy import ndimage

    starts: list[np.ndarray] = []
    stops: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    channels: list[np.ndarray] = []
    values: list[np.ndarray] = []
    pairs: list[np.ndarray] = []
    total = 0
    last_plane: np.ndarray | None = None
    last_key: tuple[int, int] | None = None  # (channel, z just after the previous slab)
    for channel, z0, slab in _iter_slabs(mask, slab_bytes, values=by_value):
        if on_slab is not None:
            on_slab(channel, z0, slab)
        labels, n, value_of = _label_values(slab) if by_value else _label_foreground(slab)
        if n:
            boxes = ndimage.find_objects(labels)
            lo = np.array([[s.start for s in box] for box in boxes], dtype=np.int64)
            hi = np.array([[s.stop for s in box] for box in boxes], dtype=np.int64)
            lo[:, 0] += z0
            hi[:, 0] += z0
            starts.append(lo)
            stops.append(hi)
            # plane by plane: bincount casts to int64, a copy twice the labels' size at once
            counts = np.zeros(n + 1, dtype=np.int64)
            for plane in labels:
                counts += np.bincount(plane.ravel(), minlength=n + 1)
            sizes.append(counts[1:])
            channels.append(np.full(n, channel, dtype=np.int64))
            values.append(value_of)
        first = labels[0].astype(np.int64)
        first[first > 0] += total
        if last_plane is not None and last_key == (channel, z0):
            pairs.append(_face_pairs(last_plane, first))
        last_plane = labels[-1].astype(np.int64)
        last_plane[last_plane > 0] += total
        last_key = (channel, z0 + slab.shape[0])
        total += n
        del labels
    if total == 0:
        empty = np.empty(0, dtype=np.int64)
        box = np.empty((0, 3), dtype=np.int64)
        return _Components(box, box, empty, empty, empty)
    value_of = np.concatenate(values)
    if by_value and pairs:
        # components of two values touching across a slab face stay apart
        pairs = [p[value_of[p[:, 0] - 1] == value_of[p[:, 1] - 1]] for p in pairs]
    lo, hi, vox, first_label = _merge(
        total, pairs, np.concatenate(starts), np.concatenate(stops), np.concatenate(sizes)
    )
    return _Components(lo, hi, vox, np.concatenate(channels)[first_label], value_of[first_label])


def _spacing_zyx(header: ImageHeader) -> tuple[float, float, float] | None:
    spacing = header.spacing_zyx
    if spacing is None:
        return None
    return (1.0, *spacing) if len(spacing) == 2 else tuple(spacing)  # type: ignore[return-value]


def _check_pair(image: ImageHeader, mask: ImageHeader, label_mask: bool = False) -> None:
    """``label_mask``: a mask without channels may also belong to a multi-channel image."""
    if label_mask and mask.channels == 1 and mask.spatial_shape_zyx == image.spatial_shape_zyx:
        return
    if mask.shape != image.shape:
        raise MaskMismatchError(
            f"The mask {str(mask.path)!r} has shape {mask.shape} ({mask.axes}) but its image "
            f"{str(image.path)!r} has shape {image.shape} ({image.axes}). A mask must have exactly "
            "its image's shape: check that the two files belong together."
        )


def _mask_objects_of(
    image: ImageHeader, mask: ImageHeader, found: _Components, chosen: np.ndarray | None = None
) -> MaskObjects:
    """The MaskObjects of the components ``chosen`` (indices, in order; None: all)."""
    lo, hi, vox, channel_of = found.starts, found.stops, found.voxels, found.channel
    if chosen is not None:
        lo, hi, vox, channel_of = lo[chosen], hi[chosen], vox[chosen], channel_of[chosen]
    spacing_zyx = _spacing_zyx(image)
    if not vox.size:
        empty = np.empty((0, 3), dtype=np.int64)
        return MaskObjects(
            image.path, mask.path, empty, np.empty(0, np.int64), spacing_zyx, image.unit
        )
    # the largest box; among equal boxes the one with most voxels
    best = int(np.lexsort((vox, _box_size(lo, hi)))[-1])
    largest = ObjectBox(
        image.path,
        mask.path,
        tuple(int(v) for v in lo[best]),
        tuple(int(v) for v in hi[best]),
        int(vox[best]),
        int(channel_of[best]),
    )
    return MaskObjects(image.path, mask.path, hi - lo, vox, spacing_zyx, image.unit, largest)


def mask_objects(
    image_path: str | Path,
    mask_path: str | Path,
    slab_bytes: int = SLAB_BYTES,
) -> MaskObjects:
    """Label the connected foreground components of one mask, slab by slab.

    Parameters
    ----------
    image_path : str or Path
        The image the mask belongs to: its header gives the spacing (biom3d's); its pixels are
        not read.
    mask_path : str or Path
        The mask; voxels > 0 are foreground.
    slab_bytes : int
        Memory for one slab's labels (int32 per voxel); a slab holds at least one plane.

    Returns
    -------
    MaskObjects

    Raises
    ------
    ImageReadError
        If a file cannot be read.
    MaskMismatchError
        If the mask's shape differs from its image's.
    """
    image = read_header(image_path)
    mask = read_header(mask_path)
    _check_pair(image, mask)
    return _mask_objects_of(image, mask, _label_slabs(mask, slab_bytes))


def objects_by_value(
    image: ImageHeader,
    mask: ImageHeader,
    slab_bytes: int = SLAB_BYTES,
    on_slab: Callable[[int, int, np.ndarray], None] | None = None,
) -> dict[int, MaskObjects]:
    """The connected components of each non-zero mask value, slab by slab.

    Voxels join only voxels of the same value (26-connectivity), so two labels touching each
    other stay two objects; an instance mask gives one object per instance (more where an
    instance is in pieces). ``on_slab(channel, z0, values)`` sees each slab of mask values as
    it is labelled (the label table reads the image's intensities in step with it).

    Returns
    -------
    dict of int to MaskObjects
        Mask value -> its objects, ascending values. The mask must have the image's shape, or
        its spatial shape without a channel axis (:class:`MaskMismatchError`).
    """
    _check_pair(image, mask, label_mask=True)
    found = _label_slabs(mask, slab_bytes, by_value=True, on_slab=on_slab)
    # grouped by one stable sort: instance masks hold thousands of values
    order = np.argsort(found.value, kind="stable")
    values, starts = np.unique(found.value[order], return_index=True)
    groups = np.split(order, starts[1:])
    return {
        int(v): _mask_objects_of(image, mask, found, group)
        for v, group in zip(values.tolist(), groups)
    }


def _objects_checked(
    image: Path,
    mask: Path,
    slab_bytes: int,
    work: Callable[[Path, Path, int], object] = mask_objects,
):
    """``work(image, mask, slab_bytes)`` (default :func:`mask_objects`), with failures the
    readers did not foresee named by file."""
    try:
        return work(image, mask, slab_bytes)
    except AutoconfigError:
        raise
    except MemoryError as error:
        raise ImageReadError(
            f"Not enough memory to label the objects of {str(mask)!r}: {error}. Close other "
            "programs and try again."
        ) from error
    except Exception as error:
        raise ImageReadError(
            f"The objects of {str(mask)!r} could not be labelled ({type(error).__name__}: "
            f"{error}). Check that it is a complete mask in a supported format."
        ) from error


# --------------------------------------------------------------------------------------------
# A dataset


def summarize_objects(records: Sequence[MaskObjects]) -> ObjectSummary:
    """Merge per-mask objects into the dataset's counts and extents (numpy medians)."""
    records = tuple(records)
    extents = [r.extents_zyx for r in records if r.count]
    count = sum(r.count for r in records)
    if not count:
        return ObjectSummary(records, 0, (0.0, 0.0, 0.0), (0, 0, 0))
    voxel_extents = np.concatenate(extents)
    median = tuple(float(v) for v in np.median(voxel_extents, axis=0))
    largest_voxels = tuple(int(v) for v in voxel_extents.max(axis=0))
    physical_median = physical_max = None
    unit = None
    with_objects = [r for r in records if r.count]
    if all(r.spacing_zyx is not None for r in records):
        physical = np.concatenate([r.extents_zyx * np.asarray(r.spacing_zyx) for r in with_objects])
        physical_median = tuple(float(v) for v in np.median(physical, axis=0))
        physical_max = tuple(float(v) for v in physical.max(axis=0))
        units = {r.unit for r in records}
        unit = units.pop() if len(units) == 1 else None

    def box_size(record: MaskObjects) -> float:
        scale = np.asarray(record.spacing_zyx) if physical_max is not None else 1.0
        return float(np.prod(np.asarray(record.largest.extent_zyx) * scale))

    best = max(with_objects, key=lambda r: (box_size(r), r.largest.voxels))
    return ObjectSummary(
        records,
        count,
        median,  # type: ignore[arg-type]
        largest_voxels,  # type: ignore[arg-type]
        physical_median,  # type: ignore[arg-type]
        physical_max,  # type: ignore[arg-type]
        unit,
        best.largest,
    )


def larger_than_patch(
    summary: ObjectSummary,
    patch_zyx: Sequence[int],
    median_spacing_xyz: Sequence[float] | None = None,
) -> tuple[str, ...]:
    """The axes ("z", "y", "x") along which the largest object is longer than the patch.

    biom3d resamples every image to the median spacing before cropping patches, so with
    ``median_spacing_xyz`` (and spacings on every image) the largest physical extent is measured
    in voxels of that spacing; otherwise in the images' own voxels. For a 2D dataset (patch z 1)
    the z axis is never reported.
    """
    if not summary.count:
        return ()
    largest = np.asarray(summary.max_extent_zyx, dtype=float)
    if median_spacing_xyz is not None and summary.max_extent_physical_zyx is not None:
        spacing_zyx = np.asarray(tuple(median_spacing_xyz)[::-1], dtype=float)
        if spacing_zyx.size == 2:
            spacing_zyx = np.concatenate([[1.0], spacing_zyx])
        largest = np.asarray(summary.max_extent_physical_zyx) / spacing_zyx
    return tuple(
        axis
        for axis, size, patch in zip(AXES_ZYX, largest, patch_zyx)
        # a tolerance: a physical extent divided back by its own spacing is not always exact
        if size > patch + 1e-6
    )


def describe_objects(
    summary: ObjectSummary,
    patch_zyx: Sequence[int] | None = None,
    median_spacing_xyz: Sequence[float] | None = None,
) -> list[str]:
    """The objects in sentences for people (shared by the command line and the widget)."""
    if not summary.count:
        return ["Objects: none (every mask is empty)"]
    masks = len(summary.records)
    lines = [
        f"Objects: {summary.count} connected foreground components in {masks} mask(s) "
        f"({CONNECTIVITY}-connectivity)",
        "Object extent (z, y, x), median: "
        + " x ".join(f"{v:g}" for v in summary.median_extent_zyx)
        + " voxels; largest: "
        + " x ".join(str(v) for v in summary.max_extent_zyx)
        + " voxels",
    ]
    if summary.max_extent_physical_zyx is not None:
        unit = f" {summary.unit}" if summary.unit else " (unit not given)"
        lines.append(
            "Object extent (z, y, x) in physical units, median: "
            + " x ".join(f"{v:.4g}" for v in summary.median_extent_physical_zyx or ())
            + f"{unit}; largest: "
            + " x ".join(f"{v:.4g}" for v in summary.max_extent_physical_zyx)
            + unit
        )
    box = summary.largest
    if box is not None:
        lines.append(
            f"Largest object: {box.extent_zyx[0]} x {box.extent_zyx[1]} x {box.extent_zyx[2]} "
            f"voxels (z, y, x), {box.voxels} voxels, in {box.mask.name!r} at z {box.start_zyx[0]}"
            f"-{box.stop_zyx[0]}, y {box.start_zyx[1]}-{box.stop_zyx[1]}, "
            f"x {box.start_zyx[2]}-{box.stop_zyx[2]}"
        )
    if patch_zyx is not None:
        axes = larger_than_patch(summary, patch_zyx, median_spacing_xyz)
        if axes:
            lines.append(
                f"The patch {tuple(int(p) for p in patch_zyx)} (z, y, x) is smaller than the "
                f"largest objects along {', '.join(axes)}: such an object never fits whole in a "
                "patch."
            )
        else:
            lines.append("The largest objects fit whole in the patch along every axis.")
    return lines


def objects_json(
    summary: ObjectSummary,
    patch_zyx: Sequence[int] | None = None,
    median_spacing_xyz: Sequence[float] | None = None,
) -> dict:
    """The summary as plain JSON values; every list is (z, y, x), as ``order`` says."""
    box = summary.largest
    return {
        "order": "zyx",
        "connectivity": CONNECTIVITY,
        "count": summary.count,
        "median_extent": list(summary.median_extent_zyx),
        "max_extent": list(summary.max_extent_zyx),
        "median_extent_physical": (
            list(summary.median_extent_physical_zyx) if summary.median_extent_physical_zyx else None
        ),
        "max_extent_physical": (
            list(summary.max_extent_physical_zyx) if summary.max_extent_physical_zyx else None
        ),
        "unit": summary.unit,
        "larger_than_patch": (
            list(larger_than_patch(summary, patch_zyx, median_spacing_xyz))
            if patch_zyx is not None
            else []
        ),
        "largest": (
            None
            if box is None
            else {
                "image": str(box.image),
                "mask": str(box.mask),
                "start": list(box.start_zyx),
                "stop": list(box.stop_zyx),
                "voxels": box.voxels,
                "channel": box.channel,
            }
        ),
        "per_mask": [{"mask": str(r.mask), "count": r.count} for r in summary.records],
    }


def _pairs_of(source) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of a Dataset, a Fingerprint, or a sequence of Cases / pairs."""
    if isinstance(source, Dataset):
        items = [(c.image, c.mask) for c in source.cases]
    elif hasattr(source, "records"):  # a Fingerprint (not imported: no cycle, no cost)
        items = [(r.image.path, r.mask_path) for r in source.records]
    else:
        items = [(c.image, c.mask) if hasattr(c, "image") else tuple(c) for c in source]
    lonely = [image for image, mask in items if mask is None]
    if lonely:
        raise DatasetError(
            f"Objects are counted in the masks, but {len(lonely)} image(s) have none, e.g. "
            f"{str(lonely[0])!r}. Give the masks folder."
        )
    return [(Path(image), Path(mask)) for image, mask in items]


def run_pairs(
    pairs: Sequence[tuple[Path, Path]],
    work: Callable[[Path, Path], object],
    *,
    executor: Executor | None = None,
    progress: Callable[[int, int, object], None] | None = None,
    cancel: CancelCheck | None = None,
    what: str = "Object labelling",
    keep: Callable[[object], object] | None = None,
) -> list:
    """``work(image, mask)`` for every pair, in parallel, in bounded flight; results in order.

    ``executor``: default a thread pool sized to the cores (daemon threads). ``progress(done,
    total, result)`` once per finished pair, in the caller's thread; ``cancel`` polled between
    pairs (every 0.25 s at most): True stops the run with :class:`Cancelled` (``what`` names the
    run in its message). ``keep(result)``: what is kept of each result once ``progress`` has
    seen it (e.g. less than the whole, to bound memory).
    """
    from .fingerprint import DaemonThreadPool
    from .scheduling import as_they_finish

    own = executor is None
    # daemon threads: a read stalled on a server never holds up an interrupted run's exit
    pool = DaemonThreadPool(thread_name_prefix="objects") if own else executor
    results: list = [None] * len(pairs)
    finishing = as_they_finish(
        pool,
        len(pairs),
        lambda i: pool.submit(work, *pairs[i]),
        cancel=cancel,
        cancelled=lambda done: f"{what} cancelled after {done} of {len(pairs)} masks.",
    )
    try:
        for done, (index, result) in enumerate(finishing, start=1):
            if progress is not None:
                progress(done, len(pairs), result)
            results[index] = keep(result) if keep is not None else result
    finally:
        finishing.close()  # the tasks not started are cancelled before the pool goes
        if own:
            pool.shutdown(wait=False, cancel_futures=True)
    return results


def objects_dataset(
    source,
    *,
    slab_bytes: int = SLAB_BYTES,
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> ObjectSummary:
    """Label the objects of every mask of a dataset, in parallel, in bounded flight.

    Parameters
    ----------
    source : Dataset, Fingerprint or sequence of Case / (image, mask) pairs
        Where the masks are; every image needs one.
    slab_bytes : int
        Memory for one slab's labels, per worker.
    executor : concurrent.futures.Executor, optional
        Where the per-mask work runs; default: a thread pool sized to the cores (scipy's
        labelling releases the GIL for most of its work). A dask cluster works through
        ``distributed.Client.get_executor()``.
    progress : callable, optional
        ``progress(done, total, mask_objects)``, once per finished mask, in the caller's thread.
    cancel : callable, optional
        Polled between masks (every 0.25 s at most); True stops the run with :class:`Cancelled`.

    Returns
    -------
    ObjectSummary

    Raises
    ------
    DatasetError
        If an image has no mask.
    Cancelled
        If ``cancel()`` returned True; nothing of the run is returned.
    ImageReadError, MaskMismatchError
        If a file cannot be read or a mask does not fit its image.
    """
    pairs = _pairs_of(source)
    results = run_pairs(
        pairs,
        partial(_objects_checked, slab_bytes=slab_bytes),
        executor=executor,
        progress=progress,
        cancel=cancel,
        what="Object labelling",
    )
    return summarize_objects(results)  # type: ignore[arg-type]
