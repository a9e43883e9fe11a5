"""What a generation call is given, as small dataclasses shared by the executors and :class:`VideoPipeline`.

- :class:`GivenFrames`: frames the user fixes (a clip to continue, keyframes) and their positions;
- :class:`Conditioning`: the text contexts (prompt, and what classifier-free guidance pushes away from);
- :class:`ResumeOptions`: where the long-video executor saves its state and whether it continues it;
- :class:`RunOptions`: how the work is done (batching, progress bar, decoder chunks), never what comes out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class GivenFrames:
    """Frames fixed by the user.

    Attributes:
        frames: ``(n or 1, g, c, h, w)``: pixels in [-1, 1] for :meth:`VideoPipeline.run`, model space for the
            executors (:meth:`VideoModel.encode` maps one to the other).
        indices: their g positions in the video.
    """

    frames: torch.Tensor
    indices: Sequence[int] = field(default=())

    def check(self, num_videos: int) -> list[int]:
        """The positions as a list of ints, after checking the frames against them and ``num_videos``."""
        indices = [int(i) for i in self.indices]
        frames = self.frames
        if frames.ndim != 5 or frames.shape[1] != len(indices):
            raise ValueError(f"given: expected (n or 1, {len(indices)}, c, h, w), got {tuple(frames.shape)}")
        if frames.shape[0] not in (1, num_videos):
            raise ValueError(f"given: batch must be 1 or num_videos={num_videos}, got {frames.shape[0]}")
        return indices


@dataclass
class Conditioning:
    """The contexts of one generation call.

    Attributes:
        context: ``(n, L, d)`` the prompt's context (mixed and strength-scaled for text-to-image), or None (no
            text encoder).
        uncond: ``(n or 1, L, d)`` what guidance pushes away from (negative prompt or null context), or None.
    """

    context: torch.Tensor | None = None
    uncond: torch.Tensor | None = None


@dataclass(frozen=True)
class ResumeOptions:
    """Resumable state of the long-video executor.

    Attributes:
        state_dir: folder for ``state.safetensors`` / ``state.json`` (saved after every wave), or None.
        resume: continue from ``state_dir``'s state when it exists (same settings required).
        stop_after_wave: raise :class:`vidiff.pipelines.Interrupted` after saving this wave (tests).
    """

    state_dir: str | os.PathLike | None = None
    resume: bool = False
    stop_after_wave: int | None = None


@dataclass(frozen=True)
class RunOptions:
    """How the executors work; the videos are the same for any of these.

    Attributes:
        batch_budget: at most this many stage x video items (windows, per-frame schemes) per forward pass.
        progress: show a tqdm bar.
        decode_chunk: frames per autoencoder call (latent models).
    """

    batch_budget: int = 16
    progress: bool = False
    decode_chunk: int = 16
