"""nnU-Net's fingerprint, inside: the float64 statistics nnU-Net falls into when a case has no
foreground, and the memory of the crop box and of the draws' value counts.

Memory is measured with tracemalloc (numpy reports its arrays to it): a bound on the peak, not a
time.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from datafiles import write_npy
from napari_autoconfig.planners import fingerprint_nnunet, nnunet_fingerprint
from napari_autoconfig.planners.nnunet_case import analyze_case
from napari_autoconfig.planners.nnunet_records import NnUNetCaseRecord
from napari_autoconfig.planners.nnunet_statistics import channel_intensities, summarize_draws


def _record(key: str, draws: np.ndarray | None, start: int = 0, total: int = 0):
    channels = () if draws is None else (summarize_draws(draws, start, total),)
    size = 0 if draws is None else draws.size
    return NnUNetCaseRecord(key, (1, 1, 1), ((0, 1),) * 3, (1.0,) * 3, size, (0, 1), channels)


def test_a_case_without_foreground_gives_numpys_float64_statistics():
    # 998 draws whose percentiles fall between values of far apart magnitudes: their difference
    # taken in float32 loses digits that nnU-Net's float64 draws keep
    runs = [(5, 0.3), (494, 1.0000001), (494, 7.25), (5, 2.5e7 + 2)]
    draws = np.concatenate([np.full(n, v) for n, v in runs]).astype(np.float32)
    draws = np.random.default_rng(0).permutation(draws)
    records = [_record("drawn", draws, 0, draws.size), _record("empty", None)]

    found = channel_intensities(records, 0)

    # nnU-Net: the cases' draws concatenated, the empty case's [] making them float64
    x = np.concatenate([draws, np.array([])])
    assert x.dtype == np.float64
    low, median, high = np.percentile(x, (0.5, 50.0, 99.5))
    assert (found.percentile_00_5, found.median, found.percentile_99_5) == (low, median, high)
    assert found.mean == float(np.mean(x))
    assert found.std == pytest.approx(float(np.std(x)), rel=1e-12)
    assert (found.min, found.max) == (float(x.min()), float(x.max()))


def test_the_crop_box_is_found_without_a_mask_of_the_whole_volume(tmp_path):
    shape = (64, 512, 512)  # 16 M voxels: a whole-volume bool mask is 16 MB
    image = np.zeros(shape, np.uint8)
    image[8:56, 40:480, 32:500] = 7  # a zero border: the crop box is smaller than the volume
    label = np.zeros(shape, np.uint8)
    label[4:20, 30:60, 20:40] = 1  # partly outside the box: those voxels are dropped
    write_npy(tmp_path / "image.npy", image)
    write_npy(tmp_path / "label.npy", label)
    del image, label

    tracemalloc.start()
    try:
        record = analyze_case("c", [tmp_path / "image.npy"], tmp_path / "label.npy", 1000, 0, 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert record.bbox == ((8, 56), (40, 480), (32, 500))
    assert record.foreground == 12 * 20 * 8  # the label voxels inside the box
    assert peak < 24 * 2**20  # two whole-volume masks (the volume, the box) are 32 MB


def test_the_draws_value_counts_are_merged_as_cases_finish(tmp_path, monkeypatch):
    # 16 float cases sharing 50 000 distinct values: one tally for the dataset, not 16
    monkeypatch.setattr(nnunet_fingerprint, "SAMPLES_IN_TOTAL", 16 * 200_000)
    values = (np.arange(50_000) * 0.37 + 0.1).astype(np.float32)
    rng = np.random.default_rng(2)
    for case in range(16):
        write_npy(
            tmp_path / "images" / f"c{case:02d}.npy", rng.permutation(values).reshape(50, 40, 25)
        )
        write_npy(tmp_path / "masks" / f"c{case:02d}.npy", np.ones((50, 40, 25), np.uint8))

    tracemalloc.start()
    try:
        found = fingerprint_nnunet(tmp_path / "images", tmp_path / "masks")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert found.intensities[0].min == float(values.min())
    assert found.intensities[0].max == float(values.max())
    # every case's (values, counts) kept to the end, then joined, cost about 30 MB here
    assert peak < 20 * 2**20
