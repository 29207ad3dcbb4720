"""Image files as lazy dask arrays: a plane is read, through the core's readers, when shown.

Nothing is decoded up front: a chunk is one (Y, X) plane, read with
:func:`napari_autoconfig.readers.take` over that plane's contiguous flat indices, which the readers
serve with one positioned read (raw pixels), one page decode (compressed TIFF) or a stream pass up
to that plane (``.nii.gz``: the slowest, as far into the file as the plane lies). A few recently
read planes are kept, so that napari re-drawing a slice, or a plane read ahead in a worker thread
(:meth:`PlaneReader.warm`), costs no second read on the GUI thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import dask.array as da
import numpy as np

from ..readers import ImageHeader, take

#: Bytes of decoded planes kept per file.
CACHE_BYTES = 128 * 2**20


class PlaneReader:
    """Reads whole (Y, X) planes of one file and keeps the last few; safe across threads.

    Behaves as a read-only array (``shape``, ``dtype``, ``ndim``, ``__getitem__``) for
    ``dask.array.from_array``; the leading axes (channels, z) index planes.
    """

    def __init__(self, header: ImageHeader, cache_bytes: int = CACHE_BYTES) -> None:
        self.header = header
        self.shape = tuple(int(s) for s in header.shape)
        self.dtype = np.dtype(header.dtype)
        self.ndim = len(self.shape)
        self.plane_shape = self.shape[-2:]
        self._plane_size = int(np.prod(self.plane_shape, dtype=np.int64))
        self._keep = max(1, cache_bytes // max(self._plane_size * self.dtype.itemsize, 1))
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def plane(self, number: int) -> np.ndarray:
        """The ``number``-th plane in C order over the leading axes."""
        with self._lock:
            cached = self._cache.get(number)
            if cached is not None:
                self._cache.move_to_end(number)
                return cached
        start = number * self._plane_size
        flat = np.arange(start, start + self._plane_size, dtype=np.int64)
        data = take(self.header, flat).reshape(self.plane_shape)
        data.setflags(write=False)
        with self._lock:
            self._cache[number] = data
            while len(self._cache) > self._keep:
                self._cache.popitem(last=False)
        return data

    def warm(self, leading_index: tuple[int, ...]) -> None:
        """Read one plane ahead (e.g. in a worker) so that showing it later is instant."""
        lead = self.shape[:-2]
        index = tuple(min(max(int(i), 0), n - 1) for i, n in zip(leading_index, lead))
        self.plane(int(np.ravel_multi_index(index, lead)) if lead else 0)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        lead = self.shape[:-2]
        # the planes the leading indices (ints or slices) pick, in C order
        ranges = [
            range(*k.indices(n)) if isinstance(k, slice) else [int(k)] for k, n in zip(key, lead)
        ]
        sizes = [len(r) for r in ranges]
        planes = [
            self.plane(int(np.ravel_multi_index(tuple(r[i] for r, i in zip(ranges, at)), lead)))
            if lead
            else self.plane(0)
            for at in np.ndindex(*sizes)
        ]
        stacked = np.stack(planes) if planes else np.empty((0, *self.plane_shape), dtype=self.dtype)
        picked = stacked.reshape(*sizes, *self.plane_shape)[..., key[-2], key[-1]]
        ints = tuple(i for i, k in enumerate(key[:-2]) if not isinstance(k, slice))
        return np.squeeze(picked, axis=ints) if ints else picked


def lazy_array(header: ImageHeader) -> tuple[da.Array, PlaneReader]:
    """A dask array over the file, one chunk per plane, and the reader behind it."""
    reader = PlaneReader(header)
    chunks = (1,) * (reader.ndim - 2) + reader.plane_shape
    array = da.from_array(
        reader,
        chunks=chunks,
        asarray=True,
        fancy=False,
        lock=False,
        inline_array=True,
        meta=np.empty((0,) * reader.ndim, dtype=reader.dtype),
        name=f"napari-autoconfig-{header.path}-{id(reader)}",
    )
    return array, reader
