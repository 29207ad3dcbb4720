"""biom3d's planning rules: patch size, poolings, batch size and augmentation patch size.

Everything here works from a median image size (numpy order, ``(Z, Y, X)`` or ``(C, Z, Y, X)``)
and reproduces the numbers of biom3d 0.1.x ``auto_config`` exactly, including its floating point
steps. :func:`find_patch_pool_batch` and :func:`get_aug_patch` are the raw rules;
:func:`make_plan` wraps them in a :class:`Plan` that also says, in words, why each number is what
it is. Every triple in this module is ``(z, y, x)``.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import LimitsError

AXES_ZYX = ("z", "y", "x")
BATCH_RULES = ("fixed", "preprocessing")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_budget(max_dims: Sequence[int], max_pool: int) -> int:
    """The smallest feature map ``min(max_dims) // 2**max_pool``; LimitsError when below 1."""
    if not _is_int(max_pool) or max_pool < 0:
        raise LimitsError(
            f"[Error] max_pool must be a whole number of poolings, 0 or more; got {max_pool!r}."
        )
    min_fmaps = min(max_dims) // 2**max_pool
    if min_fmaps < 1:  # biom3d asserts the same ("is too small regarding max_pool")
        raise LimitsError(
            f"[Error] The minimum of max_dims {min(max_dims)} is too small regarding max_pool "
            f"{max_pool}: it must be at least 2**max_pool = {2**max_pool}. Increase max_dims or "
            "reduce max_pool."
        )
    return int(min_fmaps)


@dataclass(frozen=True)
class Limits:
    """The knobs of biom3d's auto-configuration.

    Attributes
    ----------
    max_dims : tuple of int
        ``(z, y, x)`` maximum patch; only the product (the voxel budget) bounds the patch, the
        smallest entry sets the smallest feature map (``min(max_dims) // 2**max_pool``).
    max_pool : int
        Largest number of poolings along one axis.
    min_batch, max_batch : int
        The batch size is clamped to ``[min_batch, max_batch]`` (``max_batch`` first, as biom3d).
    batch_rule : str
        ``"fixed"``: use ``max_batch`` as given. ``"preprocessing"``: what biom3d's preprocessing
        passes, ``max_batch = number_of_images // 20`` (then ``min_batch`` wins if larger).
    epsilon : float
        Step of the log-space shrinking of a median larger than the budget.
    """

    max_dims: tuple[int, int, int] = (128, 128, 128)
    max_pool: int = 5
    min_batch: int = 2
    max_batch: int = 16
    batch_rule: str = "fixed"
    epsilon: float = 1e-3

    def __post_init__(self) -> None:
        """Refuse limits no plan can come from, at once rather than after a folder is read.

        Raises
        ------
        LimitsError
            ``max_dims`` not 3 positive whole numbers; ``max_pool`` negative or such that
            ``min(max_dims) // 2**max_pool < 1`` ("is too small regarding max_pool", as biom3d);
            ``min_batch`` below 1 or ``max_batch`` below 0; an unknown ``batch_rule``;
            ``epsilon`` not positive. ``min_batch > max_batch`` is allowed: as in biom3d,
            ``min_batch`` then wins.
        """
        dims = tuple(self.max_dims)
        if len(dims) != 3 or not all(_is_int(v) and v > 0 for v in dims):
            raise LimitsError(
                f"max_dims must be 3 positive whole numbers (z, y, x); got {list(dims)}."
            )
        # Plain ints in a tuple, whatever sequence of integers was given (lists, numpy ints).
        object.__setattr__(self, "max_dims", tuple(int(v) for v in dims))
        _check_budget(self.max_dims, self.max_pool)
        if not _is_int(self.min_batch) or self.min_batch < 1:
            raise LimitsError(
                f"min_batch must be a whole number, 1 or more; got {self.min_batch!r}."
            )
        if not _is_int(self.max_batch) or self.max_batch < 0:
            raise LimitsError(
                f"max_batch must be a whole number, 0 or more; got {self.max_batch!r}."
            )
        if self.batch_rule not in BATCH_RULES:
            raise LimitsError(
                f"Unknown batch rule {self.batch_rule!r}; use one of {', '.join(BATCH_RULES)}."
            )
        if not self.epsilon > 0:
            raise LimitsError(f"epsilon must be positive; got {self.epsilon!r}.")


