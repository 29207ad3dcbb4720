"""biom3d planning rules: worked examples, the crash case, rule properties on random medians."""

from __future__ import annotations

import math

import numpy as np
import pytest

import biom3d_reference
from napari_autoconfig.errors import AutoconfigError, LimitsError
from napari_autoconfig.planners import biom3d
from napari_autoconfig.planners.biom3d import (
    Limits,
    Plan,
    _value_flags,
    clamp_batch,
    find_patch_pool_batch,
    get_aug_patch,
    make_plan,
    oversize_axes,
)

oracle = biom3d_reference.patch_pool_batch  # what biom3d does, step by step


# --------------------------------------------------------------------------- worked examples


@pytest.mark.parametrize(
    ("patch", "aug"),
    [
        ([64, 64, 64], [111, 111, 111]),
        ([128, 128, 32], [181, 181, 32]),
        ([96, 64, 24], [115, 115, 24]),
        ([80, 80, 32], [118, 118, 118]),
    ],
)
def test_get_aug_patch_reference_examples(patch, aug):
    out = get_aug_patch(patch)
    assert out == aug
    assert all(type(v) is int for v in out)
    assert get_aug_patch(np.array(patch)) == aug


def test_get_aug_patch_keeps_first_thin_axis():
    # sqrt(3^2 + 4^2) = 5 exactly; with two equal smallest axes the first one is kept.
    assert get_aug_patch([1, 3, 4]) == [1, 5, 5]
    assert get_aug_patch([4, 1, 1]) == [4, 1, 4]  # round(sqrt(17)) = 4 on the other two axes
    assert get_aug_patch([1, 1, 1]) == [2, 2, 2]  # sqrt(3) = 1.73


def test_patch_can_exceed_image_with_max_pool_6():
    # The reference's example: image (133, 32, 4) and max_pool 6 (min(max_dims) 64..127,
    # i.e. a smallest feature map of 1) give [192, 64, 8], larger than the image on every axis.
    patch, pool, batch = find_patch_pool_batch((133, 32, 4), max_dims=(64, 64, 64), max_pool=6)
    assert patch.tolist() == [192, 64, 8]
    assert pool.tolist() == [6, 6, 3]
    assert batch == 2 * math.floor(64**3 / (192 * 64 * 8))
    # With the default 128^3 budget the smallest feature map is 2 and the patch differs.
    patch, pool, batch = find_patch_pool_batch((133, 32, 4), max_pool=6)
    assert patch.tolist() == [192, 48, 6]
    assert pool.tolist() == [6, 4, 1]
    assert batch == 74


def test_broadcasting_crash_case_does_not_crash():
    median, max_dims = (228, 314, 1802), (96, 96, 96)
    with pytest.raises(ValueError, match="broadcast"):
        oracle(median, max_dims)  # what biom3d does
    patch, pool, batch = find_patch_pool_batch(median, max_dims)
    assert patch.tolist() == [48, 48, 384]
    assert pool.tolist() == [4, 4, 5]
    assert batch == 2
    assert np.prod(patch) <= 96**3
    plan = make_plan(median, Limits(max_dims=(96, 96, 96)))
    assert plan.patch == (48, 48, 384)
    assert any("broadcasting" in r for r in plan.reasons)


def test_shrinking_loop_that_never_ends_in_biom3d_terminates():
    with pytest.raises(RuntimeError):
        oracle((2, 5, 20_000_000))
    patch, _pool, batch = find_patch_pool_batch((2, 5, 20_000_000))
    assert np.prod(patch) <= 128**3
    assert make_plan((2, 5, 20_000_000)).reasons[-1].startswith("biom3d's shrinking loop")
    assert batch >= 2


def test_known_medians():
    assert [
        x.tolist() if hasattr(x, "tolist") else x for x in find_patch_pool_batch((96, 512, 512))
    ] == [[40, 224, 224], [3, 5, 5], 2]
    patch, pool, batch = find_patch_pool_batch((64, 64, 64))
    assert patch.tolist() == [64, 64, 64] and pool.tolist() == [4, 4, 4] and batch == 16


def test_four_entry_median_drops_channel():
    for median in [(1, 96, 512, 512), (2, 96, 512, 512)]:
        a = find_patch_pool_batch(median)
        b = find_patch_pool_batch(median[1:])
        assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist() and a[2] == b[2]


