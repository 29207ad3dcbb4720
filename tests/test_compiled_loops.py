"""The compiled foreground loops against numpy: the same bits, counts, labels and positions for
every label type, and a clear error, not a crash, when called wrongly."""

from __future__ import annotations

import numpy as np
import pytest

from napari_autoconfig import _compiled, foreground

loops = _compiled.loops
pytestmark = pytest.mark.skipif(
    loops is None, reason="the compiled foreground loops were not built (no C compiler)"
)

LABEL_TYPES = [np.uint8, np.bool_, np.uint16, np.uint32, np.uint64]
LABEL_TYPES += [np.int8, np.int16, np.int32, np.int64]


def _labels(dtype, size: int, density: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.bool_:
        return rng.random(size) < density
    info = np.iinfo(dtype)
    values = rng.integers(max(info.min, -5), min(info.max, 300), size, endpoint=True)
    values[rng.random(size) >= density] = 0
    labels = values.astype(dtype)
    labels[-1] = info.max  # the largest label must come through, from the very last voxel
    return labels


def _pack(labels: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    bits = np.full(-(-labels.size // 8), 0xAA, np.uint8)  # stale bytes: all must be written
    counts = np.full(-(-labels.size // 64), 99, np.uint8)
    signed = labels.dtype.kind == "i"
    largest = loops.pack(labels, bits, counts, labels.dtype.itemsize, signed)
    return largest, bits, counts


@pytest.mark.parametrize("dtype", LABEL_TYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("size", [1, 63, 64, 65, 1000, 4099])
def test_one_pass_gives_numpys_bits_counts_and_largest_label(dtype, size):
    labels = _labels(dtype, size, density=0.4, seed=size)
    largest, bits, counts = _pack(labels)

    foreground_flags = labels > 0  # signed labels: negatives are background, as biom3d's mask > 0
    expected_bits = np.packbits(foreground_flags, bitorder="little")
    np.testing.assert_array_equal(bits, expected_bits)
    padded = np.zeros(-(-size // 64) * 64, bool)
    padded[:size] = foreground_flags
    np.testing.assert_array_equal(counts, padded.reshape(-1, 64).sum(axis=1))
    assert largest == labels.max().item()


def test_a_mask_of_only_negative_labels_has_no_foreground_and_a_negative_largest():
    labels = np.full(100, -3, np.int16)
    largest, bits, counts = _pack(labels)
    assert largest == -3
    assert not bits.any() and not counts.any()


@pytest.mark.parametrize("density", [0.0005, 0.2, 0.97, 1.0])
def test_compiled_select_finds_the_same_voxels_as_numpys(density):
    rng = np.random.default_rng(7)
    mask = (rng.random(50_000) < density).astype(np.uint8)
    mask[-1] = 1

    flat = np.flatnonzero(mask)
    ranks = np.sort(rng.integers(0, flat.size, 20_000))
    ranks[0], ranks[-1] = 0, flat.size - 1  # the first and the last foreground voxel
    ranks.sort()
    built = _index(mask)
    positions = np.empty(ranks.size, np.int64)
    loops.select(ranks, built.running, built.word_counts, built.bits, positions)
    np.testing.assert_array_equal(positions, flat[ranks])


def _index(mask: np.ndarray) -> foreground.ForegroundIndex:
    """The index of a flat uint8 mask, built by the compiled loop in one piece."""
    supers = -(-mask.size // foreground._SUPER)
    bits = np.zeros(supers * foreground._SUPER // 8, np.uint8)
    counts = np.zeros(supers * foreground._WORDS, np.uint8)
    largest = loops.pack(mask, bits, counts, 1, False)
    running = np.zeros(supers + 1, np.int64)
    running[1:] = np.cumsum(counts.reshape(-1, foreground._WORDS).sum(axis=1))
    return foreground.ForegroundIndex(bits, counts, running, largest)


def test_wrong_calls_raise_instead_of_touching_memory():
    mask = np.ones(5000, np.uint8)
    built = _index(mask)
    positions = np.empty(3, np.int64)
    with pytest.raises(ValueError, match="wrong size"):
        loops.pack(mask, np.empty(10, np.uint8), np.empty(100, np.uint8), 1, False)
    with pytest.raises(ValueError, match="no loop"):
        loops.pack(mask, np.empty(5000, np.uint8), np.empty(100, np.uint8), 3, False)
    with pytest.raises(ValueError, match="wrong size"):
        loops.pack(mask[:0], np.empty(1, np.uint8), np.empty(1, np.uint8), 1, False)
    with pytest.raises(ValueError, match="ascend"):
        unsorted = np.array([5, 3, 9], np.int64)
        loops.select(unsorted, built.running, built.word_counts, built.bits, positions)
    with pytest.raises(ValueError, match="below the count"):
        beyond = np.array([0, 1, 5000], np.int64)
        loops.select(beyond, built.running, built.word_counts, built.bits, positions)
    with pytest.raises(ValueError, match="wrong size"):
        ranks = np.array([0, 1, 2], np.int64)
        loops.select(ranks, built.running, built.word_counts, built.bits[:8], positions)
    with pytest.raises(TypeError):
        read_only = np.zeros(625, np.uint8)
        read_only.flags.writeable = False
        loops.pack(mask, read_only, np.empty(100, np.uint8), 1, False)


def test_running_counts_are_numpys_cumulative_sums():
    counts = np.random.default_rng(2).integers(0, 65, 16 * 300).astype(np.uint8)
    running = np.full(301, -1, np.int64)
    loops.running(counts, running)
    expected = np.concatenate([[0], np.cumsum(counts.reshape(-1, 16).sum(axis=1))])
    np.testing.assert_array_equal(running, expected)
    with pytest.raises(ValueError, match="wrong size"):
        loops.running(counts[:-1], running)


@pytest.mark.parametrize("dtype", [np.uint8, ">u2", np.int32, np.float64], ids=str)
def test_gather_reads_the_values_fancy_indexing_reads(dtype):
    source = np.random.default_rng(4).integers(0, 200, 10_000).astype(dtype)
    positions = np.sort(np.random.default_rng(5).integers(0, source.size, 3000))
    positions[-1] = source.size - 1
    out = np.empty(positions.size, source.dtype)
    loops.gather(source, positions, out, source.dtype.itemsize)
    np.testing.assert_array_equal(out, source[positions])
    with pytest.raises(IndexError, match="outside"):
        loops.gather(source, np.array([0, source.size], np.int64), out[:2], out.itemsize)
    with pytest.raises(ValueError, match="wrong size"):
        loops.gather(source, positions, out[:-1], out.itemsize)


def test_every_vector_loop_this_cpu_has_packs_alike():
    """uint8 masks go through AVX2 where the CPU has it, else SSE2 (x86), else the scalar loop:
    each one this machine can run gives numpy's bits."""
    labels = _labels(np.uint8, 10_007, density=0.3, seed=9)
    expected = np.packbits(labels > 0, bitorder="little")
    default = loops.vector_loop()
    try:
        for wide in (True, False):
            loops.vector_loop(wide)
            largest, bits, _ = _pack(labels)
            np.testing.assert_array_equal(bits, expected)
            assert largest == 255
    finally:
        loops.vector_loop(default == "avx2")
    assert loops.vector_loop() == default


def _resident_kb(address: int) -> int | None:
    """Resident kB of the mapping holding ``address`` (Linux's /proc/self/smaps), else None."""
    try:
        lines = open("/proc/self/smaps").read().splitlines()
    except OSError:
        return None
    inside = False
    for line in lines:
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            start, end = (int(v, 16) for v in head.split("-"))
            inside = start <= address < end
        elif inside and head == "Rss:":
            return int(line.split()[1])
    return None


def test_release_lets_a_read_only_mapping_go_and_refuses_anything_else(tmp_path):
    """The pages a mapped mask left resident go, the file reads the same after; a writable, a
    private (copy-on-write) or a non-mapping buffer is refused, its contents untouched."""
    import mmap

    path = tmp_path / "mask.raw"
    data = np.random.default_rng(8).integers(0, 255, 2**20, dtype=np.uint8)
    data.tofile(path)
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = np.frombuffer(mapping, np.uint8)
    assert int(view.sum()) == int(data.sum())  # every page touched
    before = _resident_kb(view.ctypes.data)
    assert loops.release(mapping) is True or before is None  # False only where not Linux-like
    after = _resident_kb(view.ctypes.data)
    if before is not None:
        assert before >= 1000 and after == 0
    np.testing.assert_array_equal(view, data)  # clean file pages: read again from the file
    del view
    mapping.close()

    with open(path, "r+b") as f:
        private = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    private[:4] = b"kept"
    with pytest.raises(ValueError, match="read-only"):
        loops.release(private)
    assert private[:4] == b"kept"
    private.close()
    with pytest.raises(ValueError, match="read-only"):
        loops.release(mmap.mmap(-1, 4096))
    with pytest.raises(TypeError, match="mmap"):
        loops.release(bytearray(4096))


def test_an_install_without_the_loops_gives_the_same_fingerprint(tmp_path):
    """NAPARI_AUTOCONFIG_NO_COMPILED=1 leaves the loops out, as an install without a C compiler
    does (scripts/test.sh runs the fingerprint tests so): the same numbers, every drawn sample."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import napari_autoconfig
    from datafiles import write_dataset

    images, masks = write_dataset(tmp_path)
    script = (
        "import sys, json; from napari_autoconfig import _compiled; "
        "from napari_autoconfig.fingerprint import fingerprint_dataset as f; "
        "fp = f(sys.argv[1], sys.argv[2]); "
        "print(json.dumps([_compiled.loops is None, fp.mean, fp.std, fp.perc_005, fp.perc_995, "
        "[r.samples.tolist() for r in fp.records]]))"
    )
    root = str(Path(napari_autoconfig.__file__).resolve().parents[1])
    env = {**os.environ, "NAPARI_AUTOCONFIG_NO_COMPILED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", script, str(images), str(masks)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    without, *numbers = json.loads(done.stdout)
    assert without is True
    from napari_autoconfig.fingerprint import fingerprint_dataset

    fp = fingerprint_dataset(images, masks)
    samples = [r.samples.tolist() for r in fp.records]
    assert numbers == [fp.mean, fp.std, fp.perc_005, fp.perc_995, samples]
