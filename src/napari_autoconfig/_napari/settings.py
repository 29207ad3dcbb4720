"""What the widget remembers between napari launches: the last folders, limits, GPU budget and
planner.

One small JSON file, ``$XDG_CONFIG_HOME/napari-autoconfig/settings.json`` (``~/.config`` when
``XDG_CONFIG_HOME`` is unset), written atomically so a crash never leaves half a file. A corrupt or
unreadable file is ignored with a warning: the widget then starts from its defaults.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from ..atomic import write_atomic

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
    "gpu_memory": (int, float),  # GiB; 0 = off (max_dims is then the user's)
    "precision": str,
    "planner": str,  # a name of planning.PLANNER_CHOICES ("biom3d", "nnunet", "both"...)
    "nnunet_planner": str,  # "default", "ResEncM", "ResEncL" or "ResEncXL"
}
# The range the widget's number fields accept (its spin boxes refuse anything else).
LIMIT_RANGE = (1, 4096)
# The GPU memory field's range in GiB (0 = off; 1024 GiB is far above any single GPU).
GPU_RANGE = (0.0, 1024.0)


def settings_path() -> Path:
    """Return the settings file's path (it may not exist yet)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / APP_FOLDER / FILE_NAME


def load_settings(path: Path | None = None) -> dict[str, Any]:
    """Read the stored settings; unknown keys and unusable values are dropped.

    Returns an empty dict when there is no file, and (with a warning) when it is corrupt. A value
    of the wrong type is dropped silently (a key from another version); a batch size, or a
    ``max_dims`` that is not 3 whole numbers, outside :data:`LIMIT_RANGE` (a GPU memory outside
    :data:`GPU_RANGE`) is dropped with a warning, so the widget starts from its default for that
    field instead of failing to open.
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
    kept = {
        key: value
        for key, value in data.items()
        if key in KNOWN and isinstance(value, KNOWN[key]) and not isinstance(value, bool)
    }
    for key in ("max_dims", "max_batch", "min_batch"):
        if key in kept and not _in_range(kept[key], many=key == "max_dims"):
            lo, hi = LIMIT_RANGE
            what = "3 whole numbers" if key == "max_dims" else "a whole number"
            warnings.warn(
                f"napari-autoconfig: ignoring {key} = {kept[key]!r} in the settings file {path} "
                f"(must be {what} from {lo} to {hi}); using the default.",
                stacklevel=2,
            )
            del kept[key]
    gpu = kept.get("gpu_memory")
    if gpu is not None and not (GPU_RANGE[0] <= gpu <= GPU_RANGE[1]):
        warnings.warn(
            f"napari-autoconfig: ignoring gpu_memory = {gpu!r} in the settings file {path} "
            f"(must be from {GPU_RANGE[0]:g} to {GPU_RANGE[1]:g} GiB); the GPU budget is off.",
            stacklevel=2,
        )
        del kept["gpu_memory"]
    return kept


def _in_range(value: Any, many: bool) -> bool:
    """True for an int in :data:`LIMIT_RANGE` (``many``: a list of 3 of them)."""
    values = value if many else [value]
    if many and len(values) != 3:
        return False
    lo, hi = LIMIT_RANGE
    return all(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in values)


def save_settings(values: dict[str, Any], path: Path | None = None) -> Path:
    """Write ``values`` as JSON, atomically (:func:`~napari_autoconfig.atomic.write_atomic`).

    Returns the path.
    """
    path = settings_path() if path is None else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, json.dumps(values, indent=2).encode("utf-8"))
