"""nnU-Net's foreground draws are numpy's ``RandomState.choice``, bit for bit, with the generator
left where numpy's own draw leaves it (a case's second channel continues the first's stream),
through the compiled loops and through numpy's, for every size of foreground and image type."""

from __future__ import annotations

import numpy as np
import pytest

from napari_autoconfig import _compiled
from napari_autoconfig.planners.nnunet_case import SEED, _draw
from napari_autoconfig.planners.nnunet_statistics import _value_counts

COMPILED = _compiled.loops
PATHS = [
    pytest.param(
        "compiled",
        marks=pytest.mark.skipif(COMPILED is None, reason="the compiled loops were not built"),
    ),
    "numpy",
]

#: Foreground sizes around every mask boundary numpy's rejection has (powers of two and +-1).
SIZES = sorted(
    {1, 2, 3, 5, 7, 100, 1000, 12345, 99991}
    | {2**p + d for p in (1, 2, 3, 8, 15, 16, 17, 20) for d in (-1, 0, 1)}
)
TYPES = [np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64]


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    monkeypatch.setattr(_compiled, "loops", COMPILED if request.param == "compiled" else None)
    return request.param


def _voxels(size: int, dtype) -> np.ndarray:
    """A case's foreground voxels: distinct where the type allows, so each index shows."""
    values = np.random.default_rng(size).permutation(size) % 30011
    return values.astype(dtype)


def _same_as_numpy(values: np.ndarray, draws: int, advance: int = 0) -> None:
    ours, numpys = np.random.RandomState(SEED), np.random.RandomState(SEED)
    # a stream already under way: the draw must start from any position of the key
    ours.randint(0, 2**32, size=advance, dtype=np.uint32)
    numpys.randint(0, 2**32, size=advance, dtype=np.uint32)

    drawn = _draw(ours, values, draws)

    expected = numpys.choice(values, draws)
    assert drawn.dtype == expected.dtype
    np.testing.assert_array_equal(drawn, expected)
    # what comes next from each generator is the same: the stream was left where numpy leaves it
    np.testing.assert_array_equal(ours.randint(0, 1000, 64), numpys.randint(0, 1000, 64))
    assert ours.random() == numpys.random()


@pytest.mark.parametrize("size", SIZES)
def test_every_foreground_size_draws_numpys_voxels(path, size):
    _same_as_numpy(_voxels(size, np.float32), draws=3001, advance=size % 700)


@pytest.mark.parametrize("dtype", TYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("draws", [0, 1, 2, 623, 624, 625, 20000])
def test_every_image_type_and_count_of_draws(path, dtype, draws):
    _same_as_numpy(_voxels(777, dtype), draws, advance=draws % 624)


@pytest.mark.parametrize("size", [1, 3, 65537, 1_500_001])
def test_millions_of_draws_as_a_case_of_nnunet_makes_them(path, size):
    _same_as_numpy(_voxels(size, np.uint16), draws=2_500_003)


def test_a_second_channel_continues_the_first_channels_stream(path):
    first, second = _voxels(5000, np.float32), _voxels(5000, np.float32)[::-1]
    ours, numpys = np.random.RandomState(SEED), np.random.RandomState(SEED)

    drawn = [_draw(ours, first, 100_000), _draw(ours, second[::2], 100_000)]

    expected = [numpys.choice(first, 100_000), numpys.choice(second[::2], 100_000)]
    for got, want in zip(drawn, expected):
        np.testing.assert_array_equal(got, want)


def test_big_endian_voxels_are_drawn_as_they_are(path):
    values = _voxels(4099, np.dtype(">f4"))
    _same_as_numpy(values, draws=10_000)


@pytest.mark.skipif(COMPILED is None, reason="the compiled loops were not built")
def test_a_wrong_call_of_the_compiled_draw_is_an_error_not_a_crash():
    key = np.zeros(624, np.uint32)
    values = np.zeros(10, np.float32)
    out = np.empty(5, np.float32)
    with pytest.raises(ValueError, match="wrong size"):
        COMPILED.draw(key[:100], 0, 9, values, out, 4)  # a short key
    with pytest.raises(ValueError, match="wrong size"):
        COMPILED.draw(key, 625, 9, values, out, 4)  # a position past the key
    with pytest.raises(ValueError, match="wrong size"):
        COMPILED.draw(key, 0, 10, values, out, 4)  # indices past the values
    with pytest.raises(ValueError, match="wrong size"):
        COMPILED.draw(key, 0, 9, values, out, 3)  # an item size no image has


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.uint16, np.int16, np.dtype(">i2")], ids=str
)
def test_small_integer_draws_are_counted_alike_by_both_paths(monkeypatch, dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(7)
    draws = rng.integers(info.min, info.max, 50_000, endpoint=True).astype(dtype)
    draws[:3] = [info.min, info.max, 0]  # both ends of the range and zero come through
    expected_values, expected_counts = np.unique(draws.astype(np.float32), return_counts=True)
    for loops in (COMPILED, None):
        monkeypatch.setattr(_compiled, "loops", loops)
        values, counts = _value_counts(draws)
        assert values.dtype == np.float32
        np.testing.assert_array_equal(values, expected_values)
        np.testing.assert_array_equal(counts, expected_counts)


@pytest.mark.skipif(COMPILED is None, reason="the compiled loops were not built")
def test_a_wrong_call_of_the_compiled_tally_is_an_error_not_a_crash():
    with pytest.raises(ValueError, match="wrong size"):
        COMPILED.tally(np.zeros(10, np.uint16), np.zeros(256, np.int64), 2, False)
    with pytest.raises(ValueError, match="wrong size"):
        COMPILED.tally(np.zeros(10, np.uint32), np.zeros(2**16, np.int64), 4, False)
