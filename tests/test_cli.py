"""The command line as a user runs it: the sample, JSON, files written, one line per bad input."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from datafiles import write_imagej
from napari_autoconfig.cli import main
from napari_autoconfig.sample import SAMPLE_SHAPES_ZYX, sample_folder


def _run(capsys, *args):
    status = main([*args, "--quiet"])
    out, err = capsys.readouterr()
    return status, out, err


def _tiff_folder(root, shapes, spacing_zyx=(2.0, 0.5, 0.5)):
    root.mkdir(parents=True, exist_ok=True)
    for i, shape in enumerate(shapes):
        write_imagej(root / f"img_{i}.tif", np.full(shape, i, np.uint16), spacing_zyx)
    return root


def test_sample_runs_as_a_module_and_prints_json():
    result = subprocess.run(
        [sys.executable, "-m", "napari_autoconfig", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    for key in (
        "num_images",
        "median_size",
        "median_spacing",
        "mean",
        "std",
        "perc_005",
        "perc_995",
        "batch",
        "patch",
        "aug_patch",
        "pool",
    ):
        assert key in record
    assert record["num_images"] == len(SAMPLE_SHAPES_ZYX)
    assert record["median_size"] == [int(v) for v in np.median(SAMPLE_SHAPES_ZYX, axis=0)]
    assert record["median_spacing"] == [0.5, 0.5, 2.0]  # biom3d's (x, y, z)
    assert 20 < record["mean"] < 200 and record["perc_005"] < record["perc_995"]
    assert all(isinstance(v, int) for v in record["patch"] + record["pool"] + record["aug_patch"])
    assert "sample" in result.stderr
    # One entry per image, in dataset order; the sample's thin volume is flagged.
    images = record["images"]
    assert [entry["image"] for entry in images] == [
        f"nuclei_{i:02d}.tif" for i in range(1, len(SAMPLE_SHAPES_ZYX) + 1)
    ]
    assert [entry["shape_zyx"] for entry in images] == [list(s) for s in SAMPLE_SHAPES_ZYX]
    thin = [entry for entry in images if entry["shape_zyx"][0] < record["patch"][0]]
    assert len(thin) == 1 and thin[0]["flags"] == [
        f"smaller than the patch along z ({thin[0]['shape_zyx'][0]} < {record['patch'][0]}): "
        "training pads it"
    ]
    assert all(not entry["flags"] for entry in images if entry not in thin)


def test_default_output_is_the_snippet_with_a_summary(capsys):
    folder = sample_folder()
    status, out, _ = _run(capsys, str(folder / "images"), "--masks", str(folder / "masks"))
    assert status == 0
    assert "BATCH_SIZE = " in out and "PATCH_SIZE = [" in out and "NUM_POOLS = [" in out
    assert "MEDIAN_SPACING = [0.5, 0.5, 2.0]" in out
    assert "CLIPPING_BOUNDS = [" in out and "INTENSITY_MOMENTS = [" in out
    # The summary is fingerprint.describe's sentences, each as a comment line.
    z, y, x = (int(v) for v in np.median(SAMPLE_SHAPES_ZYX, axis=0))
    assert f"# Images: {len(SAMPLE_SHAPES_ZYX)} (with masks)\n" in out
    assert f"# Median size (z, y, x): {z} x {y} x {x} voxels\n" in out
    # the sample's thin volume is thinner than the patch: said once, naming it
    (note,) = [line for line in out.splitlines() if line.startswith("# note:")]
    assert "larger than 1 of 4 image(s)" in note and "nuclei_04.tif" in note


def test_median_without_files(capsys):
    status, out, _ = _run(capsys, "--median", "96", "512", "512", "--json")
    assert status == 0
    record = json.loads(out)
    assert record["num_images"] is None and record["median_size"] == [96, 512, 512]
    assert record["median_spacing"] == []
    assert np.prod(record["patch"]) <= 128**3
    status, out, _ = _run(capsys, "--median", "1", "2", "--json")
    assert status == 2


def test_save_and_update_config(tmp_path, capsys):
    images = _tiff_folder(tmp_path / "imgs", [(10, 40, 40), (12, 40, 40)])
    config = tmp_path / "config.py"
    original = "IMG_PATH = 'x'\nBATCH_SIZE = 99\nPATCH_SIZE = [1, 2, 3]\nNUM_EPOCHS = 1000\n"
    config.write_text(original)
    status, _, err = _run(
        capsys, str(images), "--save", str(tmp_path / "out.yaml"), "--update-config", str(config)
    )
    assert status == 0, err
    assert "PATCH_SIZE:" in (tmp_path / "out.yaml").read_text()
    text = config.read_text()
    assert "IMG_PATH = 'x'\n" in text and "NUM_EPOCHS = 1000\n" in text
    assert "BATCH_SIZE = 99" not in text
    assert (tmp_path / "config.py.bak").read_text() == original
    assert "Updated" in err


def test_bad_inputs_get_one_line_and_status_2(tmp_path, capsys):
    good = _tiff_folder(tmp_path / "good", [(10, 40, 40)])
    (tmp_path / "empty").mkdir()
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "oops.tif").write_bytes(b"\0" * 10)
    mixed = _tiff_folder(tmp_path / "mixed", [(10, 40, 40)])
    np.save(mixed / "flat.npy", np.zeros((40, 40), np.uint8))
    masks = tmp_path / "masks"
    masks.mkdir()
    np.save(masks / "other.npy", np.zeros((10, 40, 40), np.uint8))
    # two masks for one image: no name matches and the counts differ, so nothing pairs
    np.save(masks / "spare.npy", np.zeros((10, 40, 40), np.uint8))
    cases = {
        "does not exist": [str(tmp_path / "missing")],
        "empty": [str(tmp_path / "empty")],
        "oops.tif": [str(garbage)],
        "flat.npy": [str(mixed)],
        "other.npy": [str(good), "--masks", str(masks)],
        "config": [str(good), "--update-config", str(tmp_path / "no_config.py")],
    }
    for needle, args in cases.items():
        status, _out, err = _run(capsys, *args)
        assert status == 2, (needle, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("napari-autoconfig: error:"), err
        assert needle in lines[0], (needle, lines[0])
        assert "Traceback" not in err


def test_failed_run_writes_nothing(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.nii.gz").write_bytes(b"garbage")
    target = tmp_path / "new_config.py"
    status, _, _ = _run(capsys, str(tmp_path / "bad"), "--save", str(target))
    assert status == 2 and not target.exists()


@pytest.mark.parametrize("args", [["--max-dims", "1", "1", "1"], ["--max-pool", "9"]])
def test_impossible_limits(tmp_path, capsys, args):
    good = _tiff_folder(tmp_path / "good", [(10, 40, 40)])
    status, _, err = _run(capsys, str(good), *args)
    assert status == 2 and "too small regarding max_pool" in err


def test_says_when_the_patch_is_larger_than_images(tmp_path, capsys):
    images = _tiff_folder(tmp_path / "small", [(10, 40, 40), (12, 40, 40), (9, 36, 40)])
    status, out, _ = _run(capsys, str(images))
    assert status == 0
    note = [line for line in out.splitlines() if line.startswith("# note:")]
    assert len(note) == 1 and "larger than 1 of 3 image(s)" in note[0] and "img_2.tif" in note[0]


def test_yaml_config_is_updated_in_place(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    original = "# my run\nDESC: 'unet'\nBATCH_SIZE: 99   # old\nNUM_EPOCHS: 1000\n"
    config.write_text(original)
    status, _out, err = _run(capsys, "--median", "40", "100", "100", "--update-config", str(config))
    assert status == 0, err
    text = config.read_text()
    assert text.startswith("# my run\nDESC: 'unet'\nBATCH_SIZE: ") and "   # old\n" in text
    assert "BATCH_SIZE: 99" not in text and "NUM_EPOCHS: 1000\n" in text
    assert (tmp_path / "config.yaml.bak").read_text() == original
    assert "Updated" in err


def test_refused_update_writes_no_save_either(tmp_path, capsys):
    chain = tmp_path / "chain.py"
    chain.write_text("A = PATCH_SIZE = [64, 64, 64]\n")
    save = tmp_path / "s.py"
    status, _, err = _run(
        capsys, "--median", "40", "100", "100", "--save", str(save), "--update-config", str(chain)
    )
    assert status == 2 and "assigned together" in err
    assert not save.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.py"]


def test_saved_config_is_readable_by_others(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        status, _, err = _run(
            capsys, "--median", "40", "100", "100", "--save", str(tmp_path / "c.py")
        )
    finally:
        os.umask(old)
    assert status == 0, err
    assert stat.S_IMODE((tmp_path / "c.py").stat().st_mode) == 0o644


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--median", "96", "256", "256", "--batch-rule", "preprocessing"], "number of images"),
        (["--median", "96", "256", "256", "--workers", "-1"], "--workers: -1 is below 1"),
        (["--median", "96", "256", "256", "--workers", "0"], "--workers: 0 is below 1"),
        (["--median", "96", "256", "256", "--max-pool", "-1"], "--max-pool: -1 is below 0"),
        (["--median", "96", "256", "256", "--max-batch", "0"], "--max-batch: 0 is below 1"),
        (["--median", "96", "256", "256", "--min-batch", "0"], "--min-batch: 0 is below 1"),
        (["--median", "96", "256", "256", "--num-samples", "0"], "--num-samples: 0 is below 1"),
        (["--median", "96", "0", "256"], "--median: 0 is below 1"),
        (["--median", "96", "256", "256", "--max-dims", "64", "x", "64"], "not a whole number"),
    ],
)
def test_bad_numbers_are_usage_errors_not_tracebacks(capsys, args, needle):
    try:
        status = main([*args, "--quiet"])
    except SystemExit as exit_:  # argparse's usage errors
        status = exit_.code
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert "Traceback" not in err
    assert needle in err.strip().splitlines()[-1]


def test_impossible_limits_fail_before_reading_files(tmp_path, capsys):
    # The folder does not exist: the limits are refused first, without fingerprinting.
    status, _, err = _run(capsys, str(tmp_path / "missing"), "--max-pool", "9")
    assert status == 2 and "too small regarding max_pool" in err and "missing" not in err


@pytest.mark.parametrize(
    ("median", "is_2d", "channels"),
    [
        (["1", "256", "256"], True, 1),
        (["3", "1", "256", "256"], True, 3),
        (["2", "40", "64", "64"], False, 2),
        (["40", "64", "64"], False, 1),
    ],
)
def test_json_dimensions_agree_with_the_config(capsys, median, is_2d, channels):
    status, out, _ = _run(capsys, "--median", *median, "--json")
    assert status == 0
    record = json.loads(out)
    assert record["is_2d"] is is_2d and record["channels"] == channels
    assert record["config"].get("IS_2D", False) is is_2d
    assert record["config"].get("NUM_CHANNELS", 1) == channels


def test_median_run_does_not_import_the_readers():
    code = (
        "import sys\n"
        "from napari_autoconfig.cli import main\n"
        "assert main(['--median', '40', '100', '100', '--quiet']) == 0\n"
        "heavy = ('SimpleITK', 'tifffile', 'isal', 'napari_autoconfig.fingerprint',\n"
        "         'napari_autoconfig.readers')\n"
        "print('LOADED', [m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout


def test_output_cut_short_by_a_pipe_is_not_an_error(tmp_path, monkeypatch):
    # like `napari-autoconfig ... | head -1`: the reader is gone before we print
    read_end, write_end = os.pipe()
    os.close(read_end)
    closed_pipe = os.fdopen(write_end, "w", buffering=1)
    monkeypatch.setattr(sys, "stdout", closed_pipe)
    target = tmp_path / "saved.py"
    status = main(["--median", "96", "512", "512", "--json", "--save", str(target)])
    assert status == 0
    assert "PATCH_SIZE = [" in target.read_text()  # the file asked for is written all the same


def test_save_onto_an_existing_file_is_refused_unless_forced(tmp_path, capsys):
    # A user's own biom3d config sits where --save points: it must never be lost.
    target = tmp_path / "mycfg.py"
    original = b"IMG_PATH = 'raw'\nNUM_EPOCHS = 1000\nBATCH_SIZE = 7\n"
    target.write_bytes(original)
    status, out, err = _run(capsys, "--median", "40", "100", "100", "--save", str(target))
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "already exists" in err and "--force" in err and "mycfg.py" in err
    assert target.read_bytes() == original
    assert not (tmp_path / "mycfg.py.bak").exists()

    status, _, err = _run(capsys, "--median", "40", "100", "100", "--save", str(target), "--force")
    assert status == 0, err
    assert (tmp_path / "mycfg.py.bak").read_bytes() == original
    new_text = target.read_text()
    assert "BATCH_SIZE = 7" not in new_text and "PATCH_SIZE = [" in new_text
    assert "mycfg.py.bak" in err


def test_json_says_how_much_gpu_memory_the_plan_needs(capsys):
    status, out, _ = _run(capsys, "--median", "52", "232", "232", "--json")
    assert status == 0
    memory = json.loads(out)["gpu_memory"]
    assert set(memory) >= {
        "precision",
        "activations_gib",
        "weights_gib",
        "overhead_gib",
        "total_gib",
    }
    assert memory["precision"] == "fp16"  # biom3d trains in mixed precision on CUDA
    parts = memory["activations_gib"] + memory["weights_gib"] + memory["overhead_gib"]
    assert parts < memory["total_gib"] <= parts + memory.get("workspace_gib", 0) + 0.01

    status, out, _ = _run(capsys, "--median", "52", "232", "232", "--json", "--precision", "fp32")
    assert status == 0
    fp32 = json.loads(out)["gpu_memory"]
    assert fp32["precision"] == "fp32"
    assert fp32["activations_gib"] > memory["activations_gib"]


def test_summary_has_a_memory_line(capsys):
    status, out, _ = _run(capsys, "--median", "52", "232", "232")
    assert status == 0
    line = next(x for x in out.splitlines() if "GPU memory of one training step" in x)
    assert line.startswith("# ") and "fp16" in line and "GiB" in line


def test_gpu_memory_chooses_the_budget_and_says_so(tmp_path, capsys):
    target = tmp_path / "gpu.py"
    status, out, _ = _run(
        capsys,
        "--median",
        "52",
        "232",
        "232",
        "--gpu-memory",
        "12",
        "--json",
        "--save",
        str(target),
    )
    assert status == 0
    record = json.loads(out)
    assert record["gpu_memory"]["total_gib"] <= 12
    assert "derived from the GPU memory of 12 GiB" in record["reasons"][-1]
    saved = target.read_text()
    assert "derived from a GPU memory of 12 GiB" in saved
    assert f"PATCH_SIZE = {record['patch']}" in saved

    # A larger GPU gets at least as many voxels per step.
    status, out, _ = _run(capsys, "--median", "52", "232", "232", "--gpu-memory", "40", "--json")
    big = json.loads(out)
    assert big["gpu_memory"]["total_gib"] <= 40
    assert big["batch"] * np.prod(big["patch"]) >= record["batch"] * np.prod(record["patch"])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--gpu-memory", "12", "--max-dims", "64", "64", "64"), "not both"),
        (("--gpu-memory", "0.5"), "No biom3d plan fits in 0.5 GiB"),
    ],
)
def test_gpu_memory_refusals_are_one_line(capsys, args, words):
    status, out, err = _run(capsys, "--median", "52", "232", "232", *args)
    assert status == 2 and out == ""
    assert words in err and len(err.strip().splitlines()) == 1


def test_more_poolings_than_biom3d_builds_still_plans(capsys):
    status, out, _ = _run(capsys, "--median", "52", "232", "232", "--max-pool", "6", "--json")
    assert status == 0
    record = json.loads(out)
    assert record["gpu_memory"] is None and max(record["pool"]) == 6


def test_objects_are_counted_and_measured_against_the_patch(tmp_path, capsys):
    from datafiles import write_cuboid_pair

    shape = (16, 40, 40)
    write_cuboid_pair(tmp_path, "a", shape, [((0, 0, 0), (12, 4, 6)), ((14, 30, 30), (16, 34, 34))])
    write_cuboid_pair(tmp_path, "b", shape, [((2, 10, 10), (6, 30, 12))])
    args = [str(tmp_path / "images"), "--masks", str(tmp_path / "masks"), "--objects"]
    # a small patch budget: the plan's patch is smaller than the 12-plane object in z
    status, out, _ = _run(
        capsys, *args, "--json", "--max-dims", "16", "16", "16", "--max-pool", "2"
    )
    assert status == 0
    record = json.loads(out)
    objects = record["objects"]
    assert objects["count"] == 3
    assert objects["max_extent"] == [12, 20, 6]  # (z, y, x), each axis on its own
    assert objects["median_extent"] == [4, 4, 4]
    assert objects["max_extent_physical"] == [24.0, 10.0, 3.0]  # spacing z 2, y/x 0.5 µm
    assert objects["unit"] == "micron"
    patch = record["patch"]
    assert objects["larger_than_patch"] == [
        axis for axis, size, p in zip("zyx", [12, 20, 6], patch) if size > p
    ]
    assert "z" in objects["larger_than_patch"]
    # the largest box in physical units: 24 x 2 x 3 µm in a.tif (b's is 8 x 10 x 1 µm)
    assert objects["largest"]["image"].endswith("a.tif")
    assert objects["largest"]["start"] == [0, 0, 0] and objects["largest"]["stop"] == [12, 4, 6]

    status, out, _ = _run(capsys, *args)
    assert status == 0
    assert "# Objects: 3 connected foreground components in 2 mask(s) (26-connectivity)\n" in out
    assert "smaller than the largest objects along" not in out  # the default patch holds them


def test_objects_need_masks(tmp_path, capsys):
    from datafiles import write_cuboid_pair

    write_cuboid_pair(tmp_path, "a", (4, 8, 8), [((0, 0, 0), (2, 2, 2))])
    status, _, err = _run(capsys, str(tmp_path / "images"), "--objects")
    assert status == 2 and "give IMAGES and --masks" in err
    status, _, err = _run(capsys, "--median", "8", "64", "64", "--objects")
    assert status == 2 and "--objects" in err


def test_per_image_prints_one_row_per_image_with_its_flags(tmp_path, capsys):
    images = _tiff_folder(tmp_path / "imgs", [(20, 64, 64), (22, 64, 64), (6, 64, 64)])
    status, out, _ = _run(capsys, str(images), "--json")
    assert status == 0
    record = json.loads(out)
    patch_z = record["patch"][0]
    assert patch_z > 6
    entries = record["images"]
    assert [e["shape_zyx"] for e in entries] == [[20, 64, 64], [22, 64, 64], [6, 64, 64]]
    assert entries[0]["spacing_zyx"] == [2.0, 0.5, 0.5] and entries[0]["unit"] == "micron"
    assert entries[0]["mask"] is None and entries[0]["foreground_percent"] is None
    too_small = f"smaller than the patch along z (6 < {patch_z}): training pads it"
    assert entries[2]["flags"] == [too_small]
    assert entries[0]["flags"] == entries[1]["flags"] == []

    status, out, _ = _run(capsys, str(images), "--per-image")
    assert status == 0
    header, *rows = out.strip().splitlines()
    assert header.split()[:2] == ["image", "flags"] and header.split()[-1] == "mask"
    assert [row.split()[0] for row in rows] == ["img_0.tif", "img_1.tif", "img_2.tif"]
    assert too_small in rows[2]
    assert "smaller than the patch" not in rows[0] + rows[1]
    assert "PATCH_SIZE" not in out  # the table instead of the config

    status, out, _ = _run(capsys, "--median", "40", "100", "100", "--json")
    assert json.loads(out)["images"] == []
