"""Writing files so that nothing the user had is lost and readers never see half a file.

Everything napari-autoconfig writes goes through here: configs (a biom3d training must never start
from half a file, and a replaced config is always kept), the widget's settings and tables.

The rules, in one place:

- **Atomic.** New bytes go to a temporary file in the target's folder, are flushed to disk, then
  take the target's name with one rename (:func:`write_atomic`), or with one hard link when the
  name must not exist yet (a new config: of several runs saving the same new name at once, exactly
  one wins; :func:`apply_writes`).
- **Links are followed, not replaced.** A target reached through a symbolic link is resolved once;
  the file it points to is replaced (its backup beside it) and the link stays a link.
- **Only regular files** are read or replaced: a named pipe, a device or a folder is refused with
  one line, and is never opened (opening a pipe for reading would wait for a writer forever).
- **The owner, group and mode** of a replaced file stay (when run as root, the temporary file is
  given the old file's owner before it takes its name).
- **Backups are numbered, never overwritten**: ``F.bak``, then ``F.bak.1``, ``F.bak.2``...; a
  backup whose bytes equal the newest one's is not written twice.
- **One writer at a time per file**: a lock file ``.F.autoconfig.lock`` beside the target (created
  exclusively, holding the writer's process id and host) serialises writers; one that cannot get
  it within :data:`LOCK_WAIT_S` is refused with one line. The lock is removed when the write ends.
- **A folder is whole or absent** (:func:`write_folder_once`): it is filled under a temporary name
  beside it and renamed into place; of several processes making it at once, the first rename wins
  and the others use the winner's folder.
- **Temporary files say who made them**: ``.F.autoconfig-<pid>-<host>-<random>.tmp``. A run killed
  mid-write leaves one (or a temporary folder); the next write in that folder removes those whose
  process is gone (same host) or that are older than :data:`STALE_AFTER_S`. Stale lock files are
  removed the same way.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

#: How long a writer waits for another writer's lock on the same file before it gives up.
LOCK_WAIT_S = 10.0
#: A temporary or lock file older than this is stale whoever made it (a config write takes
#: milliseconds; this also covers hosts whose processes cannot be checked, and Windows).
STALE_AFTER_S = 600.0

_MARK = ".autoconfig-"
_LOCK_SUFFIX = ".autoconfig.lock"
_TEMP = re.compile(r"^\..+\.autoconfig-(?P<pid>\d+)-(?P<host>[0-9a-f]{6})-[0-9a-f]+\.tmp$")
_POLL_S = 0.02


def _host() -> str:
    """A short tag of this machine, so that a process id is only judged on its own host."""
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


_HOST = _host()


# --------------------------------------------------------------------------- what a path is


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def resolve_target(path: str | Path) -> Path:
    """The file a write to ``path`` goes to: ``~`` expanded, symbolic links followed (once).

    Returns
    -------
    Path
        The absolute path of the file itself (which may not exist yet).

    Raises
    ------
    ConfigError
        A loop of links, or a path that exists but is not a regular file (a named pipe, a
        device, a folder): such a path is never opened.
    """
    path = Path(path).expanduser()
    target = Path(os.path.realpath(path))
    status = _stat_or_none(target, path)
    if status is not None and not stat.S_ISREG(status.st_mode):
        raise ConfigError(
            f"{str(path)!r} is {_kind(status.st_mode)}, not a config file; nothing was read or "
            "written. Choose a regular .py or .yaml file."
        )
    return target


def _stat_or_none(target: Path, shown: Path) -> os.stat_result | None:
    try:
        return target.stat()
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ConfigError(
                f"{str(shown)!r} is a symbolic link that leads back to itself; point it at a "
                "config file or choose another name."
            ) from error
        raise ConfigError(f"Cannot use {str(shown)!r}: {error.strerror or error}.") from error


def read_regular(path: str | Path) -> bytes:
    """The bytes of a regular file; anything else is refused without waiting on it.

    The file is opened without blocking (a named pipe with no writer would otherwise block the
    open forever) and checked on the open descriptor, so a file swapped for a pipe between a
    check and the read is refused too.

    Raises
    ------
    ConfigError
        Not a regular file.
    OSError
        The file cannot be opened or read.
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(
                f"{str(path)!r} is {_kind(mode)}, not a config file; nothing was read or "
                "written. Choose a regular .py or .yaml file."
            )
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- stale files


def _pid_alive(pid: int) -> bool | None:
    """Whether a process of this host runs with ``pid``; None when that cannot be told."""
    if os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return None
    return True


