"""Keep C libraries' log lines (decord, ffmpeg) off the terminal.

decord and the ffmpeg it wraps write straight to file descriptor 2 (``[mov,mp4,... @ 0x...] moov atom not found``,
``video_reader.cc:83: ERROR opening: ...``), which Python's ``sys.stderr`` cannot intercept. vidiff reports a bad
file itself, in one line, so :func:`native_stderr_silenced` points descriptor 2 at a temporary file around the
decoder call and logs what it caught at debug level (``--log-level``/``logging`` DEBUG shows it).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

_lock = threading.RLock()
_depth = 0
_saved: tuple[int, object] | None = None  # (dup of the real descriptor 2, the temporary file)


def _start() -> None:
    global _saved
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no descriptor 2 (a daemon): nothing to silence
        return
    sink = tempfile.TemporaryFile()
    os.dup2(sink.fileno(), 2)
    _saved = (saved, sink)


def _stop() -> None:
    global _saved
    if _saved is None:
        return
    saved, sink = _saved
    _saved = None
    os.dup2(saved, 2)
    os.close(saved)
    sink.seek(0)  # type: ignore[attr-defined]
    text = sink.read().decode(errors="replace").strip()  # type: ignore[attr-defined]
    sink.close()  # type: ignore[attr-defined]
    if text:
        log.debug("decoder output:\n%s", text)


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Redirect file descriptor 2 while the block runs (re-entrant; keep the block to the decoder call, since
    anything else written to stderr meanwhile, from any thread, is caught too)."""
    global _depth
    with _lock:
        if _depth == 0:
            _start()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _stop()
