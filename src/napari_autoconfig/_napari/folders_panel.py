"""The folders and limits panel: what to fingerprint, the patch and batch limits, Fingerprint.

The one place the form's values are read (:meth:`FoldersPanel.limits`, :meth:`~.folders`) and
remembered between napari launches (:meth:`~.remember`, through :mod:`.settings`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from magicgui.widgets import (
    ComboBox,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
    TupleEdit,
)
from qtpy.QtWidgets import QSizePolicy

from .. import planner
from ..errors import AutoconfigError
from .panel import Panel, row
from .settings import LIMIT_RANGE, load_settings, save_settings

logger = logging.getLogger("napari")

# What each of the planner's batch rules means, for the combo box; the rule names themselves
# (and which rules exist) come from the planner.
_RULE_HELP = {
    "fixed": "the max batch as given",
    "preprocessing": "number of images // 20",
}
BATCH_RULES = tuple(
    (f"{rule}: {_RULE_HELP[rule]}" if rule in _RULE_HELP else rule, rule)
    for rule in planner.BATCH_RULES
)
DEFAULTS = planner.Limits()  # the form starts from the planner's own defaults
LIMIT_NAMES = ("max_dims", "max_batch", "min_batch", "batch_rule")


class FoldersPanel(Panel):
    """Folders of images and masks, the limits, Fingerprint / Cancel, progress and status."""

    def __init__(self, host: Any) -> None:
        saved = load_settings()  # values out of the form's ranges are already dropped there
        spin = {"min": LIMIT_RANGE[0], "max": LIMIT_RANGE[1]}
        rules = [value for _, value in BATCH_RULES]
        batch_tip = "Patches trained together: biom3d's batch is clamped to [min, max]."
        widgets = [
            FileEdit(name="images", label="Images", mode="d"),
            FileEdit(name="masks", label="Masks", mode="d", nullable=True),
            TupleEdit(
                name="max_dims",
                label="Max patch z, y, x",
                value=tuple(int(v) for v in saved.get("max_dims", DEFAULTS.max_dims)),
                options={**spin, "step": 1},
                tooltip="The memory budget of one patch, in voxels (biom3d's max_dims): only "
                "the product z x y x x bounds the patch, whatever the shape.",
            ),
            row(
                SpinBox(name="min_batch", value=saved.get("min_batch", DEFAULTS.min_batch), **spin),
                SpinBox(name="max_batch", value=saved.get("max_batch", DEFAULTS.max_batch), **spin),
                label="Batch min, max",
                tooltip=batch_tip,
            ),
            ComboBox(
                name="batch_rule",
                label="Batch rule",
                choices=BATCH_RULES,
                value=saved["batch_rule"]
                if saved.get("batch_rule") in rules
                else DEFAULTS.batch_rule,
            ),
            row(
                PushButton(name="fingerprint", text="Fingerprint dataset"),
                PushButton(name="cancel", text="Cancel", enabled=False),
            ),
            ProgressBar(name="progress", label="Progress", min=0, max=1, value=0),
            Label(name="status", label="Status", value="Pick the images folder, then Fingerprint."),
        ]
        super().__init__(host, widgets=widgets, labels=True)
        self["fingerprint"].tooltip = "Read every image's header and sample its foreground."
        self["cancel"].tooltip = "Stop the run (within about one file); the last result stays."
        if saved.get("images"):
            self["images"].value = saved["images"]
        self["masks"].value = saved.get("masks")
        status = self["status"].native
        status.setWordWrap(True)
        status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for name in ("images", "masks"):
            # a long path must not widen the dock: the line edit scrolls, the tooltip shows it all
            edit = self[name].line_edit.native
            edit.setMinimumWidth(60)
            edit.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            self[name].choose_btn.text = "Browse…"
            self[name].choose_btn.native.setMaximumWidth(80)
            self[name].changed.connect(self._show_path_tooltip)
        self._show_path_tooltip()
        # plain number fields (no +/- buttons): three of them fit a laptop's dock side by side
        # (napari's style sheet gives every spin box 70 px at least, buttons aside)
        self.native.setStyleSheet("QAbstractSpinBox { min-width: 36px; }")
        for box in [*self["max_dims"], self["min_batch"], self["max_batch"]]:
            box.native.setButtonSymbols(box.native.ButtonSymbols.NoButtons)
        rule = self["batch_rule"].native
        rule.setSizeAdjustPolicy(rule.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        rule.setMinimumContentsLength(12)

    def _show_path_tooltip(self, *_: Any) -> None:
        for name in ("images", "masks"):
            text = (self[name].line_edit.value or "").strip()
            self[name].line_edit.native.setToolTip(text or f"The folder of {name}")

    # -- reading the form ----------------------------------------------------------------------
    def limits(self) -> planner.Limits:
        """The limits currently in the form (LimitsError when no plan can come from them)."""
        return planner.Limits(
            max_dims=tuple(int(v) for v in self["max_dims"].value),
            min_batch=int(self["min_batch"].value),
            max_batch=int(self["max_batch"].value),
            batch_rule=str(self["batch_rule"].value),
        )

    def folders(self) -> tuple[Path, Path | None]:
        """The images folder and the masks folder (None when empty)."""
        text = (self["images"].line_edit.value or "").strip()
        if not text:
            raise AutoconfigError("Choose the folder of images first (the Images field).")
        masks_text = (self["masks"].line_edit.value or "").strip()
        return Path(text).expanduser(), (Path(masks_text).expanduser() if masks_text else None)

    def remember(self) -> None:
        """Store the folders and limits for the next launch (a read-only home is only logged)."""
        masks_text = (self["masks"].line_edit.value or "").strip()
        try:
            save_settings(
                {
                    "images": (self["images"].line_edit.value or "").strip(),
                    "masks": masks_text or None,
                    "max_dims": [int(v) for v in self["max_dims"].value],
                    "max_batch": int(self["max_batch"].value),
                    "min_batch": int(self["min_batch"].value),
                    "batch_rule": str(self["batch_rule"].value),
                }
            )
        except OSError as exc:
            logger.warning("napari-autoconfig: could not save settings: %s", exc)

    # -- showing -------------------------------------------------------------------------------
    def set_status(self, text: str) -> None:
        """Show one line of news under the buttons."""
        self["status"].value = text

    def set_progress(self, done: int, total: int) -> None:
        """Files fingerprinted so far."""
        self["progress"].max = max(total, 1)
        self["progress"].value = done

    def set_running(self, running: bool) -> None:
        for name in ("fingerprint", "images", "masks"):
            self[name].enabled = not running
        self["cancel"].enabled = running
