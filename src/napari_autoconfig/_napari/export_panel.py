"""The export panel: the config snippet (values first), Copy, Save as…, Update a biom3d config…."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import PushButton, TextEdit
from qtpy.QtGui import QFontDatabase
from qtpy.QtWidgets import QFileDialog, QSizePolicy

from .panel import Panel, row

if TYPE_CHECKING:
    from ..planner import Plan


def values_first(python_text: str) -> str:
    """The snippet with its assignments first and its explanatory comments after them."""
    lines = python_text.splitlines()
    values = [line for line in lines if line and not line.startswith("#")]
    comments = [line for line in lines if line.startswith("#")]
    return "\n".join([*values, "", *comments]) + "\n" if comments else "\n".join(values) + "\n"


def ask_save_path(parent) -> str:
    """Ask where to save the snippet (a file dialog); '' if the user cancels."""
    path, _ = QFileDialog.getSaveFileName(
        parent,
        "Save the biom3d config snippet",
        "autoconfig.py",
        "biom3d config (*.py);;YAML (*.yaml *.yml)",
    )
    return path


def ask_config_path(parent) -> str:
    """Ask which existing biom3d config to update (a file dialog); '' if the user cancels.

    Python configs only: the core updates ``.py`` files in place and refuses YAML ones.
    """
    path, _ = QFileDialog.getOpenFileName(
        parent, "biom3d config to update", "", "biom3d config (*.py)"
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
        buttons["save"].tooltip = "Write the snippet to a new .py or .yaml file."
        buttons[
            "update_config"
        ].tooltip = "Write these values into an existing biom3d config (.py), keeping a .bak copy."
        config = self["config"]
        config.read_only = True
        config.native.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        config.native.setLineWrapMode(config.native.LineWrapMode.NoWrap)
        config.native.setMinimumHeight(4 * config.native.fontMetrics().height())
        config.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        buttons["copy"].changed.connect(lambda *_: host.copy_snippet())
        buttons["save"].changed.connect(lambda *_: host.save_snippet())
        buttons["update_config"].changed.connect(lambda *_: host.update_existing_config())

    def show_plan(self, plan: Plan | None) -> None:
        self["config"].value = self.host.snippet
        for name in ("copy", "save", "update_config"):
            self[name].enabled = plan is not None
