"""Hostile but fair input: every case ends in one line naming what is wrong (or a said warning),
never a traceback, a hang, a crash or a silently wrong number.

The remote cases run against servers on 127.0.0.1 that misbehave on purpose
(:class:`datafiles.serve_hostile`), the command in a fresh process where a hang or a crash must
be seen from outside.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

import biom3d_reference
import napari_autoconfig
from datafiles import serve_hostile, write_dataset, write_image, write_imagej, write_ome_zarr
from napari_autoconfig import auto_config as ac
from napari_autoconfig.cli import main
from napari_autoconfig.errors import ImageReadError
from napari_autoconfig.fingerprint import fingerprint_dataset

#: The folder holding the package under test, so a fresh process imports the same one.
PACKAGE_ROOT = str(Path(napari_autoconfig.__file__).resolve().parents[1])
#: How long a fresh process may take before the test calls it hung (never a timing assertion:
#: a run that ends is judged by its output alone).
HANG = 120


def _ctrl_c_as_from_a_terminal() -> None:
    """In the child: Ctrl-C does what it does under a terminal (Python raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env(**extra) -> dict:
    path = os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def _command(*args, **env) -> subprocess.CompletedProcess:
    """``python -m napari_autoconfig ARGS`` in a fresh process; a hang fails the test."""
    return subprocess.run(
        [sys.executable, "-m", "napari_autoconfig", *map(str, args), "--quiet"],
        capture_output=True,
        text=True,
        timeout=HANG,
        env=_env(**env),
    )


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def _strict_json(text: str) -> dict:
    """Parse as RFC 8259 JSON: NaN and Infinity are not JSON."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------- NaN and Inf voxels


def _non_finite_dataset(root: Path) -> tuple[Path, Path, dict]:
    """Three float32 volumes: one clean, one with NaN inside its mask, one with +Inf there."""
    images, masks = root / "images", root / "masks"
    arrays = {}
    rng = np.random.default_rng(3)
    for name, bad in (("clean", None), ("nan", np.nan), ("inf", np.inf)):
        image = rng.normal(100, 10, (12, 40, 40)).astype(np.float32)
        mask = np.zeros(image.shape, np.uint8)
        mask[3:9, 10:30, 10:30] = 1
        if bad is not None:
            image[4:6, 10:30, 10:30] = bad  # a third of the foreground
        write_image(images / f"{name}.tif", image)
        write_image(masks / f"{name}.tif", mask)
        arrays[name] = (image, mask)
    return images, masks, arrays


def test_nan_and_inf_voxels_are_flagged_and_left_out_with_one_warning(tmp_path, capsys):
    images, masks, arrays = _non_finite_dataset(tmp_path)
    assert main([str(images), "--masks", str(masks), "--json", "--quiet"]) == 0
    out, err = capsys.readouterr()
    record = _strict_json(out)
    # biom3d's draws, their NaN and Inf left out: the statistics the command gives
    drawn = np.concatenate([biom3d_reference.draw(i, m) for i, m in arrays.values()])
    finite = drawn[np.isfinite(drawn)]
    assert record["mean"] == pytest.approx(float(np.mean(finite)), rel=1e-6)
    assert record["perc_995"] == pytest.approx(float(np.percentile(finite, 99.5)), rel=1e-6)
    assert record["config"]["INTENSITY_MOMENTS"][0] == pytest.approx(record["mean"])
    flags = {row["image"]: " ".join(row["flags"]) for row in record["images"]}
    assert "NaN or infinite" in flags["nan.tif"] and "NaN or infinite" in flags["inf.tif"]
    assert "NaN" not in flags["clean.tif"]
    warning = _one_line(err)
    assert "'nan.tif', 'inf.tif'" in warning or "'inf.tif', 'nan.tif'" in warning
    assert "left out of the intensity statistics" in warning
    assert record["notes"] == [warning.split("warning: ", 1)[1]]


def test_the_summary_and_per_image_table_say_it_too(tmp_path, capsys):
    images, masks, _ = _non_finite_dataset(tmp_path)
    assert main([str(images), "--masks", str(masks), "--quiet"]) == 0
    out, _ = capsys.readouterr()
    config = [line.lower() for line in out.splitlines() if not line.startswith("#")]
    assert config and not any("nan" in line or "inf" in line for line in config)
    assert "# 2 image(s) hold NaN or infinite voxels" in out
    assert main([str(images), "--masks", str(masks), "--per-image", "--quiet"]) == 0
    table = capsys.readouterr().out
    assert table.count("NaN or infinite voxels") == 2


def test_the_seed_api_keeps_biom3d_numbers_on_nan_voxels(tmp_path):
    images, masks, arrays = _non_finite_dataset(tmp_path)
    expected = biom3d_reference.statistics(
        [biom3d_reference.draw(i, m) for i, m in arrays.values()]
    )
    _, _, mean, std, low, high = ac.data_fingerprint(images, masks)
    assert np.isnan(expected["mean"]) and np.isnan(mean)  # NaN wins over +Inf, as in numpy
    assert np.isnan(std) and np.isnan(expected["std"])
    assert (np.isnan(low), np.isnan(high)) == (
        np.isnan(expected["perc_005"]),
        np.isnan(expected["perc_995"]),
    )


def test_only_nan_voxels_under_the_masks_is_refused(tmp_path, capsys):
    image = np.full((6, 20, 20), np.nan, np.float32)
    mask = np.ones(image.shape, np.uint8)
    write_image(tmp_path / "images" / "a.tif", image)
    write_image(tmp_path / "masks" / "a.tif", mask)
    assert main([str(tmp_path / "images"), "--masks", str(tmp_path / "masks"), "--json"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "NaN or infinite" in line and "'a.tif'" in line


# --------------------------------------------------------------------------- seed


def test_a_negative_seed_is_numpy_value_error_in_the_seed_api(tmp_path):
    images, masks = write_dataset(tmp_path)
    with pytest.raises(ValueError) as raised:
        np.random.default_rng(-1)  # what biom3d's per-image generator raises
    with pytest.raises(ValueError) as ours:
        ac.data_fingerprint(images, masks, seed=-1)
    assert type(ours.value) is type(raised.value) and str(ours.value) == str(raised.value)
    assert "could not be read" not in str(ours.value)
    # without masks biom3d never seeds a generator: the seed is not looked at
    assert ac.data_fingerprint(images, None, seed=-1)[2:] == (0, 0, 0, 0)


def test_a_bad_seed_is_one_line_on_the_command_line(tmp_path, capsys):
    images, masks = write_dataset(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([str(images), "--masks", str(masks), "--seed", "-1"])
    assert exit_.value.code == 2
    assert "--seed" in capsys.readouterr().err


# --------------------------------------------------------------------------- the listing


def test_a_link_to_itself_and_a_dangling_link_are_named_and_passed_over(tmp_path, capsys):
    images, _ = write_dataset(tmp_path)
    (images / "self").symlink_to("self")  # ln -s self images/self
    (images / "case_09.tif").symlink_to(tmp_path / "gone.tif")  # named like an image
    assert main([str(images), "--json", "--quiet"]) == 0
    out, err = capsys.readouterr()
    record = _strict_json(out)
    assert record["num_images"] == 3
    why = {Path(u["path"]).name: u["why"] for u in record["unreadable"]}
    assert why == {
        "self": "a link that loops",
        "case_09.tif": f"a link to nothing ({str(tmp_path / 'gone.tif')!r} does not exist)",
    }
    warning = _one_line(err)
    assert "Passed over 2 entries" in warning and "case_09.tif" in warning


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_an_unreadable_subfolder_is_named(tmp_path, capsys):
    images, _ = write_dataset(tmp_path)
    locked = images / "locked"
    locked.mkdir()
    write_imagej(locked / "case_04.tif", np.zeros((4, 8, 8), np.uint16))
    locked.chmod(0)
    try:
        assert main([str(images), "--json", "--quiet"]) == 0
    finally:
        locked.chmod(0o755)
    out, err = capsys.readouterr()
    (entry,) = _strict_json(out)["unreadable"]
    assert entry["path"] == str(locked) and "permission denied" in entry["why"]
    assert "locked" in _one_line(err)


def test_the_fingerprint_carries_what_was_passed_over(tmp_path):
    images, masks = write_dataset(tmp_path)
    (masks / "loop").symlink_to("loop")
    fp = fingerprint_dataset(images, masks)
    assert [(u.path.name, u.why) for u in fp.unreadable] == [("loop", "a link that loops")]
    assert any("loop" in note for note in fp.notes())


# --------------------------------------------------------------------------- the last guard


def test_an_unforeseen_error_is_one_line_asking_for_a_report(capsys, monkeypatch):
    import napari_autoconfig.cli as cli

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "plan_training", broken)
    assert main(["--median", "40", "128", "128"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "ZeroDivisionError: a bug" in line and "report" in line
    assert "test_bad_input.py" in line  # where it was raised, for the report


def test_an_interrupt_is_one_word(capsys, monkeypatch):
    import napari_autoconfig.cli as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "plan_training", interrupted)
    assert main(["--median", "40", "128", "128"]) == 130
    assert _one_line(capsys.readouterr().err) == "napari-autoconfig: interrupted"


@pytest.mark.parametrize(
    "args",
    [["--max-pool", "20000"], ["--max-pool", "31"], ["--timeout", "0"], ["--timeout", "nan"]],
)
def test_out_of_range_options_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--median", "40", "128", "128", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and args[0] in err


# --------------------------------------------------------------------------- damaged files


def test_a_nii_gz_cut_in_half_is_refused_without_masks(tmp_path, capsys):
    path = write_image(
        tmp_path / "a.nii.gz", np.arange(8 * 64 * 64, dtype=np.uint16).reshape(8, 64, 64)
    )
    write_image(tmp_path / "b.nii.gz", np.zeros((8, 64, 64), np.uint16))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    assert main([str(tmp_path), "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "a.nii.gz" in line and "truncated" in line


def test_an_ascii_nrrd_declaring_a_gigavoxel_in_300_bytes_is_refused(tmp_path, capsys):
    header = "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 1024 1024 1024\nencoding: ascii\n\n"
    (tmp_path / "big.nrrd").write_text(header + "1 2 3 4 5 6 7 8\n" * 12)
    assert main([str(tmp_path), "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "big.nrrd" in line and "declares 1073741824 voxels" in line


@pytest.mark.parametrize(
    ("scale", "said"),
    [([None, 0, -1], "not 3 numbers"), ([1.0, 0.0, -1.0], "not positive and finite")],
)
def test_an_ome_zarr_scale_that_is_no_voxel_size_is_refused(tmp_path, capsys, scale, said):
    path = write_ome_zarr(tmp_path / "a.ome.zarr", np.zeros((4, 8, 8), np.uint8), version="0.4")
    attrs = json.loads((path / ".zattrs").read_text())
    attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] = scale
    (path / ".zattrs").write_text(json.dumps(attrs))
    assert main([str(tmp_path), "--json", "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "a.ome.zarr" in line and said in line


def test_a_damaged_mask_chunk_is_reported_under_the_mask(tmp_path):
    image = np.random.default_rng(0).integers(0, 200, (4, 32, 32)).astype(np.uint16)
    mask = (image > 100).astype(np.uint8)
    write_ome_zarr(tmp_path / "images" / "a.ome.zarr", image, chunks=(2, 32, 32))
    mask_path = write_ome_zarr(tmp_path / "masks" / "a.ome.zarr", mask, chunks=(2, 32, 32))
    (mask_path / "0" / "1.0.0").write_bytes(os.urandom(300))
    with pytest.raises(ImageReadError) as raised:
        fingerprint_dataset(tmp_path / "images", tmp_path / "masks")
    message = str(raised.value)
    assert str(mask_path) in message and str(tmp_path / "images") not in message


# --------------------------------------------------------------------------- files that shrink

_SHRINK = """
import os, sys
import napari_autoconfig.readers as readers
from napari_autoconfig import fingerprint, foreground
from napari_autoconfig.readers import _raw
from napari_autoconfig.cli import main

target, moment = os.environ["SHRINK"], os.environ["SHRINK_AT"]

def cut(path):
    if os.path.abspath(path) == target and os.path.getsize(target) > 4096:
        with open(target, "r+b") as f:
            f.truncate(4096)

mapped = _raw._flat_map

def map_then_cut(layout):  # mapped whole: then another program cuts the file
    view = mapped(layout)
    cut(layout.file)
    return view

header = fingerprint.read_header

def read_then_cut(path):  # its header read: then another program cuts the file
    found = header(path)
    cut(path)
    return found

index = foreground._build_index

def index_then_cut(mask, reuse):  # a huge mask counted: cut before its drawn words are read
    found = index(mask, reuse)
    cut(mask.path)
    return found

positions = _raw._positions

def positions_then_cut(block, base):  # a transposed file mapped, its first piece placed: cut
    found = positions(block, base)
    cut(target)
    return found

if moment == "mapped":
    _raw._flat_map = readers._flat_map = map_then_cut
elif moment == "copying":
    _raw._positions = positions_then_cut
elif moment == "indexed":
    foreground._KEEP_BITS_BYTES = 0  # as for a mask over 256M voxels: only counts are kept
    foreground._build_index = index_then_cut
else:
    fingerprint.read_header = read_then_cut
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    ("which", "loops"),
    [
        ("masks", "compiled"),
        ("images", "compiled"),
        ("huge-mask", "compiled"),  # the drawn words of a mask too big to keep, read again
        ("masks", "numpy"),
        ("images", "numpy"),
        ("channels-mask", "compiled"),  # a 2-channel ImageJ mask, stored z first: transposed
        ("channels-mask", "numpy"),
    ],
)
def test_a_file_truncated_while_it_is_read_is_one_line(tmp_path, which, loops):
    from napari_autoconfig import _compiled

    if loops == "compiled" and _compiled.loops is None:
        pytest.skip("the compiled loops were not built (no C compiler at install)")
    images, masks = tmp_path / "images", tmp_path / "masks"
    shape = (64, 256, 256)  # 4 MB of uint8 mask, 8 MB of image: many pages past the cut
    image = np.random.default_rng(1).integers(0, 999, shape).astype(np.uint16)
    mask = np.zeros(shape, np.uint8)
    mask[8:56, 32:224, 32:224] = 1
    images.mkdir()
    masks.mkdir()
    if which == "channels-mask":  # (Z, C, Y, X) on disk, read as (C, Z, Y, X)
        image, mask = image[:32].reshape(16, 2, 256, 256), mask[:32].reshape(16, 2, 256, 256)
        for folder, data in ((images, image), (masks, mask)):
            tifffile.imwrite(folder / "a.tif", data, imagej=True, metadata={"axes": "ZCYX"})
    else:
        write_imagej(images / "a.tif", image)
        write_imagej(masks / "a.tif", mask)
    # the compiled loops read memory maps: the file is cut once mapped (a read past the new end
    # is a SIGBUS); numpy's read into buffers: the file is cut after its header was read
    moment = "mapped" if loops == "compiled" else "read"
    if which == "huge-mask":
        which, moment = "masks", "indexed"
    if which == "channels-mask":
        which, moment = "masks", "copying"
    env = {"SHRINK": str(tmp_path / which / "a.tif"), "SHRINK_AT": moment}
    if loops == "numpy":
        env["NAPARI_AUTOCONFIG_NO_COMPILED"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _SHRINK, str(images), "--masks", str(masks), "--quiet"],
        capture_output=True,
        text=True,
        timeout=HANG,
        env=_env(**env),
    )
    assert done.returncode == 2, (done.returncode, done.stderr)  # -7: killed by SIGBUS
    line = _one_line(done.stderr)
    assert str(tmp_path / which / "a.tif") in line
    assert "got shorter while it was read" in line, line


