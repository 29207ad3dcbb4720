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
import logging
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, _compiled, monai_cli, nnunet_cli, segresnet_cli
from .atomic import PendingWrite, apply_writes, next_backup, resolve_target
from .config_update import check_config_target, finished, prepare_update
from .errors import AutoconfigError, Cancelled, ConfigError
from .export import (
    check_save_target,
    pending_save,
    render_config,
    render_python,
    render_yaml,
)
from .memory import PRECISIONS
from .nnunet_cli import add_planner_arguments, take_plans_target
from .planners.biom3d import BATCH_RULES, Limits, Plan
from .planning import PLANNER_CHOICES, TrainingPlan, plan_training

if TYPE_CHECKING:
    from .fingerprint import Fingerprint
    from .planners.monai import Datastats
    from .planners.nnunet_records import NnUNetFingerprint

EXIT_ERROR = 2
#: An error napari-autoconfig did not foresee (a bug): one line asking for a report.
EXIT_UNEXPECTED = 1
_DEFAULT = Limits()
#: Seconds a URL may stay silent before its read is given up (``--timeout``); the readers' own
#: default, repeated here so that ``--help`` does not import them.
REMOTE_TIMEOUT = 30.0
#: How many times --timeout one whole answer of a URL may take (the readers' DEADLINE_FACTOR).
REMOTE_DEADLINE_FACTOR = 10


def _whole(minimum: int, maximum: int | None = None):
    """An argparse type: a whole number in ``[minimum, maximum]`` (a usage error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text[:40]} is above {maximum}")
        return value

    parse.__name__ = "positive int" if minimum == 1 else "non-negative int"
    return parse


_positive = _whole(1)
_non_negative = _whole(0)
#: More poolings than this would need a patch over 2**30 voxels along every axis.
MAX_POOL_LIMIT = 30
_pool_count = _whole(0, MAX_POOL_LIMIT)


def _location(text: str) -> Path | str:
    """A folder path, or a URL kept as text (``Path`` would fold its ``//``)."""
    return text if "://" in text else Path(text)


def _positive_real(unit: str) -> Callable[[str], float]:
    """An argparse type: a positive, finite number of ``unit`` (the text quoted cut to 40
    characters in the message)."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of {unit}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"{text[:40]} is not a positive number of {unit}")
        return value

    return convert


_gib = _positive_real("GiB")
_seconds = _positive_real("seconds")


class _Version(argparse.Action):
    """``--version``: one line, never wrapped (argparse's own action wraps it to the terminal),
    saying whether the compiled loops are in use: pip hides the build's warning."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} {__version__} ({_compiled.in_words()})")
        parser.exit()


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
        "(not with --max-dims); with --planner nnunet or both, nnU-Net plans for it too "
        "(its -gpu_memory_target)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp16",
        help="training precision of the GPU memory estimate (fp16: biom3d's mixed precision)",
    )
    parser.add_argument(
        "--max-pool",
        type=_pool_count,
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
        "--workers",
        type=_positive,
        help="threads reading files (default: the cores); more than the cores are all kept busy "
        "(files on a slow network share)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        default=REMOTE_TIMEOUT,
        help="give up on a URL that sends nothing for this long, at connecting or while "
        f"reading ({REMOTE_TIMEOUT:g}), or whose answer (a file, a chunk, a listing) is not "
        f"complete within {REMOTE_DEADLINE_FACTOR} times this long",
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
        help="let --save replace an existing FILE (the old one is kept as FILE.bak, or FILE.bak.N "
        "when older backups exist)",
    )
    parser.add_argument(
        "--update-config",
        type=Path,
        metavar="FILE",
        help="update an existing biom3d config (.py, .yaml or .yml) in place: only the "
        "auto-configured keys change (keeps a numbered backup, FILE.bak...)",
    )
    parser.add_argument(
        "--objects",
        action="store_true",
        help="also label the connected objects of every mask (26-connectivity) and report their "
        "count and extents (z, y, x) against the patch (needs --masks)",
    )
    add_planner_arguments(parser)
    segresnet_cli.add_arguments(parser)
    nnunet_cli.add_export_arguments(parser)
    monai_cli.add_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--version",
        action=_Version,
        help="show the version and whether the compiled loops are in use, then exit",
    )
    return parser


