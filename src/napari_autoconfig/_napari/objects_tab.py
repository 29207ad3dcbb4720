"""Tab "Objects": the masks' objects against the patch, the largest one outlined.

The controls are :class:`.objects_panel.ObjectsPanel`'s (``objects``, ``objects_status``,
``labels_table``, ``objects_result``, ``draw_largest``, ``save_datastats``); this tab feeds it the
fingerprint and its folders, the plan whose patch the objects are measured against, and the image
the boxes are on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QSizePolicy

from .objects_panel import ObjectsPanel
from .panel import Panel

if TYPE_CHECKING:
    from napari.layers import Image

    from ..fingerprint import Fingerprint
    from ..planners.biom3d import Plan


class ObjectsTab(Panel):
    """The objects' count and sizes against the patch, and the largest one on its image."""

    title = "Objects"
    tooltip = "How large the objects in the masks are, against the patch"

    def __init__(self, host: Any) -> None:
        objects = ObjectsPanel(host.viewer)
        super().__init__(host, widgets=[objects])
        self.objects_panel = objects
        objects.margins = (0, 0, 0, 0)
        # long messages wrap instead of widening the dock
        objects.status_label.native.setSizePolicy(
            QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred
        )
        # the result box only while it has a result, the room below left empty: no tall empty
        # box on a large screen, the buttons stay near the top
        result = objects.result_text
        result.native.setVisible(bool(result.value))
        # Qt's own signal: magicgui's ``changed`` stays silent when the value is set in code
        result.native.textChanged.connect(lambda: result.native.setVisible(bool(result.value)))
        self.native.layout().addStretch(1)
        objects.draw_button.tooltip = (
            "Outline the largest object (magenta) on its image, opening the image if needed, "
            "and go to its middle slice."
        )

    def show_result(self, fingerprint: Fingerprint | None) -> None:
        self.objects_panel.set_fingerprint(fingerprint, self.host.result_folders)

    def show_plan(self, plan: Plan | None) -> None:
        self.objects_panel.set_plan(plan)

    def show_boxes(self, image: Image | None) -> None:
        self.objects_panel.set_image(image)

    def closed(self) -> None:
        self.objects_panel.close_panel()
