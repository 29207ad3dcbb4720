"""The command line's nnU-Net part: ``--planner`` (biom3d, nnunet, both...), nnU-Net's plans file.

:mod:`.cli` calls these few functions; everything nnU-Net-specific about the command line lives
here: the option (its choices are :data:`napari_autoconfig.planning.PLANNER_CHOICES`), the checks
done before any file is read (a ``.json`` given to ``--save`` is nnU-Net's plans file), the
fingerprint with a progress bar, the printed summary, the ``nnunet`` entry of ``--json``
(nnU-Net's own key names) and writing the plans file. The plans themselves come from
:func:`napari_autoconfig.planning.plan_training`, as in the widget.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import ABSENT, ANYTHING, PendingWrite, Written
from .errors import AutoconfigError, ConfigError
from .planning import PLANNER_CHOICES

if TYPE_CHECKING:
    from .planners.monai import Datastats
    from .planners.nnunet import NnUNetPlans
    from .planners.nnunet_records import NnUNetFingerprint

#: nnU-Net's planners (``--nnunet-planner``): the keys of ``planners.nnunet.PRESETS``, which a
#: test keeps equal; written out so that building the parser imports no planner.
NNUNET_PLANNERS = ("default", "ResEncM", "ResEncL", "ResEncXL")


def add_planner_arguments(parser: argparse.ArgumentParser) -> None:
    """``--planner``: which framework's plan to make (biom3d's by default)."""
    parser.add_argument(
        "--planner",
        choices=tuple(PLANNER_CHOICES),
        default="biom3d",
        help="whose plan: biom3d's (default), nnU-Net v2's default nnUNetPlans (its fingerprint "
        "and ExperimentPlanner, same numbers), or both; monai: what MONAI Auto3DSeg's SegResNet "
        "template trains with (from MONAI's datastats of the files); all: the three; with "
        "nnunet, --save FILE.json writes nnU-Net's plans file",
    )
    parser.add_argument(
        "--nnunet-planner",
        choices=NNUNET_PLANNERS,
        default="default",
        help="nnU-Net's planner with --planner nnunet or both: its default (nnUNetPlans) or a "
        "residual-encoder preset, nnUNetPlannerResEncM / L / XL (made for 8 / 24 / 40 GB GPUs; "
        "--gpu-memory plans one for another GPU, as nnU-Net's -gpu_memory_target)",
    )
    from .planners.nnunet_labels import LABEL_MODES, MODE_OPTION

    parser.add_argument(
        MODE_OPTION,
        choices=LABEL_MODES,
        default="auto",
        help="how nnU-Net's planner counts a plain folder's mask values as classes: auto (one "
        "class per value, renumbered 0, 1, 2...; masks with many values are taken for instance "
        "labels: foreground/background), classes (one class per value), foreground (every "
        "non-zero value is one class)",
    )


def take_plans_target(args: argparse.Namespace) -> Path | None:
    """Check the nnU-Net options before any file is read; return where to write the plans.

    A ``--save`` ending in ``.json`` is nnU-Net's plans file: it is taken out of ``args.save``
    (which then stays biom3d's config, or None).

    Raises
    ------
    AutoconfigError
        nnU-Net asked with ``--median`` (it plans from the files), a ``.json`` with biom3d's
        planner alone, a biom3d config asked with nnU-Net's alone, or an unusable target.
    """
    planners = PLANNER_CHOICES[getattr(args, "planner", "biom3d")]
    save = args.save
    wants_plans = save is not None and Path(save).suffix.lower() == ".json"
    if "nnunet" not in planners and getattr(args, "nnunet_planner", "default") != "default":
        raise ConfigError(
            f"--nnunet-planner {args.nnunet_planner} chooses nnU-Net's planner: add --planner "
            "nnunet (or both)."
        )
    if "nnunet" not in planners:
        if wants_plans:
            raise ConfigError(
                f"{str(save)!r} ends in .json: that is nnU-Net's plans file. Add --planner nnunet "
                "(or both), or save biom3d's config as .py / .yaml."
            )
        return None
    if args.median is not None:
        raise AutoconfigError(
            "nnU-Net plans from the images themselves (spacings, crops, intensities): give "
            "IMAGES instead of --median, or use --planner biom3d."
        )
    biom3d_only = args.update_config or args.yaml or args.per_image or args.objects
    if "biom3d" not in planners and ((save is not None and not wants_plans) or biom3d_only):
        raise AutoconfigError(
            "--planner nnunet makes nnU-Net's plans only: save them as FILE.json; biom3d's config "
            "(.py / .yaml, --yaml, --update-config), --per-image and --objects need --planner "
            "biom3d or both."
        )
    if not wants_plans:
        return None
    target = Path(save).expanduser()
    args.save = None  # the rest of the command line writes biom3d's config only
    if not target.parent.is_dir():
        raise ConfigError(
            f"Cannot save {str(target)!r}: the folder {str(target.parent)!r} does not exist. "
            "Create it or choose another place."
        )
    if target.is_dir():
        raise ConfigError(f"Cannot save the plans as {str(target)!r}: it is a folder.")
    if not args.force and (target.exists() or target.is_symlink()):
        raise ConfigError(
            f"{str(target)!r} already exists and was left untouched. Choose another name, or "
            f"replace it with --force (the old file is then kept as a numbered .bak)."
        )
    return target


def fingerprint(
    args: argparse.Namespace, with_monai: bool = False
) -> tuple[NnUNetFingerprint, Datastats | None]:
    """nnU-Net's fingerprint of IMAGES (an nnU-Net raw dataset, or images and --masks), with a
    progress bar on stderr; with ``with_monai`` MONAI's datastats too (``--datastats``'
    options), from the same read of every file (:func:`.one_pass.fingerprint_all`)."""
    from tqdm import tqdm

    from . import monai_cli
    from .fingerprint import DaemonThreadPool
    from .planners import fingerprint_nnunet, open_nnunet_source

    if args.images is None:
        from .sample import sample_folder

        folder = sample_folder()
        images, masks = folder / "images", folder / "masks"
    else:
        images, masks = args.images, args.masks
    source = open_nnunet_source(images, masks, label_mode=getattr(args, "nnunet_labels", "auto"))
    bar = tqdm(
        total=len(source.cases),
        unit="case",
        desc="nnU-Net fingerprint" + (" + datastats" if with_monai else ""),
        disable=args.quiet or None,
        file=sys.stderr,
        leave=False,
    )
    # daemon threads, left running on an interrupt (Ctrl-C): the cases being read are abandoned
    # with the process instead of being waited for, as in biom3d's pass
    executor = DaemonThreadPool(args.workers, "nnunet") if args.workers else None
    datastats = None
    try:
        if with_monai:
            from .dataset import open_dataset
            from .one_pass import fingerprint_all

            both = fingerprint_all(
                open_dataset(images, masks),
                source,
                planners=("nnunet", "monai"),
                executor=executor,
                progress=lambda done, total: bar.update(1),
                monai_options=monai_cli.options(args),
            )
            found, datastats = both.nnunet, both.monai
        else:
            found = fingerprint_nnunet(
                source, executor=executor, progress=lambda done, total: bar.update(1)
            )
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
    for note in found.notes:  # how the files were read: a spacing assumed, classes renumbered
        print(f"napari-autoconfig: {note}", file=sys.stderr)
    return found, datastats


def json_record(fingerprint: NnUNetFingerprint, plans: NnUNetPlans) -> dict:
    """The ``nnunet`` entry of ``--json``: the planner (``--nnunet-planner``, nnU-Net's class, the
    plans' name, the GPU target and nnU-Net's warnings), then nnU-Net's two files with their own
    key names."""
    return {
        "planner": plans.preset.name,
        "experiment_planner": plans.preset.planner,
        "plans_name": plans.plans_name,
        "gpu_memory_target_gb": plans.gpu_memory_target_gb,
        "notes": list(plans.notes),
        "dataset_fingerprint": fingerprint.as_json(),
        "plans": plans.as_json(),
    }


def _axes(values, names: str) -> str:
    return " x ".join(f"{v:g}" for v in values) + f" ({', '.join(names)})"


def summary(
    fingerprint: NnUNetFingerprint, plans: NnUNetPlans, gpu_memory_gb: float | None = None
) -> str:
    """What nnU-Net's plans say, in a few comment lines (sizes in the images' (z, y, x)); with
    ``gpu_memory_gb`` (``--gpu-memory``), which residual-encoder preset such a GPU fits."""
    from .planners.nnunet import preset_advice

    full = plans.fullres
    axes = "zyx" if not full.two_d else "yx"
    preset = plans.preset
    lines = [
        f"nnU-Net v2 plans ({plans.plans_name}, {preset.planner} for "
        f"{plans.gpu_memory_target_gb:g} GB) for {plans.dataset_name}: "
        f"{len(fingerprint.spacings)} cases, configurations "
        + ", ".join(c.name for c in plans.configurations),
        "target spacing " + _axes(plans.target_spacing_zyx[-len(axes) :], axes),
    ]
    for config in plans.configurations:
        patch = config.patch_size_zyx if not config.two_d else config.patch_size
        names = axes if not config.two_d else "".join("zyx"[i] for i in plans.transpose_forward)[1:]
        lines.append(
            f"{config.name}: patch {_axes(patch, names)}, batch {config.batch_size}, "
            f"{config.n_stages} stages, GPU memory {config.gpu_memory_share:.0%} of nnU-Net's "
            f"{preset.reference_gb:g} GB reference"
        )
    schemes = ", ".join(
        f"{name}: {scheme}{' (non-zero mask)' if mask else ''}"
        for name, scheme, mask in zip(
            fingerprint.channel_names, full.normalization_schemes, full.use_mask_for_norm
        )
    )
    lines.append(f"normalisation {schemes}")
    if fingerprint.intensities is None:
        lines.append("no labels: nnU-Net's foreground intensities need them")
    lines.extend(plans.notes)
    if gpu_memory_gb is not None:
        lines.append(f"nnU-Net's presets: {preset_advice(gpu_memory_gb)}")
    return "".join(f"# {line}\n" for line in lines)


def pending_plans(plans: NnUNetPlans, target: Path, replace: bool) -> PendingWrite:
    """nnU-Net's plans file as one write for :func:`~napari_autoconfig.atomic.apply_writes`:
    created exclusively, or with ``replace`` (``--force``) replaced after a numbered backup, like
    biom3d's configs."""
    from .planners.nnunet import plans_text

    return PendingWrite(
        target,
        plans_text(plans).encode("utf-8"),
        expect=ANYTHING if replace else ABSENT,
        exists_hint="Choose another name, or replace it with --force (the old file is then kept "
        "as a numbered .bak).",
    )