def test_2d_median_gives_patch_z_1():
    patch, pool, batch = find_patch_pool_batch((1, 512, 700))
    assert patch[0] == 1 and pool[0] == 0
    assert patch.tolist() == [1, 544, 704]
    assert batch == 2 * math.floor(128**3 / (544 * 704))


def test_return_types():
    patch, pool, batch = find_patch_pool_batch((50, 60, 70))
    for arr in (patch, pool):
        assert isinstance(arr, np.ndarray) and arr.shape == (3,)
        assert np.issubdtype(arr.dtype, np.integer)
    assert type(batch) is int


# --------------------------------------------------------------------------- assertion messages


def test_wrong_number_of_dims():
    with pytest.raises(AssertionError, match="3 entries"):
        find_patch_pool_batch((10, 20))
    with pytest.raises(AssertionError):
        find_patch_pool_batch((1, 2, 3, 4, 5))


@pytest.mark.parametrize("median", [(128, 0, 128), (-1, 5, 5), (2, 0, 5, 5)])
def test_non_positive_dim(median):
    with pytest.raises(AssertionError, match="One dimension is non-positve"):
        find_patch_pool_batch(median)


def test_max_dims_too_small_for_max_pool():
    with pytest.raises(AssertionError, match="is too small regarding max_pool"):
        find_patch_pool_batch((64, 64, 64), max_dims=(10, 10, 10), max_pool=5)


# --------------------------------------------------------------------------- random properties


def _random_medians(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        kind = rng.integers(0, 4)
        if kind == 0:
            m = rng.integers(1, 80, 3)
        elif kind == 1:
            m = rng.integers(1, 2500, 3)
        elif kind == 2:
            m = np.array([1, *rng.integers(2, 3000, 2)])
        else:
            m = np.exp(rng.uniform(0, 8, 3)).astype(int) + 1
        out.append(tuple(int(v) for v in m))
    return out


@pytest.mark.parametrize("max_dims", [(128, 128, 128), (96, 96, 96), (64, 160, 192)])
def test_rules_hold_on_random_medians(max_dims):
    fm = min(max_dims) // 32
    budget = math.prod(max_dims)
    compared = 0
    for median in _random_medians(400, seed=sum(max_dims)):
        patch, pool, batch = find_patch_pool_batch(median, max_dims)
        p = patch.tolist()
        assert all(v >= 1 for v in p)
        assert math.prod(p) <= budget
        assert pool.tolist() == [min(max(math.floor(math.log2(v / fm)), 0), 5) for v in p]
        assert batch == max(2 * math.floor(budget / math.prod(p)), 2)
        assert all(pv == 1 for pv, mv in zip(p, median) if mv == 1)
        try:
            expected = oracle(median, max_dims)
        except ValueError:
            continue  # biom3d crashes here; covered by the crash-case test
        assert [p, pool.tolist(), batch] == list(expected), median
        compared += 1
    assert compared > 350


def test_aug_patch_rule_on_random_patches():
    rng = np.random.default_rng(7)
    for _ in range(300):
        p = [int(v) for v in rng.integers(1, 300, 3)]
        out = get_aug_patch(p)
        ratios = [v / min(p) for v in p]
        if max(ratios) > 3:
            thin = ratios.index(min(ratios))
            diag = round(math.sqrt(sum(v * v for i, v in enumerate(p) if i != thin)))
            expected = [diag] * 3
            expected[thin] = p[thin]
        else:
            expected = [round(math.sqrt(sum(v * v for v in p)))] * 3
        assert out == expected


# --------------------------------------------------------------------------- batch and plan


@pytest.mark.parametrize(
    ("batch", "hi", "lo", "out"),
    [(20, 16, 2, 16), (1, 16, 2, 2), (8, 16, 2, 8), (8, 0, 2, 2), (8, 1, 2, 2), (3, 5, 4, 4)],
)
def test_clamp_batch(batch, hi, lo, out):
    assert clamp_batch(batch, hi, lo) == out


def test_plan_fixed_rule_numbers_and_types():
    plan = make_plan((64, 64, 64))
    assert isinstance(plan, Plan)
    assert plan.patch == (64, 64, 64) and plan.pool == (4, 4, 4)
    assert plan.batch == 16 and plan.max_batch_used == 16
    assert plan.aug_patch == (111, 111, 111)
    for triple in (plan.patch, plan.pool, plan.aug_patch):
        assert all(type(v) is int for v in triple)
    assert type(plan.batch) is int


def test_plan_preprocessing_rule():
    limits = Limits(batch_rule="preprocessing")
    assert make_plan((64, 64, 64), limits, num_images=100).batch == 5  # 100 // 20
    assert make_plan((64, 64, 64), limits, num_images=100).max_batch_used == 5
    assert make_plan((64, 64, 64), limits, num_images=30).batch == 2  # 1, then min_batch
    assert make_plan((64, 64, 64), limits, num_images=1000).batch == 16  # rule gives 50
    with pytest.raises(LimitsError, match="num_images"):
        make_plan((64, 64, 64), limits)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"max_dims": (16, 128, 128)}, "is too small regarding max_pool"),
        ({"max_pool": 8}, "is too small regarding max_pool"),
        ({"max_pool": -1}, "max_pool must be"),
        ({"max_pool": 2.5}, "max_pool must be"),
        ({"max_dims": (128, 128)}, "max_dims must be 3"),
        ({"max_dims": (0, 128, 128)}, "max_dims must be 3"),
        ({"min_batch": 0}, "min_batch must be"),
        ({"max_batch": -1}, "max_batch must be"),
        ({"batch_rule": "magic"}, "Unknown batch rule 'magic'; use one of fixed, preprocessing"),
        ({"epsilon": 0.0}, "epsilon must be positive"),
    ],
)
def test_impossible_limits_are_refused_when_built(kwargs, needle):
    # Refused by Limits itself, before any folder is read or plan made; one type, an
    # AssertionError as in biom3d.
    with pytest.raises(LimitsError, match=needle) as info:
        Limits(**kwargs)
    assert isinstance(info.value, AssertionError) and isinstance(info.value, AutoconfigError)