# --------------------------------------------------------------------------- remote reads


@pytest.fixture
def zarr_pair(tmp_path) -> Path:
    """images/a.ome.zarr and masks/a.ome.zarr, 8 KB chunks of the mask."""
    image = np.random.default_rng(2).integers(0, 500, (8, 64, 64)).astype(np.uint16)
    write_ome_zarr(tmp_path / "images" / "a.ome.zarr", image, chunks=(1, 64, 64))
    mask = np.zeros(image.shape, np.uint8)
    mask[2:6, 16:48, 16:48] = 1
    write_ome_zarr(tmp_path / "masks" / "a.ome.zarr", mask, chunks=(2, 64, 64))
    return tmp_path


def test_the_command_line_states_the_readers_default_timeout():
    from napari_autoconfig import cli
    from napari_autoconfig.readers import _remote

    assert cli.REMOTE_TIMEOUT == _remote.DEFAULT_TIMEOUT  # --help says it without the readers


def test_a_server_that_never_answers_times_out_in_one_line():
    with serve_hostile("silent") as url:
        done = _command(f"{url}/a.ome.zarr", "--timeout", "1")
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert f"{url}/a.ome.zarr" in line and "no answer within 1 s" in line and "--timeout" in line


def test_a_listing_that_never_comes_times_out_in_one_line():
    with serve_hostile("silent") as url:
        done = _command(f"{url}/images/", "--timeout", "1")
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert f"{url}/images/" in line and "no answer within 1 s" in line


