"""What happens to a user's config files: links, YAML anchors, backups, locks, pipes, owners,
interrupted and simultaneous runs. Every story goes through the command line (``cli.main`` or the
installed module in a child process) on files the test writes."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from napari_autoconfig import atomic
from napari_autoconfig.cli import main
from napari_autoconfig.config_update import update_config
from napari_autoconfig.errors import ConfigError

MEDIAN = ("--median", "40", "128", "128")
USER_CONFIG = b"# my own biom3d config\nNUM_EPOCHS = 1000\nBATCH_SIZE = 7\n"


def _run(capsys, *args):
    status = main([*MEDIAN, *args, "--quiet"])
    out, err = capsys.readouterr()
    return status, out, err


def _child(*args, **kwargs) -> subprocess.CompletedProcess:
    """The command in a child process (a hang there fails the test instead of the session)."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(
        [sys.executable, "-m", "napari_autoconfig", *MEDIAN, "--quiet", *args],
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def _load(path: Path) -> dict:
    return YAML(typ="safe", pure=True).load(path.read_text())


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".lock")))


# --------------------------------------------------------------------------- YAML anchors


def test_aliased_keys_get_their_own_values_and_the_anchor_stays(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(
        "base: &size [64, 64, 64]\nPATCH_SIZE: *size\nAUG_PATCH_SIZE: *size\n"
        "TRAIN_DATASET:\n  patch: *size\n"
    )
    status, _, err = _run(capsys, "--update-config", str(config))
    assert status == 0, err
    text = config.read_text()
    assert text.startswith("base: &size [64, 64, 64]\n")  # the anchor's own text is untouched
    loaded = _load(config)
    assert loaded["base"] == [64, 64, 64] and loaded["TRAIN_DATASET"]["patch"] == [64, 64, 64]
    assert loaded["PATCH_SIZE"] == [40, 128, 128]
    assert loaded["AUG_PATCH_SIZE"] == [40, 181, 181]
    assert "PATCH_SIZE: [40, 128, 128]\n" in text


def test_an_aliased_key_already_right_keeps_its_alias(tmp_path):
    config = tmp_path / "c.yaml"
    original = "base: &size [40, 128, 128]\nPATCH_SIZE: *size\n"
    config.write_text(original)
    result = update_config(config, {"PATCH_SIZE": [40, 128, 128]})
    assert result.changed == () and config.read_text() == original


def test_a_key_carrying_an_anchor_says_which_values_follow_it(tmp_path, capsys):
    # PyYAML writes a list shared by two keys as an anchor and an alias (&id001 / *id001)
    config = tmp_path / "config.yaml"
    config.write_text(
        "PATCH_SIZE: &id001\n- 64\n- 64\n- 64\nAUG_PATCH_SIZE: *id001\n"
        "TRAIN_DATASET:\n  kwargs:\n    patch_size: *id001\n"
    )
    status, _, err = _run(capsys, "--update-config", str(config))
    assert status == 0, err
    loaded = _load(config)
    assert loaded["PATCH_SIZE"] == [40, 128, 128]
    assert loaded["AUG_PATCH_SIZE"] == [40, 181, 181]  # an owned alias got its own value
    # the anchor says "the same value": the training dataset's patch follows, and the user is told
    assert loaded["TRAIN_DATASET"]["kwargs"]["patch_size"] == [40, 128, 128]
    assert "&id001" in config.read_text()
    assert "TRAIN_DATASET.kwargs.patch_size" in err and "&id001" in err


def test_an_update_that_would_remove_an_anchor_in_use_is_refused(tmp_path):
    config = tmp_path / "c.yaml"
    original = "PATCH_SIZE: [&z 64, 64]\nOTHER: *z\n"  # two numbers: the list is written anew
    config.write_text(original)
    with pytest.raises(ConfigError, match=r"PATCH_SIZE .*&z.*OTHER"):
        update_config(config, {"PATCH_SIZE": [40, 128, 128]})
    assert config.read_text() == original
    assert not (tmp_path / "c.yaml.bak").exists()


def test_a_yaml_config_nested_too_deeply_is_one_line(tmp_path, capsys):
    config = tmp_path / "deep.yaml"
    # as many levels as Python's recursion limit: past what any reader recursing once a level
    # can follow (3000 took twice as long to say the same)
    depth = sys.getrecursionlimit()
    original = "PATCH_SIZE: " + "[" * depth + "1" + "]" * depth + "\n"
    config.write_text(original)
    status, out, err = _run(capsys, "--update-config", str(config))
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "nested too deeply" in err
    assert config.read_text() == original


# --------------------------------------------------------------------------- links


def test_an_update_through_a_link_writes_the_linked_file_and_keeps_the_link(tmp_path, capsys):
    real = tmp_path / "configs" / "unet.py"
    real.parent.mkdir()
    real.write_bytes(USER_CONFIG)
    link = tmp_path / "current.py"
    link.symlink_to(real)
    status, _, err = _run(capsys, "--update-config", str(link))
    assert status == 0, err
    assert link.is_symlink() and link.resolve() == real
    assert "PATCH_SIZE = [40, 128, 128]" in real.read_text()  # what a training job reads
    assert (real.parent / "unet.py.bak").read_bytes() == USER_CONFIG  # beside the real file
    assert not (tmp_path / "current.py.bak").exists()


def test_a_forced_save_through_a_link_replaces_the_linked_file(tmp_path, capsys):
    real = tmp_path / "real.py"
    real.write_bytes(USER_CONFIG)
    link = tmp_path / "link.py"
    link.symlink_to(real.name)  # a relative link
    status, _, err = _run(capsys, "--save", str(link), "--force")
    assert status == 0, err
    assert link.is_symlink() and "PATCH_SIZE = [40, 128, 128]" in real.read_text()
    assert (tmp_path / "real.py.bak").read_bytes() == USER_CONFIG


def test_a_link_to_itself_is_one_line(tmp_path, capsys):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop.name)
    for args in (("--update-config", str(loop)), ("--save", str(loop), "--force")):
        status, _, err = _run(capsys, *args)
        assert status == 2 and len(err.strip().splitlines()) == 1, err
        assert "leads back to itself" in err