@dataclass(frozen=True)
class Plan:
    """A complete auto-configuration, with plain Python ints, all triples ``(z, y, x)``.

    Attributes
    ----------
    median_size : tuple of int
        The median size the plan was made from (numpy order, channel first when present).
    patch, pool, aug_patch : tuple of int
        ``PATCH_SIZE``, ``NUM_POOLS`` and ``AUG_PATCH_SIZE`` in biom3d's config.
    batch : int
        ``BATCH_SIZE`` after clamping.
    limits : Limits
        The limits used.
    max_batch_used : int
        The upper batch bound actually applied (differs from ``limits.max_batch`` with the
        ``"preprocessing"`` rule).
    reasons : tuple of str
        One sentence per number: why it is what it is.
    """

    median_size: tuple[int, ...]
    patch: tuple[int, int, int]
    pool: tuple[int, int, int]
    batch: int
    aug_patch: tuple[int, int, int]
    limits: Limits = field(default_factory=Limits)
    max_batch_used: int = 16
    reasons: tuple[str, ...] = ()

    def explain(self) -> str:
        """The reasons as a readable block of text, one line each."""
        head = (
            f"Plan for median size {_fmt(self.median_size)}: patch {_fmt(self.patch)}, "
            f"poolings {_fmt(self.pool)}, batch {self.batch}, "
            f"augmentation patch {_fmt(self.aug_patch)} (z, y, x)."
        )
        return "\n".join([head, *(f"- {r}" for r in self.reasons)])


@dataclass(frozen=True)
class _Trace:
    """Intermediate values of the patch rule, kept so that a Plan can explain itself."""

    ori: np.ndarray  # the spatial median (channel dropped)
    min_fmaps: int
    shrunk: bool  # the median was larger than the budget and got shrunk
    dims: np.ndarray  # median after shrinking and flooring
    step: np.ndarray  # 2**pool of point 5, the growth step of every axis
    first_patch: np.ndarray  # patch before growing
    grown_patch: np.ndarray  # patch after growing, before the ori == 1 rule
    patch: np.ndarray
    pool: np.ndarray
    batch: int
    broadcast_fixes: int  # times biom3d would have crashed with a broadcasting error
    reduction_cycle: bool  # biom3d's shrinking loop would never have ended


def _fmt(values: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in values)


def _check_dims(dims: Sequence[float]) -> np.ndarray:
    """Point 1: accept 3 or 4 entries (channel first dropped) and refuse non-positive sizes."""
    n = len(dims)
    if n not in (3, 4):  # biom3d asserts; raised here so python -O keeps the checks
        raise AssertionError(
            f"[Error] The median size must have 3 entries (Z, Y, X) or 4 (C, Z, Y, X); got {n}: "
            f"{list(dims)}."
        )
    spatial = np.array(dims[1:] if n == 4 else dims)
    if not np.all(spatial > 0):
        raise AssertionError(
            f"[Error] One dimension is non-positve {spatial}. Every median size must be at least 1."
        )
    return spatial


def _shrink(dims: np.ndarray, max_dims: np.ndarray, epsilon: float) -> tuple[np.ndarray, bool]:
    """Point 3: shrink every axis by the same factor in log space, no axis below 1.

    The reduction order (how many times an axis is divided by ``1 + epsilon``) starts equal on
    every axis; axes that would go below 1 are pinned at their own bound and the rest share what
    is left. biom3d recomputes the pinned set from the new orders only (a pinned axis is released
    at the next pass); that loop is kept as is because it decides the numbers. For a few absurd
    medians (e.g. ``(2, 5, 2e7)``) it alternates between two states forever; when a state comes
    back, this returns the cycle flag and pins every axis seen too high so far instead of hanging.
    """
    log_eps = np.log(1 + epsilon)
    lower = (np.log(dims).sum() - np.log(max_dims).sum()) / log_eps
    order = lower / len(dims)
    upper = np.log(dims) / log_eps
    too_high = order > upper
    seen: set[bytes] = set()
    ever_high = too_high.copy()
    cycle = False
    while np.any(too_high):
        key = too_high.tobytes()
        if key in seen or np.all(too_high):
            cycle = True
            too_high = ever_high
            free = (~too_high).sum()
            small = (lower - (upper * too_high).sum()) / max(free, 1)
            order = np.where(too_high, upper, small)
            break
        seen.add(key)
        small = (lower - (upper * too_high).sum()) / (~too_high).sum()
        order = np.where(too_high, upper, small)
        too_high = order > upper
        ever_high |= too_high
    return dims / (1 + epsilon) ** order, cycle


