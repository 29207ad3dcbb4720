"""Cases run on an executor in bounded flight: the one loop every reading pass shares.

nnU-Net's fingerprint, the one pass of every planner, MONAI's datastats and the object labelling
each hand one task per case to an executor. They all want the same things of it: a few tasks more
than workers at a time (:func:`napari_autoconfig.fingerprint.in_flight_bound`), so that every
worker has its next case at hand while memory stays that of a few files; a cancel request heard
within a quarter of a second and honoured within about one file per worker; the results as they
finish, in the caller's thread (progress, merging as cases end); and nothing left queued once the
run stops, whatever stopped it. biom3d's own pass (``fingerprint.map_cases``) batches quick files
and keeps its own loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import Any

from .errors import Cancelled

#: How often a waiting run looks at its cancel check, in seconds.
CANCEL_POLL_S = 0.25


def as_they_finish(
    pool: Executor,
    count: int,
    submit: Callable[[int], Future],
    *,
    cancel: Callable[[], bool] | None = None,
    cancelled: Callable[[int], str] = lambda done: f"Cancelled after {done} cases.",
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, result)`` of tasks ``0 .. count - 1`` as they finish.

    Parameters
    ----------
    pool : Executor
        Where the tasks run; its worker count sets how many are submitted at once.
    count : int
        How many tasks.
    submit : callable
        ``submit(index)`` submits task ``index`` (to ``pool``) and returns its future; called in
        index order, at most two tasks per worker ahead of the results.
    cancel : callable, optional
        Polled between results (every :data:`CANCEL_POLL_S` at most): True raises
        :class:`~napari_autoconfig.errors.Cancelled`.
    cancelled : callable
        ``cancelled(done)``: the message of that Cancelled, given the results yielded so far.

    Raises
    ------
    Cancelled
        When ``cancel()`` returned True.
    Exception
        A task's own error, when its result is taken.

    Notes
    -----
    However the run ends (all done, cancelled, a task's error, the caller leaving the loop), the
    tasks not started yet are cancelled; a task already running ends on its own, unused.
    """
    from .fingerprint import in_flight_bound

    in_flight = in_flight_bound(pool)
    pending: dict[Future, int] = {}
    next_index = done = 0
    try:
        while next_index < count or pending:
            if cancel is not None and cancel():
                raise Cancelled(cancelled(done))
            while len(pending) < in_flight and next_index < count:
                pending[submit(next_index)] = next_index
                next_index += 1
            finished, _ = wait(pending, timeout=CANCEL_POLL_S, return_when=FIRST_COMPLETED)
            for future in finished:
                index = pending.pop(future)
                result = future.result()
                done += 1
                yield index, result
    finally:
        for future in pending:
            future.cancel()