# --------------------------------------------------------------------------- failed runs


def test_the_same_file_saved_and_updated_is_refused_before_anything_is_written(tmp_path, capsys):
    config = tmp_path / "F.py"
    config.write_bytes(USER_CONFIG)
    link = tmp_path / "also_F.py"
    link.symlink_to(config)
    for other in (config, link):
        status, _, err = _run(
            capsys, "--save", str(config), "--force", "--update-config", str(other)
        )
        assert status == 2 and "same file" in err and len(err.strip().splitlines()) == 1
        assert config.read_bytes() == USER_CONFIG
        assert not (tmp_path / "F.py.bak").exists()


def test_a_refused_update_writes_no_save_even_when_the_config_changes_late(
    tmp_path, capsys, monkeypatch
):
    # The update is prepared, then someone edits the config before the files are written: the
    # update is refused, and the --save that came with it must not have been written either.
    from napari_autoconfig import cli

    config = tmp_path / "config.py"
    config.write_bytes(USER_CONFIG)
    save = tmp_path / "new.py"
    prepare = cli.prepare_update

    def prepare_then_edit(path, values):
        prepared = prepare(path, values)
        config.write_bytes(USER_CONFIG + b"NUM_WORKERS = 4\n")
        return prepared

    monkeypatch.setattr(cli, "prepare_update", prepare_then_edit)
    status, _, err = _run(capsys, "--save", str(save), "--update-config", str(config))
    assert status == 2 and "changed on disk" in err
    assert not save.exists()
    assert not (tmp_path / "config.py.bak").exists()


# --------------------------------------------------------------------------- backups


def test_two_forced_saves_in_a_row_keep_the_users_original(tmp_path, capsys):
    target = tmp_path / "mycfg.py"
    target.write_bytes(USER_CONFIG)
    status, _, first = _run(capsys, "--save", str(target), "--force")
    assert status == 0 and "mycfg.py.bak" in first
    generated = target.read_bytes()
    status, _, second = _run(capsys, "--save", str(target), "--force", "--max-batch", "3")
    assert status == 0, second
    assert (tmp_path / "mycfg.py.bak").read_bytes() == USER_CONFIG  # never overwritten
    assert (tmp_path / "mycfg.py.bak.1").read_bytes() == generated
    assert "mycfg.py.bak.1" in second


def test_an_update_never_overwrites_an_older_backup(tmp_path, capsys):
    config = tmp_path / "config.py"
    config.write_bytes(USER_CONFIG)
    (tmp_path / "config.py.bak").write_bytes(b"# the user's own older backup\n")
    status, _, err = _run(capsys, "--update-config", str(config))
    assert status == 0, err
    assert (tmp_path / "config.py.bak").read_bytes() == b"# the user's own older backup\n"
    assert (tmp_path / "config.py.bak.1").read_bytes() == USER_CONFIG
    assert "config.py.bak.1" in err


# --------------------------------------------------------------------------- locks


