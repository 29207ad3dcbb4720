"""One progress bar in napari's activity dock per worker run, safe against re-entry.

Building a ``napari.utils.progress`` bar processes pending Qt events, among them the worker's
later steps and even its end. Without care, a step handled during that build starts a second bar,
and a bar finished building after the run ended is never closed (it stays in the activity dock).
"""

from __future__ import annotations

from collections.abc import Callable

from napari.utils import progress as napari_progress


class ActivityBar:
    """The activity-dock bar of one kind of run (fingerprinting, counting objects).

    Parameters
    ----------
    desc : str
        The bar's description in napari's activity dock.
    """

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self._bar: napari_progress | None = None
        self._building = False

    def step(self, done: int, total: int, running: Callable[[], bool]) -> None:
        """Show ``done`` of ``total``; ``running()`` says whether the run is still going."""
        if self._bar is None:
            if self._building:  # a later step, handled while the first one builds the bar
                return
            self._building = True
            try:
                bar = napari_progress(total=total, desc=self.desc)
            finally:
                self._building = False
            if not running():  # the run ended while the bar was being built
                bar.close()
                return
            self._bar = bar
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        """Close the bar, if one is open."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
