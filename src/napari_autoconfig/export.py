"""The auto-configuration as biom3d config values: the values, their rendering as snippets (Python,
YAML) and writing a new config file (replacing one only when asked, with a backup).

Updating an existing config in place (Python or YAML) lives in :mod:`napari_autoconfig.
config_update`; how files are written safely (links, backups, locks) in :mod:`napari_autoconfig.
atomic`.

List orders: ``PATCH_SIZE``, ``AUG_PATCH_SIZE``, ``NUM_POOLS`` are ``(z, y, x)`` (numpy order, as
biom3d); ``MEDIAN_SPACING`` is ``(x, y, z)``, biom3d's convention.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from .atomic import (
    ABSENT,
    ANYTHING,
    PendingWrite,
    Written,
    apply_writes,
    first_backup,
    next_backup,
    resolve_target,
)
from .errors import ConfigError
from .planners.biom3d import Plan

OWNED_KEYS = (
    "BATCH_SIZE",
    "PATCH_SIZE",
    "AUG_PATCH_SIZE",
    "NUM_POOLS",
    "MEDIAN_SPACING",
    "CLIPPING_BOUNDS",
    "INTENSITY_MOMENTS",
    "IS_2D",
    "NUM_CHANNELS",
    "CHANNEL_AXIS",
)

_AXIS_NOTES = {
    "PATCH_SIZE": "(z, y, x)",
    "AUG_PATCH_SIZE": "(z, y, x)",
    "NUM_POOLS": "(z, y, x)",
    "MEDIAN_SPACING": "(x, y, z), biom3d's spacing order",
    # Which normalisation the intensity values serve: biom3d reads them only with --ct_norm.
    "CLIPPING_BOUNDS": "[0.5 percentile, 99.5 percentile] of foreground intensities; "
    "biom3d clips every image to them only with --ct_norm",
    "INTENSITY_MOMENTS": "[mean, standard deviation] of foreground intensities; with --ct_norm "
    "biom3d z-scores every image with them, otherwise each image is z-scored on its own, "
    "(img - img.mean()) / img.std()",
}


# --------------------------------------------------------------------------- values


def config_values(plan: Plan, fingerprint=None) -> dict[str, object]:
    """The owned config keys for a plan (and the fingerprint it came from), in config order.

    Parameters
    ----------
    plan : Plan
    fingerprint : napari_autoconfig.fingerprint.Fingerprint, optional
        Gives ``MEDIAN_SPACING``, the intensity keys (only when masks were used, as biom3d's
        preprocessing writes them for mask-based normalization) and 2D / channel facts. Without
        it those come out empty and 2D / channels are read from the plan's median size.

    Returns
    -------
    dict
        Plain Python ints, floats, bools and lists. ``IS_2D``, ``NUM_CHANNELS`` and
        ``CHANNEL_AXIS`` (0: channels first, as napari-autoconfig reads them) appear only for 2D
        or multichannel data.
    """
    values: dict[str, object] = {
        "BATCH_SIZE": int(plan.batch),
        "PATCH_SIZE": [int(v) for v in plan.patch],
        "AUG_PATCH_SIZE": [int(v) for v in plan.aug_patch],
        "NUM_POOLS": [int(v) for v in plan.pool],
    }
    if fingerprint is not None:
        spacing = fingerprint.median_spacing_xyz
        values["MEDIAN_SPACING"] = [] if spacing is None else [float(v) for v in spacing]
        if fingerprint.has_masks:
            values["CLIPPING_BOUNDS"] = [float(fingerprint.perc_005), float(fingerprint.perc_995)]
            values["INTENSITY_MOMENTS"] = [float(fingerprint.mean), float(fingerprint.std)]
        else:
            values["CLIPPING_BOUNDS"] = []
            values["INTENSITY_MOMENTS"] = []
        is_2d, channels = bool(fingerprint.is_2d), int(fingerprint.channels)
    else:
        values["MEDIAN_SPACING"] = []
        values["CLIPPING_BOUNDS"] = []
        values["INTENSITY_MOMENTS"] = []
        median = tuple(plan.median_size)
        channels = int(median[0]) if len(median) == 4 else 1
        is_2d = int(median[-3]) == 1
    if is_2d or channels > 1:
        values["IS_2D"] = is_2d
        values["NUM_CHANNELS"] = channels
        values["CHANNEL_AXIS"] = 0
    return values


# --------------------------------------------------------------------------- rendering


def _py(value: object) -> str:
    """Python source for a plain value; floats by ``repr`` so they read back bit for bit."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(float(value))
        return f"float({str(value)!r})"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    raise TypeError(f"Cannot write {value!r} ({type(value).__name__}) into a config.")