@pytest.fixture
def other_process():
    """A live process that is not this one (it holds the lock in the story)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield child.pid
    child.kill()
    child.wait()


def test_a_config_locked_by_another_run_is_refused_in_one_line(
    tmp_path, capsys, monkeypatch, other_process
):
    monkeypatch.setattr(atomic, "LOCK_WAIT_S", 0.0)
    config = tmp_path / "config.py"
    config.write_bytes(USER_CONFIG)
    lock = atomic.lock_path(config)
    lock.write_text(f"{other_process} {atomic._HOST}\n")
    status, _, err = _run(capsys, "--update-config", str(config))
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert f"process {other_process}" in err and lock.name in err
    assert config.read_bytes() == USER_CONFIG and lock.exists()


def test_a_lock_left_by_a_killed_run_is_removed(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    config = tmp_path / "config.py"
    config.write_bytes(USER_CONFIG)
    atomic.lock_path(config).write_text(f"{dead.pid} {atomic._HOST}\n")
    status, _, err = _run(capsys, "--update-config", str(config))
    assert status == 0, err
    assert "PATCH_SIZE" in config.read_text() and _leftovers(tmp_path) == []


def test_four_simultaneous_saves_of_one_new_name_one_wins(tmp_path, capsys, monkeypatch):
    # Each run has written its bytes (flushed to disk) before any run gives them the name: the
    # moment the existence checks and the writes are furthest apart.
    runs = 4
    everyone_wrote = threading.Barrier(runs, timeout=60)
    seen = threading.local()
    fsync = os.fsync

    def fsync_then_wait(fd):
        fsync(fd)
        if not getattr(seen, "waited", False):
            seen.waited = True
            everyone_wrote.wait()

    monkeypatch.setattr(os, "fsync", fsync_then_wait)
    target = tmp_path / "new.py"
    statuses = []

    def save():
        statuses.append(main([*MEDIAN, "--quiet", "--save", str(target)]))

    threads = [threading.Thread(target=save) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _, err = capsys.readouterr()
    assert sorted(statuses) == [0, 2, 2, 2], err
    assert err.count("Saved the config") == 1 and err.count("left untouched") == 3
    assert "PATCH_SIZE = [40, 128, 128]" in target.read_text()
    assert not (tmp_path / "new.py.bak").exists() and _leftovers(tmp_path) == []


def test_four_forced_saves_at_once_all_succeed_and_the_original_is_kept(tmp_path):
    target = tmp_path / "mycfg.py"
    target.write_bytes(USER_CONFIG)
    command = [sys.executable, "-m", "napari_autoconfig", *MEDIAN, "--quiet"]
    runs = [
        subprocess.Popen(
            [*command, "--max-batch", str(batch), "--save", str(target), "--force"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for batch in range(2, 6)
    ]
    errors = [run.communicate(timeout=120)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], errors
    assert (tmp_path / "mycfg.py.bak").read_bytes() == USER_CONFIG  # the one copy of the user's
    backups = sorted(p.name for p in tmp_path.glob("mycfg.py.bak*"))
    assert backups == ["mycfg.py.bak", "mycfg.py.bak.1", "mycfg.py.bak.2", "mycfg.py.bak.3"]
    # the runs took turns: each backup holds what the run before it wrote, never a mix
    contents = {(tmp_path / name).read_bytes() for name in backups[1:]} | {target.read_bytes()}
    assert len(contents) == 4 and all(b"BATCH_SIZE = " in c for c in contents)
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- odd files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
@pytest.mark.parametrize("args", [("--update-config",), ("--force", "--save")])
def test_a_named_pipe_given_as_the_config_is_one_line_not_a_hang(tmp_path, args):
    pipe = tmp_path / "config.yaml"
    os.mkfifo(pipe)
    result = _child(*args, str(pipe))
    assert result.returncode == 2, result.stderr
    assert "named pipe" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert stat.S_ISFIFO(pipe.lstat().st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="a device file")
def test_a_link_to_a_device_is_refused(tmp_path, capsys):
    link = tmp_path / "config.py"
    link.symlink_to("/dev/null")
    status, _, err = _run(capsys, "--update-config", str(link))
    assert status == 2 and "a device" in err
    assert link.is_symlink()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
@pytest.mark.parametrize("args", [("--update-config",), ("--force", "--save")])
def test_root_keeps_another_users_config_theirs(tmp_path, capsys, args):
    config = tmp_path / "config.py"
    config.write_bytes(USER_CONFIG)
    os.chown(config, 4321, 8765)
    config.chmod(0o640)
    status, _, err = _run(capsys, *args, str(config))
    assert status == 0, err
    for path in (config, tmp_path / "config.py.bak"):
        info = path.stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4321, 8765, 0o640)


# --------------------------------------------------------------------------- interrupted runs


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kills a child process")
def test_a_run_killed_while_writing_leaves_a_file_the_next_run_removes(tmp_path):
    config = tmp_path / "cfg.py"
    config.write_bytes(USER_CONFIG)
    killed_mid_write = (
        "import os, signal, sys\n"
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
        "from napari_autoconfig.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", killed_mid_write, *MEDIAN, "--update-config", str(config)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL
    assert config.read_bytes() == USER_CONFIG
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert left  # the kill left its temporary file
    again = _child("--update-config", str(config))
    assert again.returncode == 0, again.stderr
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert "PATCH_SIZE = [40, 128, 128]" in config.read_text()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="a full device")
def test_a_full_output_device_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        result = _child("--save", str(tmp_path / "c.py"), stdout=full, stderr=subprocess.PIPE)
    stderr = result.stderr
    assert result.returncode == 2
    lines = stderr.strip().splitlines()
    assert re.search(r"error: Cannot write the output: No space left on device", stderr)
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert lines[0].startswith("Saved the config") and len(lines) == 2  # the file was written
