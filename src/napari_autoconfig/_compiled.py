"""The optional compiled loops of the fingerprint, or None where the package was built without a
C compiler (numpy then does the same work, with the same numbers).

Read as ``_compiled.loops`` at each call: the one switch between the two (tests set it to None to
run numpy's loops where both exist). The environment variable ``NAPARI_AUTOCONFIG_NO_COMPILED=1``
leaves them out as an install without a C compiler would (the test script runs the fingerprint
tests so, to check that such an install gives the same numbers).
"""

from __future__ import annotations

import os
from types import ModuleType

#: Set to 1 (or any value but "" and "0") to run without the compiled loops.
DISABLE_VARIABLE = "NAPARI_AUTOCONFIG_NO_COMPILED"

loops: ModuleType | None
if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
    loops = None
else:
    try:  # built by setup.py where a C compiler was found
        from . import _loops as loops
    except ImportError:  # pragma: no cover - depends on the install
        loops = None


def in_words() -> str:
    """Which loops run, for ``napari-autoconfig --version``: pip hides the build's warning, so
    this is where a user learns whether the install found a C compiler."""
    if loops is not None:
        return "compiled loops: in use"
    if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
        return f"compiled loops: disabled by {DISABLE_VARIABLE}, numpy loops"
    return "compiled loops: not built, numpy loops"
