"""A data set over a folder (recursive) of video files, for clip or long-horizon training.

Every file is decoded once to count its frames (cached on disk, see :mod:`vidiff.data.video_index`);
unreadable, zero-byte and too-short files are skipped with a warning naming them. ``dataset[(epoch, i)]``
draws a frame mask (``vidiff.masks``) over the whole video (``clip_length=None``) or over a random clip,
decodes only the chosen frames, resizes the shorter side to ``image_size`` and centre-crops. Files whose shorter
side is over twice ``image_size`` are decoded at about the target size (decord scales while decoding,
:func:`vidiff.data.decode.decode_size`), so a 4K file in a 64x64 folder costs what a small one does; a file that
still decodes at full size (another backend) is named once in a warning with its cost.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch.utils.data import Dataset

from vidiff.arguments import check_int
from vidiff.io.errors import ConfigError, MissingInput
from vidiff.masks import FrameMaskSampler

from .decode import BACKENDS, DecodeError, decode_size, frame_size, read_frames
from .sampling import STREAM_MASK, pad_bool, pad_frame_idx, sample_generator, split_key
from .video_index import IndexEntry, build_index, index_path

log = logging.getLogger(__name__)

DEFAULT_EXTENSIONS: tuple[str, ...] = ("mp4", "avi", "mov", "webm", "gif", "mkv")
SHORT_VIDEOS = ("mask", "skip")


def _names(paths: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _why_unreadable(error: str | None) -> str:
    """A few words for an index entry's decode error (the full text is logged at debug level)."""
    text = (error or "").lower()
    if "zero-byte" in text:
        return "empty file"
    if "cannot read it" in text:  # an OSError, retried at the next start: say which
        match = re.search(r"cannot read it \((\w+)", error or "")
        return f"cannot be read now: {match.group(1)}" if match else "cannot be read now"
    if "no frame decodes" in text or not text:
        return "no frame decodes"
    return "not a video, or truncated"


def _unreadable_list(entries: Sequence[IndexEntry], limit: int = 6) -> str:
    """``a.mp4, b.mp4 (not a video, or truncated); c.mp4 (empty file)``: at most ``limit`` names, grouped by why."""
    groups: dict[str, list[str]] = {}
    for e in entries:
        groups.setdefault(_why_unreadable(e.error), []).append(e.path)
    parts, shown = [], 0
    for why, paths in groups.items():
        take = paths[: max(1, limit - shown)]
        shown += len(take)
        more = f" and {len(paths) - len(take)} more" if len(paths) > len(take) else ""
        parts.append(f"{', '.join(take)}{more} ({why})")
    return "; ".join(parts)


