"""What every part of the dock widget is: a :class:`Panel`, told about the result and the plan.

The dock widget (:mod:`.widget`) owns the state (the fingerprint, the plan, the boxes) and calls the
hooks below on every panel when that state changes; a panel shows it, and calls back into its
``host`` (the dock widget) for anything that acts (start a run, open an image, export). A panel
never talks to another panel.

A new panel is one file with a ``Panel`` subclass, plus its class in ``PANELS`` in
:mod:`.widget`. Its children are then reachable by name from the dock widget
(``widget["my_button"]``) like every other control.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container

if TYPE_CHECKING:
    from napari.layers import Image

    from ..fingerprint import CaseRecord, Fingerprint
    from ..planners.biom3d import Plan


class Panel(Container):
    """One part of the dock widget.

    Attributes
    ----------
    title : str
        The tab's title; ``""`` puts the panel above the tabs, always visible.
    tooltip : str
        The tab's tooltip.
    host : AutoconfigWidget
        The dock widget, for actions and for the state (``host.result``, ``host.plan``...).
    """

    title: str = ""
    tooltip: str = ""

    def __init__(self, host: Any, **kwargs: Any) -> None:
        kwargs.setdefault("labels", False)
        super().__init__(**kwargs)
        self.host = host
        self.margins = (4, 4, 4, 4)

    def __getattr__(self, name: str):
        # children of nested rows (a Container of buttons) are reachable by name too
        try:
            return super().__getattr__(name)
        except AttributeError:
            found = find_child(self, name)
            if found is None:
                raise
            return found

    # -- hooks: the dock widget calls these on every panel ----------------------------------
    def set_running(self, running: bool) -> None:
        """A fingerprinting run started (True) or ended (False)."""

    def show_result(self, fingerprint: Fingerprint | None) -> None:
        """A new fingerprint (None: none yet)."""

    def show_plan(self, plan: Plan | None) -> None:
        """A new plan from the current fingerprint and limits (None: these limits give none)."""

    def show_boxes(self, image: Image | None) -> None:
        """The boxes now lie on ``image`` (None: no image carries them)."""

    def show_selection(self, record: CaseRecord | None) -> None:
        """The user selected one image of the dataset (its fingerprint record; None: none)."""

    def closed(self) -> None:
        """The dock widget was closed: stop workers, let go of the viewer's events."""


def row(*widgets: Any, label: str = "", tooltip: str | None = None) -> Container:
    """Widgets side by side, as one (labelled) row of a panel."""
    line = Container(widgets=widgets, layout="horizontal", labels=False, label=label)
    line.margins = (0, 0, 0, 0)
    if tooltip:
        line.tooltip = tooltip
    return line


def find_child(container: Container, name: str):
    """The widget called ``name`` anywhere inside ``container`` (depth first), or None."""
    children = container.__dict__.get("_list")
    if children is None:  # not built yet
        return None
    for child in children:
        if getattr(child, "name", None) == name:
            return child
        if isinstance(child, Container):
            found = find_child(child, name)
            if found is not None:
                return found
    return None
