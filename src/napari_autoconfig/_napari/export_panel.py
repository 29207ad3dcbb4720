"""The export panel: the config snippet (values first), Copy, Save as…, Update a biom3d config….

Nothing the user had is lost: Save as… replaces an existing file only after the file dialog asked,
and the core keeps the old one in a numbered backup (``FILE.bak``, ``FILE.bak.1``...); Update
config… rewrites only the owned keys of a Python or YAML biom3d config
(:func:`napari_autoconfig.config_update.update_config`), with a backup too. How files are written
(links, locks, owners) is :mod:`napari_autoconfig.atomic`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import PushButton, TextEdit
from napari.utils.notifications import show_info
from qtpy.QtGui import QFontDatabase
from qtpy.QtWidgets import QApplication, QFileDialog, QSizePolicy

from .. import config_update, export
from ..errors import AutoconfigError
from .guard import guarded
from .panel import Panel, row

if TYPE_CHECKING:
    from ..planners.biom3d import Plan


def ask_save_path(parent) -> str:
    """Ask where to save the snippet (a file dialog); '' if the user cancels.

    The dialog itself asks before an existing file is chosen for replacing.
    """
    path, _ = QFileDialog.getSaveFileName(
        parent,
        "Save the biom3d config snippet",
        "autoconfig.py",
        "biom3d config (*.py);;YAML (*.yaml *.yml)",
    )
    return path


def ask_config_path(parent) -> str:
    """Ask which existing biom3d config to update (a file dialog); '' if the user cancels.

    Python or YAML configs (biom3d reads both; every run logs a ``config.yaml``): the core
    changes only the owned keys' values and keeps every other byte.
    """
    path, _ = QFileDialog.getOpenFileName(
        parent, "biom3d config to update", "", "biom3d config (*.py *.yaml *.yml)"
    )
    return path


class ExportPanel(Panel):
    """The snippet and the three ways out: clipboard, a new file, an existing config."""

    title = "Config"
    tooltip = "The values for biom3d's config, to copy, save or write into your config"

    def __init__(self, host: Any) -> None:
        buttons = row(
            PushButton(name="copy", text="Copy", enabled=False),
            PushButton(name="save", text="Save as…", enabled=False),
            PushButton(name="update_config", text="Update config…", enabled=False),
        )
        super().__init__(host, widgets=[TextEdit(name="config"), buttons])
        buttons["copy"].tooltip = "Put the snippet on the clipboard."
        buttons[
            "save"
        ].tooltip = "Write the snippet to a .py or .yaml file (a file replaced is kept as .bak)."
        buttons[
            "update_config"
        ].tooltip = (
            "Write these values into an existing biom3d config (.py, .yaml), keeping a .bak copy."
        )
        config = self["config"]
        config.read_only = True
        config.native.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        config.native.setLineWrapMode(config.native.LineWrapMode.NoWrap)
        config.native.setMinimumHeight(4 * config.native.fontMetrics().height())
        config.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        buttons["copy"].changed.connect(self.copy_snippet)
        buttons["save"].changed.connect(self.save_snippet)
        buttons["update_config"].changed.connect(self.update_existing_config)

    def show_plan(self, plan: Plan | None) -> None:
        self["config"].value = self.host.snippet
        for name in ("copy", "save", "update_config"):
            self[name].enabled = plan is not None

    # -- the three ways out ------------------------------------------------------------------
    def _values(self) -> dict[str, object]:
        training = self.host.training
        if training is None:
            raise AutoconfigError("Fingerprint a dataset first: there is no plan to export yet.")
        return dict(training.config_values)  # the values the snippet shows

    @guarded
    def copy_snippet(self, *_: Any) -> None:
        """Put the snippet on the clipboard."""
        if not self.host.snippet:
            raise AutoconfigError("Fingerprint a dataset first: there is no snippet to copy yet.")
        QApplication.clipboard().setText(self.host.snippet)
        self.host.set_status("Snippet copied to the clipboard.")

    @guarded
    def save_snippet(self, *_: Any) -> None:
        """Write the config to a .py or .yaml file chosen in a file dialog.

        The dialog asked before an existing file was chosen; it is then replaced and its old
        bytes kept in a numbered backup, ``FILE.bak`` or ``FILE.bak.N`` (the status line says
        which).
        """
        values = self._values()
        path = ask_save_path(self.native)
        if not path:
            return
        # the same text as the command line's --save: the GPU budget's note, then the config
        text = self.host.config_note + export.render_config(path, values)
        written = export.write_config_file(path, text, replace=True)
        kept = f" The old file is kept as {written.backup}." if written.backup else ""
        self.host.set_status(f"Saved {written.path}.{kept}")
        show_info(f"napari-autoconfig: saved {written.path}")

    @guarded
    def update_existing_config(self, *_: Any) -> None:
        """Update an existing biom3d config (.py or .yaml) in place, atomically, with a backup;
        say what changed."""
        values = self._values()
        path = ask_config_path(self.native)
        if not path:
            return
        update = config_update.update_config(path, values)
        parts = [f"{key}: {old} -> {new}" for key, old, new in update.changed]
        parts += [f"{key}: added" for key in update.added]
        parts += [
            f"{', '.join(users)} changed with {key} (YAML anchor &{anchor})"
            for key, anchor, users in update.linked
        ]
        what = "; ".join(parts) if parts else "nothing changed (the values were already these)"
        self.host.set_status(f"Updated {update.path} ({what}). Backup: {update.backup}")
        show_info(f"napari-autoconfig: updated {update.path}")
