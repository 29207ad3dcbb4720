"""Will it fit on my GPU? The memory of one biom3d training step, from the plan alone.

biom3d trains ``UNet3DVGGDeep`` (its ``UNet`` with VGG blocks) with the plan's ``NUM_POOLS``,
``factor = 32``, two output classes under a softmax (one foreground class), no deep supervision,
SGD with Nesterov momentum, the Dice + cross-entropy loss and, on CUDA, fp16 mixed precision
(``USE_FP16 = True``). This module rebuilds that network's layout from the poolings and counts,
layer by layer, what one training step keeps in GPU memory. It is pure arithmetic: no torch.

What is counted (every size in bytes; ``a`` is 2 in fp16 mixed precision, 4 in fp32):

- **activations**: the tensors autograd keeps for the backward pass. Each convolution block
  (conv -> InstanceNorm -> LeakyReLU in place) keeps two maps of its output size: the convolution's
  output (read by the norm's backward) and the normalised, activated output (read by the
  LeakyReLU's and the next convolution's backward), ``a`` bytes per element each, plus the norm's
  per-channel statistics (three fp32 vectors of ``batch * channels``). Each decoder level also
  keeps its concatenation (upsampled + skip, twice the level's channels). The network input is
  kept once (as fp16 copy under autocast). The loss (softmax Dice + cross-entropy, computed in
  fp32 under autocast too) keeps per voxel: the softmax, the log-softmax, the one-hot target and
  ``1 - one-hot`` (``4 * classes`` bytes each) and the int64 target (8 bytes).
- **weights**: parameters, their gradients and SGD's momentum buffers, 4 bytes each, plus under
  fp16 the half-precision copy autocast makes of every convolution weight for the step.
- **workspace**: the gradient buffers alive with all those tensors at the start of the backward
  pass: one first-level feature map at the compute precision plus the loss's fp32 gradients
  (``4 * 4 * classes`` bytes per voxel). Or, when larger, what the optimizer step adds once the
  activations are freed: SGD with weight decay works on a temporary fp32 copy of the gradients
  (4 bytes per parameter), which matters only for small patches. On CPU, torch's profiler puts
  the step's peak within a few percent of this (``benchmarks/memory_vs_torch.py``).
- **overhead**: a fixed 1 GiB for the CUDA context, the cuDNN / cuBLAS kernels and convolution
  workspace, the same for every plan.

The activations and the parameter count are checked against torch's own accounting by
``benchmarks/memory_vs_torch.py`` (fp32, on CPU, to the byte). The fp16 figures follow autocast's
rules (convolutions in half precision, softmax and cross-entropy in fp32) and the CUDA overhead is
a stated constant: neither has been measured on a GPU yet (the script's ``--cuda`` mode does it).
Every triple here is ``(z, y, x)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import LimitsError

if TYPE_CHECKING:
    from .planners.biom3d import Plan

PRECISIONS = ("fp16", "fp32")
GIB = 1024**3
OVERHEAD_BYTES = 1 * GIB
FACTOR = 32
NUM_CLASSES = 2  # one foreground class, softmax over background + foreground
MAX_LEVELS = 5  # biom3d's decoder lists six channel counts: at most 5 poolings per axis

# biom3d's encoder multiplies ``factor`` by these for levels 0, 1, 2...
_ENCODER_WIDTHS = (1, 2, 4, 8, 10, 10)
_KERNEL = 27  # 3x3x3 convolutions
_NORM_STATS = 3  # InstanceNorm keeps mean, inverse std and the weight repeated per sample (fp32)


@dataclass(frozen=True)
class Level:
    """One resolution level of the U-Net.

    Attributes
    ----------
    size : tuple of int
        Feature map size ``(z, y, x)`` at this level.
    channels : int
        Channels of the level's blocks (encoder and decoder alike).
    stride : tuple of int
        ``(z, y, x)`` stride of the convolution entering this level from the one above (1 or 2;
        ``(1, 1, 1)`` for level 0). The decoder's transposed convolution uses it to come back.
    """

    size: tuple[int, int, int]
    channels: int
    stride: tuple[int, int, int]

    @property
    def voxels(self) -> int:
        return math.prod(self.size)


@dataclass(frozen=True)
class MemoryEstimate:
    """The memory of one training step, split in its parts (bytes; ``*_gib`` in GiB).

    Attributes
    ----------
    precision : str
        ``"fp16"`` (mixed precision, biom3d's default on CUDA) or ``"fp32"``.
    activations_bytes : int
        Tensors kept for the backward pass.
    weights_bytes : int
        Weights, gradients and momentum (plus fp16 weight copies under mixed precision).
    workspace_bytes : int
        Gradient buffers alive with the saved tensors when backward starts, or the optimizer's
        temporary gradient copy beyond the freed activations when larger (approximation).
    overhead_bytes : int
        Fixed: CUDA context, libraries' kernels and convolution workspace.
    parameters : int
        Number of trainable parameters of the network.
    """

    precision: str
    activations_bytes: int
    weights_bytes: int
    workspace_bytes: int
    overhead_bytes: int
    parameters: int

    @property
    def total_bytes(self) -> int:
        return (
            self.activations_bytes + self.weights_bytes + self.workspace_bytes + self.overhead_bytes
        )

    @property
    def activations_gib(self) -> float:
        return self.activations_bytes / GIB

    @property
    def weights_gib(self) -> float:
        return self.weights_bytes / GIB

    @property
    def workspace_gib(self) -> float:
        return self.workspace_bytes / GIB

    @property
    def overhead_gib(self) -> float:
        return self.overhead_bytes / GIB

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    def as_dict(self) -> dict[str, object]:
        """The parts in GiB (rounded to 3 decimals), as the command's ``--json`` prints them."""
        return {
            "precision": self.precision,
            "activations_gib": round(self.activations_gib, 3),
            "weights_gib": round(self.weights_gib, 3),
            "workspace_gib": round(self.workspace_gib, 3),
            "overhead_gib": round(self.overhead_gib, 3),
            "total_gib": round(self.total_gib, 3),
        }

    def describe(self) -> str:
        """One line for people: the total and its parts."""
        mixed = "fp16 mixed precision" if self.precision == "fp16" else "fp32"
        return (
            f"GPU memory of one training step ({mixed}): about {self.total_gib:.1f} GiB = "
            f"activations {self.activations_gib:.2f} + weights, gradients and momentum "
            f"{self.weights_gib:.2f} + backward buffers {self.workspace_gib:.2f} + fixed "
            f"overhead {self.overhead_gib:.2f} (CUDA context, libraries)."
        )


def _strides(pool: Sequence[int]) -> list[tuple[int, int, int]]:
    """Stride of each downsampling, as biom3d's ``convert_num_pools`` (``roll_strides=True``).

    Each axis strides by 2 ``pool`` times out of ``max(pool)``; its stride-1 levels are first
    placed at the start, then rotated left by half their count (rounded up, because biom3d rolls
    by ``-n // 2``), which centres them among the levels.
    """
    depth = max(pool)
    columns = []
    for p in pool:
        missing = depth - p
        column = np.array([1] * missing + [2] * p)
        columns.append(np.roll(column, -missing // 2))
    return [tuple(int(c[i]) for c in columns) for i in range(depth)]


def network_levels(patch: Sequence[int], pool: Sequence[int], factor: int = FACTOR) -> list[Level]:
    """The resolution levels of biom3d's U-Net for a patch and its poolings, top level first.

    Parameters
    ----------
    patch : sequence of int
        ``(z, y, x)`` patch size.
    pool : sequence of int
        ``(z, y, x)`` number of poolings, at most 5 each.
    factor : int, default 32
        Channels of the first level (biom3d's ``factor``).

    Returns
    -------
    list of Level
        ``max(pool) + 1`` levels. Strided 3x3x3 convolutions with padding 1 give ``ceil(n / 2)``
        per halved axis (patches of a biom3d plan divide exactly).

    Raises
    ------
    LimitsError
        More than 5 poolings along an axis (biom3d's decoder cannot be built), a negative pooling,
        or a patch entry below 1.
    """
    pool = [int(p) for p in pool]
    patch = [int(s) for s in patch]
    if len(pool) != 3 or len(patch) != 3:
        raise LimitsError(f"A patch and poolings need 3 entries (z, y, x); got {patch}, {pool}.")
    if min(pool) < 0 or max(pool) > MAX_LEVELS:
        raise LimitsError(
            f"biom3d's U-Net takes 0 to {MAX_LEVELS} poolings per axis; got {pool}. "
            f"Lower max_pool to {MAX_LEVELS} or less."
        )
    if min(patch) < 1:
        raise LimitsError(f"Every patch entry must be 1 or more; got {patch}.")
    levels = [Level(tuple(patch), factor * _ENCODER_WIDTHS[0], (1, 1, 1))]
    for i, stride in enumerate(_strides(pool), start=1):
        size = tuple(-(-n // s) for n, s in zip(levels[-1].size, stride))
        levels.append(Level(size, factor * _ENCODER_WIDTHS[i], stride))
    return levels


def parameter_counts(
    levels: Sequence[Level], channels: int = 1, num_classes: int = NUM_CLASSES
) -> tuple[int, int]:
    """Trainable parameters of the network: ``(convolution weights, norm weights)``.

    Encoder level ``i``: two 3x3x3 convolutions without bias (``in -> c``, ``c -> c``) and two
    affine InstanceNorms (``2c`` each). Decoder level ``i`` (every level but the deepest): a
    transposed convolution from level ``i + 1`` (kernel = stride), two 3x3x3 convolutions
    (``2c -> c``, ``c -> c``), two norms, and a 1x1 convolution to the classes (biom3d builds
    one per decoder level; only the top one runs without deep supervision, but all are
    parameters).
    """
    conv = norm = 0
    previous = channels
    for level in levels:
        c = level.channels
        conv += _KERNEL * (previous * c + c * c)
        norm += 2 * 2 * c
        previous = c
    for upper, lower in itertools.pairwise(levels):
        c = upper.channels
        conv += lower.channels * c * math.prod(lower.stride)
        conv += _KERNEL * (2 * c * c + c * c)
        norm += 2 * 2 * c
        conv += c * num_classes
    return conv, norm


def activation_bytes(
    levels: Sequence[Level],
    batch: int,
    channels: int = 1,
    precision: str = "fp16",
    num_classes: int = NUM_CLASSES,
) -> int:
    """Bytes autograd keeps for the backward pass of one step (see the module's notes)."""
    a = 2 if precision == "fp16" else 4
    elements = channels * levels[0].voxels  # the input, read by the first convolution
    stats = 0
    for i, level in enumerate(levels):
        convs = 2  # encoder block
        if i < len(levels) - 1:
            convs += 2  # decoder block
            elements += 2 * level.channels * level.voxels  # its concatenation
        elements += convs * 2 * level.channels * level.voxels
        stats += convs * _NORM_STATS * level.channels
    loss = levels[0].voxels * (4 * 4 * num_classes + 8)
    return int(batch * (a * elements + 4 * stats + loss))


def estimate_memory(
    patch: Sequence[int],
    pool: Sequence[int],
    batch: int,
    channels: int = 1,
    precision: str = "fp16",
) -> MemoryEstimate:
    """The memory of one biom3d training step of ``UNet3DVGGDeep`` for a patch and poolings.

    Parameters
    ----------
    patch, pool : sequence of int
        ``(z, y, x)`` patch size and poolings (a plan's ``PATCH_SIZE`` and ``NUM_POOLS``).
    batch : int
        Batch size.
    channels : int, default 1
        Image channels (the network's input planes).
    precision : {"fp16", "fp32"}, default "fp16"
        ``"fp16"``: mixed precision (biom3d's ``USE_FP16``, its default on CUDA); ``"fp32"``.

    Returns
    -------
    MemoryEstimate

    Raises
    ------
    LimitsError
        An unknown precision, a batch or channel count below 1, or poolings biom3d's U-Net
        cannot take (see :func:`network_levels`).

    Notes
    -----
    With no pooling at all biom3d's model has no decoder and cannot run; the estimate then
    counts the single encoder level and the loss.
    """
    if precision not in PRECISIONS:
        raise LimitsError(f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}.")
    if int(batch) < 1 or int(channels) < 1:
        raise LimitsError(f"Batch and channels must be 1 or more; got {batch} and {channels}.")
    levels = network_levels(patch, pool)
    conv, norm = parameter_counts(levels, int(channels))
    weights = 12 * (conv + norm)  # weights, gradients, momentum: fp32 each
    if precision == "fp16":
        weights += 2 * conv  # autocast's half copy of each convolution weight
    a = 2 if precision == "fp16" else 4
    activations = activation_bytes(levels, int(batch), int(channels), precision)
    backward = int(batch) * levels[0].voxels * (a * levels[0].channels + 4 * 4 * NUM_CLASSES)
    optimizer_copy = 4 * (conv + norm)  # lives after the activations are freed
    return MemoryEstimate(
        precision=precision,
        activations_bytes=activations,
        weights_bytes=weights,
        workspace_bytes=max(backward, optimizer_copy - activations),
        overhead_bytes=OVERHEAD_BYTES,
        parameters=conv + norm,
    )


def biom3d_can_train(patch: Sequence[int], pool: Sequence[int]) -> bool:
    """Whether biom3d's U-Net can train on this patch with these poolings.

    It cannot without any pooling (its decoder is empty and the final layer is missing), nor
    when the deepest level holds a single voxel (InstanceNorm refuses it in training, e.g. a
    32x32x32 patch with 5 poolings).
    """
    levels = network_levels(patch, pool)
    return len(levels) > 1 and levels[-1].voxels > 1


def estimate_plan_memory(plan: Plan, channels: int = 1, precision: str = "fp16") -> MemoryEstimate:
    """:func:`estimate_memory` for a :class:`~napari_autoconfig.planners.biom3d.Plan`."""
    return estimate_memory(plan.patch, plan.pool, plan.batch, channels, precision)
