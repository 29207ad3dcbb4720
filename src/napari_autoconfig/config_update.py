"""Updating an existing biom3d config in place, Python or YAML, without running it.

biom3d configs are Python files of top-level ``KEY = value`` lines that later lines refer to
(``TRAIN_DATASET`` uses ``BATCH_SIZE`` and ``PATCH_SIZE``...), or YAML files (biom3d's
``adaptive_load_config`` reads them and every run logs one). :func:`update_config` edits either as
text: it finds the owned keys' values by position (:mod:`ast` for Python, the YAML composer's marks
for YAML), replaces only their value text and keeps every other byte (encoding, BOM, line endings,
comments, quoting, order). The file is never executed, imported or evaluated.

biom3d's own writer (``save_python_config``) rewrites whole lines that start with ``KEY = ``; it
drops keys missing from the base file and breaks multi-line values. Here, missing keys are added
after the last owned key present (that block sits before the lines that use the keys in biom3d's
configs) or, when none is present, after the leading comment/docstring block (Python) or at the
end (YAML). The original bytes go to a numbered backup (``<name>.bak``, ``<name>.bak.1``...) and the
new file replaces the old atomically (:func:`napari_autoconfig.atomic.apply_writes`: through links,
keeping owner and mode, one writer at a time).

YAML anchors and aliases are handled as what they mean: an owned key whose value is (or holds) an
alias, ``PATCH_SIZE: *size``, gets a literal value of its own, and the anchor (``base: &size
[...]``) and its other users stay as they were. An owned key that carries an anchor itself,
``PATCH_SIZE: &p [...]``, is updated in place and keeps its anchor, so the values that refer to it
with ``*p`` change with it, as the anchor says they are the same value: the update names each of
them (:attr:`ConfigUpdate.linked`). An update that would remove an anchor still in use is refused.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import PendingWrite, Written, apply_writes, next_backup, read_regular, resolve_target
from .errors import ConfigError
from .export import OWNED_KEYS, _py, _yaml

#: Config suffixes :func:`update_config` edits in place.
UPDATABLE_SUFFIXES = (".py", ".yaml", ".yml")

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass(frozen=True)
class ConfigUpdate:
    """What :func:`update_config` did.

    Attributes
    ----------
    path : Path
        The updated config, as named (the file written is its link's target when it is a link).
    backup : Path
        The numbered backup that holds the original bytes: ``<name>.bak``, or ``<name>.bak.<n>``
        when older backups exist (they are never overwritten).
    changed : tuple of (key, old value text, new value text)
        Owned keys whose value changed, in file order.
    added : tuple of str
        Keys that were missing and got added.
    linked : tuple of (key, anchor, tuple of str)
        YAML only: an owned key that carries an anchor (``&name``) whose value changed, with the
        places (dotted key paths) whose alias ``*name`` therefore changed too.
    """

    path: Path
    backup: Path
    changed: tuple[tuple[str, str, str], ...]
    added: tuple[str, ...]
    linked: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class _Source:
    raw: bytes
    encoding: str
    text: str
    tree: ast.Module


def _read_config(path: Path) -> bytes:
    """Checks and reads a config: a regular .py/.yaml/.yml file (or a link to one) that exists,
    readable and writable. A named pipe or a device is refused without being opened."""
    if path.suffix.lower() not in UPDATABLE_SUFFIXES and not path.is_dir():
        raise ConfigError(
            f"Cannot update {str(path)!r}: only biom3d configs (.py, .yaml or .yml) can be "
            "updated in place."
        )
    target = resolve_target(path)  # a loop of links, a pipe, a device, a folder: one line
    if not target.exists():
        raise ConfigError(
            f"The config file {str(path)!r} does not exist. Choose an existing biom3d config, or "
            "save a new one instead."
        )
    try:
        raw = read_regular(target)
    except OSError as error:
        raise ConfigError(
            f"Cannot read the config {str(path)!r}: {error.strerror or error}. Check its "
            "permissions."
        ) from error
    if not os.access(target, os.W_OK) or not os.access(target.parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"The config {str(path)!r} (or its folder) is not writable. Change its permissions or "
            "save a copy elsewhere."
        )
    return raw


def _read_source(path: Path, raw: bytes) -> _Source:
    """Decodes and parses a Python config (never runs it)."""
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
    except (RecursionError, MemoryError) as error:
        raise ConfigError(
            f"The config {str(path)!r} is nested too deeply to be read as a biom3d config; it "
            "was left untouched."
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
    changed, added, linked
        As :class:`ConfigUpdate`.
    """

    path: Path
    original: bytes = field(repr=False)
    data: bytes = field(repr=False)
    changed: tuple[tuple[str, str, str], ...]
    added: tuple[str, ...]
    linked: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @property
    def backup(self) -> Path:
        """The backup the update would make now (``<name>.bak``, else the next number)."""
        return next_backup(resolve_target(self.path))

    def pending(self) -> PendingWrite:
        """The write of this update, for :func:`~napari_autoconfig.atomic.apply_writes`: it is
        refused if the config no longer holds :attr:`original`."""
        return PendingWrite(self.path, self.data, expect=self.original)


def prepare_update(path: str | Path, values: Mapping[str, object]) -> PreparedUpdate:
    """The planning step of :func:`update_config`: read, parse and compute the new bytes.

    Writes nothing, and raises every refusal :func:`update_config` can raise except a failing
    write, so callers can check a config, and compute everything, before writing any file.

    Raises
    ------
    ConfigError
        A suffix other than ``.py``, ``.yaml`` or ``.yml``; a missing file, a folder, an
        unreadable or unwritable file; not valid Python or YAML (the line is named); a Python
        owned key assigned together with other names (``A = PATCH_SIZE = ...``); a YAML config
        whose top level is not a mapping or that repeats an owned key; whichever values are given.
    """
    path = Path(path).expanduser()
    raw = _read_config(path)
    wanted = {k: v for k, v in values.items() if k in OWNED_KEYS}
    if path.suffix.lower() in (".yaml", ".yml"):
        data, changed, added, linked = _yaml_update(path, raw, wanted)
        return PreparedUpdate(path, raw, data, changed, added, linked)
    return _prepare_python(path, raw, wanted)


def _prepare_python(path: Path, raw: bytes, wanted: dict[str, object]) -> PreparedUpdate:
    """The new bytes of a Python config: value text of owned assignments replaced, keys added."""
    src = _read_source(path, raw)
    text, tree = src.text, src.tree
    starts = _line_starts(text)

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
        The config changed on disk since it was prepared (nothing is written then), another
        writer holds its lock, or a write failed.
    """
    return finished(update, apply_writes([update.pending()])[0])


def finished(update: PreparedUpdate, written: Written) -> ConfigUpdate:
    """What an update did, once ``written`` (its :class:`~napari_autoconfig.atomic.Written`)."""
    return ConfigUpdate(update.path, written.backup, update.changed, update.added, update.linked)


def update_config(path: str | Path, values: Mapping[str, object]) -> ConfigUpdate:
    """Replace the owned keys' values in an existing biom3d config, in place, without running it.

    Only the value text of top-level ``KEY = value`` (or ``KEY: type = value``) assignments, or
    top-level ``KEY: value`` entries of a YAML config, of keys in :data:`OWNED_KEYS` found in
    ``values`` changes; values already equal keep their text. Keys
    missing from the file are added as new lines after the last owned key present (else after the
    leading docstring/comment block). The original bytes go to a new numbered backup first
    (``<name>.bak``, ``<name>.bak.1``...); the new file replaces the old one atomically (through a
    symbolic link, at its target) and keeps its owner, group and mode. This is
    :func:`prepare_update` (every refusal) followed by :func:`commit_update` (the writes).

    Parameters
    ----------
    path : str or Path
        An existing biom3d config: Python (``.py``) or YAML (``.yaml`` / ``.yml``, as biom3d's
        ``adaptive_load_config`` reads and every run logs).
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


# --------------------------------------------------------------------------- YAML


def _yaml_value_start(text: str, node) -> int:
    """Where a YAML node's value text begins: after its anchor (``&name``) and tag (``!!int``)."""
    at = node.start_mark.index
    end = node.end_mark.index
    while at < end and text[at] in "&!":
        while at < end and not text[at].isspace():
            at += 1
        while at < end and text[at] in " \t":
            at += 1
    return at


def _yaml_same(old_text: str, new_value: object) -> bool:
    """Whether an old scalar's text already means ``new_value`` (same type family, same value)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        old = YAML(typ="safe", pure=True).load(old_text)
    except (YAMLError, ValueError):
        return False
    if isinstance(new_value, bool) or isinstance(old, bool):
        return type(old) is type(new_value) and old == new_value
    if isinstance(new_value, (int, float)) and isinstance(old, (int, float)):
        return type(old) is type(new_value) and old == new_value
    return False


def _yaml_edits(text: str, node, value: object, newline: str) -> list[tuple[int, int, str]]:
    """Text edits that make ``node`` say ``value``, keeping as much of its layout as possible.

    A list of the same length keeps its layout, block or flow, comments between items included:
    only the items' own text changes. Otherwise the value is written anew: a block list stays a
    block list at the same indentation; anything else is written in flow style.
    """
    from ruamel.yaml.nodes import ScalarNode, SequenceNode

    items = list(value) if isinstance(value, (list, tuple)) else None
    if (
        items is not None
        and isinstance(node, SequenceNode)
        and len(node.value) == len(items)
        and all(isinstance(item, ScalarNode) for item in node.value)
    ):
        edits = []
        for item, new in zip(node.value, items, strict=True):
            edits.extend(_yaml_edits(text, item, new, newline))
        return edits
    begin = _yaml_value_start(text, node)
    if isinstance(node, ScalarNode):
        end = node.end_mark.index
        if begin < end and _yaml_same(text[begin:end], value):
            return []
        if begin == end:  # "KEY:" with no value: write it right after the colon
            at = begin
            while at > 0 and text[at - 1] in " \t\r\n":
                at -= 1
            if at > 0 and text[at - 1] == ":":
                return [(at, at, " " + _yaml(value))]
        return [(begin, end, _yaml(value))]
    if isinstance(node, SequenceNode) and not node.flow_style and node.value and items:
        end = node.value[-1].end_mark.index
        indent = newline + " " * node.start_mark.column
        return [(begin, end, indent.join(f"- {_yaml(v)}" for v in items))]
    if node.flow_style is False and node.value:  # a block collection: up to its last item
        last = node.value[-1]
        end = (last[1] if isinstance(last, tuple) else last).end_mark.index
    else:
        end = node.end_mark.index
    return [(begin, end, _yaml(value))]


@dataclass
class _YamlAlias:
    """One ``*name`` in the text: which anchor definition it means, where, under which key path."""

    anchor: str
    definition: int  # the index of the anchor definition it refers to (names can be reused)
    start: int
    end: int
    where: str  # dotted key path, e.g. "TRAIN_DATASET.kwargs.patch_size"


@dataclass
class _YamlTop:
    """A top-level value's text span, the anchors defined in it and the aliases it holds."""

    start: int
    end: int = -1
    anchors: list[tuple[str, int, int]] = field(default_factory=list)  # name, definition, at
    aliases: list[_YamlAlias] = field(default_factory=list)


def _yaml_structure(text: str) -> tuple[dict[str, _YamlTop], list[_YamlAlias]]:
    """The top-level values and every alias of a YAML text, from its events (never constructed).

    The composer hands an alias back as the very node of its anchor (the anchor's text marks), so
    the aliases are found here, in the event stream, with their own place in the text.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        CollectionStartEvent,
        MappingStartEvent,
        NodeEvent,
    )

    tops: dict[str, _YamlTop] = {}
    aliases: list[_YamlAlias] = []
    definitions: dict[str, int] = {}
    # one frame per open collection: [is mapping, flow style, expecting a key, key, item index,
    # its dotted path]
    frames: list[list] = []
    top: _YamlTop | None = None
    for event in YAML(typ="rt", pure=True).parse(text):
        if isinstance(event, CollectionEndEvent):
            flow = frames.pop()[1]
            if top is not None and flow:  # a block collection's end mark is the next token's
                top.end = max(top.end, event.end_mark.index)
            _yaml_done(frames)
            if len(frames) == 1 and top is not None:
                top = None
            continue
        if not isinstance(event, NodeEvent):
            continue
        frame = frames[-1] if frames else None
        is_key = frame is not None and frame[0] and frame[2]
        if frame is None:
            where = ""
        elif frame[0]:
            where = f"{frame[5]}.{frame[3]}" if frame[5] else str(frame[3])
        else:
            where = f"{frame[5]}[{frame[4]}]"
        if len(frames) == 1 and not is_key and frame[0]:  # a top-level value begins
            top = tops.setdefault(str(frame[3]), _YamlTop(event.start_mark.index))
        if top is not None and not is_key:
            top.end = max(top.end, event.end_mark.index)
        if isinstance(event, AliasEvent):
            alias = _YamlAlias(
                event.anchor,
                definitions.get(event.anchor, -1),
                event.start_mark.index,
                event.end_mark.index,
                where,
            )
            aliases.append(alias)
            if top is not None and not is_key:
                top.aliases.append(alias)
        elif event.anchor is not None:
            definitions[event.anchor] = len(definitions)
            if top is not None and not is_key:
                top.anchors.append(
                    (event.anchor, definitions[event.anchor], event.start_mark.index)
                )
        if isinstance(event, CollectionStartEvent):
            flow = bool(event.flow_style)
            frames.append(
                [isinstance(event, MappingStartEvent), flow, True, None, 0, "" if is_key else where]
            )
            continue
        if is_key:
            frame[3] = getattr(event, "value", "?")
            frame[2] = False
            continue
        _yaml_done(frames)
        if len(frames) == 1:
            top = None
    return tops, aliases


def _yaml_done(frames: list[list]) -> None:
    """A node ended: its mapping now expects a key (or a value, after a key), its list the next
    item."""
    if not frames:
        return
    frame = frames[-1]
    if frame[0]:
        frame[2] = not frame[2] if frame[2] else True
    else:
        frame[4] += 1


def _yaml_plain_equal(old: object, new: object) -> bool:
    """Whether a loaded YAML value is ``new`` (lists item by item; bools, ints, floats apart)."""
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        return len(old) == len(new) and all(map(_yaml_plain_equal, old, new))
    if isinstance(old, (bool, int, float)) and isinstance(new, (bool, int, float)):
        return type(old) is type(new) and old == new
    return False


def _yaml_loaded(text: str) -> dict | None:
    """The YAML loaded with the safe loader (plain values only), or None when it cannot be."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        loaded = YAML(typ="safe", pure=True).load(text)
    except (YAMLError, ValueError, TypeError, RecursionError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _yaml_literal(text: str, top: _YamlTop, value: object, newline: str) -> tuple[int, int, str]:
    """The edit that writes ``value`` as a literal over a top-level value holding aliases.

    The value's own anchor and tag stay; a block list stays a block list at its indentation.
    """
    begin = top.start
    while begin < top.end and text[begin] in "&!":  # the value's own anchor or tag
        while begin < top.end and not text[begin].isspace():
            begin += 1
        while begin < top.end and text[begin] in " \t\r\n":
            begin += 1
    if text.startswith("- ", begin) and isinstance(value, (list, tuple)) and value:
        column = begin - (text.rfind("\n", 0, begin) + 1)
        indent = newline + " " * column
        return begin, top.end, indent.join(f"- {_yaml(v)}" for v in value)
    return begin, top.end, _yaml(value)


def _yaml_anchor_edits(
    path: Path,
    text: str,
    tops: dict[str, _YamlTop],
    aliases: list[_YamlAlias],
    wanted: dict[str, object],
    edits_by_key: dict[str, list[tuple[int, int, str]]],
    newline: str,
) -> tuple[dict[str, tuple[int, int, str]], tuple[tuple[str, str, tuple[str, ...]], ...]]:
    """Literal values for owned keys that hold aliases, and the anchors whose users follow.

    An owned key holding an alias gets a literal when its value changes, or when the anchor it
    refers to is itself in a value being edited (it would otherwise change with it). Anchors in
    edited values keep their text; their users outside the owned keys are reported as ``linked``.
    An anchor whose text an edit removes while something still refers to it is refused.
    """
    holding = {k: t for k, t in tops.items() if k in wanted and t.aliases}
    loaded = _yaml_loaded(text) if holding else None
    literal: dict[str, tuple[int, int, str]] = {}
    for key, top in holding.items():
        if loaded is None or not _yaml_plain_equal(loaded.get(key), wanted[key]):
            literal[key] = _yaml_literal(text, top, wanted[key], newline)
    while True:  # a literal may remove an anchor that another owned alias refers to: repeat
        changed_definitions = {
            definition
            for key in (*edits_by_key, *literal)
            for _, definition, _ in tops[key].anchors
        }
        more = {
            key: _yaml_literal(text, top, wanted[key], newline)
            for key, top in holding.items()
            if key not in literal and any(a.definition in changed_definitions for a in top.aliases)
        }
        if not more:
            break
        literal.update(more)
    replaced = [(b, e) for b, e, _ in literal.values()]
    replaced += [(b, e) for edits in edits_by_key.values() for b, e, _ in edits]

    def inside(at: int, spans) -> bool:
        return any(b <= at < e for b, e in spans)

    linked = []
    for key in (*edits_by_key, *literal):
        for name, definition, at in tops[key].anchors:
            users = [
                a for a in aliases if a.definition == definition and not inside(a.start, replaced)
            ]
            if not users:
                continue
            if inside(at, replaced):
                raise ConfigError(
                    f"{str(path)!r}: the new value of {key} would remove the anchor &{name} that "
                    f"{users[0].where} refers to (*{name}). Write that value out instead of the "
                    "alias, or move the anchor; the config was left untouched."
                )
            linked.append((key, name, tuple(dict.fromkeys(a.where for a in users))))
    return literal, tuple(linked)


def _yaml_update(
    path: Path, raw: bytes, wanted: dict[str, object]
) -> tuple[
    bytes,
    tuple[tuple[str, str, str], ...],
    tuple[str, ...],
    tuple[tuple[str, str, tuple[str, ...]], ...],
]:
    """The new bytes of a YAML config: owned top-level values replaced as text, keys added.

    The YAML is composed (never constructed into objects, never run) with ruamel.yaml to get each
    node's position in the text; the edits are then made on the text itself, so every byte outside
    the owned values stays as it was. Aliases are found in the event stream (see
    :func:`_yaml_anchor_edits`).
    """
    try:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError
        from ruamel.yaml.nodes import MappingNode, ScalarNode
    except ImportError as error:  # pragma: no cover - a runtime dependency
        raise ConfigError(
            "Updating YAML configs needs ruamel.yaml: pip install ruamel.yaml."
        ) from error
    bom = raw.startswith(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"Cannot decode the config {str(path)!r}: {error}. Save it as UTF-8."
        ) from error
    try:
        root = YAML(typ="rt", pure=True).compose(text)
        tops, aliases = _yaml_structure(text)
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(
            f"The config {str(path)!r} is not valid YAML: {problem}{where}. Fix that line (or "
            "pick another config); it was left untouched."
        ) from error
    except (RecursionError, MemoryError) as error:
        raise ConfigError(
            f"The config {str(path)!r} is nested too deeply to be read as a biom3d config; it "
            "was left untouched."
        ) from error
    if root is not None and not (isinstance(root, MappingNode) and not root.flow_style):
        raise ConfigError(
            f"The config {str(path)!r} is not a biom3d config: its top level is not a list of "
            "KEY: value entries. It was left untouched."
        )
    newline = _newline_of(text)
    edits_by_key: dict[str, list[tuple[int, int, str]]] = {}
    seen: set[str] = set()
    order: list[str] = []
    last_end = -1
    for key_node, value_node in root.value if root is not None else ():
        if not isinstance(key_node, ScalarNode) or key_node.value not in OWNED_KEYS:
            continue
        key = key_node.value
        if key in seen:  # refused for every owned key, so the early check refuses it too
            raise ConfigError(
                f"{str(path)!r} line {key_node.start_mark.line + 1}: {key} appears twice; keep "
                "one so that the config means one thing. It was left untouched."
            )
        seen.add(key)
        if key not in wanted:
            continue
        order.append(key)
        top = tops[key]
        if top.aliases:  # the node is the anchor's: its marks are the anchor's text, not ours
            last_end = max(last_end, top.end)
            continue
        node_edits = _yaml_edits(text, value_node, wanted[key], newline)
        end = max((e for _, e, _ in node_edits), default=value_node.end_mark.index)
        last_end = max(last_end, end, _yaml_value_start(text, value_node))
        if node_edits:
            edits_by_key[key] = node_edits
    literal, linked = _yaml_anchor_edits(path, text, tops, aliases, wanted, edits_by_key, newline)
    edits: list[tuple[int, int, str]] = []
    changed: list[tuple[str, str, str]] = []
    for key in order:
        node_edits = edits_by_key.get(key) or ([literal[key]] if key in literal else [])
        if not node_edits:
            continue
        begin = min(b for b, _, _ in node_edits)
        end = max(e for _, e, _ in node_edits)
        old = text[begin:end]
        new = old
        for b, e, replacement in sorted(node_edits, reverse=True):
            new = new[: b - begin] + replacement + new[e - begin :]
        edits.extend(node_edits)
        changed.append((key, old, new.strip()))
    missing = [k for k in wanted if k not in seen]
    if missing:
        block = "".join(f"{k}: {_yaml(wanted[k])}{newline}" for k in missing)
        if last_end >= 0:  # after the line where the last owned value ends
            match = re.compile(r"\r\n|\r|\n").search(text, last_end)
            at = match.end() if match else len(text)
        else:
            at = len(text)
        if at > 0 and not text[:at].endswith(("\n", "\r")):
            block = newline + block
        edits.append((at, at, block))
    new_text = text
    for begin, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        new_text = new_text[:begin] + replacement + new_text[end:]
    data = new_text.encode("utf-8-sig" if bom else "utf-8")
    return data, tuple(changed), tuple(missing), linked
