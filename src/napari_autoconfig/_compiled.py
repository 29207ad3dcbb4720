"""The optional compiled loops of the fingerprint, or None where the package was built without a
C compiler (numpy then does the same work, with the same numbers).

Read as ``_compiled.loops`` at each call: the one switch between the two (tests set it to None to
run numpy's loops where both exist).
"""

from __future__ import annotations

from types import ModuleType

loops: ModuleType | None
try:  # built by setup.py where a C compiler was found
    from . import _loops as loops
except ImportError:  # pragma: no cover - depends on the install
    loops = None
