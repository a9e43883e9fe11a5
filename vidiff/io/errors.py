"""One clear line for the file faults a user meets: a full disk, a dead encoder, an unsafe or corrupt checkpoint.

Low-level libraries report these in their own words (``[enforce fail at inline_container.cc:672] . unexpected
pos``, ``[Errno 32] Broken pipe`` plus an ffmpeg command, a ``SafetensorError``, a page of ``UnpicklingError``).
The places that read or write a file wrap that call in :func:`reading` or :func:`writing`, which turn a fault
they recognise into a :class:`FileFault` whose message is the line to print (what failed, which file, what is
intact, what to do); anything they do not recognise passes unchanged. The `vidiff` command prints a
:class:`FileFault` as ``vidiff COMMAND: error: LINE`` and exits with status 2, with no traceback
(:func:`vidiff.cli.main`).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: errno values that mean "the disk (or the quota) is full".
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
#: Texts by which libraries that drop the errno report a full disk (safetensors, ffmpeg, the OS message).
NO_SPACE_TEXTS = ("no space left on device", "os error 28", "storagefull", "disk quota exceeded")
#: torch's zip writer failing a write (it reports neither errno nor path).
TORCH_WRITER_TEXTS = ("enforce fail at inline_container", "pytorchstreamwriter failed")
#: Below this much free space a failed write counts as a full disk.
LOW_SPACE_BYTES = 16 * 2**20


#: Set to 1 to see the full traceback instead of the one-line message (``VIDIFF_DEBUG=1 vidiff fit ...``).
DEBUG_ENV = "VIDIFF_DEBUG"


def debug_enabled() -> bool:
    """True when ``$VIDIFF_DEBUG`` is set (to anything but ``0`` or empty): show tracebacks, not one-liners."""
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


class UserError(Exception):
    """A problem the user can fix; ``str(err)`` is the line to show (several lines: several problems).

    The `vidiff` command prints it as ``vidiff COMMAND: error: LINE`` without a traceback (unless
    ``$VIDIFF_DEBUG`` is set) and exits with status 2.
    """


class ConfigError(UserError, ValueError):
    """A setting or an input that cannot work: a misspelt key, a wrong type or value, a missing or unreadable input."""


class MissingInput(UserError, FileNotFoundError):
    """A file or folder a setting names does not exist or holds nothing usable."""


class FileFault(UserError):
    """A read or write failed for a reason the user can fix; ``str(err)`` is the one line to show.

    Read faults are also ``ValueError`` (a bad input file) and write faults ``OSError``, so callers that catch those
    keep working.
    """


class UnsafeCheckpoint(FileFault, ValueError):
    """A checkpoint that would import or run code when unpickled (``torch.load(weights_only=True)`` refuses it)."""


class UnreadableFile(FileFault, ValueError):
    """A checkpoint or weights file that is empty, truncated, corrupt or of another format."""


class WriteFault(FileFault, OSError):
    """A write that failed: no space left, the encoder died, the folder is read-only."""


def _first_line(err: BaseException) -> str:
    text = " ".join(str(err).split("\n\n")[0].split())
    return text or type(err).__name__


def _low_space(folder: Path) -> bool:
    """True when ``folder``'s file system has less than :data:`LOW_SPACE_BYTES` free."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return False
    return usage.free < LOW_SPACE_BYTES


def _unsafe_reason(text: str) -> str | None:
    """The reason torch's weights-only unpickler gives, shortened; None when ``text`` is not such a refusal."""
    if "weights only load failed" not in text.lower() and "weightsunpickler error" not in text.lower():
        return None
    if re.search(r"Unsupported operand \d+", text):  # not a pickle at all: corrupt, not unsafe
        return None
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if match:
        return f"it names the Python object {match.group(1)}, which loading would import and run"
    match = re.search(r"WeightsUnpickler error: ([^\n]+?)(?: Please|$)", text)
    return match.group(1).strip().rstrip(".") if match else "it holds Python objects other than tensors and plain data"


