"""Reads of a URL that end: a timeout on every wait, and every response capped at what the image's
metadata declares.

A server that accepts and never answers, answers very slowly, or sends more than it should must
cost the user one line, not a hang or the machine's memory. For ``http(s)://`` URLs the reads go
through an fsspec HTTP file system whose aiohttp session

- gives up when connecting, or waiting for the next bytes of an answer, takes longer than
  :func:`remote_timeout` seconds (``--timeout``; 30 by default), and when one whole answer takes
  longer than :func:`remote_deadline` seconds (:data:`DEADLINE_FACTOR` times that: 5 minutes by
  default), so that a server sending a byte now and then cannot hold the run forever;
- reads every response body through :class:`_CappedResponse`: a metadata file (``zarr.json``,
  ``.zattrs``...) may hold at most :data:`METADATA_BYTES`, any other key (a chunk or a shard) at
  most what its array's metadata declares (:func:`chunk_bound`), or :data:`METADATA_BYTES` before
  the array is opened. A declared ``Content-Length`` above the cap stops the read before any byte
  of the body; a body that runs past it stops as soon as it does.

Other protocols (``s3://``...) get the timeout where their driver takes one (s3fs's connect and
read timeouts), not the cap nor the deadline.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ImageReadError

#: Seconds a URL may stay silent (connecting, or between two pieces of an answer).
DEFAULT_TIMEOUT = 30.0
#: One whole answer (a metadata file, a chunk, a listing) may take this many times the timeout:
#: 5 minutes by default, long enough for the largest chunk the caps allow on a slow link, and a
#: bound on a server that keeps the connection alive with a byte now and then.
DEADLINE_FACTOR = 10
#: The most a metadata file (``zarr.json``, ``.zattrs``, ``.zarray``...) may hold.
METADATA_BYTES = 16 * 2**20
#: Names of zarr's metadata keys: anything else under an image is a chunk or a shard.
METADATA_NAMES = frozenset({"zarr.json", ".zattrs", ".zarray", ".zgroup", ".zmetadata"})

_timeout = DEFAULT_TIMEOUT


def set_remote_timeout(seconds: float) -> None:
    """Set the seconds a URL may stay silent before its read is given up (every later read).

    Raises
    ------
    ValueError
        If ``seconds`` is not a positive, finite number.
    """
    global _timeout
    if not (isinstance(seconds, (int, float)) and 0 < seconds < math.inf):
        raise ValueError(f"The timeout must be a positive number of seconds, not {seconds!r}.")
    _timeout = float(seconds)


def remote_timeout() -> float:
    """The seconds a URL may stay silent (see :func:`set_remote_timeout`)."""
    return _timeout


def remote_deadline() -> float:
    """The seconds one whole answer of a URL may take: :data:`DEADLINE_FACTOR` times the
    timeout (see :func:`set_remote_timeout`)."""
    return DEADLINE_FACTOR * _timeout


class RemoteReadError(Exception):
    """A remote answer refused on purpose (too large): raised inside the store, where the
    library would swallow an :class:`ImageReadError`'s meaning; turned into one by the reader."""


@dataclass
class _Caps:
    """What a response of one store may hold: metadata files, and chunks once their array's
    metadata is read (None before)."""

    chunk: int | None = None

    def limit_for(self, url: str) -> tuple[int, str]:
        """The most bytes the answer for ``url`` may hold, and what sets that bound, in words."""
        name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if name in METADATA_NAMES or self.chunk is None:
            return METADATA_BYTES, "a metadata file may hold"
        return self.chunk, "one chunk of the array may hold, as its metadata declares it"


def chunk_bound(array) -> int:
    """The most one stored key of a zarr array may hold: a chunk (or a shard) of its declared
    shape and type, uncompressed, plus what any codec may add to data it cannot compress (an
    eighth, and 64 KB for headers and a shard's index)."""
    shape = getattr(array, "shards", None) or array.chunks
    raw = int(np.prod(shape, dtype=np.int64)) * np.dtype(array.dtype).itemsize
    return raw + raw // 8 + 2**16


