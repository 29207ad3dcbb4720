"""No exception leaves a Qt slot: the decorator every slot of the dock widget and its panels wears.

The core raises :class:`~napari_autoconfig.errors.AutoconfigError` subclasses with messages meant
for people; they are shown as they are (status line and a warning notification, no traceback).
Anything else is a bug: its type and message are shown as an error and its traceback goes to
napari's logger.
"""

from __future__ import annotations

import functools
import logging

from ..errors import AutoconfigError

logger = logging.getLogger("napari")


def guarded(method):
    """Decorate a slot of the dock widget, or of one of its panels, so that nothing escapes it.

    The slot's owner is the dock widget itself or a panel whose ``host`` is the dock widget; once
    the dock is closed (``host._alive`` False) late viewer events and timers are ignored.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        host = getattr(self, "host", self)
        if not getattr(host, "_alive", False):
            return None
        try:
            return method(self, *args, **kwargs)
        except AutoconfigError as exc:
            host.report_error(str(exc), level="warning")
        except Exception as exc:
            logger.exception("napari-autoconfig: %s failed", method.__name__)
            host.report_error(f"{type(exc).__name__}: {exc}", level="error")
        return None

    return wrapper