def resize_center_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(k, c, h, w) float -> (k, c, size, size): shorter side resized (antialiased), centre crop."""
    h, w = frames.shape[-2:]
    if (h, w) != (size, size):
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        frames = F.interpolate(frames, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        top, left = (nh - size) // 2, (nw - size) // 2
        frames = frames[..., top : top + size, left : left + size]
    return frames


def split_paths(paths: Sequence[str], val_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Deterministic train/validation split by a seeded hash of each relative path.

    A file's side does not depend on which other files exist (adding videos moves no old video across),
    except that at least one video goes to validation when ``val_fraction > 0`` and there are two or more.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction: expected a number in [0, 1), got {val_fraction!r}")

    def u(p: str) -> float:
        return int(hashlib.sha1(f"{seed}:{p}".encode()).hexdigest()[:15], 16) / 16**15

    val = [p for p in paths if u(p) < val_fraction]
    if not val and val_fraction > 0 and len(paths) > 1:
        val = [min(paths, key=u)]
    val_set = set(val)
    return [p for p in paths if p not in val_set], sorted(val)


class VideoFolder(Dataset):
    """Videos under a folder, sampled with FDM-style frame masks.

    Args:
        root: folder searched recursively (hidden files and folders skipped).
        image_size: output frames are ``image_size x image_size`` (shorter side resized, centre crop).
        frame_stride: keep every ``frame_stride``-th frame; positions count strided frames.
        clip_length: None: frames are drawn from the whole video (long-horizon training) and ``frame_idx``
            counts from its first frame; otherwise a window of ``clip_length`` (strided) frames at a random
            start, and ``frame_idx`` counts from the window start.
        sampler: frame-mask sampler (default ``FrameMaskSampler(8)``); k = ``sampler.max_frames``.
        extensions: file extensions to include, case-insensitive.
        short_videos: ``"mask"``: videos shorter than ``clip_length`` are used, their missing frames are
            padding slots with ``valid=False``; ``"skip"``: they are skipped with a warning.
        min_frames: videos with fewer (strided) frames are skipped as too short.
        cache_index: keep the frame-count index in a JSON file (``cache_dir`` or next to the videos).
        cache_dir: folder for the index file (None: ``<root>/.vidiff_index.json``, or ``~/.cache/vidiff``
            when the root is read-only).
        backend: ``"auto"``, ``"decord"``, ``"pyav"`` or ``"pillow"`` (see :mod:`vidiff.data.decode`).
        rebuild_index: ignore the cached index and recount every file's frames (the index is rewritten).
        seed: seed of the per-sample draws (clip start and mask).

    Raises:
        FileNotFoundError: ``root`` is missing, or holds no file with the extensions.
        ValueError: bad arguments (message names the key), no readable video, or ``clip_length`` longer than
            every video (with ``short_videos="skip"``: no video is long enough).
    """

    def __init__(
        self,
        root: str | Path,
        image_size: int = 64,
        frame_stride: int = 1,
        clip_length: int | None = None,
        sampler: FrameMaskSampler | None = None,
        extensions: Sequence[str] = DEFAULT_EXTENSIONS,
        short_videos: str = "mask",
        min_frames: int = 2,
        cache_index: bool = True,
        cache_dir: str | Path | None = None,
        backend: str = "auto",
        seed: int = 0,
        rebuild_index: bool = False,
    ) -> None:
        self.sampler = sampler if sampler is not None else FrameMaskSampler(8)
        k = self.sampler.max_frames
        for name, value in (
            ("image_size", image_size),
            ("frame_stride", frame_stride),
            ("min_frames", min_frames),
        ):
            check_int(name, value)
        if clip_length is not None and (not isinstance(clip_length, int) or clip_length < k):
            raise ValueError(
                f"clip_length: expected None or an integer >= max_frames={k}, got {clip_length!r}"
            )
        if short_videos not in SHORT_VIDEOS:
            raise ValueError(f"short_videos: expected one of {list(SHORT_VIDEOS)}, got {short_videos!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {list(BACKENDS)}, got {backend!r}")
        root = Path(root).expanduser()
        if not root.exists():
            raise MissingInput(f"root: video folder {str(root)!r} does not exist; give the folder that holds your videos")
        if not root.is_dir():
            raise NotADirectoryError(f"root: expected a folder of videos, {str(root)!r} is not a folder")
        self.root, self.image_size, self.frame_stride = root, image_size, frame_stride
        self.clip_length, self.short_videos, self.backend, self.seed = (
            clip_length,
            short_videos,
            backend,
            seed,
        )
        self.extensions = tuple(e.lower().lstrip(".") for e in extensions)
        self.min_frames = max(min_frames, self.sampler.min_length())
        cache = index_path(root, cache_dir) if cache_index else None
        entries = build_index(root, self.extensions, cache, backend, rebuild=rebuild_index)
        if not entries:
            raise MissingInput(
                f"root: no video files with extensions {list(self.extensions)} under {str(root)!r}; put videos "
                "there, or give another folder (or set `extensions`)"
            )
        self.videos = self._usable(entries)
        self._bad: set[int] = set()
        self._frame_sizes: dict[str, tuple[int, int]] = {}  # (h, w) of each file, probed at its first read
        self._warned_big: set[str] = set()

    def _strided(self, frames: int) -> int:
        return math.ceil(frames / self.frame_stride)

    def _usable(self, entries: list[IndexEntry]) -> list[tuple[str, int]]:
        """Drop unreadable and too-short files (warning with their names); errors when nothing is left."""
        unreadable = [e for e in entries if e.error or e.frames == 0]
        for e in unreadable:
            log.debug("%s: %s", e.path, e.error or "no frames decode")
        readable = [e for e in entries if not e.error and e.frames > 0]
        if not readable:
            raise ConfigError(
                f"root: none of the {len(entries)} video files under {str(self.root)!r} could be decoded: "
                f"{_unreadable_list(unreadable)}; give a folder of videos that ffmpeg can play"
            )
        need = self.min_frames
        if self.clip_length is not None and self.short_videos == "skip":
            need = max(need, self.clip_length)
        longest = max(readable, key=lambda e: e.frames)
        if self.clip_length is not None and self._strided(longest.frames) < self.clip_length:
            raise ConfigError(
                f"clip_length: {self.clip_length} frames (frame_stride={self.frame_stride}) is longer than "
                f"every "
                f"video under {str(self.root)!r}; the longest, {longest.path}, has {longest.frames} frames "
                f"({self._strided(longest.frames)} after the stride); expected a clip_length of at most that"
            )
        short = [f"{e.path} ({e.frames} frames)" for e in readable if self._strided(e.frames) < need]
        usable = [(e.path, e.frames) for e in readable if self._strided(e.frames) >= need]
        if unreadable:
            log.warning(
                "skipping %d of %d video files under %s that do not decode: %s",
                len(unreadable),
                len(entries),
                self.root,
                _unreadable_list(unreadable),
            )
        if short:
            log.warning(
                "skipping %d video(s) under %s shorter than %d frames (frame_stride=%d): %s",
                len(short),
                self.root,
                need,
                self.frame_stride,
                _names(short, 6),
            )
        if not usable:
            raise ConfigError(
                f"root: no video under {str(self.root)!r} has at least {need} frames after frame_stride="
                f"{self.frame_stride}; the longest, {longest.path}, has {longest.frames}"
            )
        log.info(
            "video folder %s: %d usable videos, %d skipped",
            self.root,
            len(usable),
            len(entries) - len(usable),
        )
        return usable

    # --------------------------------------------------------------------------------------------- views
    @property
    def paths(self) -> list[str]:
        """Relative paths of the usable videos, in index order."""
        return [p for p, _ in self.videos]

    @property
    def max_frames(self) -> int:
        return self.sampler.max_frames

    def subset(self, paths: Sequence[str]) -> VideoFolder:
        """A view holding only the videos with these relative paths (shares the index; no re-scan)."""
        keep = set(paths)
        view = copy.copy(self)
        view.videos = [v for v in self.videos if v[0] in keep]
        view._bad = set()
        if not view.videos:
            raise ValueError(f"paths: none of the {len(keep)} requested videos is among the usable ones")
        return view

    def num_frames(self, index: int) -> int:
        """Decoded frame count of video ``index`` (before the stride)."""
        return self.videos[index][1]

    def caption(self, index: int) -> str:
        """Text of the sidecar ``<name>.txt`` next to the video, stripped; "" when there is none."""
        side = (self.root / self.videos[index][0]).with_suffix(".txt")
        try:
            return side.read_text(encoding="utf-8").strip()
        except (FileNotFoundError, UnicodeDecodeError, OSError):
            return ""

    def __len__(self) -> int:
        return len(self.videos)

    # -------------------------------------------------------------------------------------------- sample
    def _load(self, epoch: int, index: int) -> dict:
        rel, frames = self.videos[index]
        total = self._strided(frames)
        generator = sample_generator(self.seed, epoch, index, STREAM_MASK)
        length, start = total, 0
        if self.clip_length is not None:
            length = min(self.clip_length, total)
            start = int(torch.randint(0, total - length + 1, (), generator=generator))
        mask = self.sampler(length, generator)
        source = (start + mask.frame_idx) * self.frame_stride  # frame numbers in the file
        raw = torch.from_numpy(self._read(rel, source.tolist()))  # (n, h, w, 3)
        clip = rearrange(raw, "t h w c -> t c h w").float() / 127.5 - 1.0
        clip = resize_center_crop(clip, self.image_size).clamp(-1.0, 1.0)
        k, n = self.max_frames, len(mask)
        video = torch.zeros(k, 3, self.image_size, self.image_size)
        video[:n] = clip
        return {
            "video": video,
            "frame_idx": pad_frame_idx(mask.frame_idx, k),
            "observed": pad_bool(mask.observed, k),
            "valid": pad_bool(torch.ones(n, dtype=torch.bool), k),
            "caption": self.caption(index),
            "index": torch.tensor(index),
            "source_idx": torch.cat([source, torch.full((k - n,), -1, dtype=torch.long)]),
        }

    def _read(self, rel: str, indices: list[int]):
        """Frames ``indices`` of ``rel``; files much larger than ``image_size`` are decoded smaller (decord), and a
        warning names each one that still decodes at full size, with its cost."""
        path = self.root / rel
        if rel not in self._frame_sizes:
            self._frame_sizes[rel] = frame_size(path, self.backend)
        h, w = self._frame_sizes[rel]
        frames = read_frames(path, indices, self.backend, decode_size(h, w, self.image_size))
        fh, fw = frames.shape[1:3]
        if min(fh, fw) > 2 * self.image_size and rel not in self._warned_big:
            self._warned_big.add(rel)
            mb = len(indices) * fh * fw * 3 * 9 / 2**20  # uint8 frames, float copy, resize buffers
            log.warning(
                "%s: %dx%d frames are decoded at full size for %dx%d samples (~%.0f MB and a full-size resize per "
                "sample; only decord decodes at a smaller size); to train faster, re-encode the folder smaller "
                "(e.g. ffmpeg -i IN -vf scale=-2:%d OUT)",
                rel, fw, fh, self.image_size, self.image_size, mb, 2 * self.image_size,
            )
        return frames

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """Sample for ``index`` or ``(epoch, index)``; see docs/data.md for the dict.

        A video that fails to decode here is logged, remembered, and replaced by the next readable video in
        index order (deterministic), so training never stops on it.
        """
        epoch, index = split_key(key)
        n = len(self.videos)
        if not 0 <= index < n:
            raise IndexError(f"index: expected 0 <= index < {n}, got {index}")
        for step in range(n):
            j = (index + step) % n
            if j in self._bad:
                continue
            try:
                return self._load(epoch, j)
            except (DecodeError, OSError) as err:
                self._bad.add(j)
                log.warning(
                    "skipping unreadable video %s (%s); %d skipped so far",
                    self.videos[j][0],
                    err,
                    len(self._bad),
                )
        raise RuntimeError(f"root: every video under {str(self.root)!r} failed to decode")
