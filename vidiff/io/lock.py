"""Folder locks: one writer at a time in a run folder (`vidiff fit`) or a sample folder (`vidiff sample --out`).

:func:`lock_folder` takes an exclusive ``fcntl.flock`` on ``<folder>/vidiff.lock`` and writes who holds it (pid,
host, command, start time) into the file. A second writer fails at once with :class:`FolderInUseError`, one line
naming the holder and the lock file. The kernel drops a flock when its process dies, so the lock of a killed
process is free; its file (left behind) is recognised as stale, reported with a warning and taken over. Where flock
is not enforced (some network file systems), the record decides: a live pid on this host running the recorded
command holds the folder; a dead pid, or a record from another host (whose pids cannot be checked), is stale.

The record is written in place, not through a temporary file and a rename, because the lock belongs to the
file's inode: a renamed-in file would carry no lock. :meth:`FolderLock.release` removes the file.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the record alone decides
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_NAME = "vidiff.lock"


class FolderInUseError(RuntimeError):
    """Another live process holds the folder's lock."""


def _command() -> str:
    return " ".join([Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]])


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def describe(record: dict[str, Any]) -> str:
    """``pid 123 on host (vidiff fit ..., since 2025-01-01 12:00:00)`` from a lock record."""
    if not record:
        return "another process (its lock file holds no record yet)"
    host = record.get("host")
    where = "" if host == socket.gethostname() else f" on {host}"
    return f"pid {record.get('pid')}{where} ({record.get('command', '?')}, since {record.get('started', '?')})"


def _read(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 65536, 0)
        record = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _holds(record: dict[str, Any]) -> bool:
    """Whether the process a record names still runs (on this host); records from elsewhere count as stale."""
    pid = record.get("pid")
    if record.get("host") != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid():
        return False
    if not pid_alive(pid):
        return False
    try:  # a recycled pid runs some other program
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True
    if not cmdline.strip():  # not readable yet (a process starting up): assume it is the holder
        return True
    recorded = str(record.get("command", "")).split(" ")[1:]
    return all(arg in cmdline for arg in recorded)


class FolderLock:
    """A held folder lock; :meth:`release` (or leaving its ``with`` block) frees it and removes the file."""

    def __init__(self, path: Path, fd: int, record: dict[str, Any]) -> None:
        self.path, self._fd, self.record = path, fd, record

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Free the lock and remove its file; a second call does nothing."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                self.path.unlink()
        except OSError:
            pass
        os.close(fd)  # closing drops the flock

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def lock_folder(folder: str | os.PathLike, command: str | None = None, what: str = "vidiff") -> FolderLock:
    """Lock ``folder`` (created if missing) for this process.

    Args:
        folder: the run or output folder.
        command: what to record as the holder's command (default: this process's command line).
        what: the command named at the start of the error message.

    Raises:
        FolderInUseError: another live process holds the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    for _ in range(20):  # retried only when the file was replaced between open and lock
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            enforced = _flock(fd)
        except FolderInUseError:
            holder = _read(fd)
            os.close(fd)
            raise FolderInUseError(_in_use(what, folder, holder, path)) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder released (and removed) it meanwhile: lock the new file
            os.close(fd)
            continue
        previous = _read(fd)
        if previous and not enforced and _holds(previous):
            os.close(fd)
            raise FolderInUseError(_in_use(what, folder, previous, path))
        if previous:
            log.warning(
                "%s: taking over the stale lock %s of %s, which no longer runs", what, path, describe(previous)
            )
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command or _command(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        data = (json.dumps(record) + "\n").encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        return FolderLock(path, fd, record)
    raise RuntimeError(f"{what}: could not lock {path}: it keeps being replaced; is another process looping on it?")


def _flock(fd: int) -> bool:
    """Take the flock without waiting; False where the file system does not support it."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FolderInUseError from None
    except OSError as err:
        if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            log.debug("flock not supported on this file system (%s); relying on the lock record", err)
            return False
        raise
    return True


def _in_use(what: str, folder: Path, holder: dict[str, Any], path: Path) -> str:
    return (
        f"{what}: {folder} is in use by {describe(holder)}; lock file {path}. Wait for it to finish or choose "
        "another folder (delete the lock file only if that process is gone)"
    )
