"""The intensity histogram panel: what the dataset's foreground looks like, and what biom3d's
``--ct_norm`` keeps of it.

Why matplotlib: it is the plotting library every scientific Python user already has, it is well
kept, and its Qt canvas (``FigureCanvasQTAgg``) docks in napari like any QWidget; napari-matplotlib
builds its plots the same way. A histogram with a few marker lines needs nothing more, and
matplotlib is imported only when this panel is built (the headless core never imports it).

What is drawn (from the fingerprint, nothing is read again):

- the dataset's sampled foreground intensities (every record's ``samples``, the values biom3d's
  fingerprint draws), as a filled density histogram;
- the clipping bounds (``CLIPPING_BOUNDS``: the 0.5 and 99.5 percentiles) as dashed lines and the
  mean ± std (``INTENSITY_MOMENTS``) as a solid line over a shaded band;
- with :meth:`HistogramPanel.show_image`, one image's own samples as an outlined density on the
  same bins, so its distribution reads against the same bounds.

Colours follow napari's theme (dark or light), also when the user switches it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QVBoxLayout, QWidget

if TYPE_CHECKING:
    import napari

    from ..fingerprint import CaseRecord, Fingerprint

#: Bins of the histogram: enough to see a bimodal foreground, few enough to stay smooth with
#: 10000 samples per image.
BINS = 80
#: At most this many samples are binned (a stride over the rest).
_MOST_DRAWN = 1_000_000


def theme_colors(viewer: napari.viewer.Viewer | None) -> dict[str, str]:
    """napari's current theme colours as hex strings (the dark theme without a viewer)."""
    from napari.utils.theme import get_theme

    name = getattr(viewer, "theme", "dark")
    try:
        theme = get_theme(name)
    except (ValueError, KeyError):  # a theme removed since, or "system" unresolved
        theme = get_theme("dark")
    keys = ("background", "foreground", "text", "current", "warning", "highlight", "primary")
    return {key: getattr(theme, key).as_hex() for key in keys}