def _stale(pid: int, host: str, path: Path) -> bool:
    if host == _HOST and pid != os.getpid() and _pid_alive(pid) is False:
        return True
    try:
        return time.time() - path.lstat().st_mtime > STALE_AFTER_S
    except OSError:
        return False


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files an interrupted write left in ``folder``; return them.

    Only napari-autoconfig's own names (``.NAME.autoconfig-<pid>-<host>-<random>.tmp``) are
    considered, and only those whose process is gone (checked on the host that made them) or
    that are older than :data:`STALE_AFTER_S`.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None:
            continue
        path = Path(entry.path)
        if _stale(int(match["pid"]), match["host"], path):
            if entry.is_dir(follow_symlinks=False):  # a folder a killed run was filling
                shutil.rmtree(path, ignore_errors=True)
                if not path.exists():
                    removed.append(path)
                continue
            with suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


# --------------------------------------------------------------------------- locks

_held: dict[Path, tuple[int, int]] = {}  # lock path -> (thread id, depth): re-entrant per thread
_held_guard = threading.Lock()


def lock_path(target: str | Path) -> Path:
    """``.NAME.autoconfig.lock`` beside ``target``: the lock of writers to ``target``."""
    target = Path(target)
    return target.with_name(f".{target.name}{_LOCK_SUFFIX}")


def _lock_owner(lock: Path) -> tuple[int, str] | None:
    try:
        text = lock.read_text("ascii", "replace").split()
        return int(text[0]), text[1]
    except (OSError, ValueError, IndexError):
        return None


def _try_lock(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, f"{os.getpid()} {_HOST}\n".encode("ascii"))
    finally:
        os.close(fd)
    return True


def _remove_stale_lock(lock: Path, holder: tuple[int, str]) -> None:
    """Remove a stale lock, unless it was replaced meanwhile by a live writer's."""
    try:
        before = lock.lstat()
        if _lock_owner(lock) == holder and lock.lstat().st_ino == before.st_ino:
            lock.unlink()
    except FileNotFoundError:
        pass


@contextmanager
def target_lock(target: str | Path) -> Iterator[None]:
    """Hold the lock of writers to ``target`` (re-entrant in one thread).

    Waits up to :data:`LOCK_WAIT_S` for another writer, removing a stale lock (its process gone,
    or older than :data:`STALE_AFTER_S`) on the way.

    Raises
    ------
    ConfigError
        Another writer kept the lock for the whole wait.
    """
    lock = lock_path(target)
    me = threading.get_ident()
    with _held_guard:
        owner = _held.get(lock)
        if owner is not None and owner[0] == me:
            _held[lock] = (me, owner[1] + 1)
            reentered = True
        else:
            reentered = False
    if not reentered:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            with _held_guard:  # threads of this process take turns here, not on the file alone
                if lock not in _held and _try_lock(lock):
                    _held[lock] = (me, 1)
                    break
            holder = None if lock in _held else _lock_owner(lock)
            if holder is not None and _stale(holder[0], holder[1], lock):
                _remove_stale_lock(lock, holder)
                continue
            if time.monotonic() >= deadline:
                who = f"process {holder[0]}" if holder is not None else "another program"
                raise ConfigError(
                    f"{str(target)!r} is being written by {who} (lock file {str(lock)!r}); it "
                    "was left untouched. Try again when that run ends, or delete the lock file "
                    "if no run is writing it."
                )
            time.sleep(_POLL_S)
    try:
        yield
    finally:
        with _held_guard:
            owner_thread, depth = _held[lock]
            if depth > 1:
                _held[lock] = (owner_thread, depth - 1)
            else:
                del _held[lock]
                with suppress(FileNotFoundError):
                    lock.unlink()


@contextmanager
def target_locks(targets: Sequence[Path]) -> Iterator[None]:
    """Hold the locks of several targets, taken in one order (no two runs wait on each other)."""
    unique = sorted({Path(t) for t in targets}, key=str)
    if not unique:
        yield
        return
    with target_lock(unique[0]), target_locks(unique[1:]):
        yield


# --------------------------------------------------------------------------- temporaries


def _default_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: 0o666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_name(target: Path) -> Path:
    return target.with_name(
        f".{target.name}{_MARK}{os.getpid()}-{_HOST}-{secrets.token_hex(4)}.tmp"
    )


