"""Tab "Intensities": the dataset's foreground histogram and the normalisation preview.

The histogram (:class:`.histogram.HistogramPanel`, a matplotlib canvas) shows the fingerprint's
sampled foreground intensities with biom3d's clip bounds and mean ± std, and the image selected
in the images table over them. The preview (:class:`.preview.NormalizationPreview`: ``preview``,
``normalization``) puts a ``normalized`` layer over the image the patch boxes are on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QSizePolicy

from .histogram import HistogramPanel
from .panel import Panel
from .preview import NormalizationPreview

if TYPE_CHECKING:
    from napari.layers import Image

    from ..fingerprint import CaseRecord, Fingerprint


class IntensitiesTab(Panel):
    """The histogram (the native child ``histogram``) above the preview's controls."""

    title = "Intensities"
    tooltip = "The foreground intensities, and what biom3d's normalisation makes of the image"

    def __init__(self, host: Any) -> None:
        preview = NormalizationPreview(host.viewer)
        super().__init__(host, widgets=[preview])
        self.normalization_preview = preview
        self.normalization_preview.margins = (0, 0, 0, 0)
        status = self.normalization_preview.status_label.native
        status.setWordWrap(True)
        # a long layer name wraps instead of widening the dock
        status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.normalization_preview.preview_check.tooltip = (
            "Show the image under the boxes as the network sees it, as a 'normalized' layer "
            "right above it (computed plane by plane, only where you look)."
        )
        self.normalization_preview.normalization_choice.tooltip = (
            "z-score per image: biom3d's default, each image by its own mean and std.\n"
            "ct_norm: clipped to the dataset's 0.5-99.5 % foreground bounds, then the dataset's "
            "foreground mean and std."
        )
        self.histogram = HistogramPanel(host.viewer)
        self.histogram.setToolTip(
            "The masks' foreground voxels sampled by the fingerprint. Dashed: the clip bounds "
            "(ct_norm); solid line and band: mean ± std. Select a row of the Images tab to draw "
            "that image's own distribution over the dataset's."
        )
        self.native.layout().insertWidget(0, self.histogram, 1)

    def show_result(self, fingerprint: Fingerprint | None) -> None:
        self.histogram.show_fingerprint(fingerprint)
        self.normalization_preview.set_fingerprint(fingerprint)

    def show_selection(self, record: CaseRecord | None) -> None:
        self.histogram.show_image(record)

    def show_boxes(self, image: Image | None) -> None:
        self.normalization_preview.set_target(image)

    def closed(self) -> None:
        self.normalization_preview.close_preview()
        self.histogram.close_panel()
