"""Will a plan fit on my GPU? The training-memory estimate and the GPU budget search."""

from __future__ import annotations

import math

import pytest

from napari_autoconfig.errors import LimitsError
from napari_autoconfig.gpu_budget import plan_for_gpu
from napari_autoconfig.memory import (
    GIB,
    biom3d_can_train,
    estimate_memory,
    estimate_plan_memory,
    network_levels,
)
from napari_autoconfig.planners.biom3d import Limits, make_plan

MEDIANS = ((52, 232, 232), (100, 100, 100), (1, 512, 512), (2, 40, 300, 300), (12, 2048, 2048))


def test_a_two_level_network_counted_by_hand():
    # Patch 2x4x4, one pooling per axis: level 0 is 2x4x4 (32 voxels) with 32 channels, level 1
    # is 1x2x2 (4 voxels) with 64 channels; one input channel, batch 1.
    est = estimate_memory((2, 4, 4), (1, 1, 1), batch=1, channels=1, precision="fp32")

    # Parameters. Encoder 0: 3x3x3 convs 1->32 and 32->32, two affine norms of 32.
    # Encoder 1: convs 32->64, 64->64, norms of 64. Decoder 0: transposed conv 64->32 with a
    # 2x2x2 kernel, convs 64->32 and 32->32, norms of 32, and the 1x1 conv 32->2 classes.
    conv = 27 * (1 * 32 + 32 * 32) + 27 * (32 * 64 + 64 * 64)
    conv += 64 * 32 * 8 + 27 * (64 * 32 + 32 * 32) + 32 * 2
    norm = 2 * (2 * 32) + 2 * (2 * 64) + 2 * (2 * 32)
    assert est.parameters == conv + norm
    # fp32: weight, gradient and momentum, 4 bytes each.
    assert est.weights_bytes == 12 * (conv + norm)

    # Kept for backward: the input (1 x 32), two maps per convolution (its output and the
    # normalised, activated output): 2 convs at level 1, 4 at level 0 (encoder and decoder),
    # and the decoder's concatenation (64 x 32), 4 bytes each.
    maps = 1 * 32 + 2 * 2 * 64 * 4 + 4 * 2 * 32 * 32 + 64 * 32
    # Each norm keeps three fp32 vectors of its channels: 4 norms of 32, 2 of 64.
    stats = 3 * (4 * 32 + 2 * 64)
    # The loss per voxel: softmax, log-softmax, one-hot and 1 - one-hot (2 classes, fp32) and
    # the int64 target.
    loss = 32 * (4 * 2 * 4 + 8)
    assert est.activations_bytes == 4 * maps + 4 * stats + loss

    # Backward's first buffers (one first-level map, the loss's fp32 gradients), or here, with
    # so few voxels, SGD's copy of the gradients beyond the freed activations.
    backward = 32 * (4 * 32 + 4 * 4 * 2)
    assert backward < 4 * (conv + norm) - est.activations_bytes
    assert est.workspace_bytes == 4 * (conv + norm) - est.activations_bytes
    assert est.overhead_bytes == GIB
    assert est.total_bytes == (
        est.activations_bytes + est.weights_bytes + est.workspace_bytes + est.overhead_bytes
    )


def test_mixed_precision_halves_the_maps_but_not_the_loss_or_the_master_weights():
    fp32 = estimate_memory((2, 4, 4), (1, 1, 1), batch=3, channels=2, precision="fp32")
    fp16 = estimate_memory((2, 4, 4), (1, 1, 1), batch=3, channels=2, precision="fp16")
    maps = 2 * 32 + 2 * 2 * 64 * 4 + 4 * 2 * 32 * 32 + 64 * 32
    stats = 3 * (4 * 32 + 2 * 64)
    loss = 32 * (4 * 2 * 4 + 8)
    assert fp16.activations_bytes == 3 * (2 * maps + 4 * stats + loss)
    assert fp32.activations_bytes == 3 * (4 * maps + 4 * stats + loss)
    # fp16 keeps fp32 weights, gradients and momentum plus a half copy of each conv weight.
    assert fp16.weights_bytes > fp32.weights_bytes
    assert fp16.parameters == fp32.parameters
    # A larger patch: backward's first buffers are the larger part.
    big = estimate_memory((32, 64, 64), (1, 1, 1), batch=2, precision="fp16")
    assert big.workspace_bytes == 2 * 32 * 64 * 64 * (2 * 32 + 4 * 4 * 2)


def test_levels_follow_biom3d_strides():
    # biom3d documents convert_num_pools([3, 5, 5]) as strides
    # [1,2,2], [2,2,2], [2,2,2], [2,2,2], [1,2,2]: z's unpooled levels are centred.
    levels = network_levels((16, 64, 64), (3, 5, 5))
    strides = [level.stride for level in levels[1:]]
    assert strides == [(1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2)]
    assert [level.size for level in levels] == [
        (16, 64, 64),
        (16, 32, 32),
        (8, 16, 16),
        (4, 8, 8),
        (2, 4, 4),
        (2, 2, 2),
    ]
    assert [level.channels for level in levels] == [32, 64, 128, 256, 320, 320]