def _capped_response_class(caps: _Caps):
    import aiohttp

    class _CappedResponse(aiohttp.ClientResponse):
        """An aiohttp response whose body is read up to its store's cap, and no further."""

        async def read(self) -> bytes:
            if self._body is None:
                url = str(self.url)
                limit, why = caps.limit_for(url)
                try:
                    declared = self.content_length
                    if declared is not None and declared > limit:
                        raise RemoteReadError(
                            f"the server announces {declared} bytes for {url!r}, more than the "
                            f"{limit} bytes {why}"
                        )
                    body = bytearray()
                    async for block in self.content.iter_chunked(2**16):
                        body += block
                        if len(body) > limit:
                            raise RemoteReadError(
                                f"the server sends more for {url!r} than the {limit} bytes {why}"
                            )
                    self._body = bytes(body)
                except BaseException:
                    self.close()
                    raise
            return await super().read()

    return _CappedResponse


def _http_fs(caps: _Caps, asynchronous: bool = True):
    """A fresh fsspec HTTP file system with the timeout and the response cap (asynchronous for
    zarr's store, synchronous for a listing)."""
    import aiohttp
    from fsspec.implementations.http import HTTPFileSystem

    # sock_read bounds each silence; total bounds the whole answer, the body's reading included
    timeout = aiohttp.ClientTimeout(
        total=remote_deadline(), sock_connect=_timeout, sock_read=_timeout, connect=_timeout
    )
    response_class = _capped_response_class(caps)

    async def get_client(**kwargs):
        return aiohttp.ClientSession(response_class=response_class, **kwargs)

    return HTTPFileSystem(
        asynchronous=asynchronous,
        skip_instance_cache=True,  # the caps are this store's own
        get_client=get_client,
        client_kwargs={"timeout": timeout},
    )


def _storage_options(url: str) -> dict:
    """Timeouts in the words of the other protocols' drivers (s3fs, through botocore)."""
    if url.lower().startswith("s3://"):
        return {"config_kwargs": {"connect_timeout": _timeout, "read_timeout": _timeout}}
    return {}


@contextlib.contextmanager
def open_remote_store(url: str):
    """A read-only zarr store for ``url`` and its caps (set ``caps.chunk`` once the array's
    metadata is read; None for protocols without a cap), its connections closed on leaving."""
    from zarr.storage import FsspecStore

    if not url.lower().startswith(("http://", "https://")):
        yield FsspecStore.from_url(url, storage_options=_storage_options(url), read_only=True), None
        return
    caps = _Caps()
    fs = _http_fs(caps)
    try:
        yield FsspecStore(fs=fs, path=url, read_only=True), caps
    finally:
        # an asynchronous fsspec file system leaves its session open: close it on zarr's loop
        session = getattr(fs, "_session", None)
        if session is not None and not session.closed:
            from zarr.core.sync import sync

            with contextlib.suppress(Exception):
                sync(session.close())


def remote_listing_fs(url: str):
    """The fsspec file system and path that list ``url``, with the timeout (and for http(s) the
    listing page capped as a metadata file)."""
    import fsspec

    if url.lower().startswith(("http://", "https://")):
        return _http_fs(_Caps(), asynchronous=False), url
    return fsspec.core.url_to_fs(url, **_storage_options(url))


def describe_remote_error(url: str, error: BaseException) -> str | None:
    """A remote failure in words ("no answer within 30 s"...), or None when it is not one."""
    import asyncio

    if isinstance(error, RemoteReadError):
        return f"{error}; the read was stopped there"
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)) or "Timeout" in type(error).__name__:
        if url.lower().startswith(("http://", "https://")) and not _went_silent(error):
            return (
                f"the answer was not complete within {remote_deadline():g} s, though bytes kept "
                "coming (the server or the link is very slow; raise the limit with --timeout, "
                f"which allows {DEADLINE_FACTOR} times its value for a whole answer)"
            )
        return (
            f"no answer within {_timeout:g} s (the server is unreachable, stalled or slow; "
            "raise the limit with --timeout)"
        )
    return None


def _went_silent(error: BaseException) -> bool:
    """Whether a timeout came from a silence (aiohttp's connect or read timeout, somewhere in
    the chain of causes) rather than from the deadline of the whole answer (a bare timeout)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if any(kind.__name__ == "ServerTimeoutError" for kind in type(error).__mro__):
            return True
        error = error.__cause__ or error.__context__
    return False


def remote_error(url: str, error: BaseException) -> ImageReadError | None:
    """An :class:`ImageReadError` naming ``url`` for a timeout or a capped answer, else None."""
    what = describe_remote_error(url, error)
    if what is None:
        return None
    return ImageReadError(f"Cannot read the OME-Zarr image {str(url)!r}: {what}.")
