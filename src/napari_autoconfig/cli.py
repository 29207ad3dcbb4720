"""The ``napari-autoconfig`` command: fingerprint a folder, plan, print or write the config.

    napari-autoconfig IMAGES [--masks MASKS] [--max-dims Z Y X] [--json] [--save FILE] ...
    napari-autoconfig --median Z Y X            # plan from a known median, no files read
    napari-autoconfig                           # the bundled sample (images and masks)

Expected problems (a missing folder, an unreadable file, unpaired masks, impossible limits...)
print one line naming the file and the problem, and exit with status 2; nothing is written when a
run fails: the limits and output files are checked before any file is read, and both outputs are
computed before either is written.

The readers (SimpleITK, tifffile...) are imported only when a folder is fingerprinted, so
``--median`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .config_update import check_config_target, commit_update, prepare_update
from .errors import AutoconfigError, Cancelled, ConfigError
from .export import (
    backup_path,
    check_save_target,
    config_values,
    render_config,
    render_python,
    render_yaml,
    write_config,
)
from .gpu_budget import budget_note, plan_for_gpu
from .memory import PRECISIONS, MemoryEstimate, estimate_plan_memory
from .nnunet_cli import add_planner_arguments, take_plans_target
from .planner import BATCH_RULES, Limits, Plan, make_plan, oversize_axes

if TYPE_CHECKING:
    from .fingerprint import Fingerprint

EXIT_ERROR = 2
_DEFAULT = Limits()


def _whole(minimum: int):
    """An argparse type: a whole number of at least ``minimum`` (a usage error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    parse.__name__ = "positive int" if minimum == 1 else "non-negative int"
    return parse


_positive = _whole(1)
_non_negative = _whole(0)


def _location(text: str) -> Path | str:
    """A folder path, or a URL kept as text (``Path`` would fold its ``//``)."""
    return text if "://" in text else Path(text)


def _gib(text: str) -> float:
    """An argparse type: a positive, finite number of GiB."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of GiB") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of GiB")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-autoconfig",
        description=(
            "Fingerprint a folder of images (and masks) and propose biom3d's training patch size, "
            "number of poolings, batch size and augmentation patch size. Axis order: sizes are "
            "(z, y, x); MEDIAN_SPACING is biom3d's (x, y, z). With no IMAGES and no --median, runs "
            "on the bundled sample dataset."
        ),
    )
    parser.add_argument(
        "images",
        nargs="?",
        type=_location,
        help="folder of images (searched recursively), an nnU-Net raw dataset, or a URL of "
        "OME-Zarr images (http(s)://, s3://...)",
    )
    parser.add_argument(
        "--masks",
        type=_location,
        help="folder (or URL) of masks, paired to images by name, naming convention or position",
    )
    parser.add_argument(
        "--median",
        type=_positive,
        nargs="+",
        metavar="N",
        help="plan from a known median size (Z Y X, or C Z Y X) without reading files",
    )
    parser.add_argument(
        "--max-dims",
        type=_positive,
        nargs=3,
        metavar=("Z", "Y", "X"),
        default=None,
        help=f"patch budget; only its product bounds the patch {_DEFAULT.max_dims}",
    )
    parser.add_argument(
        "--gpu-memory",
        type=_gib,
        metavar="GIB",
        help="choose the cubic patch budget (max_dims) whose plan fits a GPU of GIB GiB "
        "(not with --max-dims)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp16",
        help="training precision of the GPU memory estimate (fp16: biom3d's mixed precision)",
    )
    parser.add_argument(
        "--max-pool",
        type=_non_negative,
        default=_DEFAULT.max_pool,
        help=f"maximum poolings per axis ({_DEFAULT.max_pool})",
    )
    parser.add_argument(
        "--max-batch",
        type=_positive,
        default=_DEFAULT.max_batch,
        help=f"largest batch size ({_DEFAULT.max_batch})",
    )
    parser.add_argument(
        "--min-batch",
        type=_positive,
        default=_DEFAULT.min_batch,
        help=f"smallest batch size ({_DEFAULT.min_batch}; wins over --max-batch, as in biom3d)",
    )
    parser.add_argument(
        "--batch-rule",
        choices=BATCH_RULES,
        default=_DEFAULT.batch_rule,
        help="'fixed': --max-batch as given; 'preprocessing': biom3d preprocessing's "
        "number_of_images // 20 (needs IMAGES, not --median)",
    )
    parser.add_argument(
        "--seed", type=_non_negative, default=42, help="seed of the intensity draw (42)"
    )
    parser.add_argument(
        "--num-samples",
        type=_positive,
        default=10000,
        help="foreground voxels drawn per image (10000)",
    )
    parser.add_argument(
        "--workers", type=_positive, help="threads reading files (default: the cores)"
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument("--yaml", action="store_true", help="print the config as YAML")
    output.add_argument(
        "--per-image",
        action="store_true",
        help="print one row per image (shape, spacing, foreground, flags) instead of the config",
    )
    parser.add_argument(
        "--save", type=Path, metavar="FILE", help="write the config to a new .py (or .yaml) file"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="let --save replace an existing FILE (the old one is kept as FILE.bak)",
    )
    parser.add_argument(
        "--update-config",
        type=Path,
        metavar="FILE",
        help="update an existing biom3d config (.py, .yaml or .yml) in place: only the "
        "auto-configured keys change (keeps FILE.bak)",
    )
    parser.add_argument(
        "--objects",
        action="store_true",
        help="also label the connected objects of every mask (26-connectivity) and report their "
        "count and extents (z, y, x) against the patch (needs --masks)",
    )
    add_planner_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse bad output targets before any long work, so a failed run writes nothing."""
    if args.save is not None:
        target = check_save_target(args.save)
        if not args.force and (target.exists() or target.is_symlink()):
            raise ConfigError(
                f"{str(target)!r} already exists and was left untouched. Choose another name, "
                "update it in place with --update-config, or replace it with --force (the old "
                f"file is then kept as {target.name + '.bak'!r})."
            )
    if args.update_config is not None:
        check_config_target(args.update_config)


def _fingerprint(args: argparse.Namespace) -> Fingerprint:
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from .dataset import open_dataset
    from .fingerprint import fingerprint_dataset

    images, masks = args.images, args.masks
    if images is None:
        from .sample import sample_folder

        folder = sample_folder()
        images, masks = folder / "images", folder / "masks"
        print(f"No folder given: running on the bundled sample in {folder}", file=sys.stderr)
    dataset = open_dataset(images, masks)
    if dataset.warning:  # e.g. masks paired by sorted position: the user should check the pairs
        print(f"napari-autoconfig: warning: {dataset.warning}", file=sys.stderr)
    bar = tqdm(
        total=None,
        unit="file",
        desc="fingerprint",
        disable=args.quiet or None,
        file=sys.stderr,
        leave=False,
    )

    def progress(done: int, total: int, record: object) -> None:
        bar.total = total
        bar.update(1)

    executor = ThreadPoolExecutor(args.workers) if args.workers else None
    try:
        return fingerprint_dataset(
            dataset,
            seed=args.seed,
            num_samples=args.num_samples,
            executor=executor,
            progress=progress,
        )
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown()


def _summary(plan: Plan, fingerprint: Fingerprint | None, memory: str = "") -> str:
    lines = []
    if fingerprint is not None:
        from .fingerprint import describe

        lines.extend(f"# {line}" for line in describe(fingerprint))
    lines.extend(f"# {line}" for line in plan.explain().splitlines())
    lines.extend(f"# note: {line}" for line in _oversize_notes(plan, fingerprint))
    if memory:
        lines.append(f"# {memory}")
    return "\n".join(lines)


def _oversize_notes(plan: Plan, fingerprint: Fingerprint | None) -> list[str]:
    """Say when the patch is larger than images (biom3d's rule allows it; it means padding)."""
    if fingerprint is None:
        return list(oversize_axes(plan, plan.median_size[-3:]))
    small = [r for r in fingerprint.records if oversize_axes(plan, r.image.spatial_shape_zyx)]
    if not small:
        return []
    first = small[0]
    return [
        f"the patch is larger than {len(small)} of {fingerprint.num_images} image(s), e.g. "
        f"{first.image.path.name!r}: "
        + " ".join(oversize_axes(plan, first.image.spatial_shape_zyx))
    ]


def _objects(args: argparse.Namespace, fingerprint: Fingerprint, plan: Plan):
    """Label the objects of every mask (one tqdm step per mask); return the sentences and the
    JSON record that say how large they are against the plan's patch."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from .objects import describe_objects, objects_dataset, objects_json

    bar = tqdm(
        total=fingerprint.num_images,
        unit="mask",
        desc="objects",
        disable=args.quiet or None,
        file=sys.stderr,
        leave=False,
    )
    executor = ThreadPoolExecutor(args.workers) if args.workers else None
    try:
        summary = objects_dataset(
            fingerprint, executor=executor, progress=lambda done, total, found: bar.update(1)
        )
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown()
    spacing = fingerprint.median_spacing_xyz
    return (
        describe_objects(summary, plan.patch, spacing),
        objects_json(summary, plan.patch, spacing),
    )


def _image_rows(args: argparse.Namespace, plan: Plan, fingerprint: Fingerprint | None) -> tuple:
    """The per-image rows (empty without a fingerprint), paths relative to the given folders."""
    if fingerprint is None:
        return ()
    from .image_table import image_rows

    return image_rows(fingerprint, plan, args.images, args.masks)


def _json(
    plan: Plan,
    fingerprint: Fingerprint | None,
    values: dict,
    memory: MemoryEstimate | None = None,
    objects: dict | None = None,
    rows: Sequence = (),
    nnunet: dict | None = None,
) -> str:
    fp = fingerprint
    record = {
        "num_images": fp.num_images if fp else None,
        "median_size": list(fp.median_zyx) if fp else list(plan.median_size[-3:]),
        # As the config says (IS_2D / NUM_CHANNELS appear only for 2D or multichannel data).
        "channels": int(values.get("NUM_CHANNELS", 1)),
        "is_2d": bool(values.get("IS_2D", False)),
        "median_spacing": list(fp.median_spacing_xyz) if fp and fp.median_spacing_xyz else [],
        "median_spacing_zyx": list(fp.median_spacing_zyx) if fp and fp.median_spacing_xyz else [],
        "unit": fp.unit if fp else None,
        "mean": fp.mean if fp else 0.0,
        "std": fp.std if fp else 0.0,
        "perc_005": fp.perc_005 if fp else 0.0,
        "perc_995": fp.perc_995 if fp else 0.0,
        "batch": plan.batch,
        "patch": list(plan.patch),
        "aug_patch": list(plan.aug_patch),
        "pool": list(plan.pool),
        "reasons": list(plan.reasons),
        "skipped": [str(p) for p in fp.skipped] if fp else [],
        "config": values,
        "gpu_memory": memory.as_dict() if memory is not None else None,
        "images": [row.as_dict() for row in rows],
    }
    if objects is not None:  # --objects: counts and extents (z, y, x) of the masks' objects
        record["objects"] = objects
    if nnunet is not None:  # --planner both: nnU-Net's fingerprint and plans, its key names
        record["nnunet"] = nnunet
    return json.dumps(record, indent=2)


def _median_channels(median: Sequence[int]) -> int:
    """Channels of a ``--median``: its first entry when it has four (C, Z, Y, X), else 1."""
    return int(median[0]) if len(median) == 4 else 1


def _plan(
    args: argparse.Namespace,
    limits: Limits,
    median: Sequence[int],
    num_images: int | None,
    channels: int,
) -> tuple[Plan, MemoryEstimate | str]:
    """The plan and its GPU memory (or a sentence saying why there is no estimate).

    With ``--gpu-memory`` only ``max_dims`` is derived (the plan's last reason says so); every
    other limit is the user's.
    """
    if args.gpu_memory is not None:
        chosen = plan_for_gpu(median, args.gpu_memory, limits, num_images, channels, args.precision)
        return chosen.plan, chosen.memory
    plan = make_plan(median, limits, num_images=num_images)
    try:
        return plan, estimate_plan_memory(plan, channels, args.precision)
    except AutoconfigError as error:  # e.g. more poolings than biom3d's U-Net takes
        return plan, f"GPU memory not estimated: {error}"


def _estimate_or_none(memory: MemoryEstimate | str) -> MemoryEstimate | None:
    return memory if isinstance(memory, MemoryEstimate) else None


def _gpu_note(plan: Plan, args: argparse.Namespace) -> str:
    """A comment line above the config when max_dims was derived from --gpu-memory."""
    if args.gpu_memory is None:
        return ""
    return f"# {budget_note(plan.limits.max_dims, args.gpu_memory, args.precision)}\n"


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0, or 2 on bad input)."""
    args = _parser().parse_args(argv)
    if args.median is not None and args.images is not None:
        raise AutoconfigError("Give either IMAGES or --median, not both.")
    if args.median is not None and len(args.median) not in (3, 4):
        raise AutoconfigError(
            f"--median takes 3 (Z Y X) or 4 (C Z Y X) numbers, not {len(args.median)}."
        )
    if args.median is not None and args.batch_rule == "preprocessing":
        raise AutoconfigError(
            "--batch-rule preprocessing needs the number of images (biom3d uses "
            "number_of_images // 20): give IMAGES instead of --median, or use --batch-rule fixed."
        )
    # Before any file is read: impossible limits (LimitsError) and bad output files fail at once.
    if args.gpu_memory is not None and args.max_dims is not None:
        raise AutoconfigError(
            "Give either --gpu-memory (max_dims is then chosen to fit the GPU) or --max-dims, "
            "not both."
        )
    limits = Limits(
        max_dims=tuple(args.max_dims or _DEFAULT.max_dims),
        max_pool=args.max_pool,
        min_batch=args.min_batch,
        max_batch=args.max_batch,
        batch_rule=args.batch_rule,
    )
    plans_target = take_plans_target(args)  # nnU-Net's plans file, taken out of --save
    _check_outputs(args)
    if args.planner == "nnunet":
        from .nnunet_cli import run_nnunet_only

        return run_nnunet_only(args, plans_target)
    if args.objects and (args.median is not None or (args.images and args.masks is None)):
        raise AutoconfigError(
            "--objects labels the objects of the masks: give IMAGES and --masks (not --median)."
        )
    if args.median is not None:
        fingerprint = None
        plan, memory = _plan(args, limits, tuple(args.median), None, _median_channels(args.median))
    else:
        fingerprint = _fingerprint(args)
        plan, memory = _plan(
            args, limits, fingerprint.median_size, fingerprint.num_images, fingerprint.channels
        )
    values = config_values(plan, fingerprint)
    memory_line = memory.describe() if isinstance(memory, MemoryEstimate) else memory
    gpu_note = _gpu_note(plan, args)
    objects_lines, objects_record = (
        _objects(args, fingerprint, plan) if args.objects else ([], None)
    )
    nnunet = None
    if args.planner == "both":
        from . import nnunet_cli

        nnunet = nnunet_cli.fingerprint_and_plan(args)

    # Both outputs are computed (every refusal raised) before either is written.
    save_text = gpu_note + render_config(args.save, values) if args.save is not None else None
    pending = prepare_update(args.update_config, values) if args.update_config is not None else None

    # Files first: a closed output pipe (``| head``) must not cost the user the files asked for.
    notes = []
    if save_text is not None:
        replaced = args.save.expanduser().exists()
        written = write_config(args.save, save_text, replace=args.force)
        kept = f" (the old file is kept as {backup_path(written)})" if replaced else ""
        notes.append(f"Saved the config to {written}{kept}")
    if pending is not None:
        update = commit_update(pending)
        changes = ", ".join(key for key, _, _ in update.changed) or "nothing changed"
        added = f"; added {', '.join(update.added)}" if update.added else ""
        notes.append(f"Updated {update.path} ({changes}{added}); backup in {update.backup}")
    if nnunet is not None and plans_target is not None:
        notes.append(nnunet_cli.save_plans(nnunet[1], plans_target))
    if args.json:
        rows = _image_rows(args, plan, fingerprint)
        nnunet_record = nnunet_cli.json_record(*nnunet) if nnunet is not None else None
        memory_record = _estimate_or_none(memory)
        print(_json(plan, fingerprint, values, memory_record, objects_record, rows, nnunet_record))
    elif args.per_image:
        from .image_table import rows_text

        print(rows_text(_image_rows(args, plan, fingerprint)))
    elif args.yaml:
        print(gpu_note + render_yaml(values), end="")
    else:
        print(_summary(plan, fingerprint, memory_line))
        print("".join(f"# {line}\n" for line in objects_lines), end="")
        print(gpu_note + render_python(values), end="")
        if nnunet is not None:
            print(nnunet_cli.summary(*nnunet), end="")
    for note in notes:
        print(note, file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: one line per expected error, exit status 2, no traceback."""
    try:
        return run(argv)
    except Cancelled as error:
        print(f"napari-autoconfig: {error}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("napari-autoconfig: interrupted", file=sys.stderr)
        return 130
    except AutoconfigError as error:  # LimitsError included
        print(f"napari-autoconfig: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # whoever read our output stopped early (``| head``): not an error; silence the flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
