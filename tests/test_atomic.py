"""Atomic writes keep permissions sensible and leave nothing behind on failure."""

from __future__ import annotations

import os
import stat

import pytest

from napari_autoconfig.atomic import write_atomic


def test_new_file_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "new.py", b"BATCH_SIZE = 2\n")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"BATCH_SIZE = 2\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_replacing_keeps_the_mode_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "config.py"
    path.write_text("old")
    path.chmod(0o640)
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["config.py"]


def test_failure_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "config.py"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, b"new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.py"]


def test_a_link_is_written_through_and_stays_a_link(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "settings.json"
    link.symlink_to(real.name)
    assert write_atomic(link, b"new") == real
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