def test_limits_keep_biom3d_legal_corners():
    # biom3d clamps max first then min: min_batch above max_batch is legal and min wins.
    limits = Limits(min_batch=8, max_batch=4)
    assert make_plan((64, 64, 64), limits).batch == 8
    assert Limits(max_dims=[32, 64, 64], max_pool=5).max_dims == (32, 64, 64)  # 32 // 32 = 1
    assert Limits(max_pool=0).max_pool == 0


def test_value_flags_shorter_counts():
    # One value left: flagged when any flag is; another shorter count: the leading flags.
    assert _value_flags([64], (False, True, False)) == ([True], False)
    assert _value_flags([64], (False, False)) == ([False], False)
    assert _value_flags([96, 64], (False, True, True)) == ([False, True], True)
    assert _value_flags([96, 64, 32], (True, False, True)) == ([True, False, True], False)


def test_plan_reasons_explain_each_number():
    plan = make_plan((96, 512, 512))
    assert plan.patch == (40, 224, 224)
    text = plan.explain()
    assert "40x224x224" in text and "shrunk" in text
    assert len(plan.reasons) == 6  # patch, 3 pools, batch, aug patch
    assert "3 poolings along z" in plan.reasons[1] and "floor(log2(40 / 4))" in plan.reasons[1]
    assert plan.reasons[4].startswith("Batch 2 = 2 x floor(")
    assert "[2, 16]" in plan.reasons[4]
    flat = make_plan((1, 512, 700))
    assert flat.patch[0] == 1 and "2D" in flat.reasons[0]


def test_oversize_axes():
    plan = make_plan((133, 32, 4), Limits(max_dims=(64, 64, 64), max_pool=6))
    sentences = oversize_axes(plan, (133, 32, 4))
    assert len(sentences) == 3
    assert "z (192 > 133)" in sentences[0]
    assert oversize_axes(make_plan((64, 64, 64)), (64, 64, 64)) == ()


@pytest.mark.parametrize("max_dims", [(128, 128, 128), (96, 96, 96), (64, 160, 192)])
@pytest.mark.parametrize("max_pool", [1, 3, 5])
def test_never_more_patch_values_than_flags(monkeypatch, max_dims, max_pool):
    # Why _value_flags has no branch for more values than flags: equal patch values grow together.
    seen = []

    def checked(values, flags):
        seen.append((len(values), len(flags)))
        return _value_flags(values, flags)

    monkeypatch.setattr(biom3d, "_value_flags", checked)
    for median in _random_medians(400, seed=max_pool):
        find_patch_pool_batch(median, max_dims, max_pool)
    assert seen and all(n_values <= n_flags for n_values, n_flags in seen)
