"""The files a vidiff command wrote into its ``--out`` folder, found by name, so that a second run into the
same folder never leaves the first run's files mixed with its own: it is refused, or with ``--overwrite``
those files (and no others) are removed first (docs/decisions.md, "Reusing an --out folder")."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

#: What `vidiff sample` writes (relative paths, as regular expressions).
SAMPLE_OUTPUTS = (r"video_\d{3,}\.(mp4|gif|png)", r"settings\.json", r"index\.html")
#: What `vidiff txt2img` writes.
TXT2IMG_OUTPUTS = (r"image_\d{3,}\.png", r"grid\.png", r"settings\.json")
#: What `vidiff evaluate` writes.
EVALUATE_OUTPUTS = (r"report\.json", r"report\.md", r"videos/video_\d{3,}\.mp4")


def earlier_outputs(folder: str | os.PathLike, patterns: Sequence[str]) -> list[Path]:
    """Files under ``folder`` whose path relative to it matches one of ``patterns`` (sorted)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    names = re.compile("|".join(f"(?:{p})" for p in patterns))
    found = []
    for pattern in {p.split("/")[0] if "/" in p else "" for p in patterns}:
        base = folder / pattern if pattern else folder
        if base.is_dir():
            found += [f for f in base.iterdir() if f.is_file()
                      and names.fullmatch(f.relative_to(folder).as_posix())]
    return sorted(found)


def _describe(files: Sequence[Path], folder: Path) -> str:
    names = [f.relative_to(folder).as_posix() for f in files]
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def claim_folder(folder: str | os.PathLike, patterns: Sequence[str], overwrite: bool) -> list[Path]:
    """Check that ``folder`` holds no earlier run's outputs; with ``overwrite`` return them for
    :func:`remove_outputs` (call it just before writing the new ones, so a failed run keeps the old ones).

    Raises:
        ValueError: the folder holds an earlier run's outputs and ``overwrite`` is False; one line naming
            ``--out``, a few of the files and the two ways on.
    """
    folder = Path(folder)
    files = earlier_outputs(folder, patterns)
    if files and not overwrite:
        raise ValueError(
            f"--out: {folder} holds an earlier run's outputs ({_describe(files, folder)}); choose another "
            "folder, or add --overwrite to replace them (only the files vidiff wrote are removed)"
        )
    return files


def remove_outputs(files: Sequence[Path]) -> None:
    """Delete an earlier run's outputs (from :func:`claim_folder`); already missing files are skipped."""
    for f in files:
        f.unlink(missing_ok=True)
    if files:
        log.info("--overwrite: removed %d files of the earlier run in %s", len(files), files[0].parent)