def read_fault(
    err: BaseException,
    path: str | os.PathLike,
    what: str = "checkpoint",
    advice: str = "check the file or use another one",
) -> FileFault | None:
    """The :class:`FileFault` for an error raised while deserialising ``path``, or None to let it pass.

    Missing files, permissions and memory errors pass (they already say what is wrong); everything else a
    loader raises on a file's content means the file is unsafe or unreadable.

    Args:
        err: what the loader raised.
        path: the file.
        what: what the file is, for the message ("checkpoint", "sampling state").
        advice: what to do about an unreadable file (the message's tail).
    """
    if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError, MemoryError, FileFault)):
        return None
    if not isinstance(err, Exception):  # KeyboardInterrupt, SystemExit
        return None
    text = str(err)
    reason = _unsafe_reason(text)
    if reason is not None:
        return UnsafeCheckpoint(
            f"{path} is not a safe checkpoint: {reason}; vidiff loads only tensors and plain data, so if you trust "
            "the file re-save its tensors (torch.save(obj.state_dict(), ...) or .safetensors)"
        )
    if isinstance(err, EOFError) or (Path(path).is_file() and Path(path).stat().st_size == 0):
        why = "it is empty or ends early"
    elif "central directory" in text or "PytorchStreamReader" in text:
        why = "it is truncated or corrupt (an interrupted copy or save?)"
    elif re.search(r"Unsupported operand \d+", text):
        why = "it is corrupt or not a PyTorch/safetensors file (not a valid pickle)"
    elif type(err).__name__ == "SafetensorError":
        why = f"it is not a valid safetensors file ({_first_line(err)})"
    else:
        why = f"it is corrupt or not a PyTorch/safetensors file ({type(err).__name__}: {_first_line(err)[:200]})"
    return UnreadableFile(f"{path} is not a readable {what}: {why}; {advice}")


def write_fault(err: BaseException, path: str | os.PathLike, kept: str | None = None) -> FileFault | None:
    """The :class:`WriteFault` for an error raised while writing ``path``, or None to let it pass.

    Args:
        err: what the writer raised.
        path: the file being written (its folder's free space is checked).
        kept: what is still intact and what to do, appended after ``;`` (e.g. "the previous checkpoint X is
            intact; free space and continue with --ckpt_path last").
    """
    if isinstance(err, FileFault) or not isinstance(err, Exception):
        return None
    text = str(err).lower()
    code = getattr(err, "errno", None)
    low = _low_space(Path(path).parent)
    if code in NO_SPACE_ERRNOS or any(t in text for t in NO_SPACE_TEXTS):
        what = f"no space left on device while writing {path}"
    elif any(t in text for t in TORCH_WRITER_TEXTS):
        what = (
            f"no space left on device while writing {path}"
            if low
            else f"writing {path} failed (torch's writer: {_first_line(err)[:120]}; a full disk or quota?)"
        )
    elif code == errno.EPIPE or isinstance(err, BrokenPipeError) or "broken pipe" in text:
        what = (
            f"no space left on device while writing {path} (the ffmpeg encoder stopped)"
            if low
            else f"the ffmpeg encoder stopped while writing {path} ({_first_line(err)[:200]})"
        )
    elif low and isinstance(err, (OSError, RuntimeError)):  # a writer that lost the errno on a full disk
        detail = _first_line(err).removeprefix(f"writing {path}: ")  # vidiff's own check already named the file
        what = f"no space left on device while writing {path} ({detail[:120]})"
    elif code == errno.EROFS:
        what = f"cannot write {path}: the file system is read-only"
    elif code == errno.EACCES or isinstance(err, PermissionError):
        what = f"cannot write {path}: permission denied"
    else:
        return None
    return WriteFault(f"{what}; {kept}" if kept else what)


@contextmanager
def reading(path: str | os.PathLike, what: str = "checkpoint", advice: str | None = None) -> Iterator[None]:
    """Turn what a deserialiser raises on ``path``'s content into a one-line :class:`FileFault`.

    Wrap only the loading call: any other exception inside the block would be reported as a bad file.
    """
    try:
        yield
    except Exception as err:
        fault = read_fault(err, path, what, advice or "check the file or use another one")
        if fault is None:
            raise
        raise fault from err


@contextmanager
def writing(path: str | os.PathLike, kept: str | None = None) -> Iterator[None]:
    """Turn a full disk, a dead encoder or a read-only folder while writing ``path`` into a :class:`WriteFault`.

    Use it inside the temporary-file block (:func:`vidiff.io.atomic.atomic_path`) so the free-space check sees the
    disk as the failed write left it.
    """
    try:
        yield
    except Exception as err:
        fault = write_fault(err, path, kept)
        if fault is None:
            raise
        raise fault from err


def find_fault(err: BaseException | None) -> UserError | None:
    """The :class:`UserError` (e.g. a :class:`FileFault`) in ``err``'s cause/context chain (frameworks re-wrap
    exceptions), or None."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, UserError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