def _yaml(value: object) -> str:
    """YAML flow scalar/list for a plain value, readable by ``yaml.safe_load`` as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(float(value))
        # YAML 1.1 resolvers (PyYAML) need a dot, and a signed exponent, to see a float.
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        if exponent and exponent[0] not in "+-":
            exponent = "+" + exponent
        return mantissa + ("e" + exponent if exponent else "")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"Cannot write {value!r} ({type(value).__name__}) into a config.")


def _header(values: Mapping[str, object]) -> list[str]:
    lines = ["Generated by napari-autoconfig (biom3d auto-configuration)."]
    for key, note in _AXIS_NOTES.items():
        if key in values:
            lines.append(f"{key}: {note}")
    if "CHANNEL_AXIS" in values:
        lines.append("CHANNEL_AXIS: 0 means channels first, (C, Z, Y, X)")
    return ["# " + line for line in lines]


def render_python(values: Mapping[str, object]) -> str:
    """biom3d config lines, ``KEY = value``, under a short comment header saying the axis orders."""
    body = [f"{key} = {_py(value)}" for key, value in values.items()]
    return "\n".join([*_header(values), *body]) + "\n"


def render_yaml(values: Mapping[str, object]) -> str:
    """The same values as YAML (``KEY: value``, lists in flow style), with the same header."""
    body = [f"{key}: {_yaml(value)}" for key, value in values.items()]
    return "\n".join([*_header(values), *body]) + "\n"


# --------------------------------------------------------------------------- files


def check_save_target(path: str | Path, replace: bool = True) -> Path:
    """Check that a new config can be saved at ``path``; writes nothing.

    Parameters
    ----------
    path : str or Path
        Where the config would go. A symbolic link is followed: its target is what gets written.
    replace : bool, default True
        Whether an existing file there may be replaced (it is then kept in a numbered backup,
        ``<name>.bak``, ``<name>.bak.1``...). With False an existing file is refused: nothing the
        user had is replaced unasked.

    Returns
    -------
    Path
        ``path`` with ``~`` expanded.

    Raises
    ------
    ConfigError
        A suffix other than ``.py``, ``.yaml`` or ``.yml``; a missing folder; a folder, named
        pipe or device given as the file; a loop of links; a folder that cannot be written; an
        existing file when ``replace`` is False.
    """
    path = Path(path).expanduser()
    if path.suffix.lower() not in (".py", ".yaml", ".yml"):
        raise ConfigError(
            f"Cannot save a config as {str(path)!r}: the name must end in .py (biom3d Python "
            "config) or .yaml / .yml."
        )
    if not path.parent.is_dir():
        raise ConfigError(
            f"Cannot save {str(path)!r}: the folder {str(path.parent)!r} does not exist. "
            "Create it or choose another place."
        )
    if path.is_dir():
        raise ConfigError(
            f"Cannot save the config as {str(path)!r}: it is a folder. Choose a file name."
        )
    target = resolve_target(path)  # a pipe or device is refused here, never opened
    if not target.parent.is_dir():
        raise ConfigError(
            f"Cannot save {str(path)!r}: it is a link into {str(target.parent)!r}, which does not "
            "exist. Fix the link or choose another name."
        )
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"Cannot save {str(path)!r}: the folder {str(target.parent)!r} is not writable. Choose "
            "a folder you can write to."
        )
    if not replace and os.path.lexists(path):
        raise ConfigError(
            f"{str(path)!r} already exists and was left untouched. Choose another name, or "
            f"replace it (the old file is then kept as {next_backup(target).name!r})."
        )
    return path


def backup_path(path: str | Path) -> Path:
    """``<name>.bak`` beside ``path``: its first backup (later ones are ``<name>.bak.1``...).

    The backup a write made is the one its result names (:class:`~napari_autoconfig.atomic.
    Written`, :class:`~napari_autoconfig.config_update.ConfigUpdate`).
    """
    return first_backup(path)


def render_config(path: str | Path, values: Mapping[str, object]) -> str:
    """The text :func:`save_config` would write at ``path``: Python or YAML by its suffix.

    Raises
    ------
    ConfigError
        As :func:`check_save_target`.
    """
    path = check_save_target(path)
    if path.suffix.lower() == ".py":
        return render_python(values)
    return render_yaml(values)


def pending_save(
    path: str | Path,
    text: str,
    replace: bool = False,
    exists_hint: str = "Choose another name, or replace it (the old file is then kept as a .bak).",
) -> PendingWrite:
    """A new config to write with :func:`~napari_autoconfig.atomic.apply_writes` (checked first).

    ``exists_hint`` ends the sentence that refuses an existing file without ``replace``.

    Raises
    ------
    ConfigError
        As :func:`check_save_target`.
    """
    path = check_save_target(path, replace=replace)
    return PendingWrite(
        path,
        text.encode("utf-8"),
        expect=ANYTHING if replace else ABSENT,
        exists_hint=exists_hint,
    )


def write_config_file(path: str | Path, text: str, replace: bool = False) -> Written:
    """Write a rendered config (:func:`render_config`) atomically, as UTF-8; say where.

    A new file is created exclusively (of runs saving one new name at once, one wins; the others
    are refused) with the permissions the umask gives, readable by the cluster job that trains.
    A replaced file keeps its owner, group and mode, and its old bytes go to a new numbered backup
    first (``<name>.bak``, then ``<name>.bak.1``...: a backup is never overwritten). A symbolic
    link is written through: its target is replaced, the link stays.

    Parameters
    ----------
    path : str or Path
        The config file to write.
    text : str
        Its content.
    replace : bool, default False
        Whether an existing file may be replaced.

    Returns
    -------
    Written
        The path given, the file written (a link's target) and the backup (None for a new file).

    Raises
    ------
    ConfigError
        As :func:`check_save_target` (an existing file without ``replace`` included), another
        writer holding the file's lock, or a failed write.
    """
    return apply_writes([pending_save(path, text, replace=replace)])[0]


def write_config(path: str | Path, text: str, replace: bool = False) -> Path:
    """:func:`write_config_file`, returning only the path written (as given)."""
    return write_config_file(path, text, replace=replace).path


def save_config(path: str | Path, values: Mapping[str, object], replace: bool = False) -> Path:
    """Write the values to a new config file (``.py``, ``.yaml`` or ``.yml``), atomically.

    With ``replace`` an existing file is replaced and kept in a numbered backup; without it an
    existing file is refused (:func:`write_config_file`).

    Raises
    ------
    ConfigError
        Other suffix, missing folder, a folder that cannot be written, or an existing file
        without ``replace``.
    """
    return write_config(path, render_config(path, values), replace=replace)
