"""biom3d's two intensity normalisations, computed the way its preprocessing does.

What biom3d feeds the network (``preprocess.seg_preprocessor``):

- default: each image z-scored on its own, ``(img - img.mean()) / (img.std() + 1e-8)``, mean and
  standard deviation over every voxel of the image (all channels together);
- with ``--ct_norm``: ``clip(img, CLIPPING_BOUNDS)`` then ``(img - mean) / (std + 1e-8)`` with
  ``INTENSITY_MOMENTS``: the dataset's foreground 0.5 / 99.5 percentiles, mean and standard
  deviation (the fingerprint's ``perc_005``, ``perc_995``, ``mean``, ``std``).

The per-image moments come from :func:`image_moments`: one streaming pass over the file with
float64 accumulators, chunk by chunk, merged with Chan et al.'s pairwise update (a chunk's mean and
sum of squared deviations), so a large volume is never held as a float copy and the variance does
not suffer the cancellation of a sum of squares. numpy's own ``img.std()`` on an integer image
also accumulates in float64; on a float32 image numpy accumulates in float32, so there the values
here are the more exact ones (they differ from biom3d's in the last float32 digits).

:func:`normalize` then applies either normalisation to any block (one 2D slice, a slab, a whole
array), so a viewer can compute the normalised image lazily, slice by slice. biom3d then resamples
the normalised image to the median spacing; that step is not shown here (the values are the same,
the grid is the image's own).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AutoconfigError, Cancelled
from .readers import ImageHeader, iter_chunks, read_header

#: biom3d adds this to the standard deviation "for safety" (no division by zero).
EPSILON = 1e-8
ZSCORE = "zscore"
CT_NORM = "ct_norm"
#: Bytes read at a time in the streaming pass (a float64 copy of one piece is made).
_CHUNK_BYTES = 8 * 2**20


@dataclass(frozen=True)
class Moments:
    """Mean, standard deviation (population, numpy's ``ddof=0``), range and size of an image."""

    mean: float
    std: float
    minimum: float
    maximum: float
    count: int


@dataclass(frozen=True)
class Normalization:
    """The parameters of one of biom3d's normalisations, ready to apply to any block.

    Attributes
    ----------
    kind : str
        ``"zscore"`` (per image, biom3d's default) or ``"ct_norm"`` (clip and dataset z-score).
    mean, std : float
        Subtracted, and divided by (``std + 1e-8``, as biom3d).
    clip : tuple of float or None
        ``(low, high)`` clipping bounds before the z-score (ct_norm), else None.
    """

    kind: str
    mean: float
    std: float
    clip: tuple[float, float] | None = None

    @property
    def value_range(self) -> tuple[float, float] | None:
        """The output range when values are clipped (ct_norm), else None."""
        if self.clip is None:
            return None
        low, high = self.clip
        return (low - self.mean) / (self.std + EPSILON), (high - self.mean) / (self.std + EPSILON)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        return normalize(block, self)


def _merge(a: tuple[int, float, float], b: tuple[int, float, float]) -> tuple[int, float, float]:
    """Merge (count, mean, sum of squared deviations) of two parts (Chan et al.)."""
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    n = n_a + n_b
    if n == 0:
        return a
    delta = mean_b - mean_a
    return n, mean_a + delta * n_b / n, m2_a + m2_b + delta * delta * n_a * n_b / n


def block_moments(block: np.ndarray) -> tuple[int, float, float]:
    """(count, mean, sum of squared deviations) of one block, in float64."""
    values = np.asarray(block, dtype=np.float64).ravel()
    if not values.size:
        return 0, 0.0, 0.0
    mean = float(values.mean())
    values -= mean  # in place on the float64 copy of this block only
    return values.size, mean, float(np.dot(values, values))


def image_moments(
    image: str | os.PathLike | ImageHeader,
    *,
    chunk_bytes: int = _CHUNK_BYTES,
    cancel: Callable[[], bool] | None = None,
) -> Moments:
    """The mean and standard deviation of every voxel of an image, in one streaming pass.

    Parameters
    ----------
    image : path or ImageHeader
        The image file (all channels count, as in biom3d's ``img.mean()``).
    chunk_bytes : int
        Size of the pieces read; memory is about twice that as float64.
    cancel : callable, optional
        Polled between pieces; True stops with :class:`Cancelled`.

    Raises
    ------
    ImageReadError
        If the file cannot be read.
    Cancelled
        If ``cancel()`` returned True.
    """
    header = image if isinstance(image, ImageHeader) else read_header(Path(image))
    return array_moments(
        iter_chunks(header, max_bytes=chunk_bytes), cancel=cancel, name=header.path
    )


def array_moments(
    blocks, *, cancel: Callable[[], bool] | None = None, name: object = "the image"
) -> Moments:
    """Moments over an iterable of blocks (numpy arrays), merged pairwise in float64.

    Also takes one array (numpy, dask, zarr...): it is then read one index of its first axis at
    a time (one z plane of a volume), never as a whole float copy.
    """
    if hasattr(blocks, "shape") and hasattr(blocks, "dtype"):
        array = blocks
        blocks = (np.asarray(array[i]) for i in range(array.shape[0])) if array.ndim else [array]
    total = (0, 0.0, 0.0)
    low, high = np.inf, -np.inf
    for block in blocks:
        if cancel is not None and cancel():
            raise Cancelled(f"Computing the intensity statistics of {name} was cancelled.")
        block = np.asarray(block)
        if not block.size:
            continue
        total = _merge(total, block_moments(block))
        low = min(low, float(block.min()))
        high = max(high, float(block.max()))
    count, mean, m2 = total
    if not count:
        raise AutoconfigError(f"{name} holds no voxel: there is nothing to normalise.")
    return Moments(mean, float(np.sqrt(m2 / count)), low, high, count)


def zscore(moments: Moments) -> Normalization:
    """biom3d's default: the image z-scored with its own mean and standard deviation."""
    return Normalization(ZSCORE, moments.mean, moments.std)


def ct_norm(fingerprint) -> Normalization:
    """biom3d's ``--ct_norm``: clip to the dataset's foreground 0.5 / 99.5 percentiles, then
    z-score with its foreground mean and standard deviation (``CLIPPING_BOUNDS``,
    ``INTENSITY_MOMENTS``).

    Raises
    ------
    AutoconfigError
        If the fingerprint was made without masks (biom3d has then no such values).
    """
    if not fingerprint.has_masks:
        raise AutoconfigError(
            "The clip + dataset z-score normalisation (biom3d's --ct_norm) needs the foreground "
            "statistics, which come from the masks: fingerprint the dataset with its masks folder."
        )
    return Normalization(
        CT_NORM,
        float(fingerprint.mean),
        float(fingerprint.std),
        (float(fingerprint.perc_005), float(fingerprint.perc_995)),
    )


def normalize(block: np.ndarray, params: Normalization, dtype=np.float32) -> np.ndarray:
    """Apply a normalisation to a block of any shape (a 2D slice for a lazy viewer).

    Computed in float64, as biom3d's numpy arithmetic on an integer image is, and returned as
    ``dtype`` (float32 by default: what the network gets).
    """
    values = np.array(block, dtype=np.float64)  # a copy: the caller's block is never changed
    if params.clip is not None:
        np.clip(values, params.clip[0], params.clip[1], out=values)
    values -= params.mean
    values /= params.std + EPSILON
    return values.astype(dtype, copy=False)