def _exists_hint(path: Path) -> str:
    """What to do about an existing --save FILE (the end of the sentence that refuses it)."""
    return (
        "Choose another name, update it in place with --update-config, or replace it with "
        f"--force (the old file is then kept as {next_backup(resolve_target(path)).name!r})."
    )


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse bad output targets before any long work, so a failed run writes nothing."""
    if args.save is not None:
        target = check_save_target(args.save)
        if not args.force and os.path.lexists(target):
            raise ConfigError(
                f"{str(target)!r} already exists and was left untouched. {_exists_hint(target)}"
            )
    if args.update_config is not None:
        check_config_target(args.update_config)
    if args.save is not None and args.update_config is not None:
        save, update = resolve_target(args.save), resolve_target(args.update_config)
        if save == update:
            raise ConfigError(
                f"--save {str(args.save)!r} and --update-config {str(args.update_config)!r} are "
                "the same file; give one of them. Nothing was written."
            )


def _fingerprint(
    args: argparse.Namespace, with_nnunet: bool = False, with_monai: bool = False
) -> tuple[Fingerprint, NnUNetFingerprint | None, Datastats | None]:
    """biom3d's fingerprint of the folders, with a progress bar; with ``with_nnunet`` nnU-Net's
    too, and with ``with_monai`` MONAI's datastats (``--datastats``' options), all from the same
    read of every file (:func:`napari_autoconfig.one_pass.fingerprint_all`)."""
    from tqdm import tqdm

    from .dataset import open_dataset
    from .fingerprint import DaemonThreadPool, fingerprint_dataset
    from .readers import set_remote_timeout

    images, masks = args.images, args.masks
    if images is None:
        from .sample import locate_sample

        sample = locate_sample()
        folder = sample.folder
        images, masks = folder / "images", folder / "masks"
        if sample.note:
            print(f"napari-autoconfig: note: {sample.note}", file=sys.stderr)
        print(f"No folder given: running on the bundled sample in {folder}", file=sys.stderr)
    set_remote_timeout(args.timeout)
    # zarr warns about what a damaged store holds, then fails: the failure is said in one line
    warnings.filterwarnings("ignore", module=r"zarr(\.|$)")
    # reads abandoned after such a failure (a stopped chunk's siblings) would be reported by
    # asyncio at exit, many lines each: the one line above says what failed
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
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

    # daemon threads: a read stalled in one must not hold an interrupted run (Ctrl-C) at exit
    executor = DaemonThreadPool(args.workers) if args.workers else None
    nnunet = datastats = None
    try:
        if with_nnunet:
            from .one_pass import fingerprint_all
            from .planners import open_nnunet_source

            label_mode = getattr(args, "nnunet_labels", "auto")
            found = fingerprint_all(
                dataset,
                open_nnunet_source(images, masks, label_mode=label_mode),
                planners=("biom3d", "nnunet", "monai") if with_monai else ("biom3d", "nnunet"),
                seed=args.seed,
                num_samples=args.num_samples,
                executor=executor,
                progress=lambda done, total: progress(done, total, None),
                monai_options=monai_cli.options(args),
            )
            fingerprint, nnunet, datastats = found.biom3d, found.nnunet, found.monai
        else:
            fingerprint = fingerprint_dataset(
                dataset,
                seed=args.seed,
                num_samples=args.num_samples,
                executor=executor,
                progress=progress,
            )
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)  # nothing waits on a stalled read
    for note in fingerprint.notes():  # passed-over entries, NaN voxels: said, not silent
        print(f"napari-autoconfig: warning: {note}", file=sys.stderr)
    for note in nnunet.notes if nnunet is not None else ():  # a spacing assumed, classes renumbered
        print(f"napari-autoconfig: {note}", file=sys.stderr)
    return fingerprint, nnunet, datastats


def _summary(training: TrainingPlan, fingerprint: Fingerprint | None) -> str:
    lines = []
    if fingerprint is not None:
        from .fingerprint import describe

        lines.extend(f"# {line}" for line in describe(fingerprint))
    lines.extend(f"# {line}" for line in training.biom3d.explain().splitlines())
    lines.extend(f"# note: {line}" for line in training.notes)
    lines.append(f"# {training.memory_line}")
    return "\n".join(lines)


def _objects(args: argparse.Namespace, fingerprint: Fingerprint, plan: Plan):
    """Label the objects of every mask (one tqdm step per mask); return the sentences and the
    JSON record that say how large they are against the plan's patch."""
    from tqdm import tqdm

    from .fingerprint import DaemonThreadPool
    from .objects import describe_objects, objects_dataset, objects_json

    bar = tqdm(
        total=fingerprint.num_images,
        unit="mask",
        desc="objects",
        disable=args.quiet or None,
        file=sys.stderr,
        leave=False,
    )
    executor = DaemonThreadPool(args.workers, "objects") if args.workers else None
    try:
        summary = objects_dataset(
            fingerprint, executor=executor, progress=lambda done, total, found: bar.update(1)
        )
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
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
    training: TrainingPlan,
    fingerprint: Fingerprint | None,
    objects: dict | None = None,
    rows: Sequence = (),
    nnunet: dict | None = None,
    monai: dict | None = None,
) -> str:
    fp, plan, values, memory = fingerprint, training.biom3d, training.config_values, training.memory
    record = {
        "num_images": fp.num_images if fp else None,
        "median_size": list(fp.median_zyx) if fp else list(plan.median_size[-3:]),
        # As the config says (IS_2D / NUM_CHANNELS appear only for 2D or multichannel data).
        "channels": int(values.get("NUM_CHANNELS", 1)),
        "is_2d": bool(values.get("IS_2D", False)),
        "median_spacing": list(fp.median_spacing_xyz) if fp and fp.median_spacing_xyz else [],
        "median_spacing_zyx": list(fp.median_spacing_zyx) if fp and fp.median_spacing_xyz else [],
        "unit": fp.unit if fp else None,
        # no file read (--median): no intensities known, as the config's empty lists say
        "mean": fp.mean if fp else None,
        "std": fp.std if fp else None,
        "perc_005": fp.perc_005 if fp else None,
        "perc_995": fp.perc_995 if fp else None,
        "batch": plan.batch,
        "patch": list(plan.patch),
        "aug_patch": list(plan.aug_patch),
        "pool": list(plan.pool),
        "reasons": list(plan.reasons),
        "skipped": [str(p) for p in fp.skipped] if fp else [],
        "unreadable": [{"path": str(u.path), "why": u.why} for u in fp.unreadable] if fp else [],
        "config": values,
        "gpu_memory": memory.as_dict() if memory is not None else None,
        "gpu_memory_reason": training.memory_reason or None,  # why gpu_memory is null
        # the dataset's notes (passed-over entries, non-finite voxels), then the plan's (padding)
        "notes": (fp.notes() if fp else []) + list(training.notes),
        "images": [row.as_dict() for row in rows],
        # whether the masks were read by the compiled loops or numpy's (same numbers)
        "compiled_loops": _compiled.loops is not None,
    }
    if objects is not None:  # --objects: counts and extents (z, y, x) of the masks' objects
        record["objects"] = objects
    if nnunet is not None:  # --planner both: nnU-Net's fingerprint and plans, its key names
        record["nnunet"] = nnunet
    # --datastats, --planner monai or all: MONAI's stats_summary (the files written), and
    # SegResNet's plan with the template's key names
    if monai is not None:
        record["monai"] = monai
    # RFC 8259 has no NaN or Infinity: a number that is not finite is written null
    return json.dumps(_finite(record), indent=2, allow_nan=False)