def _pools(sizes: np.ndarray, min_fmaps: int, max_pool: int) -> np.ndarray:
    """Points 5 and 8: poolings until the feature map reaches ``min_fmaps``, in [0, max_pool]."""
    return np.clip(np.floor(np.log2(sizes / min_fmaps)).astype(int), 0, max_pool)


def _value_flags(values: list, flags: tuple[bool, ...]) -> tuple[list[bool], bool]:
    """Which distinct patch values one ``itertools.product`` tuple selects.

    biom3d multiplies the list of distinct values by the flag tuple with numpy broadcasting, so
    with one value left it is selected when any flag is set, and any other shorter count raises
    ``ValueError`` in biom3d; here the leading flags are used instead (the second result says so).

    There are never more values than flags (one flag per distinct first patch value): axes with
    equal first values have the same pooling, hence the same growth step (a first patch lies in
    ``[m * 2**p, m * 2**(p + 1))`` for pooling ``p``, below ``m`` for a clipped 0 and from
    ``m * 2**max_pool`` up for a clipped ``max_pool``: disjoint ranges), so they always grow
    together and stay equal.
    """
    if len(values) == len(flags):
        return list(flags), False
    if len(values) == 1:
        return [any(flags)], False
    return list(flags[: len(values)]), True


def _trace(
    dims: Sequence[float],
    max_dims: Sequence[int] = (128, 128, 128),
    max_pool: int = 5,
    epsilon: float = 1e-3,
) -> _Trace:
    ori = _check_dims(dims)
    spatial = ori.copy()
    budget = np.array(max_dims)

    min_fmaps = _check_budget(max_dims, max_pool)

    shrunk = bool(spatial.prod() > budget.prod())
    cycle = False
    if shrunk:
        spatial, cycle = _shrink(spatial, budget, epsilon)
    spatial = np.maximum(np.floor(spatial).astype(int), 1)

    pool = _pools(spatial, min_fmaps, max_pool)
    step = (2**pool).astype(int)
    patch = ((spatial // step) * step).astype(int)
    first_patch = patch.copy()

    # Grow toward the budget: first every distinct value together, then subsets, in
    # itertools.product order; the step stays the one of point 5 even when pools would change.
    n_values = len(np.unique(patch))
    fixes = 0
    for flags in list(itertools.product([True, False], repeat=n_values))[:-1]:
        values = sorted(np.unique(patch).tolist(), reverse=True)
        chosen, fixed = _value_flags(values, flags)
        fixes += fixed
        grow = np.isin(patch, [v for v, keep in zip(values, chosen) if keep])
        while (patch + step * grow).prod() <= budget.prod() and np.any((patch < ori) * grow):
            patch = patch + step * grow
    grown_patch = patch.copy()

    patch = np.where(ori == 1, 1, patch).astype(int)
    pool = _pools(patch, min_fmaps, max_pool)
    batch = int(max(2 * int(np.floor(budget.prod() / patch.prod())), 2))
    return _Trace(
        ori=ori,
        min_fmaps=int(min_fmaps),
        shrunk=shrunk,
        dims=spatial,
        step=step,
        first_patch=first_patch,
        grown_patch=grown_patch,
        patch=patch,
        pool=pool,
        batch=batch,
        broadcast_fixes=fixes,
        reduction_cycle=cycle,
    )


def find_patch_pool_batch(
    dims: Sequence[float],
    max_dims: Sequence[int] = (128, 128, 128),
    max_pool: int = 5,
    epsilon: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray, int]:
    """biom3d's patch size, poolings and batch size for a median image size.

    Parameters
    ----------
    dims : sequence of int
        Median size, ``(Z, Y, X)`` or ``(C, Z, Y, X)`` (the channel entry is dropped); a 2D
        median is ``(1, H, W)``.
    max_dims : sequence of int, default (128, 128, 128)
        ``(z, y, x)``; only the product bounds the patch volume.
    max_pool : int, default 5
        Largest number of poolings per axis.
    epsilon : float, default 1e-3
        Step of the log-space shrinking of a median larger than ``prod(max_dims)``.

    Returns
    -------
    patch, pool : numpy.ndarray
        Integer arrays of length 3, ``(z, y, x)``.
    batch : int
        ``max(2 * floor(prod(max_dims) / prod(patch)), 2)``, not clamped.

    Raises
    ------
    AssertionError
        ``dims`` without 3 or 4 entries; a non-positive entry ("One dimension is non-positve");
        ``min(max_dims) // 2**max_pool < 1`` ("is too small regarding max_pool") or a negative
        ``max_pool``: :class:`~napari_autoconfig.errors.LimitsError`, an ``AssertionError``.

    Notes
    -----
    The steps are biom3d's, in its order and with its floating point operations: the shrinking
    loop with its recomputed mask, the growth over ``itertools.product([True, False])`` tuples
    with the growth step of the first pooling computation, then ``patch = 1`` on axes whose
    median is 1 and the poolings recomputed from the final patch. Two places where biom3d fails
    are handled instead: when growing merges distinct patch values so that a flag tuple is
    longer than the values left, biom3d raises a numpy broadcasting ``ValueError`` (e.g. median
    ``(228, 314, 1802)`` with ``max_dims=(96, 96, 96)``); here the leading flags are used. And
    the shrinking loop, which never ends for a few absurd medians, stops when it repeats.
    """
    t = _trace(dims, max_dims, max_pool, epsilon)
    return t.patch, t.pool, t.batch


def get_aug_patch(patch: Sequence[int] | np.ndarray) -> list[int]:
    """biom3d's augmentation patch: the patch diagonal, so rotations leave no empty corners.

    When one axis is more than 3 times smaller than another (anisotropic patch), that axis keeps
    its size and the others get the diagonal of the plane they span; otherwise every axis gets
    the diagonal of the whole box. Rounding is numpy's (half to even).

    Parameters
    ----------
    patch : sequence of int
        Patch size, any number of axes.

    Returns
    -------
    list of int
        Plain Python ints, same order as ``patch``.

    Examples
    --------
    >>> get_aug_patch([128, 128, 32])
    [181, 181, 32]
    """
    sizes = np.asarray(patch)
    ratio = sizes / sizes.min()
    if np.any(ratio > 3):
        thin = int(np.argmin(ratio))
        others = np.array([s**2 for i, s in enumerate(sizes) if i != thin])
        diag = int(np.round(np.sqrt(others.sum())))
        out = [diag] * len(sizes)
        out[thin] = int(sizes[thin])
        return out
    return [int(np.round(np.sqrt((sizes**2).sum())))] * len(sizes)


def clamp_batch(batch: int, max_batch: int, min_batch: int) -> int:
    """Clamp like biom3d's ``auto_config``: cap at ``max_batch`` first, then raise to ``min_batch``.

    So ``min_batch`` wins when the two bounds cross (biom3d preprocessing with fewer than 40
    images passes ``max_batch = 0`` or ``1``, and gets ``min_batch``).
    """
    batch = int(batch)
    if batch > max_batch:
        batch = int(max_batch)
    if batch < min_batch:
        batch = int(min_batch)
    return batch


def _max_batch_for(limits: Limits, num_images: int | None) -> int:
    if limits.batch_rule == "fixed":
        return int(limits.max_batch)
    # "preprocessing" (Limits refuses any other rule)
    if num_images is None:
        raise LimitsError(
            "The 'preprocessing' batch rule needs the number of images "
            "(biom3d uses number_of_images // 20); pass num_images, or use the 'fixed' rule."
        )
    return int(num_images) // 20


def _patch_reason(t: _Trace, max_dims: Sequence[int]) -> str:
    budget = f"{_fmt(max_dims)} = {math.prod(max_dims)} voxels"
    median = _fmt(t.ori)
    if t.shrunk:
        start = (
            f"the median {median} is larger than the budget {budget}, so it was shrunk by the "
            f"same factor on every axis in log space (no axis below 1) to {_fmt(t.dims)}"
        )
    else:
        start = f"the median {median} fits the budget {budget}"
    rounded = (
        f"each axis was rounded down to a multiple of its pooling step {_fmt(t.step)}, "
        f"giving {_fmt(t.first_patch)}"
    )
    if not np.array_equal(t.grown_patch, t.first_patch):
        grown = (
            f", then grown by those steps toward the budget (while the axis is still smaller "
            f"than the median) to {_fmt(t.grown_patch)}"
        )
    else:
        grown = ", and no axis could grow by its step without leaving the budget or the median"
    flat = ""
    if not np.array_equal(t.patch, t.grown_patch):
        flat = "; axes whose median is 1 (2D data) keep a patch of 1"
    return f"Patch {_fmt(t.patch)}: {start}; {rounded}{grown}{flat}."


def _pool_reason(axis: str, size: int, pool: int, min_fmaps: int, max_pool: int) -> str:
    raw = math.floor(math.log2(size / min_fmaps))
    why = f"floor(log2({size} / {min_fmaps})) = {raw}"
    if raw > max_pool:
        why += f", capped at max_pool {max_pool}"
    elif raw < 0:
        why += ", raised to 0"
    return (
        f"{pool} pooling{'s' if pool != 1 else ''} along {axis} because {why} "
        f"({min_fmaps} = min(max_dims) // 2**max_pool is the smallest feature map)."
    )


def _batch_reason(
    t: _Trace,
    batch: int,
    max_dims: Sequence[int],
    lo: int,
    hi: int,
    limits: Limits,
    num_images: int | None,
) -> str:
    raw = 2 * (math.prod(max_dims) // int(t.patch.prod()))
    text = (
        f"Batch {batch} = 2 x floor({_fmt(max_dims)} / patch volume {int(t.patch.prod())}) "
        f"= {raw} (at least 2)"
    )
    if limits.batch_rule == "preprocessing":
        text += f", with max_batch = {num_images} images // 20 = {hi} as biom3d's preprocessing"
    text += f", clamped to [{lo}, {hi}] (max first, then min)."
    return text


def _aug_reason(patch: np.ndarray, aug: list[int]) -> str:
    ratio = patch / patch.min()
    if np.any(ratio > 3):
        thin = AXES_ZYX[int(np.argmin(ratio))]
        return (
            f"Augmentation patch {_fmt(aug)}: the patch is anisotropic (an axis is more than 3 "
            f"times the {thin} size), so {thin} keeps its size and the others get the diagonal "
            "of the plane they span, so rotations leave no empty corners."
        )
    return (
        f"Augmentation patch {_fmt(aug)}: every axis gets the diagonal of the patch box, so "
        "rotations leave no empty corners."
    )


def make_plan(
    median_size: Sequence[int],
    limits: Limits = Limits(),  # frozen, so a shared default is safe
    num_images: int | None = None,
) -> Plan:
    """Plan a biom3d training from a median image size, with reasons for every number.

    Parameters
    ----------
    median_size : sequence of int
        ``(Z, Y, X)``, ``(C, Z, Y, X)`` or a 2D ``(1, H, W)`` median (numpy order).
    limits : Limits
        Budget, pooling and batch limits.
    num_images : int, optional
        Number of images; needed by the ``"preprocessing"`` batch rule.

    Returns
    -------
    Plan
        Plain ints, ``(z, y, x)`` triples.

    Raises
    ------
    LimitsError
        The ``"preprocessing"`` rule without ``num_images`` (bad limits are refused earlier, by
        :class:`Limits`). A subclass of ``AssertionError``.
    AssertionError
        ``median_size`` without 3 or 4 entries, or with an entry below 1.
    """
    hi = _max_batch_for(limits, num_images)
    t = _trace(median_size, limits.max_dims, limits.max_pool, limits.epsilon)
    batch = clamp_batch(t.batch, hi, limits.min_batch)
    aug = get_aug_patch(t.patch)
    reasons = [_patch_reason(t, limits.max_dims)]
    reasons += [
        _pool_reason(axis, int(s), int(p), t.min_fmaps, limits.max_pool)
        for axis, s, p in zip(AXES_ZYX, t.patch, t.pool)
    ]
    reasons.append(
        _batch_reason(t, batch, limits.max_dims, limits.min_batch, hi, limits, num_images)
    )
    reasons.append(_aug_reason(t.patch, aug))
    if t.broadcast_fixes:
        reasons.append(
            "biom3d itself would stop with a numpy broadcasting error on this median while "
            "growing the patch; the leading flags of its search were used instead."
        )
    if t.reduction_cycle:
        reasons.append(
            "biom3d's shrinking loop never ends on this median; it was stopped when it repeated."
        )
    return Plan(
        median_size=tuple(int(v) for v in median_size),
        patch=tuple(int(v) for v in t.patch),
        pool=tuple(int(v) for v in t.pool),
        batch=batch,
        aug_patch=tuple(aug),
        limits=limits,
        max_batch_used=hi,
        reasons=tuple(reasons),
    )


def oversize_axes(plan: Plan, shape_zyx: Sequence[int]) -> tuple[str, ...]:
    """Sentences for the axes where the patch is larger than an image (biom3d pads those).

    Parameters
    ----------
    plan : Plan
    shape_zyx : sequence of int
        The image's spatial shape ``(Z, Y, X)`` (``Z = 1`` for 2D).
    """
    out = []
    for axis, p, s in zip(AXES_ZYX, plan.patch, shape_zyx):
        if p > s:
            out.append(
                f"The patch is larger than this image along {axis} ({p} > {int(s)}): biom3d "
                "will pad the image, so part of every patch is padding."
            )
    return tuple(out)