class HistogramPanel(QWidget):
    """A dockable matplotlib histogram of the dataset's foreground intensities.

    The panel's object name is ``histogram``; its canvas is :attr:`canvas`.

    Parameters
    ----------
    viewer : napari.viewer.Viewer, optional
        Its theme gives the colours; the panel follows theme changes.
    """

    def __init__(self, viewer: napari.viewer.Viewer | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("histogram")
        self.viewer = viewer
        self.fingerprint: Fingerprint | None = None
        self.record: CaseRecord | None = None
        self._stale = True  # the plot lags the data: drawn when next shown (see redraw)
        self.figure = Figure(figsize=(4.0, 2.6), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setObjectName("histogram_canvas")
        self.canvas.setMinimumHeight(180)
        self.axes = self.figure.add_subplot()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        if viewer is not None:
            viewer.events.theme.connect(self._on_theme)
        self.redraw()

    def close_panel(self) -> None:
        """Stop following the viewer's theme (call when the panel goes away)."""
        if self.viewer is not None:
            self.viewer.events.theme.disconnect(self._on_theme)
            self.viewer = None

    # -- what to show -----------------------------------------------------------------------
    def show_fingerprint(self, fingerprint: Fingerprint | None) -> None:
        """Show a dataset's sampled foreground intensities (None clears the plot)."""
        self.fingerprint = fingerprint
        if fingerprint is None or (
            self.record is not None and self.record not in fingerprint.records
        ):
            self.record = None
        self.redraw()

    def show_image(self, record: CaseRecord | None) -> None:
        """Draw one image's own foreground samples over the dataset's (None: the dataset only)."""
        self.record = record
        self.redraw()

    def _on_theme(self, event=None) -> None:
        self.redraw()

    # -- drawing ----------------------------------------------------------------------------
    def redraw(self) -> None:
        """Draw again with the current data and theme, now if the plot is on screen, else when
        it is next shown.

        Drawing a plot nobody sees (the Intensities tab behind another) cost the GUI thread
        about 0.1 s at the end of every fingerprint, in the step napari's progress bar already
        makes the longest (``benchmarks/gui_liveness.py``).
        """
        self._stale = True
        if self.isVisible():
            self._draw()

    def showEvent(self, event) -> None:
        if self._stale:
            self._draw()
        super().showEvent(event)

    def _draw(self) -> None:
        self._stale = False
        colors = theme_colors(self.viewer)
        ax = self.axes
        ax.clear()
        self.figure.set_facecolor(colors["background"])
        ax.set_facecolor(colors["background"])
        for spine in ax.spines.values():
            spine.set_color(colors["text"])
            spine.set_visible(True)
        ax.tick_params(colors=colors["text"], labelsize=8)
        fp = self.fingerprint
        values = _dataset_samples(fp)
        if values.size == 0:
            message = (
                "Fingerprint a dataset to see its intensities."
                if fp is None
                else "No foreground samples: the intensities need masks."
            )
            ax.text(
                0.5, 0.5, message, ha="center", va="center", color=colors["text"], fontsize=9,
                transform=ax.transAxes, wrap=True,
            )  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():  # a message, not an empty plot's frame
                spine.set_visible(False)
            self.canvas.draw_idle()
            return
        own = _record_samples(self.record)
        low = min(values.min(), own.min()) if own.size else values.min()
        high = max(values.max(), own.max()) if own.size else values.max()
        edges = _edges(low, high, integers=_all_integers(values) and _all_integers(own))
        # binned here and drawn as one outline per histogram: ax.hist draws a patch per bar, a
        # quarter of a second for the GUI thread with 80 bins
        ax.stairs(
            np.histogram(values, bins=edges, density=True)[0], edges, fill=True,
            color=colors["current"], alpha=0.85,
            label=f"dataset foreground ({values.size} samples)",
        )  # fmt: skip
        if own.size:
            ax.stairs(
                np.histogram(own, bins=edges, density=True)[0], edges, linewidth=1.6,
                color=colors["warning"], label=f"{self.record.image.path.name} ({own.size})",
            )  # fmt: skip
        ax.axvspan(fp.mean - fp.std, fp.mean + fp.std, color=colors["highlight"], alpha=0.35)
        ax.axvline(fp.mean, color=colors["text"], linewidth=1.2, label="mean ± std")
        for i, bound in enumerate((fp.perc_005, fp.perc_995)):
            ax.axvline(
                bound, color=colors["text"], linestyle="--", linewidth=1.2,
                label="clip 0.5 / 99.5 %" if i == 0 else None,
            )  # fmt: skip
        ax.set_xlabel("intensity", color=colors["text"], fontsize=8)
        ax.set_ylabel("density", color=colors["text"], fontsize=8)
        # an opaque legend: a clip line running behind it would cross its words
        legend = ax.legend(
            fontsize=7, loc="upper right", frameon=True, framealpha=0.9,
            facecolor=colors["background"], edgecolor=colors["background"],
        )  # fmt: skip
        for text in legend.get_texts():
            text.set_color(colors["text"])
        self.canvas.draw_idle()

    def pixels(self) -> np.ndarray:
        """The canvas as an RGBA array, drawn now (for tests and screenshots), shown or not."""
        if self._stale:
            self._draw()
        self.canvas.draw()
        return np.asarray(self.canvas.buffer_rgba()).copy()


def _all_integers(values: np.ndarray) -> bool:
    return bool(np.all(values == np.round(values)))


def _edges(low: float, high: float, integers: bool) -> np.ndarray:
    """BINS equal bins over [low, high]; for integer values, whole-number bins centred on the
    integers (equal-width real bins would hold 1 or 2 integers each: a comb, not a histogram)."""
    if not integers:
        return np.linspace(low, high if high > low else low + 1.0, BINS + 1)
    step = max(1, int(np.ceil((high - low + 1) / BINS)))
    return np.arange(low - 0.5, high + step, step)


def _dataset_samples(fingerprint: Fingerprint | None) -> np.ndarray:
    if fingerprint is None:
        return np.empty(0)
    drawn = [r.samples for r in fingerprint.records if r.samples.size]
    if not drawn:
        return np.empty(0)
    values = np.concatenate(drawn)
    # a histogram of a million values looks the same as one of all of them, and stays quick
    # on the GUI thread for thousands of images (an even stride keeps every image's share)
    step = -(-values.size // _MOST_DRAWN)
    return values[::step].astype(np.float64)


def _record_samples(record: CaseRecord | None) -> np.ndarray:
    if record is None or not record.samples.size:
        return np.empty(0)
    return record.samples.astype(np.float64)