def test_a_server_answering_garbage_is_one_line_without_zarr_warnings():
    with serve_hostile("garbage") as url:
        done = _command(f"{url}/a.ome.zarr", "--timeout", "5")
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert f"{url}/a.ome.zarr" in line and "Warning" not in done.stderr


@pytest.mark.parametrize("mode", ["endless", "oversized"])
def test_a_chunk_larger_than_declared_is_stopped(zarr_pair, mode):
    most = 512 * 2**20
    with serve_hostile(mode, zarr_pair, most=most) as url:
        done = _command(f"{url}/images/a.ome.zarr", "--masks", f"{url}/masks/a.ome.zarr")
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert "/masks/a.ome.zarr" in line
    chunk = 2 * 64 * 64  # bytes of one declared mask chunk
    assert f"than the {chunk + chunk // 8 + 2**16} bytes one chunk" in line


def test_the_endless_body_is_cut_off_early(zarr_pair):
    most = 512 * 2**20
    server = serve_hostile("endless", zarr_pair, most=most)
    with server as url:
        done = _command(f"{url}/images/a.ome.zarr", "--masks", f"{url}/masks/a.ome.zarr")
    assert done.returncode == 2
    assert server.sent < most // 4  # the client hung up long before the server's own limit


def test_ctrl_c_during_a_stalled_read_exits_at_once():
    server = serve_hostile("silent")
    with server as url:
        process = subprocess.Popen(
            [sys.executable, "-m", "napari_autoconfig", f"{url}/a.ome.zarr", "--quiet"],
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            # a suite started in the background hands its children an ignored Ctrl-C
            preexec_fn=_ctrl_c_as_from_a_terminal,
        )
        try:
            for _ in range(HANG * 10):  # until the read is stalled on the server
                if server.requests or process.poll() is not None:
                    break
                time.sleep(0.1)
            assert process.poll() is None and server.requests
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=HANG)  # the default timeout is 30 s: not it
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 130
    assert _one_line(err) == "napari-autoconfig: interrupted"


