"""One multichannel image stored as one file per channel (nnU-Net's ``case_0000``, ``case_0001``).

The channel files are read as one (C, Z, Y, X) image: :func:`_open_channels` checks that they are
single-channel images of one shape and stacks their headers; pixel access (``take``,
``iter_chunks``) goes channel by channel through each file's own reader, so nothing is decoded
whole unless that file's format needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ._errors import _fail
from ._header import ImageHeader


@dataclass(frozen=True)
class _Channels:
    """The layout of a multichannel image split over files: one header per channel, in order."""

    headers: tuple[ImageHeader, ...]


def _open_channels(
    paths: tuple[Path, ...], read_one: Callable[[Path], ImageHeader]
) -> tuple[ImageHeader, _Channels]:
    """Stack the headers of one image's channel files into a (C, ...) header."""
    headers = tuple(read_one(p) for p in paths)
    first = headers[0]
    for header in headers:
        if header.channels > 1:
            raise _fail(
                header.path,
                f"it holds {header.channels} channels where one channel of "
                f"{first.path.name!r} is expected",
                "Store one channel per file (case_0000, case_0001...)",
            )
        if header.shape != first.shape:
            raise _fail(
                header.path,
                f"its shape {header.shape} differs from {first.path.name!r}'s {first.shape}, "
                "another channel of the same image",
                "Every channel file of an image must have the same shape",
            )
    layout = _Channels(headers)
    dtype = np.result_type(*(h.dtype for h in headers))
    stacked = replace(
        first,
        shape=(len(headers), *first.shape),
        axes="C" + first.axes,
        dtype=np.dtype(dtype),
        layout=layout,
    )
    return stacked, layout


def _channels_chunks(
    layout: _Channels, dtype: np.dtype, max_bytes: int, chunks: Callable
) -> Iterator[np.ndarray]:
    for header in layout.headers:
        for piece in chunks(header, max_bytes):
            yield piece.astype(dtype, copy=False)


def _channels_take(
    layout: _Channels, dtype: np.dtype, idx: np.ndarray, take: Callable
) -> np.ndarray:
    """Values at sorted flat indices of the stacked array: each channel's file read for its own."""
    per_channel = int(np.prod(layout.headers[0].shape, dtype=np.int64))
    channel = idx // per_channel
    out = np.empty(idx.size, dtype=dtype)
    bounds = np.searchsorted(channel, np.arange(len(layout.headers) + 1))
    for c, header in enumerate(layout.headers):
        lo, hi = bounds[c], bounds[c + 1]
        if lo < hi:
            out[lo:hi] = take(header, idx[lo:hi] - c * per_channel)
    return out
