"""The :class:`~napari_autoconfig.errors.ImageReadError` messages the readers raise: each names the
file, the problem and the fix.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ImageReadError


def _fail(path: Path, problem: str, fix: str) -> ImageReadError:
    return ImageReadError(f"Cannot read image '{path}': {problem}. {fix}")


_FIX_DAMAGED = "Re-export or re-copy the file, or move it out of the folder"


def _describe(exc: Exception) -> str:
    """A one-line, bounded summary of a library's exception (SimpleITK's span many lines)."""
    text = " ".join(str(exc).split())
    text = re.sub(r"Exception thrown in SimpleITK \S+: \S+:\d+:\s*", "", text)
    text = text[:240] + ("..." if len(text) > 240 else "")
    return f"{type(exc).__name__}: {text or 'no detail'}"


def _truncated(path: Path, have: int, need: int) -> ImageReadError:
    return _fail(
        path,
        f"the file is truncated ({have} bytes, the header needs at least {need})",
        "The copy or download was probably interrupted; copy the file again",
    )


def _stream_damaged(path: Path, exc: Exception | None = None) -> ImageReadError:
    detail = f" ({_describe(exc)})" if exc else ""
    return _fail(
        path,
        f"the compressed pixel data is truncated or damaged{detail}",
        "The copy or download was probably interrupted; copy the file again",
    )


def shrank_error(path: Path) -> ImageReadError:
    """A file that got shorter while it was read (truncated by another program meanwhile)."""
    return _fail(
        path,
        "the file got shorter while it was read (another program truncated or rewrote it)",
        "Let the program writing it finish, then run again",
    )