def plans_note(written: Written) -> str:
    """The line that says where nnU-Net's plans went (and the old file's backup)."""
    through = f" (through the link, into {written.target})" if written.path.is_symlink() else ""
    kept = f" (the old file is kept as {written.backup})" if written.backup else ""
    return f"Saved nnU-Net's plans to {written.path}{through}{kept}"


# ------------------------------------------------------------------ --export-nnunet


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """``--export-nnunet RAW/DatasetNNN_Name``: IMAGES and --masks as nnU-Net's raw dataset."""
    parser.add_argument(
        "--export-nnunet",
        type=Path,
        metavar="RAW/DatasetNNN_Name",
        help="write IMAGES and --masks as an nnU-Net v2 raw dataset in this new folder (its "
        "parent is nnUNet_raw): imagesTr/, labelsTr/ with labels 0..K, dataset.json, spacing "
        "files for TIFF; files that need no change are hard-linked; prints the two nnU-Net "
        "commands that train on it",
    )


def run_export(args: argparse.Namespace) -> int:
    """``--export-nnunet``: check the target and options before any file is read, export with a
    progress bar on stderr, print what was written and nnU-Net's two training commands."""
    from .nnunet_export import check_target, export_nnunet

    if args.median is not None or args.images is None:
        raise AutoconfigError(
            "--export-nnunet writes the files of IMAGES and --masks: give both folders."
        )
    if args.save is not None or args.update_config is not None or args.json:
        raise AutoconfigError(
            "--export-nnunet only writes the dataset: run the planning (--save, --update-config, "
            "--json) as a command of its own."
        )
    check_target(args.export_nnunet)
    if args.masks is None:
        raise AutoconfigError(
            "An nnU-Net dataset needs the masks (they become labelsTr): add --masks MASKS."
        )
    from tqdm import tqdm

    from .fingerprint import shared_pool

    bar = tqdm(
        unit="step",
        desc="nnU-Net export (masks read, cases written)",
        disable=args.quiet or None,
        file=sys.stderr,
        leave=False,
    )

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    executor = None
    if args.workers:
        from concurrent.futures import ThreadPoolExecutor

        executor = ThreadPoolExecutor(args.workers)
    try:
        result = export_nnunet(
            args.images,
            args.masks,
            args.export_nnunet,
            label_mode=getattr(args, "nnunet_labels", "auto"),
            executor=executor or shared_pool(),
            progress=progress,
        )
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    print(f"# {result.summary()}")
    for note in result.notes():
        print(f"# {note}")
    print("# Train nnU-Net on it (with nnUNet_preprocessed and nnUNet_results set):")
    print("\n".join(result.training_commands()))
    return 0
