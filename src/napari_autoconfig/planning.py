"""One way to plan: a fingerprint (or a median size) and the limits in, everything shown out.

The command line and the napari widget both call :func:`plan_training` and show what it returns:
biom3d's plan, the GPU budget that chose ``max_dims`` (if one was given), the GPU memory of one
training step or the sentence saying why there is none, the notes about images smaller than the
patch, and the config values with the comment that goes above them. Neither assembles any of it
itself, so the two cannot disagree.

Each planner is asked for by name (``planners=``, names from :data:`PLANNERS`; the user's choice
``biom3d`` / ``nnunet`` / ``both`` / ``monai`` / ``all`` maps to them through
:data:`PLANNER_CHOICES`, the one table the command line's ``--planner`` and the widget's combo box
read). biom3d's plan fills most fields;
nnU-Net v2's plans (``TrainingPlan.nnunet``) come from nnU-Net's own fingerprint
(:func:`napari_autoconfig.planners.fingerprint_nnunet`: crop boxes and its seeded intensity draws),
which the caller makes, off the GUI thread in the widget, and hands in as ``nnunet_fingerprint``.
Without ``"biom3d"`` no biom3d plan is made and its fields say so (``biom3d`` is None). A median
alone plans biom3d only: nnU-Net plans from the files. MONAI Auto3DSeg's SegResNet plan
(``TrainingPlan.monai``) comes from MONAI's datastats summary
(:func:`napari_autoconfig.planners.monai.compute_datastats`), handed in as ``monai_datastats``.

Sizes are numpy order, ``(Z, Y, X)`` or ``(C, Z, Y, X)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import AutoconfigError, LimitsError
from .export import config_values
from .gpu_budget import budget_note, plan_for_gpu
from .memory import PRECISIONS, MemoryEstimate, biom3d_can_train, estimate_plan_memory
from .planners.biom3d import Limits, Plan, make_plan, oversize_axes

if TYPE_CHECKING:
    from .fingerprint import Fingerprint
    from .planners.monai import Datastats
    from .planners.monai_segresnet import SegResNetPlan
    from .planners.nnunet import NnUNetPlans
    from .planners.nnunet_records import NnUNetFingerprint

_DEFAULT_LIMITS = Limits()
#: The planners :func:`plan_training` knows, by the name ``planners=`` takes.
PLANNERS = ("biom3d", "nnunet", "monai")
#: What a user chooses (``--planner``, the widget's planner box) and the planners it runs.
PLANNER_CHOICES: dict[str, tuple[str, ...]] = {
    "biom3d": ("biom3d",),
    "nnunet": ("nnunet",),
    "both": ("biom3d", "nnunet"),
    "monai": ("monai",),
    "all": PLANNERS,
}


@dataclass(frozen=True)
class NnUNetResampling:
    """What nnU-Net resamples each case from and to, as its planner has them.

    Attributes
    ----------
    spacings_zyx : tuple of tuple of float
        Per case, in the fingerprint's case order, the spacing nnU-Net's reader gives it
        ((z, y, x); a 2D image's is ``(999 * max, y, x)``).
    target_zyx : tuple of float
        The spacing nnU-Net's full-resolution configuration trains at: (z, y, x) for 3d_fullres,
        (y, x) for 2D images' 2d (its z is never resampled).
    """

    spacings_zyx: tuple[tuple[float, ...], ...]
    target_zyx: tuple[float, ...]


@dataclass(frozen=True)
class TrainingPlan:
    """Everything the command line and the widget show about a training plan.

    Attributes
    ----------
    biom3d : Plan or None
        biom3d's plan (patch, poolings, batch, augmentation patch, the reasons in words). With a
        GPU budget its ``limits.max_dims`` is the derived one and its last reason says so. None
        when biom3d's planner was not asked for: the fields up to ``budget_note`` are then empty
        (None, ``""``, ``()``, ``{}``).
    precision : str
        ``"fp16"`` (biom3d's mixed precision) or ``"fp32"``: the precision of ``memory`` and of
        the GPU budget.
    gpu_gib : float or None
        The GPU memory ``max_dims`` was fitted to, in GiB; None when the limits' ``max_dims`` was
        used as given.
    memory : MemoryEstimate or None
        The GPU memory of one training step; None when it cannot be estimated
        (``memory_reason`` says why).
    memory_reason : str
        Why there is no estimate (a sentence starting "GPU memory not estimated: "); ``""``
        when there is one.
    notes : tuple of str
        Things to know about the plan against the images: where the patch is larger than
        images (biom3d pads them).
    config_values : dict
        biom3d's config keys and values (:func:`napari_autoconfig.export.config_values`), in
        config order. Read it; do not change it (it is shared by whoever holds this plan).
    budget_note : str
        The sentence saying ``max_dims`` came from the GPU memory; ``""`` without a GPU budget.
    nnunet : NnUNetPlans or None
        nnU-Net v2's default plans (``nnUNetPlans``), when asked for; its ``fullres`` is the
        3d_fullres configuration (2d for 2D images).
    nnunet_fingerprint : NnUNetFingerprint or None
        The nnU-Net fingerprint ``nnunet`` was planned from (spacings, crops, intensities).
    monai : SegResNetPlan or None
        What MONAI Auto3DSeg's SegResNet template trains with, when asked for.
    monai_datastats : Datastats or None
        MONAI's datastats ``monai`` was planned from.
    """

    biom3d: Plan | None
    precision: str
    gpu_gib: float | None = None
    memory: MemoryEstimate | None = None
    memory_reason: str = ""
    notes: tuple[str, ...] = ()
    config_values: dict[str, object] = field(default_factory=dict)
    budget_note: str = ""
    nnunet: NnUNetPlans | None = None
    nnunet_fingerprint: NnUNetFingerprint | None = None
    monai: SegResNetPlan | None = None
    monai_datastats: Datastats | None = None

    @property
    def nnunet_resampling(self) -> NnUNetResampling | None:
        """Each case's spacing and the one nnU-Net trains at, from its planner (None without
        nnU-Net's plan): the images table flags what nnU-Net resamples by 2x or more."""
        if self.nnunet is None or self.nnunet_fingerprint is None:
            return None
        return NnUNetResampling(
            tuple(tuple(s) for s in self.nnunet_fingerprint.spacings),
            tuple(self.nnunet.fullres.spacing_zyx),
        )

    @property
    def memory_line(self) -> str:
        """The memory in one line for people: the estimate and its parts, or why there is none."""
        return self.memory.describe() if self.memory is not None else self.memory_reason

    @property
    def config_comment(self) -> str:
        """The comment line put above every written or shown config (``""`` without a GPU
        budget), so a reader of the config knows where ``max_dims`` came from."""
        return f"# {self.budget_note}\n" if self.budget_note else ""


def plan_training(
    source: Fingerprint | Sequence[int] | None,
    limits: Limits = _DEFAULT_LIMITS,
    *,
    precision: str = "fp16",
    gpu_memory_gib: float | None = None,
    planners: Sequence[str] = ("biom3d",),
    nnunet_fingerprint: NnUNetFingerprint | None = None,
    nnunet_preset: str = "default",
    monai_datastats: Datastats | None = None,
    monai_modality: str = "ct",
) -> TrainingPlan:
    """Plan a training from a dataset's fingerprint, or from a median size alone.

    Parameters
    ----------
    source : Fingerprint, sequence of int or None
        biom3d's fingerprint of the dataset (its median size, number of images, channels, spacing
        and intensities all count), or a median size ``(Z, Y, X)`` or ``(C, Z, Y, X)`` (numpy
        order; ``C`` channels, 1 when absent) when no files are read: no spacing, intensities or
        number of images then. None when biom3d's planner is not asked for.
    limits : Limits
        biom3d's limits. With ``gpu_memory_gib`` every one of them but ``max_dims`` is used.
    precision : {"fp16", "fp32"}, default "fp16"
        Training precision of the memory estimate and of the GPU budget.
    gpu_memory_gib : float, optional
        The GPU's memory in GiB: ``max_dims`` is then derived to fit it
        (:func:`napari_autoconfig.gpu_budget.plan_for_gpu`), nnU-Net plans for it (its
        ``gpu_memory_target_in_gb``; None: the preset's own target), and SegResNet's segmenter
        scales its batch to it (None: 16 GiB, the template's own figure without a GPU).
    planners : sequence of {"biom3d", "nnunet", "monai"}, default ("biom3d",)
        Which plans to make (:data:`PLANNERS`; a user's choice maps to them through
        :data:`PLANNER_CHOICES`). ``"biom3d"``: biom3d's plan, its memory and config values (the
        limits, precision and GPU budget are biom3d's); ``"nnunet"``: nnU-Net's plans
        (``TrainingPlan.nnunet``), by ``nnunet_preset``; ``"monai"``: MONAI Auto3DSeg's
        SegResNet plan (``TrainingPlan.monai``).
    nnunet_fingerprint : NnUNetFingerprint, optional
        nnU-Net's fingerprint of the same files
        (:func:`napari_autoconfig.planners.fingerprint_nnunet`); needed with ``"nnunet"``.
    nnunet_preset : {"default", "ResEncM", "ResEncL", "ResEncXL"}, default "default"
        nnU-Net's planner: its default or a residual-encoder preset.
    monai_datastats : Datastats, optional
        MONAI's datastats of the same files
        (:func:`napari_autoconfig.planners.monai.compute_datastats`); needed with ``"monai"``.
    monai_modality : {"ct", "mri"}, default "ct"
        The modality SegResNet's template is told (``input.yaml``'s ``modality``; it assumes CT
        when none is given): its intensity normalisation.

    Returns
    -------
    TrainingPlan

    Raises
    ------
    LimitsError
        An unknown precision or planner, limits or a median no plan can come from, or a GPU too
        small for any plan biom3d's network can train.
    AutoconfigError
        nnU-Net or MONAI asked for without its fingerprint (datastats), or from a median alone;
        biom3d asked for without a source; no planner asked for.
    """
    if precision not in PRECISIONS:
        raise LimitsError(f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}.")
    unknown = [name for name in planners if name not in PLANNERS]
    if unknown:
        raise LimitsError(f"Unknown planner {unknown[0]!r}; use one of {', '.join(PLANNERS)}.")
    if not planners:
        raise AutoconfigError(f"No planner asked for: give one or more of {', '.join(PLANNERS)}.")
    nnunet = (
        _nnunet_plans(source, nnunet_fingerprint, gpu_memory_gib, nnunet_preset)
        if "nnunet" in planners
        else None
    )
    monai = (
        _monai_plan(source, monai_datastats, gpu_memory_gib, monai_modality)
        if "monai" in planners
        else None
    )
    others = {
        "nnunet": nnunet,
        "nnunet_fingerprint": nnunet_fingerprint if nnunet is not None else None,
        "monai": monai,
        "monai_datastats": monai_datastats if monai is not None else None,
    }
    if "biom3d" not in planners:
        return TrainingPlan(biom3d=None, precision=precision, **others)
    if source is None:
        raise AutoconfigError(
            "biom3d's plan needs its fingerprint of the images (or a median size)."
        )
    fingerprint = source if hasattr(source, "median_size") else None
    if fingerprint is not None:
        median = tuple(fingerprint.median_size)
        num_images, channels = fingerprint.num_images, int(fingerprint.channels)
    else:
        median = tuple(int(v) for v in source)
        num_images, channels = None, int(median[0]) if len(median) == 4 else 1

    if gpu_memory_gib is not None:
        chosen = plan_for_gpu(median, gpu_memory_gib, limits, num_images, channels, precision)
        plan, memory, reason = chosen.plan, chosen.memory, ""
        gpu_gib = chosen.gpu_gib
        note = budget_note(plan.limits.max_dims, gpu_gib, precision)
    else:
        plan = make_plan(median, limits, num_images=num_images)
        memory, reason = _memory(plan, channels, precision)
        gpu_gib, note = None, ""
    return TrainingPlan(
        biom3d=plan,
        precision=precision,
        gpu_gib=gpu_gib,
        memory=memory,
        memory_reason=reason,
        notes=_oversize_notes(plan, fingerprint),
        config_values=config_values(plan, fingerprint),
        budget_note=note,
        **others,
    )


def _nnunet_plans(
    source: Fingerprint | Sequence[int] | None,
    fingerprint: NnUNetFingerprint | None,
    gpu_memory_gb: float | None = None,
    preset: str = "default",
) -> NnUNetPlans:
    """nnU-Net's plans from its own fingerprint; a clear refusal without one."""
    if source is not None and not hasattr(source, "median_size"):
        raise AutoconfigError(
            "nnU-Net plans from the images themselves (spacings, crops, intensities), not from a "
            "median size: fingerprint the folders instead."
        )
    if fingerprint is None:
        raise AutoconfigError(
            "nnU-Net's plan needs nnU-Net's own fingerprint of the images "
            "(napari_autoconfig.planners.fingerprint_nnunet): fingerprint the folders for nnU-Net."
        )
    from .planners.nnunet import plan_nnunet

    return plan_nnunet(fingerprint, gpu_memory_gb, preset)


def _monai_plan(
    source: Fingerprint | Sequence[int] | None,
    datastats: Datastats | None,
    gpu_memory_gib: float | None,
    modality: str,
) -> SegResNetPlan:
    """SegResNet's plan from MONAI's datastats; a clear refusal without them."""
    if source is not None and not hasattr(source, "median_size"):
        raise AutoconfigError(
            "MONAI's SegResNet plans from the images' datastats (spacings, sizes, foreground "
            "intensities, labels), not from a median size: fingerprint the folders instead."
        )
    if datastats is None:
        raise AutoconfigError(
            "MONAI's SegResNet plan needs MONAI's datastats of the images "
            "(napari_autoconfig.planners.monai.compute_datastats): fingerprint the folders for "
            "MONAI."
        )
    from .planners.monai_segresnet import plan_segresnet

    gpu = 16.0 if gpu_memory_gib is None else gpu_memory_gib  # the template's figure sans GPU
    return plan_segresnet(datastats.summary, gpu_memory_gb=gpu, modality=modality)


def _memory(plan: Plan, channels: int, precision: str) -> tuple[MemoryEstimate | None, str]:
    """The plan's training memory and ``""``, or None and the sentence saying why there is none.

    A plan biom3d's network cannot train has no memory to speak of: a figure would promise a
    training that fails at its first step.
    """
    try:
        if not biom3d_can_train(plan.patch, plan.pool):
            why = (
                "with no pooling its U-Net has no decoder"
                if max(plan.pool) == 0
                else "its deepest level would hold a single voxel, which instance normalisation "
                "refuses in training"
            )
            pool = "x".join(map(str, plan.pool))
            return None, (
                f"GPU memory not estimated: biom3d's network cannot train this plan (poolings "
                f"{pool}): {why}."
            )
        return estimate_plan_memory(plan, channels, precision), ""
    except LimitsError as error:  # e.g. more poolings than biom3d's U-Net takes
        return None, f"GPU memory not estimated: {error}"


def _oversize_notes(plan: Plan, fingerprint: Fingerprint | None) -> tuple[str, ...]:
    """Say when the patch is larger than images (biom3d's rule allows it; it means padding)."""
    if fingerprint is None:
        return oversize_axes(plan, plan.median_size[-3:])
    small = [r for r in fingerprint.records if oversize_axes(plan, r.image.spatial_shape_zyx)]
    if not small:
        return ()
    first = small[0]
    return (
        f"the patch is larger than {len(small)} of {fingerprint.num_images} image(s), e.g. "
        f"{first.image.path.name!r}: "
        + " ".join(oversize_axes(plan, first.image.spatial_shape_zyx)),
    )
