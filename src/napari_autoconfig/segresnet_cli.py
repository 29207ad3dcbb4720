"""The command line's side of MONAI Auto3DSeg's SegResNet plan (``--planner monai`` or ``all``).

What it prints: a few comment lines beside biom3d's and nnU-Net's summaries (:func:`summary`),
and the plan's JSON entry (:func:`json_record`, under ``monai.segresnet``). The numbers come from
:func:`napari_autoconfig.planning.plan_training`, as in the widget.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .errors import AutoconfigError

if TYPE_CHECKING:
    from .planners.monai_segresnet import SegResNetPlan

#: ``--monai-modality`` choices: what SegResNet's template is told (it assumes CT without one).
MODALITIES = ("ct", "mri")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--monai-modality``: SegResNet's intensity normalisation."""
    parser.add_argument(
        "--monai-modality",
        choices=MODALITIES,
        default="ct",
        help="with --planner monai or all: the modality MONAI's SegResNet template is told, as "
        "input.yaml's 'modality' (ct: clip to the foreground 0.5-99.5 %% and scale to 0-1, the "
        "template's assumption when none is given; mri: mean/std)",
    )


def check(args: argparse.Namespace, planners: tuple[str, ...]) -> None:
    """Refuse, before any file is read, what MONAI's plan cannot come from or go with.

    Raises
    ------
    AutoconfigError
        ``--planner monai`` with ``--median`` (it plans from the files), or with options that
        only make sense for biom3d's plan; ``--planner all`` with a MONAI datalist.
    """
    from .monai_cli import is_datalist

    if is_datalist(args) and "monai" in planners and planners != ("monai",):
        raise AutoconfigError(
            f"{str(args.images)!r} is a MONAI datalist: it gives MONAI's datastats and, with "
            "--planner monai, SegResNet's plan; biom3d's and nnU-Net's plans read the image "
            "folders."
        )
    if "monai" not in planners:
        if getattr(args, "monai_modality", "ct") != "ct":
            raise AutoconfigError(
                f"--monai-modality {args.monai_modality} is for MONAI's SegResNet plan: add "
                "--planner monai (or all)."
            )
        return
    if args.median is not None:
        raise AutoconfigError(
            "MONAI's SegResNet plans from the images' datastats (spacings, sizes, foreground "
            "intensities, labels): give IMAGES instead of --median, or use --planner biom3d."
        )
    biom3d_only = args.update_config or args.yaml or args.per_image or args.objects
    if "biom3d" not in planners and (args.save is not None or biom3d_only):
        raise AutoconfigError(
            f"--planner {args.planner} makes no biom3d plan: biom3d's config (--save, --yaml, "
            "--update-config), --per-image and --objects need --planner biom3d, both or all."
        )


def json_record(plan: SegResNetPlan) -> dict:
    """The plan's JSON entry: the template's config names, sizes (x, y, z) as MONAI writes them,
    and ``training.roi_size_zyx`` in numpy order."""
    return plan.to_json()


def _axes(values, digits: str = ".4g") -> str:
    return " x ".join(format(float(v), digits) for v in values)


def summary(plan: SegResNetPlan) -> str:
    """What SegResNet's plan says, in a few comment lines (sizes in the images' (z, y, x))."""
    crops = plan.num_crops_per_image
    low, high = plan.intensity_bounds
    spacing = _axes(plan.spacing_zyx)
    resampled = "resampled to it" if plan.resample else "not resampled: each image's own"
    lines = [
        f"MONAI SegResNet plan ({plan.template}) from the datastats of {plan.n_cases} cases",
        f"resample spacing (z, y, x) {spacing} ({resampled}; anisotropic scales "
        f"{'yes' if plan.anisotropic_scales else 'no'})",
        f"roi_size (z, y, x) {_axes(plan.roi_size_zyx, 'g')}, {plan.levels} levels (blocks_down "
        f"{', '.join(map(str, plan.blocks_down))}), init_filters {plan.init_filters}, crop mode "
        f"{plan.crop_mode}",
        f"batch {plan.train_batch_size} x {crops} crop{'s' * (crops != 1)} per image for a "
        f"{plan.gpu_memory_gb:g} GB GPU",
        f"intensity bounds {low:.6g} to {high:.6g} (normalize {plan.normalize_mode}, modality "
        f"{plan.modality})",
        f"epochs {plan.train_num_epochs} (num_epochs {plan.num_epochs} for {plan.n_cases} cases)",
    ]
    return "".join(f"# {line}\n" for line in lines)
