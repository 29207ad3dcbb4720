"""What napari and the dock's workers build once, built once: in one thread, before any worker.

Several things are built on first use and take a second or more the first time: pint's unit
registry (napari's first layer looks up its units), pandas (a Labels layer's features table),
dask's array module and its threaded scheduler (the lazy files and the normalisation preview).
Built on the GUI thread they would freeze napari; built by the workers themselves they are
raced: pint's lazy registry turns into a half-built registry the moment a thread starts building
it, and any other thread that looks a unit up meanwhile fails
(``UndefinedUnitError: 'micrometer' is not defined``; ten rows of the Images table opened fast
showed nine such errors).

So every worker body whose result napari turns into layers (a row, the preview, the objects) is
wrapped in :func:`warmed`: the first one to run builds everything under the lock, the others
wait for that one build. Nothing is built earlier on purpose: a background build started with
the dock slowed its first paint by about 0.7 s, and one started with the first fingerprint made
the GUI thread's longest stall during the fingerprint about 50 ms longer (the GUI thread waits
for the interpreter lock at each of its many Python callbacks; `benchmarks/gui_liveness.py`).
Commands napari runs on its GUI thread before adding their layers (the sample, the reader) call
:func:`settled`, so that napari's own unit look-up never meets a
registry being built. (napari adding another plugin's layer during the build is the one race
left: a second or two, once, while the first row opens.)
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

logger = logging.getLogger("napari")

_P = ParamSpec("_P")
_R = TypeVar("_R")

_lock = threading.Lock()
_started = False  # a build was asked for (a worker ran)
_built = False


def _build() -> None:
    """Build each one-off thing; one that is missing (an older napari, no pandas) is skipped."""
    import dask.array as da

    # the threaded scheduler and its pool are made on the first compute
    da.zeros((2, 2), chunks=1).sum().compute()
    try:
        import pandas  # noqa: F401 - napari's Labels layer builds its features table with it
    except ImportError:
        pass
    try:  # napari >= 0.6 looks up its first layer's units in pint's application registry
        from napari.utils._units import get_unit_registry
    except ImportError:
        pass
    else:
        get_unit_registry().micrometer  # noqa: B018 - the lazy registry is built on a look-up


def ready() -> None:
    """Return once everything is built: build it here if no thread has yet (thread-safe).

    A failure is logged once and not retried: what it concerned is then built where it is used,
    as without this module.
    """
    global _built, _started
    _started = True
    with _lock:
        if _built:
            return
        try:
            _build()
        except Exception:  # never let the warm-up itself take a worker down
            logger.exception("napari-autoconfig: warming up failed")
        _built = True


def settled() -> None:
    """Wait for a build under way, if any; start none.

    For the commands napari runs on its GUI thread before adding their layers (the sample, the
    reader): without the dock nothing is built, as napari alone would; with it, napari's own first
    look-up of units must come after the build, not during it.
    """
    if _started:
        ready()


def warmed(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate a worker body: it runs once :func:`ready` has returned."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        ready()
        return func(*args, **kwargs)

    return wrapper
