"""The auto-configuration as biom3d config values: snippets (Python, YAML) and in-place updates.

biom3d configs are Python files of top-level ``KEY = value`` lines that later lines refer to
(``TRAIN_DATASET`` uses ``BATCH_SIZE`` and ``PATCH_SIZE``...). :func:`update_config` edits such a
file as text: it finds the owned keys' assignments with :mod:`ast` positions, replaces only their
value text and keeps every other byte (encoding, BOM, line endings, comments). The file is never
executed, imported or evaluated.

biom3d's own writer (``save_python_config``) rewrites whole lines that start with ``KEY = ``; it
drops keys missing from the base file and breaks multi-line values. Here, missing keys are added
after the last owned key present (that block sits before the lines that use the keys in biom3d's
configs) or, when none is present, after the leading comment/docstring block.

List orders: ``PATCH_SIZE``, ``AUG_PATCH_SIZE``, ``NUM_POOLS`` are ``(z, y, x)`` (numpy order, as
biom3d); ``MEDIAN_SPACING`` is ``(x, y, z)``, biom3d's convention.
"""

from __future__ import annotations

import ast
import io
import math
import os
import re
import stat
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import write_atomic
from .errors import ConfigError
from .planner import Plan

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
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass(frozen=True)
class ConfigUpdate:
    """What :func:`update_config` did.

    Attributes
    ----------
    path : Path
        The updated config.
    backup : Path
        ``<name>.bak``: the original bytes.
    changed : tuple of (key, old value text, new value text)
        Owned keys whose value changed, in file order.
    added : tuple of str
        Keys that were missing and got added.
    """

    path: Path
    backup: Path
    changed: tuple[tuple[str, str, str], ...]
    added: tuple[str, ...]


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


def check_save_target(path: str | Path) -> Path:
    """Check that a new config can be saved at ``path``; writes nothing.

    Returns
    -------
    Path
        ``path`` with ``~`` expanded.

    Raises
    ------
    ConfigError
        A suffix other than ``.py``, ``.yaml`` or ``.yml``; a missing folder; a folder given as the
        file; a folder that cannot be written.
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
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"Cannot save {str(path)!r}: the folder {str(path.parent)!r} is not writable. Choose "
            "a folder you can write to."
        )
    return path


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


def write_config(path: str | Path, text: str) -> Path:
    """Write a rendered config (:func:`render_config`) atomically, as UTF-8.

    A new file gets the permissions the umask gives (readable by the cluster job that trains);
    a replaced file keeps its own.

    Raises
    ------
    ConfigError
        As :func:`check_save_target`, or when the write itself fails.
    """
    path = check_save_target(path)
    try:
        write_atomic(path, text.encode("utf-8"))
    except OSError as error:
        raise ConfigError(
            f"Cannot write {str(path)!r}: {error.strerror or error}. Choose a folder you can "
            "write to."
        ) from error
    return path


def save_config(path: str | Path, values: Mapping[str, object]) -> Path:
    """Write the values to a new config file (``.py``, ``.yaml`` or ``.yml``), atomically.

    Raises
    ------
    ConfigError
        Other suffix, missing folder, or a folder that cannot be written.
    """
    return write_config(path, render_config(path, values))


@dataclass(frozen=True)
class _Source:
    raw: bytes
    encoding: str
    text: str
    tree: ast.Module


def _read_source(path: Path) -> _Source:
    """Checks and reads a config: a .py file that exists, readable, writable, decodes, parses."""
    if not path.exists():
        raise ConfigError(
            f"The config file {str(path)!r} does not exist. Choose an existing biom3d config, or "
            "save a new one instead."
        )
    if path.is_dir():
        raise ConfigError(f"{str(path)!r} is a folder, not a config file. Choose the .py file.")
    if path.suffix.lower() != ".py":
        raise ConfigError(
            f"Cannot update {str(path)!r}: only biom3d Python configs (.py) can be updated in "
            "place; use Save as for YAML."
        )
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"Cannot read the config {str(path)!r}: {error.strerror or error}. Check its "
            "permissions."
        ) from error
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"The config {str(path)!r} (or its folder) is not writable. Change its permissions or "
            "save a copy elsewhere."
        )
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        text = raw.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"Cannot decode the config {str(path)!r}: {error}. Save it as UTF-8."
        ) from error
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as error:
        raise ConfigError(
            f"The config {str(path)!r} is not valid Python: {error.msg} at line {error.lineno}. "
            "Fix that line (or pick another config); it was left untouched."
        ) from error
    except ValueError as error:  # null bytes
        raise ConfigError(
            f"The config {str(path)!r} is not valid Python ({error}); it was left untouched."
        ) from error
    return _Source(raw, encoding, text, tree)


# Stand-ins with the right shapes: check_config_target plans an update with them, so that every
# refusal of the real update (which depends on the file, not on the numbers) happens up front.
_PROBE_VALUES: dict[str, object] = {
    "BATCH_SIZE": 2,
    "PATCH_SIZE": [64, 64, 64],
    "AUG_PATCH_SIZE": [111, 111, 111],
    "NUM_POOLS": [4, 4, 4],
    "MEDIAN_SPACING": [1.0, 1.0, 1.0],
    "CLIPPING_BOUNDS": [0.0, 1.0],
    "INTENSITY_MOMENTS": [0.0, 1.0],
    "IS_2D": False,
    "NUM_CHANNELS": 1,
    "CHANNEL_AXIS": 0,
}


def check_config_target(path: str | Path) -> Path:
    """Check early (before long work) that a config can be updated; writes nothing.

    Runs the planning step of :func:`update_config` (:func:`prepare_update`) with stand-in values,
    so a config refused later would be refused here.

    Raises
    ------
    ConfigError
        As :func:`prepare_update`.
    """
    path = Path(path).expanduser()
    prepare_update(path, _PROBE_VALUES)
    return path


def _target_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _line_starts(text: str) -> list[int]:
    """Character offset of the start of every line, with Python's newlines (\\r\\n, \\r, \\n)."""
    starts = [0]
    for match in _LINE.finditer(text):
        starts.append(match.end())
    return starts


