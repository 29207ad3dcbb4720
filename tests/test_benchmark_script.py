"""The benchmark runs end to end at a tiny size, prints its ratios, and its variants agree."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import datagen

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_fingerprint.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("bench_fingerprint", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _run_bench(options: str, tmp_path: Path, results: Path, env=None):
    # one timed run of the floors and one process writing the data: the rows, not their
    # precision, are what these tests read (the defaults take twice the CPU)
    cheap = ["--floor-repeats", "1", "--workers", "1"]
    command = [sys.executable, str(SCRIPT), *options.split(), *cheap, "--out", str(tmp_path)]
    return subprocess.run(
        [*command, "--json", str(results)], capture_output=True, text=True, timeout=300, env=env
    )


def test_tiny_benchmark_prints_ratios_and_variants_agree(tmp_path):
    results = tmp_path / "results.json"
    run = _run_bench(
        "--images 3 --shape 6 24 24 --repeats 1 --formats tif nii.gz --big-gb 0.001 --many 10",
        tmp_path,
        results,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ratio 1st" in run.stdout
    assert "all variants agree on every number" in run.stdout
    # first call, second call, peak MB, then baseline / ours for both calls
    number = r"\s+[\d.]+"
    assert re.search(r"ours fingerprint\+masks" + number * 3 + r"\s+[\d.]+x\s+[\d.]+x", run.stdout)

    report = json.loads(results.read_text())
    assert report["problems"] == []
    rows = {(r["section"], r["fmt"], r["variant"]): r for r in report["rows"]}
    for fmt in ("tif", "nii.gz"):
        for section, variant in (
            ("scan", "ours compute_median"),
            ("scan", "ours fingerprint"),
            ("masked", "ours fingerprint+masks"),
            ("big", "ours fingerprint+masks"),
        ):
            row = rows[(section, fmt, variant)]
            assert row["ratio"] > 0 and row["seconds"] > 0, row
            assert row["met"] != "FAILED"
        assert rows[("command", fmt, "python -m napari_autoconfig --masks")]["met"] != "FAILED"
    # the floors are measured in the same run, and say how far above them we are (ours / floor)
    for fmt, floor in (
        ("tif", "floor: read masks, count"),
        ("tif", "floor: map masks, count"),
        ("nii.gz", "floor: inflate every byte"),
    ):
        row = rows[("masked", fmt, floor)]
        assert (
            row["ratio"] > 0 and row["ratio_again"] > 0 and row["target"].startswith("ours/floor")
        )
    assert {r["section"] for r in report["rows"]} >= {"many 1", "many 10"}
    # everything it generated is gone
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


FAKE_BIOM3D = """
import numpy as np
from napari_autoconfig.fingerprint import fingerprint_dataset

def compute_median(path, return_spacing=False):
    fp = fingerprint_dataset(path)
    # biom3d reads a single-channel ImageJ TIFF as (1, Z, Y, X)
    return np.array([1, *fp.median_size]), np.array(fp.median_spacing_xyz)

def data_fingerprint(img_dir, msk_dir=None, num_samples=10000, seed=42):
    fp = fingerprint_dataset(img_dir, msk_dir, seed=seed, num_samples=num_samples)
    size, spacing = np.array([1, *fp.median_size]), np.array(fp.median_spacing_xyz)
    return size, spacing, fp.mean, fp.std, fp.perc_005, fp.perc_995
"""


def test_biom3d_variants_run_when_biom3d_is_importable(tmp_path):
    """biom3d itself is not a dependency: a stand-in with its signatures proves the wiring."""
    fake = tmp_path / "fake" / "biom3d"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "auto_config.py").write_text(FAKE_BIOM3D)
    results = tmp_path / "results.json"
    path = os.environ.get("PYTHONPATH")  # where napari_autoconfig may come from
    run = _run_bench(
        "--images 2 --shape 4 16 16 --repeats 1 --formats tif --many 0 --no-cli",
        tmp_path,
        results,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(fake.parent), path]))},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {r["variant"]: r for r in json.loads(results.read_text())["rows"]}
    assert rows["biom3d compute_median"]["met"] != "FAILED"
    assert rows["biom3d data_fingerprint"]["met"] != "FAILED"
    assert rows["biom3d data_fingerprint"]["ratio"] > 0
    assert rows["biom3d data_fingerprint"]["ratio_again"] > 0  # biom3d / ours, second calls


def test_generated_data_is_realistic_and_slabs_join():
    shape = (12, 40, 48)
    thresholds = datagen.thresholds(shape, 5)
    image, mask = datagen.synth_slab(shape, np.dtype(np.uint16), 5, 0, 12, thresholds)
    assert image.dtype == np.uint16 and mask.dtype == np.uint8
    assert 0.05 < np.count_nonzero(mask) / mask.size < 0.4
    assert set(np.unique(mask)) <= {0, 1, 2}
    assert image[mask > 0].mean() > image[mask == 0].mean() + 300  # structures stand out
    # written slab by slab, the structures (not the noise) are the same as in one piece
    top, top_mask = datagen.synth_slab(shape, np.dtype(np.uint16), 5, 0, 5, thresholds)
    np.testing.assert_array_equal(top_mask, mask[:5])
    assert np.abs(top.astype(float) - image[:5]).mean() < 60


def test_disagreeing_variants_are_reported():
    bench = _load_script()
    ours = bench.Measure(
        "masked", "tif", "ours fingerprint+masks", numbers={"mean": 1.0, "std": 2.0}
    )
    same = bench.Measure("masked", "tif", "baseline +masks", numbers={"mean": 1.0, "std": 2.0})
    other = bench.Measure("masked", "tif", "baseline +masks", numbers={"mean": 1.5, "std": 2.0})
    crashed = bench.Measure("masked", "tif", "ours fingerprint+masks", error="ValueError: boom")
    assert bench.disagreements([ours, same]) == []
    assert bench.disagreements([ours, other]) == [
        "masked tif: mean = 1.5 (baseline +masks) but 1.0 (ours fingerprint+masks)"
    ]
    assert bench.disagreements([crashed, same]) == [
        "masked tif: ours fingerprint+masks failed: ValueError: boom"
    ]
