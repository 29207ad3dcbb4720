"""The command line's MONAI part: ``--datastats FILE.yaml`` (Auto3DSeg's DataAnalyzer files).

:mod:`.cli` calls these few functions; everything MONAI-specific about the command line lives
here: the options, the checks done before any file is read, the datastats with a progress bar,
the one line about the cases MONAI would skip, the ``monai`` entry of ``--json`` and a run on a
MONAI datalist (``napari-autoconfig datalist.json --dataroot DIR --datastats FILE.yaml``). The
statistics come from :func:`napari_autoconfig.planners.monai.compute_datastats`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .dataset import Dataset
    from .planners.monai import Datastats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--datastats`` and its options, ``--dataroot``."""
    group = parser.add_argument_group("MONAI Auto3DSeg datastats")
    group.add_argument(
        "--datastats",
        type=Path,
        metavar="FILE.yaml",
        help="write MONAI Auto3DSeg's DataAnalyzer files, FILE.yaml and FILE_by_case.yaml "
        "(monai 1.6.1's keys, layout and values, without torch); an existing file is kept as "
        "a backup",
    )
    group.add_argument(
        "--datastats-ccp",
        action="store_true",
        help="with --datastats: count each label's connected components (MONAI's do_ccp)",
    )
    group.add_argument(
        "--datastats-hist-bins",
        type=int,
        default=0,
        metavar="N",
        help="with --datastats: an intensity histogram of N bins over [-500, 500] (MONAI's "
        "hist_bins; 0, the default, writes none)",
    )
    group.add_argument(
        "--dataroot",
        type=Path,
        metavar="DIR",
        help="the folder a MONAI datalist's paths are relative to, when IMAGES is a datalist "
        ".json (default: the datalist's folder)",
    )


def is_datalist(args: argparse.Namespace) -> bool:
    """Whether IMAGES names a MONAI datalist (a .json file) rather than a folder."""
    images = args.images
    return isinstance(images, Path) and images.suffix.lower() == ".json" and images.is_file()


def check(args: argparse.Namespace) -> None:
    """Refuse option mixes that cannot work, before any file is read."""
    if args.datastats is None:
        for flag, given in (
            ("--datastats-ccp", args.datastats_ccp),
            ("--datastats-hist-bins", args.datastats_hist_bins),
        ):
            if given:
                raise ConfigError(f"{flag} goes with --datastats FILE.yaml: give that too.")
    if args.datastats is not None and getattr(args, "export_nnunet", None) is not None:
        raise ConfigError(
            "--datastats and --export-nnunet are two runs: export first, then run --datastats "
            "on the exported dataset (or on the folders)."
        )
    if args.datastats is not None and getattr(args, "median", None) is not None:
        raise ConfigError(
            "--datastats reads the images: give their folder (or a datalist) instead of --median."
        )
    if args.datastats is not None:
        folder = args.datastats.expanduser().absolute().parent
        if not folder.is_dir():
            raise ConfigError(
                f"--datastats {str(args.datastats)!r}: the folder {str(folder)!r} does not "
                "exist. Create it, or write the datastats elsewhere."
            )
        if args.datastats.is_dir():
            raise ConfigError(
                f"--datastats {str(args.datastats)!r} is a folder: name a file, e.g. "
                f"{str(args.datastats / 'datastats.yaml')!r}."
            )
    if args.datastats_hist_bins < 0:
        raise ConfigError("--datastats-hist-bins must be 0 (no histogram) or more.")
    if is_datalist(args) and args.datastats is None:
        raise ConfigError(
            f"{str(args.images)!r} is a MONAI datalist: give --datastats FILE.yaml to write "
            "MONAI's datastats of its cases (the other plans read image folders)."
        )
    if is_datalist(args):
        other = [
            flag
            for flag, given in (
                ("--save", getattr(args, "save", None) is not None),
                ("--update-config", getattr(args, "update_config", None) is not None),
                ("--objects", getattr(args, "objects", False)),
                ("--per-image", getattr(args, "per_image", False)),
                ("--yaml", getattr(args, "yaml", False)),
                ("--planner", getattr(args, "planner", "biom3d") in ("nnunet", "both")),
            )
            if given
        ]
        if other:
            raise ConfigError(
                f"{str(args.images)!r} is a MONAI datalist: it gives MONAI's datastats only, not "
                f"{', '.join(other)}. Run those on the image folders."
            )
    if args.dataroot is not None and not is_datalist(args):
        raise ConfigError(
            "--dataroot is for a MONAI datalist: give the datalist .json as IMAGES, or leave "
            "--dataroot out for folders."
        )


