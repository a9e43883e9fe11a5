"""An on-disk index of decoded frame counts for a folder of videos.

Each entry is keyed by the file's path relative to the root, its size and its modification time (ns); an
entry whose file changed is recounted, entries of deleted files are dropped. Files that fail to decode (not a
video, corrupt, empty) are recorded with their error, so a corrupt file is not re-decoded on every start (it is
retried once it changes). Files that cannot be read at all (``PermissionError`` and other ``OSError``: a
transient state, e.g. until a ``chmod`` or a remount) are skipped for this start only and never cached, so they
are retried at every start. ``rebuild=True`` (``VideoFolderDataModule(rebuild_index=True)``), or deleting the
index file, recounts everything. The index is JSON, written atomically (temp file in the same folder, then
``os.replace``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from vidiff.io.atomic import atomic_path

from .decode import DecodeError, count_frames

log = logging.getLogger(__name__)

INDEX_NAME = ".vidiff_index.json"
INDEX_VERSION = 2  # bump when the way frames are counted changes
#: Older index versions whose successful counts are still valid; their failures are retried once (version 1
#: cached transient read errors too).
COMPATIBLE_VERSIONS = (1,)


@dataclass(frozen=True)
class IndexEntry:
    """One file of the folder.

    Attributes:
        path: path relative to the root (POSIX separators).
        size: file size in bytes.
        mtime_ns: modification time in nanoseconds.
        frames: decoded frame count (0 when the file did not decode).
        error: why the file did not decode, or None.
        transient: the file could not be read (an ``OSError``, not a decode failure): not cached, retried
            at the next start.
    """

    path: str
    size: int
    mtime_ns: int
    frames: int
    error: str | None = None
    transient: bool = False


def check_readable(path: Path) -> None:
    """Open ``path`` and read a byte; raises the ``OSError`` (e.g. ``PermissionError``) when it cannot."""
    with open(path, "rb") as f:
        f.read(1)


def scan(root: Path, extensions: tuple[str, ...]) -> list[Path]:
    """Video files under ``root`` (recursive, case-insensitive extensions, hidden files skipped), sorted."""
    exts = {"." + e.lower().lstrip(".") for e in extensions}
    files = [
        p
        for p in root.rglob("*")
        if p.suffix.lower() in exts
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def default_cache_path(root: Path) -> Path:
    """``<root>/.vidiff_index.json`` when the root is writable, else a file under ``~/.cache/vidiff``."""
    if os.access(root, os.W_OK):
        return root / INDEX_NAME
    return index_path(root, Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vidiff")


def index_path(root: Path, cache_dir: str | Path | None = None) -> Path:
    """The index file of ``root``: ``<cache_dir>/index-<hash of root>.json``, or the default."""
    if cache_dir is None:
        return default_cache_path(root)
    digest = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return Path(cache_dir).expanduser() / f"index-{digest}.json"


def _load(path: Path) -> dict[str, IndexEntry]:
    try:
        data = json.loads(path.read_text())
        version = data.get("version")
        if version != INDEX_VERSION and version not in COMPATIBLE_VERSIONS:
            return {}
        entries = [IndexEntry(**e) for e in data["entries"]]
        if version != INDEX_VERSION:
            entries = [e for e in entries if e.error is None]
        return {e.path: e for e in entries if not e.transient}
    except FileNotFoundError:
        return {}
    except Exception as err:  # noqa: BLE001 - a damaged cache is rebuilt, never fatal
        log.warning("ignoring unreadable video index %s (%s); rebuilding it", path, err)
        return {}


def _save(path: Path, root: Path, entries: list[IndexEntry]) -> None:
    kept = [asdict(e) for e in entries if not e.transient]
    data = {"version": INDEX_VERSION, "root": str(root.resolve()), "entries": kept}
    try:
        with atomic_path(path) as tmp, open(tmp, "w") as f:  # the umask's permissions, not mkstemp's 0600
            json.dump(data, f, indent=1)
    except OSError as err:
        log.warning("could not write the video index %s (%s); it will be rebuilt next time", path, err)


def build_index(
    root: Path,
    extensions: tuple[str, ...],
    cache_path: Path | None = None,
    backend: str = "auto",
    rebuild: bool = False,
) -> list[IndexEntry]:
    """Index every video under ``root``, reusing cached counts of unchanged files.

    Args:
        root: the folder.
        extensions: file extensions to include (without dots).
        cache_path: JSON cache to read and update; None: no cache.
        backend: decoder backend (see :mod:`vidiff.data.decode`).
        rebuild: ignore the cache and recount every file (the cache is then rewritten).

    Returns:
        One entry per video file, sorted by relative path (including files that failed to decode or to open;
        the latter have ``transient=True`` and are not cached).
    """
    cached = _load(cache_path) if cache_path is not None and not rebuild else {}
    if rebuild:
        log.info("video index of %s: rebuilding (rebuild_index=True)", root)
    entries, recounted, retried = [], 0, 0
    for file in scan(root, extensions):
        rel = file.relative_to(root).as_posix()
        stat = file.stat()
        old = cached.get(rel)
        if old is not None and old.size == stat.st_size and old.mtime_ns == stat.st_mtime_ns:
            entries.append(old)
            continue
        recounted += 1
        transient = False
        try:
            check_readable(file)
            frames, error = count_frames(file, backend), None
        except DecodeError as err:
            frames, error = 0, str(err)
        except OSError as err:  # cannot be read now (permissions, I/O): retried at the next start
            frames, transient = 0, True
            error = f"cannot read it ({type(err).__name__}: {err}); retried at the next start"
        retried += transient
        entries.append(IndexEntry(rel, stat.st_size, stat.st_mtime_ns, frames, error, transient))
    kept = {e.path for e in entries if not e.transient}
    changed = rebuild or recounted > retried or set(cached) != kept
    if cache_path is not None and changed:
        _save(cache_path, root, entries)
    log.info("video index of %s: %d files, %d (re)counted", root, len(entries), recounted)
    return entries
