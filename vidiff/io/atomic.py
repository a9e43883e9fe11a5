"""Atomic file writing: write to a temporary name in the target folder, then ``os.replace``.

A reader (a browser showing the gallery, a resumed run reading its state) never sees a half-written file:
either the old file or the complete new one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Names of the temporary files vidiff's atomic writers create (``tempfile.mkstemp``: 8 characters of
#: ``[a-z0-9_]``): ``.NAME.XXXXXXXX.tmp`` (checkpoints, safetensors) and ``.STEM.XXXXXXXX.tmp.SUFFIX``
#: (:func:`atomic_path`, which keeps the suffix for ffmpeg and PIL).
TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    The temporary name keeps ``path``'s suffix (ffmpeg and PIL choose the container from it). On an exception
    the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the final file name; its folder is created if missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (utf-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically; returns the path."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def sweep_temporaries(*folders: str | os.PathLike) -> list[Path]:
    """Remove the temporary files an interrupted atomic write left in ``folders`` (not recursive).

    Call it only while holding the folder's lock (:func:`vidiff.io.lock.lock_folder`): a live writer's temporary
    file looks the same. Missing folders are skipped.

    Returns:
        the files removed (each logged as a warning).
    """
    removed = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if TEMP_NAME.match(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    if removed:
        log.warning(
            "removed %d temporary file(s) left by an interrupted save: %s",
            len(removed),
            ", ".join(str(p) for p in removed[:5]) + (" ..." if len(removed) > 5 else ""),
        )
    return removed
