"""Folder locks (vidiff.io.lock): a second writer refuses naming the first; stale locks are taken over."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vidiff.io import lock as lock_mod
from vidiff.io.lock import LOCK_NAME, FolderInUseError, lock_folder

REPO = Path(__file__).resolve().parents[1]
TRY_LOCK = "import sys; from vidiff.io.lock import lock_folder; lock_folder(sys.argv[1], what='vidiff sample')"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _write_record(folder: Path, **record) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    path.write_text(json.dumps(record))
    return path


def test_a_second_writer_in_another_process_refuses_naming_the_first(tmp_path):
    with lock_folder(tmp_path, command="vidiff fit --config tiny.yaml") as held:
        assert held.path == tmp_path / LOCK_NAME and json.loads(held.path.read_text())["pid"] == os.getpid()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, "-c", TRY_LOCK, str(tmp_path)], capture_output=True, text=True,
                              env=env, timeout=60)
        assert done.returncode != 0
        last = done.stderr.strip().splitlines()[-1]
        assert "FolderInUseError: vidiff sample:" in last and f"in use by pid {os.getpid()} " in last
        assert "vidiff fit --config tiny.yaml" in last and f"lock file {tmp_path / LOCK_NAME}" in last
        with pytest.raises(FolderInUseError):  # a second lock in this process conflicts too
            lock_folder(tmp_path)
    assert not (tmp_path / LOCK_NAME).exists()  # released and removed
    lock_folder(tmp_path).release()


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path, caplog):
    dead = _dead_pid()
    _write_record(tmp_path, pid=dead, host=socket.gethostname(), command="vidiff fit", started="then")
    with caplog.at_level(logging.WARNING), lock_folder(tmp_path) as held:
        assert held.record["pid"] == os.getpid()
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert f"taking over the stale lock {tmp_path / LOCK_NAME} of pid {dead} (vidiff fit" in caplog.text


def test_without_flock_the_record_decides(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(lock_mod, "_flock", lambda fd: False)  # a file system that does not enforce flock
    _write_record(tmp_path, pid=os.getppid() or 1, host="elsewhere.example", command="vidiff fit", started="then")
    with caplog.at_level(logging.WARNING), lock_folder(tmp_path):  # another host's record: stale
        pass
    assert "of pid" in caplog.text and "on elsewhere.example" in caplog.text
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_record(tmp_path, pid=sleeper.pid, host=socket.gethostname(),
                      command="python -c import time; time.sleep(60)", started="now")
        with pytest.raises(FolderInUseError, match=f"in use by pid {sleeper.pid} "):
            lock_folder(tmp_path)
    finally:
        sleeper.kill()
        sleeper.wait()
    with lock_folder(tmp_path):  # its process is gone now
        pass