def open_cases(args: argparse.Namespace) -> Dataset:
    """The cases to analyse: the datalist's, or the folders' (images and masks, nnU-Net)."""
    from .dataset import open_datalist, open_dataset

    if is_datalist(args):
        return open_datalist(args.images, args.dataroot)
    if args.images is None:  # the bundled sample, as the rest of the run
        from .sample import locate_sample

        folder = locate_sample().folder
        return open_dataset(folder / "images", folder / "masks")
    return open_dataset(args.images, args.masks)


def compute(args: argparse.Namespace, dataset: Dataset) -> Datastats:
    """MONAI's datastats of ``dataset``, with a progress bar on standard error."""
    from tqdm import tqdm

    from .fingerprint import DaemonThreadPool
    from .planners.monai import compute_datastats

    bar = tqdm(
        total=len(dataset.cases),
        unit="case",
        desc="datastats",
        disable=args.quiet or None,
        file=sys.stderr,
        leave=False,
    )
    executor = DaemonThreadPool(args.workers) if args.workers else None
    try:
        return compute_datastats(
            dataset,
            executor=executor,
            progress=lambda done, total: bar.update(1),
            do_ccp=args.datastats_ccp,
            hist_bins=args.datastats_hist_bins,
        )
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def skipped_line(datastats: Datastats) -> str | None:
    """One line naming the cases MONAI would skip, or None."""
    if not datastats.skipped:
        return None
    shown = "; ".join(s.reason for s in datastats.skipped[:3])
    more = f"; and {len(datastats.skipped) - 3} more" if len(datastats.skipped) > 3 else ""
    return (
        f"napari-autoconfig: MONAI's DataAnalyzer would skip {len(datastats.skipped)} case(s), "
        f"left out of the datastats as MONAI leaves them: {shown}{more}."
    )


def write(args: argparse.Namespace, datastats: Datastats) -> tuple[list[Path], list[str]]:
    """Write the two files; return them and the lines to print on standard error."""
    from .planners.monai import write_datastats

    files = list(write_datastats(datastats, args.datastats))
    notes = [f"napari-autoconfig: wrote MONAI's datastats to {', '.join(map(str, files))}"]
    line = skipped_line(datastats)
    if line:
        notes.insert(0, line)
    return files, notes


def json_record(datastats: Datastats, files: list[Path]) -> dict:
    """The ``monai`` entry of ``--json``: MONAI's summary, the files, the cases skipped."""
    return {
        "stats_summary": datastats.summary,
        "datastats_files": [str(f) for f in files],
        "skipped": [{"path": str(s.file), "why": s.reason} for s in datastats.skipped],
    }


def summary(datastats: Datastats) -> str:
    """A few lines about the datastats for the printed summary."""
    stats = datastats.summary
    if not stats.get("n_cases"):
        return "# MONAI datastats: no case could be analysed.\n"
    image = stats["image_stats"]
    fg = stats["image_foreground_stats"]["intensity"]
    return (
        f"# MONAI datastats: {stats['n_cases']} case(s); median spacing (RAS) "
        f"{image['spacing']['median']}, median shape {image['shape']['median']}; labels "
        f"{stats['label_stats']['labels']}; foreground intensity 0.5-99.5 %: "
        f"{fg['percentile_00_5']:.6g} .. {fg['percentile_99_5']:.6g}\n"
    )


def run_datalist(args: argparse.Namespace) -> int:
    """``napari-autoconfig datalist.json --datastats FILE.yaml``: MONAI's datastats alone."""
    from .cli import _finite

    datastats = compute(args, open_cases(args))
    files, notes = write(args, datastats)
    if args.json:
        record = {"monai": json_record(datastats, files)}
        print(json.dumps(_finite(record), indent=2, allow_nan=False))
    else:
        print(summary(datastats), end="")
    for note in notes:
        print(note, file=sys.stderr)
    return 0