def _offset(text: str, starts: list[int], line: int, col_bytes: int) -> int:
    """ast (line, UTF-8 byte column) to a character offset into ``text``."""
    begin = starts[line - 1]
    end = starts[line] if line < len(starts) else len(text)
    prefix = text[begin:end].encode("utf-8")[:col_bytes].decode("utf-8")
    return begin + len(prefix)


def _same_value(old_source: str, new_value: object) -> bool:
    """Whether the old value text is a literal that renders exactly like the new value."""
    try:
        old = ast.literal_eval(old_source)
        return _py(_plain(old)) == _py(new_value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def _plain(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _insert_offset(text: str, starts: list[int], tree: ast.Module, owned: list[ast.stmt]) -> int:
    """Where new keys go: after the last owned assignment, else after the leading comments."""
    if owned:
        last = max(owned, key=lambda n: n.end_lineno or n.lineno)
        line = last.end_lineno or last.lineno
        return starts[line] if line < len(starts) else len(text)
    line = 0
    body = tree.body
    index = 0
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        line = body[0].end_lineno or body[0].lineno
        index = 1
    while (
        index < len(body)
        and isinstance(body[index], ast.ImportFrom)
        and body[index].module == "__future__"
    ):
        line = body[index].end_lineno or body[index].lineno
        index += 1
    if line == 0:  # no docstring: after the leading run of comment lines
        for number in range(1, len(starts)):
            chunk = text[starts[number - 1] : starts[number]]
            if not chunk.lstrip().startswith("#"):
                break
            line = number
    return starts[line] if line < len(starts) else len(text)


def _newline_of(text: str) -> str:
    match = re.search(r"\r\n|\r|\n", text)
    return match.group(0) if match else "\n"


@dataclass(frozen=True)
class PreparedUpdate:
    """An in-place update computed but not written yet (:func:`prepare_update`).

    Attributes
    ----------
    path : Path
        The config to update.
    original : bytes
        Its bytes when the update was prepared (they go to the backup).
    data : bytes
        Its new bytes.
    changed, added
        As :class:`ConfigUpdate`.
    """

    path: Path
    original: bytes = field(repr=False)
    data: bytes = field(repr=False)
    changed: tuple[tuple[str, str, str], ...]
    added: tuple[str, ...]

    @property
    def backup(self) -> Path:
        """``<name>.bak`` beside the config."""
        return self.path.with_name(self.path.name + ".bak")


def prepare_update(path: str | Path, values: Mapping[str, object]) -> PreparedUpdate:
    """The planning step of :func:`update_config`: read, parse and compute the new bytes.

    Writes nothing, and raises every refusal :func:`update_config` can raise except a failing
    write, so callers can check a config, and compute everything, before writing any file.

    Raises
    ------
    ConfigError
        A suffix other than ``.py`` (YAML configs are saved, not updated); a missing file, a
        folder, an unreadable or unwritable file, not valid Python (the line is named); an owned
        key assigned together with other names (``A = PATCH_SIZE = ...``), whichever values are
        given.
    """
    path = Path(path).expanduser()
    src = _read_source(path)
    text, tree = src.text, src.tree
    starts = _line_starts(text)
    wanted = {k: v for k, v in values.items() if k in OWNED_KEYS}

    edits: list[tuple[int, int, str]] = []
    changed: list[tuple[str, str, str]] = []
    present: set[str] = set()
    owned_nodes: list[ast.stmt] = []
    for node in tree.body:
        owned = [n for n in _target_names(node) if n in OWNED_KEYS]
        if not owned:
            continue
        # Refused for every owned key, not only the ones given, so that the early check (with
        # stand-in values) and the real update refuse the same files.
        if isinstance(node, ast.Assign) and len(node.targets) > 1:
            raise ConfigError(
                f"{str(path)!r} line {node.lineno}: {owned[0]} is assigned together with other "
                "names; write it on its own line (KEY = value) so it can be updated."
            )
        names = [n for n in owned if n in wanted]
        value_node = node.value
        if not names or value_node is None:  # "KEY: int" without a value: add a real one
            continue
        key = names[0]
        present.add(key)
        owned_nodes.append(node)
        begin = _offset(text, starts, value_node.lineno, value_node.col_offset)
        end = _offset(text, starts, value_node.end_lineno, value_node.end_col_offset)
        old_source = text[begin:end]
        new_source = _py(wanted[key])
        if old_source == new_source or _same_value(old_source, wanted[key]):
            continue
        edits.append((begin, end, new_source))
        changed.append((key, old_source, new_source))

    missing = [k for k in wanted if k not in present]
    new_text = text
    newline = _newline_of(text)
    if missing:
        at = _insert_offset(text, starts, tree, owned_nodes)
        block = "".join(f"{k} = {_py(wanted[k])}{newline}" for k in missing)
        if at > 0 and not text[:at].endswith(("\n", "\r")):
            block = newline + block
        edits.append((at, at, block))
    for begin, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        new_text = new_text[:begin] + replacement + new_text[end:]

    data = new_text.encode(src.encoding)  # "utf-8-sig" writes the BOM back
    return PreparedUpdate(path, src.raw, data, tuple(changed), tuple(missing))


def commit_update(update: PreparedUpdate) -> ConfigUpdate:
    """The writing step of :func:`update_config`: the backup first, then the config, atomically.

    Raises
    ------
    ConfigError
        The config changed on disk since it was prepared (nothing is written then), or a write
        failed.
    """
    path = update.path
    try:
        if path.read_bytes() != update.original:
            raise ConfigError(
                f"The config {str(path)!r} changed on disk while the update was being prepared; "
                "it was left untouched. Update it again."
            )
        mode = stat.S_IMODE(path.stat().st_mode)
        write_atomic(update.backup, update.original, mode)
        write_atomic(path, update.data, mode)
    except OSError as error:
        raise ConfigError(
            f"Cannot write the config {str(path)!r}: {error.strerror or error}. Check the "
            "permissions of the file and its folder."
        ) from error
    return ConfigUpdate(path, update.backup, update.changed, update.added)


def update_config(path: str | Path, values: Mapping[str, object]) -> ConfigUpdate:
    """Replace the owned keys' values in an existing biom3d config, in place, without running it.

    Only the value text of top-level ``KEY = value`` (or ``KEY: type = value``) assignments of keys
    in :data:`OWNED_KEYS` found in ``values`` changes; values already equal keep their text. Keys
    missing from the file are added as new lines after the last owned key present (else after the
    leading docstring/comment block). The original bytes go to ``<name>.bak`` first; the new file
    replaces the old one atomically and keeps its permissions. This is :func:`prepare_update`
    (every refusal) followed by :func:`commit_update` (the writes).

    Parameters
    ----------
    path : str or Path
        An existing biom3d Python config (``.py``).
    values : mapping
        Typically :func:`config_values`; keys outside :data:`OWNED_KEYS` are ignored.

    Returns
    -------
    ConfigUpdate

    Raises
    ------
    ConfigError
        As :func:`prepare_update` and :func:`commit_update`.
    """
    return commit_update(prepare_update(path, values))