def _finite(value: object) -> object:
    """``value`` with every float that is NaN or infinite replaced by None (lists, dicts too)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "dtype") and hasattr(value, "tolist"):  # a numpy number or array
        return _finite(value.tolist())
    return value


def _write_outputs(
    args: argparse.Namespace, save_text: str | None, pending, plans: PendingWrite | None = None
) -> list[str]:
    """Write --save, --update-config and nnU-Net's plans file together: all are checked (under
    their locks) before any is written, so a refusal of one writes none. Returns the lines that
    say what was written."""
    writes = []
    if save_text is not None:
        writes.append(
            pending_save(
                args.save, save_text, replace=args.force, exists_hint=_exists_hint(args.save)
            )
        )
    if pending is not None:
        writes.append(pending.pending())
    if plans is not None:
        writes.append(plans)
    written = apply_writes(writes)
    notes = []
    if save_text is not None:
        saved = written.pop(0)
        through = f" (through the link, into {saved.target})" if saved.path.is_symlink() else ""
        kept = f" (the old file is kept as {saved.backup})" if saved.backup else ""
        notes.append(f"Saved the config to {saved.path}{through}{kept}")
    if pending is not None:
        update = finished(pending, written.pop(0))
        changes = ", ".join(key for key, _, _ in update.changed) or "nothing changed"
        added = f"; added {', '.join(update.added)}" if update.added else ""
        notes.append(f"Updated {update.path} ({changes}{added}); backup in {update.backup}")
        for key, anchor, users in update.linked:
            notes.append(
                f"note: {key} carries the YAML anchor &{anchor}, so {', '.join(users)} (*{anchor}) "
                "changed with it"
            )
    if plans is not None:
        notes.append(nnunet_cli.plans_note(written.pop(0)))
    return notes


def _drop_stdout() -> None:
    """Point standard output at the null device, so the bytes it still buffers, which could not
    be written, are not tried again (with a traceback) when Python exits."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (captured): nothing is flushed at exit
        pass