def test_a_dangling_label_in_an_nnunet_dataset_is_named(tmp_path, capsys):
    from datafiles import write_nnunet

    rng = np.random.default_rng(0)
    cases = {
        f"cell_{i:03d}": (
            [rng.integers(0, 99, (4, 16, 16)).astype(np.uint16)],
            np.ones((4, 16, 16), np.uint8),
        )
        for i in range(2)
    }
    root = write_nnunet(tmp_path / "Dataset001_Cells", cases)
    label = sorted((root / "labelsTr").iterdir())[0]
    target = tmp_path / "elsewhere.nii.gz"
    label.rename(target)
    label.symlink_to(target)
    target.unlink()  # the label is now a link to nothing
    assert main([str(root), "--json", "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert label.name.split(".")[0] in line and "a link to nothing" in line


def test_a_nii_gz_of_several_gzip_members_is_read_whole(tmp_path):
    # bgzip-style files carry only their last member's size in the trailer: no false refusal
    import gzip

    volume = np.arange(6 * 32 * 32, dtype=np.uint16).reshape(6, 32, 32)
    plain = write_image(tmp_path / "plain" / "a.nii", volume)
    raw = plain.read_bytes()
    half = len(raw) // 2
    (tmp_path / "members").mkdir()
    (tmp_path / "members" / "a.nii.gz").write_bytes(
        gzip.compress(raw[:half]) + gzip.compress(raw[half:])
    )
    fp = fingerprint_dataset(tmp_path / "members")
    assert fp.median_size == (6, 32, 32)
    from napari_autoconfig.readers import read_array, read_header

    assert np.array_equal(read_array(read_header(tmp_path / "members" / "a.nii.gz")), volume)


def test_a_gzip_nrrd_cut_in_half_is_refused_without_masks(tmp_path, capsys):
    volume = np.random.default_rng(4).integers(0, 999, (8, 64, 64)).astype(np.uint16)
    path = write_image(tmp_path / "a.nrrd", volume)
    from datafiles import write_itk

    write_itk(path, volume, (0.5, 0.5, 2.0), compress=True)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    assert main([str(tmp_path), "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "a.nrrd" in line and "truncated" in line


def test_the_pool_hands_back_results_and_errors_and_never_holds_the_exit():
    import threading

    from napari_autoconfig.fingerprint import DaemonThreadPool

    pool = DaemonThreadPool(2, thread_name_prefix="probe")
    assert list(pool.map(lambda v: v * v, range(5))) == [0, 1, 4, 9, 16]
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(timeout=HANG)
    release = threading.Event()
    stuck = [pool.submit(release.wait, HANG) for _ in range(2)]  # both threads held, as by a server
    for _ in range(HANG * 100):
        if all(f.running() for f in stuck):
            break
        time.sleep(0.01)
    queued = pool.submit(lambda: "never run")
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("probe"))
    release.set()
    assert all(f.result(timeout=HANG) for f in stuck)
    with pytest.raises(RuntimeError):
        pool.submit(print)
