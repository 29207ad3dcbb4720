"""What the widget remembers between napari launches: the last folders and limits.

One small JSON file, ``$XDG_CONFIG_HOME/napari-autoconfig/settings.json`` (``~/.config`` when
``XDG_CONFIG_HOME`` is unset), written atomically so a crash never leaves half a file. A corrupt or
unreadable file is ignored with a warning: the widget then starts from its defaults.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

APP_FOLDER = "napari-autoconfig"
FILE_NAME = "settings.json"

# The keys the widget stores, with the type each value must have to be used.
KNOWN: dict[str, type | tuple[type, ...]] = {
    "images": str,
    "masks": (str, type(None)),
    "max_dims": list,
    "max_batch": int,
    "min_batch": int,
    "batch_rule": str,
}


def settings_path() -> Path:
    """Return the settings file's path (it may not exist yet)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / APP_FOLDER / FILE_NAME


def load_settings(path: Path | None = None) -> dict[str, Any]:
    """Read the stored settings; unknown keys and values of the wrong type are dropped.

    Returns an empty dict when there is no file, and (with a warning) when it is corrupt.
    """
    path = settings_path() if path is None else Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        warnings.warn(
            f"napari-autoconfig: ignoring the settings file {path} ({exc}); "
            "delete it if this keeps happening.",
            stacklevel=2,
        )
        return {}
    if not isinstance(data, dict):
        warnings.warn(
            f"napari-autoconfig: ignoring the settings file {path} (not a JSON object).",
            stacklevel=2,
        )
        return {}
    # bool is an int in Python: never take true/false for a batch size.
    return {
        key: value
        for key, value in data.items()
        if key in KNOWN and isinstance(value, KNOWN[key]) and not isinstance(value, bool)
    }


def save_settings(values: dict[str, Any], path: Path | None = None) -> Path:
    """Write ``values`` as JSON, atomically (temporary file then rename). Returns the path."""
    path = settings_path() if path is None else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(values, fh, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