def _limits(args: argparse.Namespace) -> Limits:
    """biom3d's limits from the options, after the checks that need no file (a refused
    combination raises before any file is read)."""
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
    if args.gpu_memory is not None and args.max_dims is not None:
        raise AutoconfigError(
            "Give either --gpu-memory (max_dims is then chosen to fit the GPU) or --max-dims, "
            "not both."
        )
    if args.objects and (args.median is not None or (args.images and args.masks is None)):
        raise AutoconfigError(
            "--objects labels the objects of the masks: give IMAGES and --masks (not --median)."
        )
    return Limits(  # impossible limits raise LimitsError here, before any file is read
        max_dims=tuple(args.max_dims or _DEFAULT.max_dims),
        max_pool=args.max_pool,
        min_batch=args.min_batch,
        max_batch=args.max_batch,
        batch_rule=args.batch_rule,
    )


def _output(
    args: argparse.Namespace,
    training: TrainingPlan,
    fingerprint: Fingerprint | None,
    objects: tuple[list[str], dict | None],
    monai: tuple | None = None,
) -> str:
    """What goes to standard output: the JSON record, the per-image rows, the YAML, or the
    summary and config (each planner's part when it was asked for; ``monai``: MONAI's
    datastats and their JSON entry, with --datastats or MONAI's SegResNet plan)."""
    plan, nnunet, segresnet = training.biom3d, training.nnunet, training.monai
    nnunet_parts = (training.nnunet_fingerprint, nnunet) if nnunet is not None else None
    if args.json:
        record = nnunet_cli.json_record(*nnunet_parts) if nnunet_parts else None
        monai_record = monai[1] if monai is not None else None
        if plan is None:  # the other planners' plans alone: their entries alone
            alone = {"nnunet": record, "monai": monai_record}
            alone = {key: value for key, value in alone.items() if value is not None}
            return json.dumps(_finite(alone), indent=2, allow_nan=False) + "\n"
        rows = _image_rows(args, plan, fingerprint)
        return _json(training, fingerprint, objects[1], rows, record, monai_record) + "\n"
    if args.per_image:
        from .image_table import rows_text

        return rows_text(_image_rows(args, plan, fingerprint)) + "\n"
    if args.yaml:
        return training.config_comment + render_yaml(training.config_values)
    text = ""
    if plan is not None:
        text = _summary(training, fingerprint) + "\n"
        text += "".join(f"# {line}\n" for line in objects[0])
        text += training.config_comment + render_python(training.config_values)
    if nnunet_parts is not None:
        text += nnunet_cli.summary(*nnunet_parts, gpu_memory_gb=args.gpu_memory)
    if monai is not None:
        text += monai_cli.summary(monai[0])
    if segresnet is not None:
        text += segresnet_cli.summary(segresnet)
    return text


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0, or 2 on bad input)."""
    args = _parser().parse_args(argv)
    # Before any file is read: impossible limits (LimitsError) and bad output files fail at once.
    limits = _limits(args)
    monai_cli.check(args)
    if args.export_nnunet is not None:  # a command of its own: write nnU-Net's raw dataset
        return nnunet_cli.run_export(args)
    plans_target = take_plans_target(args)  # nnU-Net's plans file, taken out of --save
    _check_outputs(args)
    planners = PLANNER_CHOICES[args.planner]
    segresnet_cli.check(args, planners)
    # a MONAI datalist: its datastats alone, or with SegResNet's plan (which needs no more)
    if monai_cli.is_datalist(args) and planners != ("monai",):
        return monai_cli.run_datalist(args)
    fingerprint, nnunet_fp, datastats = None, None, None
    # MONAI's datastats serve both --datastats and SegResNet's plan; beside nnU-Net's they come
    # from its reading pass (one read of every file for all the planners asked for)
    wants_datastats = args.datastats is not None or "monai" in planners
    with_monai = wants_datastats and "nnunet" in planners
    if "biom3d" in planners and args.median is None:
        # biom3d with the others: one read of every file feeds every fingerprint
        fingerprint, nnunet_fp, datastats = _fingerprint(
            args, with_nnunet="nnunet" in planners, with_monai=with_monai
        )
    elif "nnunet" in planners:  # nnU-Net's plans without biom3d's fingerprint
        nnunet_fp, datastats = nnunet_cli.fingerprint(args, with_monai=with_monai)
    if wants_datastats and datastats is None:  # MONAI's own pass (no nnU-Net pass to share)
        datastats = monai_cli.compute(args, monai_cli.open_cases(args))
    # One call plans what was asked, as in the widget; with --gpu-memory only max_dims is
    # derived (the plan's last reason says so).
    training = plan_training(
        fingerprint if fingerprint is not None else args.median,
        limits,
        precision=args.precision,
        gpu_memory_gib=args.gpu_memory,
        planners=planners,
        nnunet_fingerprint=nnunet_fp,
        nnunet_preset=args.nnunet_planner,
        monai_datastats=datastats,
        monai_modality=args.monai_modality,
    )
    objects = _objects(args, fingerprint, training.biom3d) if args.objects else ([], None)

    # Every output is computed (every refusal raised) before any is written.
    values, gpu_note = training.config_values, training.config_comment
    save_text = gpu_note + render_config(args.save, values) if args.save is not None else None
    pending = prepare_update(args.update_config, values) if args.update_config is not None else None
    plans = (
        nnunet_cli.pending_plans(training.nnunet, plans_target, args.force)
        if plans_target is not None and training.nnunet is not None
        else None
    )
    # Files first: a closed output pipe (``| head``) must not cost the user the files asked for.
    notes = _write_outputs(args, save_text, pending, plans)
    monai = None
    if datastats is not None:
        files: list[Path] = []
        if args.datastats is not None:
            files, more = monai_cli.write(args, datastats)
            notes += more
        elif monai_cli.skipped_line(datastats):  # said even when no file is written
            notes.insert(0, monai_cli.skipped_line(datastats))
        record = monai_cli.json_record(datastats, files)
        if training.monai is not None:
            record["segresnet"] = segresnet_cli.json_record(training.monai)
        monai = (datastats, record)
    try:
        print(_output(args, training, fingerprint, objects, monai), end="")
        sys.stdout.flush()  # a full disk shows here, as one line, not as a traceback at exit
    except BrokenPipeError:
        raise
    except OSError as error:
        _drop_stdout()
        for note in notes:
            print(note, file=sys.stderr)
        raise AutoconfigError(
            f"Cannot write the output: {error.strerror or error}. Redirect it to a file on a disk "
            "with free space, or use --save FILE."
        ) from error
    for note in notes:
        print(note, file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: one line per error, never a traceback.

    Exit status 2 for the errors the core raises on purpose (bad input, impossible limits), 130
    for an interrupt or a cancel, 1 for anything else (a bug: the line asks for a report).
    """
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
    except Exception as error:  # the last guard: a bug, never a traceback for the user
        where = _where(error)
        print(
            f"napari-autoconfig: unexpected error: {type(error).__name__}: "
            f"{' '.join(str(error).split())[:300] or 'no detail'}{where}. This is a bug: please "
            "report it to the napari-autoconfig developers with the command line you ran.",
            file=sys.stderr,
        )
        return EXIT_UNEXPECTED


def _where(error: BaseException) -> str:
    """`` (in file.py, line N)``: the innermost frame of the error, for the report."""
    tb = error.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f" (in {Path(tb.tb_frame.f_code.co_filename).name}, line {tb.tb_lineno})"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