@pytest.mark.parametrize("pool", [(1, 1, 1), (3, 5, 5), (5, 5, 5), (0, 4, 4)])
def test_more_voxels_or_a_larger_batch_need_more_memory(pool):
    step = [2**p for p in pool]
    last = None
    for k in range(1, 6):
        patch = [max(1, s * k) if p else k for s, p in zip(step, pool)]
        est = estimate_memory(patch, pool, batch=2)
        if last is not None:
            assert est.activations_bytes > last.activations_bytes
            assert est.total_bytes >= last.total_bytes
            assert est.weights_bytes == last.weights_bytes  # the network does not change
        last = est
    patch = [s * 8 for s in step]  # enough voxels for the activations to dominate
    by_batch = [estimate_memory(patch, pool, batch=b) for b in range(1, 8)]
    activations = [e.activations_bytes for e in by_batch]
    assert activations == sorted(set(activations))  # strictly more with every sample
    totals = [e.total_bytes for e in by_batch]
    assert totals == sorted(totals) and totals[-1] > totals[0]


def test_the_default_plan_fits_the_gpu_biom3d_was_tuned_for():
    # biom3d's defaults were chosen for a 12 GB GPU; its default plan must fit one in fp16.
    plan = make_plan((52, 232, 232))
    est = estimate_plan_memory(plan)
    assert est.precision == "fp16"
    assert 2 < est.total_gib < 12
    assert estimate_plan_memory(plan, precision="fp32").total_gib > est.total_gib


def test_what_biom3d_cannot_build_is_refused_or_flagged():
    with pytest.raises(LimitsError, match="0 to 5 poolings"):
        estimate_memory((64, 128, 128), (4, 6, 6), batch=2)
    with pytest.raises(LimitsError, match="precision"):
        estimate_memory((64, 64, 64), (4, 4, 4), batch=2, precision="bf16")
    with pytest.raises(LimitsError, match="Batch"):
        estimate_memory((64, 64, 64), (4, 4, 4), batch=0)
    assert not biom3d_can_train((32, 32, 32), (5, 5, 5))  # one voxel left at the bottom
    assert not biom3d_can_train((4, 4, 4), (0, 0, 0))  # no decoder at all
    assert biom3d_can_train((64, 64, 64), (5, 5, 5))


def test_a_12_gib_gpu_gets_a_biom3d_plan_that_fits_it():
    limits = Limits(max_batch=8, min_batch=2)
    chosen = plan_for_gpu((52, 232, 232), 12, limits)
    plan = chosen.plan
    d = plan.limits.max_dims[0]
    assert plan.limits.max_dims == (d, d, d) and d % 2**limits.max_pool == 0
    assert chosen.memory.total_gib <= 12
    assert chosen.memory == estimate_plan_memory(plan)
    # Only max_dims was derived: biom3d's own rules with that budget give the same plan.
    again = make_plan((52, 232, 232), Limits(max_dims=(d, d, d), max_batch=8, min_batch=2))
    assert (again.patch, again.pool, again.batch, again.aug_patch) == (
        plan.patch,
        plan.pool,
        plan.batch,
        plan.aug_patch,
    )
    assert plan.limits.max_batch == 8
    assert "derived from the GPU memory of 12 GiB" in plan.reasons[-1]
    # No other cubic budget trains more voxels per step within 12 GiB.
    work = plan.batch * math.prod(plan.patch)
    for other in range(32, 1025, 32):
        bigger = make_plan((52, 232, 232), Limits(max_dims=(other,) * 3, max_batch=8))
        if bigger.batch * math.prod(bigger.patch) > work:
            assert estimate_plan_memory(bigger).total_gib > 12


@pytest.mark.parametrize("median", MEDIANS)
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_a_larger_gpu_never_gets_less_patch_times_batch(median, precision):
    last_work, seen = 0, set()
    for tenths in range(20, 1000, 25):  # 2 GiB to 100 GiB
        try:
            plan = plan_for_gpu(median, tenths / 10, precision=precision).plan
        except LimitsError as error:  # a GPU too small for any plan: nothing to train
            assert "No biom3d plan fits" in str(error)
            work = 0
        else:
            work = plan.batch * math.prod(plan.patch)
        assert work >= last_work
        last_work = work
        seen.add(work)
    assert len(seen) > 2  # the budget really moves with the GPU


def test_a_gpu_too_small_for_any_plan_is_told_so():
    with pytest.raises(LimitsError, match=r"No biom3d plan fits in 0\.5 GiB"):
        plan_for_gpu((52, 232, 232), 0.5)
    with pytest.raises(LimitsError, match="positive"):
        plan_for_gpu((52, 232, 232), -3)