def _stage(target: Path, data: bytes) -> Path:
    """Write ``data`` to a new temporary file beside ``target``, flushed to disk; return it."""
    remove_stale_temporaries(target.parent)
    tmp = _temp_name(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _take_over(tmp: Path, like: os.stat_result | None, mode: int | None) -> None:
    """Give ``tmp`` the owner, group and mode of the file it replaces (``like``).

    The owner first: chown clears set-id bits, and only root may give a file away, so a user's
    own update keeps at least the group where the user belongs to it.
    """
    if like is not None and hasattr(os, "chown"):
        mine = tmp.stat()
        if (mine.st_uid, mine.st_gid) != (like.st_uid, like.st_gid):
            try:
                os.chown(tmp, like.st_uid, like.st_gid)
            except PermissionError:
                with suppress(PermissionError):
                    os.chown(tmp, -1, like.st_gid)
    if mode is None:
        mode = stat.S_IMODE(like.st_mode) if like is not None else _default_mode()
    os.chmod(tmp, mode)


def _sync_folder(folder: Path) -> None:
    """Make a rename or link in ``folder`` durable, where the platform allows."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _link_into_place(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` only if that name is free (FileExistsError otherwise).

    A hard link fails when the name exists, so of several writers exactly one wins; where the file
    system has no hard links, an exclusive create and copy does the same (not atomic, but the
    name was free and the bytes are already safe in ``tmp``).
    """
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:
        data = tmp.read_bytes()
        mode = stat.S_IMODE(tmp.stat().st_mode)
        fd = os.open(
            target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode
        )
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A symbolic link is followed (the file it points to is replaced, the link stays); the replaced
    file's owner, group and mode stay.

    Parameters
    ----------
    path : str or Path
        The file to create or replace.
    data : bytes
        Its new content.
    mode : int, optional
        Permission bits; default: those of the file being replaced, or for a new file what the
        umask gives (a private 0o600 would be unreadable by a cluster job running as another
        user).

    Returns
    -------
    Path
        The file written (the link's target when ``path`` is a link).
    """
    target = resolve_target(path)
    tmp = _stage(target, data)
    try:
        try:
            like = target.stat()
        except FileNotFoundError:
            like = None
        _take_over(tmp, like, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)
    return target


# --------------------------------------------------------------------------- folders

#: A folder being written (an nnU-Net export): ``.NAME.autoconfig-<pid>-<host>-<random>.staging``.
#: The leading dot keeps it out of nnU-Net's dataset search (``DatasetNNN*`` folders).
_STAGING = re.compile(
    r"^\.(?P<name>.+)\.autoconfig-(?P<pid>\d+)-(?P<host>[0-9a-f]{6})-[0-9a-f]+\.staging$"
)
#: A staging folder from another host is taken for abandoned after this long (an export of a
#: large dataset may take hours, so much longer than a file's :data:`STALE_AFTER_S`).
STALE_FOLDER_AFTER_S = 2 * 24 * 3600.0


def _stale_folder(pid: int, host: str, path: Path) -> bool:
    if host == _HOST and pid != os.getpid():
        alive = _pid_alive(pid)
        if alive is not None:
            return not alive
    try:
        return time.time() - path.lstat().st_mtime > STALE_FOLDER_AFTER_S
    except OSError:
        return False


def remove_stale_staging(folder: str | Path) -> list[Path]:
    """Remove the staging folders that killed runs left in ``folder``; return them.

    Only this package's own names are considered (``.NAME.autoconfig-<pid>-<host>-<random>
    .staging``), and only those whose process is gone (on this host) or that are older than
    :data:`STALE_FOLDER_AFTER_S`.
    """
    import shutil

    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _STAGING.match(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if _stale_folder(int(match["pid"]), match["host"], path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def staging_folder(target: str | Path) -> Path:
    """A new, empty folder beside ``target`` to write a whole folder into before it takes
    ``target``'s name with :func:`publish_folder` (stale ones from killed runs removed first).

    Files inside it are written directly: nobody reads the folder under that name, and it
    appears under ``target``'s name in one rename, complete, or not at all.
    """
    target = Path(target)
    remove_stale_staging(target.parent)
    staged = target.with_name(
        f".{target.name}{_MARK}{os.getpid()}-{_HOST}-{secrets.token_hex(4)}.staging"
    )
    staged.mkdir(mode=0o777)
    return staged


def publish_folder(staged: str | Path, target: str | Path) -> Path:
    """Give the folder ``staged`` the name ``target`` in one rename; ``target`` must not exist
    or be an empty folder.

    Raises
    ------
    ConfigError
        When ``target`` appeared meanwhile with something in it (``staged`` is left as it is
        for the caller to remove).
    """
    staged, target = Path(staged), Path(target)
    try:
        os.rename(staged, target)
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            raise ConfigError(
                f"{str(target)!r} appeared while the export was written and is not empty: it "
                "was left untouched. Choose another folder, or empty that one."
            ) from error
        raise
    _sync_folder(target.parent)
    return target


# --------------------------------------------------------------------------- backups

_BACKUP_NUMBER = r"\.bak(?:\.(\d+))?$"


def first_backup(target: str | Path) -> Path:
    """``NAME.bak`` beside ``target``: the name its first backup gets."""
    target = Path(target)
    return target.with_name(target.name + ".bak")


def _backups(target: Path) -> list[tuple[int, Path]]:
    """The existing backups of ``target``, oldest first: (0, NAME.bak), (1, NAME.bak.1)..."""
    pattern = re.compile("^" + re.escape(target.name) + _BACKUP_NUMBER)
    found = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []
    for entry in entries:
        match = pattern.match(entry.name)
        if match:
            found.append((int(match[1]) if match[1] else 0, Path(entry.path)))
    return sorted(found)


def next_backup(target: str | Path) -> Path:
    """The name the next backup of ``target`` would get: ``NAME.bak``, else ``NAME.bak.<n>``."""
    target = Path(target)
    existing = _backups(target)
    number = existing[-1][0] + 1 if existing else 0
    return _backup_name(target, number)


def _backup_name(target: Path, number: int) -> Path:
    return first_backup(target) if number == 0 else target.with_name(f"{target.name}.bak.{number}")


def _keep_backup(target: Path, data: bytes, like: os.stat_result) -> Path:
    """Keep ``data`` (the bytes ``target`` holds now) in a new numbered backup; return it.

    The newest backup is reused when it holds the same bytes; an existing backup is never
    replaced.
    """
    existing = _backups(target)
    if existing:
        newest = existing[-1][1]
        with suppress(OSError, ConfigError):
            if newest.stat().st_size == len(data) and read_regular(newest) == data:
                return newest
    number = existing[-1][0] + 1 if existing else 0
    tmp = _stage(target, data)
    try:
        _take_over(tmp, like, None)
        while True:
            name = _backup_name(target, number)
            try:
                _link_into_place(tmp, name)
                return name
            except FileExistsError:
                number += 1
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- several writes

#: ``expect`` of a :class:`PendingWrite` whose target must not exist yet.
ABSENT = "absent"
#: ``expect`` of a :class:`PendingWrite` whose target may hold anything (it is kept as a backup).
ANYTHING = "anything"


@dataclass(frozen=True)
class PendingWrite:
    """One file to write with :func:`apply_writes`.

    Attributes
    ----------
    path : Path
        The file as the user named it (a link is followed to its target).
    data : bytes
        The new content.
    expect : bytes or str
        What the file must hold when it is written: :data:`ABSENT` (a new file; refused if the
        name exists), :data:`ANYTHING` (replaced whatever it holds), or the exact bytes it held
        when the new content was computed (refused if it changed since).
    backup : bool
        Keep the bytes replaced in a numbered backup beside the target.
    exists_hint : str
        The end of the sentence that refuses an existing file (what the user can do instead).
    """

    path: Path
    data: bytes = field(repr=False)
    expect: bytes | str = field(default=ANYTHING, repr=False)
    backup: bool = True
    exists_hint: str = "Choose another name."


@dataclass(frozen=True)
class Written:
    """A file :func:`apply_writes` wrote: the name given, the file written, its backup (or None)."""

    path: Path
    target: Path
    backup: Path | None


def apply_writes(writes: Sequence[PendingWrite]) -> list[Written]:
    """Write several files only once every one of them is known to be writable as asked.

    The new contents are first staged as temporary files; then the targets' locks are taken and,
    under them, every target is checked (its kind, and that it holds what ``expect`` says); only
    then is each one backed up and replaced (or created exclusively, for :data:`ABSENT`). A
    refusal of any target writes nothing.

    Raises
    ------
    ConfigError
        Two writes to one file, a target that is not a regular file or a loop of links, a new
        file whose name exists, a file changed since its content was computed, a lock held by
        another writer, or a failed write (the bytes already replaced are then in their backups).
    """
    targets = [resolve_target(w.path) for w in writes]
    seen: dict[Path, Path] = {}
    for write, target in zip(writes, targets, strict=True):
        if target in seen:
            raise ConfigError(
                f"{str(seen[target])!r} and {str(write.path)!r} are the same file; write it "
                "once. Nothing was written."
            )
        seen[target] = write.path
    staged: list[Path] = []
    try:
        for write, target in zip(writes, targets, strict=True):
            with _write_errors(target):
                staged.append(_stage(target, write.data))
        with target_locks(targets):
            current = [_check_expected(w, t) for w, t in zip(writes, targets, strict=True)]
            done = []
            for write, target, tmp, (data, like) in zip(
                writes, targets, staged, current, strict=True
            ):
                with _write_errors(target):
                    done.append(_commit(write, target, tmp, data, like))
            return done
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)


@contextmanager
def _write_errors(target: Path) -> Iterator[None]:
    """A failed write as one line naming the file."""
    try:
        yield
    except OSError as error:
        raise ConfigError(
            f"Cannot write {str(target)!r}: {error.strerror or error}. Check the permissions and "
            "free space of its folder."
        ) from error


def _check_expected(
    write: PendingWrite, target: Path
) -> tuple[bytes | None, os.stat_result | None]:
    """What ``target`` holds now (None: no file) and its status, checked against ``expect``."""
    resolve_target(write.path)  # still a regular file (or none) now that the lock is held
    try:
        like = target.stat()
    except FileNotFoundError:
        like, data = None, None
    else:
        try:
            data = read_regular(target)
        except OSError as error:
            raise ConfigError(
                f"Cannot read {str(write.path)!r}: {error.strerror or error}. Check its "
                "permissions; it was left untouched."
            ) from error
    if (
        isinstance(write.expect, str)
        and write.expect == ABSENT
        and (like is not None or os.path.lexists(write.path))
    ):
        raise ConfigError(
            f"{str(write.path)!r} already exists and was left untouched. {write.exists_hint}"
        )
    if isinstance(write.expect, bytes) and data != write.expect:
        raise ConfigError(
            f"The config {str(write.path)!r} changed on disk while the update was being "
            "prepared; it was left untouched. Update it again."
        )
    return data, like


def _commit(
    write: PendingWrite,
    target: Path,
    tmp: Path,
    data: bytes | None,
    like: os.stat_result | None,
) -> Written:
    if like is None:  # a new file: exclusively, so a racing writer's file is never replaced
        _take_over(tmp, None, None)
        try:
            _link_into_place(tmp, target)
        except FileExistsError:
            raise ConfigError(
                f"{str(write.path)!r} was created by another program meanwhile and was left "
                f"untouched. {write.exists_hint}"
            ) from None
        _sync_folder(target.parent)
        return Written(write.path, target, None)
    backup = _keep_backup(target, data, like) if write.backup else None
    _take_over(tmp, like, None)
    os.replace(tmp, target)
    _sync_folder(target.parent)
    return Written(write.path, target, backup)


# --------------------------------------------------------------------------- folders


def write_folder_once(
    path: str | Path, fill: Callable[[Path], None], complete: Callable[[Path], bool]
) -> Path:
    """The folder ``path``, made whole or not at all when it is not ``complete`` already.

    ``fill`` writes the content into a new temporary folder beside ``path``
    (``.NAME.autoconfig-<pid>-<host>-<random>.tmp``), which then takes the name with one rename:
    readers never see the folder half-filled. Of several processes making it at once, the first
    rename wins; the others remove their own temporary folder and use the winner's. A folder at
    ``path`` that is not ``complete`` (left half-written by a killed run of a version that wrote
    in place, or damaged) is set aside and removed once a whole one is ready to take its place.
    A run killed inside ``fill`` leaves only its temporary folder, which a later call removes.

    Parameters
    ----------
    path : str or Path
        The folder to make; its parent folders are created.
    fill : callable
        ``fill(folder)`` writes the content into ``folder`` (an empty folder).
    complete : callable
        ``complete(folder)``: whether ``folder`` holds everything ``fill`` writes, undamaged.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        The folder cannot be made there (not writable, a file in the way, a full disk...).
    """
    target = Path(path)
    if complete(target):
        return target
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way of the folder", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent)
    tmp = _temp_name(target)
    tmp.mkdir()
    try:
        fill(tmp)
        for _ in range(3):  # bounded: each turn either places ours or finds a whole one
            try:
                os.rename(tmp, target)  # fails when a folder that is not empty holds the name
                break
            except OSError:
                if not target.is_dir():
                    raise
            if complete(target):  # another process won: its folder is as good as ours
                break
            aside = _temp_name(target)
            with suppress(FileNotFoundError):  # another process may have set it aside first
                os.rename(target, aside)
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _sync_folder(target.parent)
    if not complete(target):
        raise OSError(errno.EIO, "the folder could not be completed", str(target))
    return target
