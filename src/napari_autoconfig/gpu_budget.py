"""Choose biom3d's patch budget ``max_dims`` from the memory of a GPU.

biom3d's budget (128x128x128 by default, chosen for a 12 GB GPU) stands for GPU memory. Here the
budget is derived instead: every cubic budget ``(d, d, d)`` with ``d`` a multiple of
``2**max_pool`` is planned with biom3d's unchanged rules (:func:`~napari_autoconfig.planners.biom3d.
make_plan`), each plan's training memory is estimated (:mod:`napari_autoconfig.memory`), and the
budget whose plan trains the most voxels per step (patch volume x batch) within the GPU's memory
wins; among budgets giving that same amount the smallest is kept (larger ones add nothing).
Plans biom3d's network cannot train (no pooling at all, or a deepest level of one voxel) are
passed over. Only ``max_dims`` changes; every other limit is the user's.

Because the plans that fit a larger GPU include every plan that fits a smaller one, a larger GPU
never gets a smaller patch x batch than a smaller GPU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import LimitsError
from .memory import MemoryEstimate, biom3d_can_train, estimate_plan_memory
from .planners.biom3d import Limits, Plan, make_plan

_DEFAULT_LIMITS = Limits()
LARGEST_BUDGET = 1024  # (1024)^3 voxels: far above what a 141 GB GPU trains in one step


@dataclass(frozen=True)
class GpuPlan:
    """A plan whose ``max_dims`` was derived from a GPU's memory.

    Attributes
    ----------
    plan : Plan
        biom3d's plan for the chosen budget; its reasons end with the sentence saying so.
    memory : MemoryEstimate
        The plan's estimated training memory.
    gpu_gib : float
        The GPU memory the plan was fitted to, in GiB.
    """

    plan: Plan
    memory: MemoryEstimate
    gpu_gib: float


def budget_note(max_dims: Sequence[int], gpu_gib: float, precision: str) -> str:
    """The one line put above a config whose ``max_dims`` came from :func:`plan_for_gpu`.

    Written as a comment (``# ...``) above the snippet by the command line and the widget alike,
    so a reader of the config knows that only ``max_dims`` was derived.
    """
    z, y, x = (int(v) for v in max_dims)
    return (
        f"max_dims {z}x{y}x{x} derived from a GPU memory of {float(gpu_gib):g} GiB "
        f"({precision}); the other numbers follow biom3d's rules"
    )


def _candidates(max_pool: int) -> range:
    # A multiple of 2**max_pool; steps of at least 16 keep a search with few poolings short.
    step = max(2**max_pool, 16)
    return range(step, LARGEST_BUDGET + 1, step)


def plan_for_gpu(
    median_size: Sequence[int],
    gpu_gib: float,
    limits: Limits = _DEFAULT_LIMITS,
    num_images: int | None = None,
    channels: int = 1,
    precision: str = "fp16",
) -> GpuPlan:
    """biom3d's plan with the cubic ``max_dims`` chosen to fit a GPU's memory.

    Parameters
    ----------
    median_size : sequence of int
        ``(Z, Y, X)`` or ``(C, Z, Y, X)`` median size (numpy order), as for ``make_plan``.
    gpu_gib : float
        Memory of the GPU in GiB (what ``nvidia-smi`` reports as total, in GiB).
    limits : Limits
        Every limit but ``max_dims`` is kept (``max_pool``, batch bounds and rule).
    num_images : int, optional
        For the ``"preprocessing"`` batch rule.
    channels : int, default 1
        Image channels (the network's input planes).
    precision : {"fp16", "fp32"}, default "fp16"
        Training precision (biom3d's default on CUDA is fp16 mixed precision).

    Returns
    -------
    GpuPlan

    Raises
    ------
    LimitsError
        ``gpu_gib`` not a positive number, or no budget fits: even the smallest plan needs more
        memory than the GPU has.
    """
    try:
        gpu = float(gpu_gib)
    except (TypeError, ValueError):
        raise LimitsError(f"The GPU memory must be a number of GiB; got {gpu_gib!r}.") from None
    if not gpu > 0:
        raise LimitsError(f"The GPU memory must be a positive number of GiB; got {gpu_gib!r}.")
    best = None  # (voxels per step, plan, estimate)
    smallest = None
    for d in _candidates(limits.max_pool):
        plan = make_plan(
            median_size, dataclasses.replace(limits, max_dims=(d, d, d)), num_images=num_images
        )
        if not biom3d_can_train(plan.patch, plan.pool):
            continue
        memory = estimate_plan_memory(plan, channels, precision)
        if smallest is None:
            smallest = (d, memory)
        if memory.total_gib > gpu:
            continue
        work = plan.batch * plan.patch[0] * plan.patch[1] * plan.patch[2]
        if best is None or work > best[0]:
            best = (work, plan, memory)
    if smallest is None:
        raise LimitsError(
            f"biom3d's network cannot train any plan for the median {list(median_size)} with "
            f"max_pool {limits.max_pool} (no pooling, or a single voxel at the deepest level)."
        )
    if best is None:
        d, memory = smallest
        raise LimitsError(
            f"No biom3d plan fits in {gpu:g} GiB: even the smallest usable patch budget "
            f"{d}x{d}x{d} needs about {memory.total_gib:.1f} GiB in {precision}. Give more GPU "
            "memory, or lower max_pool, or use --max-dims instead."
        )
    _, plan, memory = best
    d = plan.limits.max_dims[0]
    sentence = (
        f"max_dims {d}x{d}x{d} was derived from the GPU memory of {gpu:g} GiB ({precision}): "
        f"of the cubic budgets that are multiples of {_candidates(limits.max_pool).step}, the "
        f"one whose plan trains the most voxels per step (patch x batch) within it; this plan "
        f"needs about {memory.total_gib:.1f} GiB."
    )
    plan = dataclasses.replace(plan, reasons=(*plan.reasons, sentence))
    return GpuPlan(plan=plan, memory=memory, gpu_gib=gpu)
