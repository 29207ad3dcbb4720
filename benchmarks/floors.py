"""The floors: the least work any fingerprint of a folder must do, done as fast as plainly possible.

- TIFF with masks: every mask byte read once and its foreground counted (``count_nonzero``), on
  all cores; read two ways, with ``read`` into a reused buffer and through a memory map, and the
  faster one is the floor.
- ``.nii.gz`` with masks: every byte of every image and mask inflated once with isal (zlib when
  isal is missing), on all cores.

A thread per core: the reads, ``count_nonzero`` and isal's inflate release the GIL.
"""

from __future__ import annotations

import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

_BUFFER = 4 * 2**20  # bytes per read: the fastest of 256 KB, 1 MB and 4 MB on the 2-core machine


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())


def _on_all_cores(work, files: list[Path]) -> int:
    with ThreadPoolExecutor(cores()) as pool:
        return sum(pool.map(work, files))


def _read_and_count(path: Path) -> int:
    buffer = np.empty(_BUFFER, dtype=np.uint8)
    view = memoryview(buffer)
    found = 0
    with open(path, "rb", buffering=0) as f:
        while got := f.readinto(view):
            found += int(np.count_nonzero(buffer[:got]))
    return found


def _map_and_count(path: Path) -> int:
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    data = np.frombuffer(mapping, dtype=np.uint8)
    found = sum(int(np.count_nonzero(data[i : i + _BUFFER])) for i in range(0, data.size, _BUFFER))
    del data
    mapping.close()
    return found


def _inflate(path: Path) -> int:
    try:
        from isal import igzip as gzip
    except ImportError:  # pragma: no cover - isal is optional
        import gzip
    buffer = bytearray(_BUFFER)
    view = memoryview(buffer)
    total = 0
    with gzip.open(path, "rb") as f:
        while got := f.readinto(view):
            total += got
    return total


def read_masks(images: Path, masks: Path) -> dict:
    """Every mask byte read once (``read``), its nonzero bytes counted, on all cores."""
    return {"nonzero_bytes": _on_all_cores(_read_and_count, _files(masks))}


def map_masks(images: Path, masks: Path) -> dict:
    """Every mask byte looked at once through a memory map, nonzero bytes counted, all cores."""
    return {"nonzero_bytes": _on_all_cores(_map_and_count, _files(masks))}


def inflate_all(images: Path, masks: Path) -> dict:
    """Every byte of every image and mask inflated once, on all cores."""
    return {"inflated_bytes": _on_all_cores(_inflate, _files(images) + _files(masks))}
