"""Training callbacks: exact resume (RNG and data position) and sample videos at validation.

:class:`ResumeState` makes ``--ckpt_path last`` resume exactly. Lightning's checkpoint holds neither RNG state
nor the data-loader position, so:

* at the start of every training batch, torch / NumPy / Python RNGs are re-seeded from ``(seed, batch counter,
  rank)``: the randomness of a step (diffusion noise, timesteps, caption dropout, dropout layers) is a pure
  function of its position in the run, whatever ran before it (validation, sampling, a restart). The RNG states are
  also saved and restored, for code that draws outside training steps.
* the data position is saved by vidiff's data modules (their ``state_dict``): the train sampler's order is a
  pure function of ``(seed, epoch)`` and a resumed epoch starts after the batches already consumed.
"""

from __future__ import annotations

import logging
import os
import random
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import TensorBoardLogger

from vidiff.arguments import check_int
from vidiff.pipelines.stages import DEFAULT_STEPS

log = logging.getLogger(__name__)


def seed_step(seed: int, counter: int, rank: int) -> None:
    """Seed torch (CPU and CUDA), NumPy and ``random`` from ``(seed, counter, rank)`` (NumPy's SeedSequence)."""
    a, b = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(counter), int(rank)]).generate_state(2)
    torch.manual_seed((int(a) << 32 | int(b)) & 0x7FFF_FFFF_FFFF_FFFF)
    np.random.seed(int(a))
    random.seed(int(b))


def rng_state() -> dict[str, Any]:
    """The global RNG states as tensors and plain data (loadable with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": list(random.getstate()[1]),
        "python_version_gauss": [random.getstate()[0], random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    version, gauss = state["python_version_gauss"]
    random.setstate((version, tuple(state["python"]), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def model_step(trainer: pl.Trainer) -> int:
    """The training step of the weights in use: the loop's while fitting, else the checkpoint's own (validate and
    predict do not restore the loop, so ``trainer.global_step`` is 0 there)."""
    if trainer.state.fn == "fit" or not trainer.ckpt_path:
        return trainer.global_step
    from vidiff.io.checkpoint import read_checkpoint

    return int(read_checkpoint(trainer.ckpt_path).get("global_step", trainer.global_step))


class ResumeState(Callback):
    """Per-step RNG seeding and saved RNG states, so that an interrupted and resumed run equals an uninterrupted one.

    The data position is the data module's business: vidiff's data modules save the epoch and the batches consumed
    in their ``state_dict`` (which Lightning stores in checkpoints) and restart the sampler there.

    Args:
        seed: base seed of the per-step RNG seeding; default: the run's ``seed_everything`` value
            (``PL_GLOBAL_SEED``), else 0.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.total_batches = 0  # training batches started in the whole run

    @property
    def state_key(self) -> str:
        return "ResumeState"

    def _base_seed(self) -> int:
        return int(self.seed if self.seed is not None else os.environ.get("PL_GLOBAL_SEED", "0"))

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        seed_step(self._base_seed(), self.total_batches, trainer.global_rank)
        self.total_batches += 1

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self._base_seed(), "total_batches": self.total_batches, "rng": rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seed = int(state_dict["seed"])
        self.total_batches = int(state_dict["total_batches"])
        set_rng_state(state_dict["rng"])


class LossSummary(Callback):
    """Keeps the training losses of the first and the last ``window`` steps (on device, no per-step sync) so the
    end of a run can say how far the loss came down."""

    def __init__(self, window: int = 50) -> None:
        self.window = window
        self.first: list[torch.Tensor] = []
        self.last: deque[torch.Tensor] = deque(maxlen=window)
        self.count = 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        loss = loss.detach().float()
        if len(self.first) < self.window:
            self.first.append(loss)
        self.last.append(loss)
        self.count += 1

    def summary(self) -> tuple[float, float, int] | None:
        """``(first, last, n)``: mean training loss of the first and of the last ``n`` steps of this process, where
        ``n = min(window, steps // 2)`` (at least 1) so the two never overlap in short runs; None before any step."""
        if not self.first:
            return None
        n = max(1, min(self.window, self.count // 2))
        return float(torch.stack(self.first[:n]).mean()), float(torch.stack(list(self.last)[-n:]).mean()), n


def _take(batch: Mapping[str, Any], n: int) -> dict[str, Any]:
    """The first ``n`` samples of a batch dict, detached on the CPU."""
    return {
        k: (
            v[:n].detach().cpu()
            if isinstance(v, torch.Tensor)
            else list(v)[:n]
            if isinstance(v, (list, tuple))
            else v
        )
        for k, v in batch.items()
    }


def _to(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class SampleVideos(Callback):
    """At validation, sample the latent frames of the first validation videos and save them next to the real ones.

    Acts on modules with a ``generate(batch, ...)`` method (:class:`~vidiff.lit.VideoDiffusion`); others are left alone.

    Every ``every_n_validations``-th validation (skipping Lightning's sanity check), the first ``num_videos`` of the
    first validation batch are completed by ``VideoDiffusion.generate`` (EMA weights, observed frames given) and
    written as ``<default_root_dir>/samples/step_NNNNNN/sample_II.mp4`` (only valid frames, in frame order)
    and logged to TensorBoard as a grid of the same frames: each frame is labelled ``real | model`` with its
    frame number, observed frames framed in orange (:func:`vidiff.io.compare_frames`).

    Args:
        every_n_validations: sample at every n-th validation.
        num_videos: videos per validation.
        sampler: a name of :data:`vidiff.diffusion.SAMPLERS` (``ddpm``, ``ddim``, ``dpmpp_2m``, ``unipc``, ...).
        steps: sampling steps (default :data:`vidiff.pipelines.DEFAULT_STEPS`, as the commands' ``--steps``).
        guidance: classifier-free guidance scale (text-conditioned models), as the commands' ``--guidance``.
        fps: frame rate of the mp4 files.
        seed: noise seed (the same every time, so successive samples are comparable).
        folder: sub-folder of ``default_root_dir`` for the videos.
        guidance_scale: the earlier name of ``guidance``, still accepted in configs.
    """

    def __init__(
        self,
        every_n_validations: int = 1,
        num_videos: int = 4,
        sampler: str = "ddim",
        steps: int = DEFAULT_STEPS,
        guidance: float = 1.0,
        fps: float = 4.0,
        seed: int = 0,
        folder: str = "samples",
        guidance_scale: float | None = None,
    ) -> None:
        for name, value in (
            ("every_n_validations", every_n_validations),
            ("num_videos", num_videos),
            ("steps", steps),
        ):
            check_int(f"samples.{name}", value)
        self.every_n_validations, self.num_videos = every_n_validations, num_videos
        if guidance_scale is not None:
            if guidance != 1.0 and guidance != guidance_scale:
                raise ValueError(f"samples.guidance_scale: the old name of samples.guidance; give one of "
                                 f"them, got guidance={guidance} and guidance_scale={guidance_scale}")
            guidance = guidance_scale
        self.sampler, self.steps, self.guidance = sampler, steps, guidance
        self.fps, self.seed, self.folder = fps, seed, folder
        self._batch: dict[str, Any] | None = None
        self._validations = 0
        self.last_folder: Path | None = None

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx == 0 and dataloader_idx == 0 and not trainer.sanity_checking:
            self._batch = _take(batch, self.num_videos)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        batch, self._batch = self._batch, None
        if batch is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        if not hasattr(pl_module, "generate"):
            return
        self._validations += 1
        if (self._validations - 1) % self.every_n_validations:
            return
        fake = pl_module.generate(
            _to(batch, pl_module.device),
            sampler=self.sampler,
            steps=self.steps,
            guidance_scale=self.guidance,
            seed=self.seed,
        ).cpu()
        self.last_folder = self.write(Path(trainer.default_root_dir), model_step(trainer), batch, fake)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                from vidiff.io import make_grid

                for i in range(len(fake)):
                    grid = make_grid(labelled_frames(batch, fake, i), nrow=8, padding=4, pad_value=200)
                    logger.experiment.add_image(f"samples/{i:02d}", grid, trainer.global_step,
                                                dataformats="HWC")

    def write(self, root: Path, step: int, batch: Mapping[str, Any], fake: torch.Tensor) -> Path:
        """Write the side-by-side mp4s (and captions) of one validation; returns their folder."""
        folder = root / self.folder / f"step_{step:06d}"
        write_side_by_side(folder, batch, fake, self.fps)
        log.info("step %d: wrote %d sample videos to %s", step, len(fake), folder)
        return folder


def write_side_by_side(
    folder: Path, batch: Mapping[str, Any], fake: torch.Tensor, fps: float, prefix: str = "sample", start: int = 0
) -> list[Path]:
    """``folder/PREFIX_II.mp4`` per video (:func:`labelled_frames`: left real, right generated, labelled,
    observed frames framed in orange; valid frames in frame order), numbered from ``start``, and the captions
    (if any) appended to ``folder/captions.txt``."""
    from vidiff.io.atomic import write_text_atomic
    from vidiff.io.video import write_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(fake)):
        path = folder / f"{prefix}_{start + i:02d}.mp4"
        write_video(path, labelled_frames(batch, fake, i), fps=fps)
        paths.append(path)
    captions = batch.get("caption")
    if captions and any(captions):
        old = (folder / "captions.txt").read_text() if start and (folder / "captions.txt").is_file() else ""
        text = "".join(f"{prefix}_{start + i:02d}: {c}\n" for i, c in enumerate(captions))
        write_text_atomic(folder / "captions.txt", old + text)
    return paths


class PredictVideos(Callback):
    """``vidiff predict``: writes what ``predict_step`` generates for each batch (the data module's prediction
    masks) as ``<default_root_dir>/predictions/step_NNNNNN/predict_II.mp4`` (real | model, labelled;
    NNNNNN the checkpoint's step) and says where at the end."""

    def __init__(self, fps: float = 4.0, folder: str = "predictions") -> None:
        self.fps, self.folder = fps, folder
        self.count = 0
        self.last_folder: Path | None = None

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.count = 0
        self.last_folder = Path(trainer.default_root_dir) / self.folder / f"step_{model_step(trainer):06d}"

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not trainer.is_global_zero or not isinstance(outputs, torch.Tensor) or self.last_folder is None:
            return
        cpu = _take(batch, len(outputs))
        write_side_by_side(self.last_folder, cpu, outputs.detach().cpu().float(), self.fps, "predict", self.count)
        self.count += len(outputs)

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self.count:
            print(f"vidiff predict: wrote {self.count} videos to {self.last_folder}/ (real | model, observed "
                  "frames framed in orange)")


class ContextUse(Callback):
    """At every validation, log how much the model uses its observed frames (the context-use ratio).

    The first ``num_clips`` validation clips (fixed, so successive figures are comparable) get their earliest
    half of frames observed; :meth:`VideoDiffusion.context_use` compares the latent frames' x0 error with another
    clip's observed frames to the error with their own, at each noise level ``t/T`` in ``levels``, with fixed
    noise and the EMA weights. Logged as ``context_use/t0.80`` etc. (1.0: the context is ignored); the latest
    figures are kept in :attr:`last` for the end-of-fit summary. Modules without ``context_use`` are left alone.

    Args:
        levels: noise levels t/T.
        num_clips: validation clips to measure on (at least 2).
        seed: noise seed.
    """

    def __init__(self, levels: list[float] | None = None, num_clips: int = 8, seed: int = 0) -> None:
        check_int("context_use.num_clips", num_clips, 2)
        from vidiff.metrics.context import DEFAULT_LEVELS, level_timestep

        self.levels = list(DEFAULT_LEVELS if levels is None else levels)
        for level in self.levels:
            level_timestep(level, 1000)  # range check
        self.num_clips, self.seed = num_clips, seed
        self._clips: list[dict[str, Any]] = []
        self.last: dict[float, float] | None = None

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._clips = []

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        have = sum(len(c["video"]) for c in self._clips)
        if dataloader_idx == 0 and have < self.num_clips and isinstance(batch, Mapping) and "video" in batch:
            full = _full_clips(batch)  # clips with padding (short videos, FDM's masks) cannot be split in halves
            if len(full["video"]):
                self._clips.append(_take(full, self.num_clips - have))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        clips, self._clips = self._clips, []
        if trainer.sanity_checking or not hasattr(pl_module, "context_use") or not clips:
            return
        batch = _cat(clips)
        if len(batch["video"]) < 2 or batch["video"].shape[1] < 2:
            return
        self.last = pl_module.context_use(_to(batch, pl_module.device), self.levels, seed=self.seed)
        for level, ratio in self.last.items():
            pl_module.log(f"context_use/t{level:.2f}", ratio, on_epoch=True)


def _full_clips(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The samples of ``batch`` whose frames are all valid (every tensor indexed; lists filtered alike)."""
    keep = batch["valid"].all(dim=1) if "valid" in batch else torch.ones(len(batch["video"]), dtype=torch.bool)
    idx = keep.nonzero().flatten().tolist()
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor) and v.ndim and len(v) == len(keep):
            out[k] = v[keep]
        elif isinstance(v, (list, tuple)) and len(v) == len(keep):
            out[k] = [v[i] for i in idx]
        else:
            out[k] = v
    return out


def _cat(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate batches along the batch dimension (tensors and lists)."""
    out: dict[str, Any] = {}
    for key, value in batches[0].items():
        if isinstance(value, torch.Tensor):
            out[key] = torch.cat([b[key] for b in batches])
        elif isinstance(value, list):
            out[key] = [x for b in batches for x in b[key]]
    return out


def _frame_order(batch: Mapping[str, Any], i: int) -> torch.Tensor:
    """Indices of sample ``i``'s valid frames sorted by their position in the source video."""
    valid = batch["valid"][i].bool()
    slots = torch.nonzero(valid).flatten()
    return slots[torch.argsort(batch["frame_idx"][i][slots])]


def labelled_frames(batch: Mapping[str, Any], fake: torch.Tensor, i: int) -> np.ndarray:
    """Sample ``i``'s valid frames in frame order as labelled ``real | model`` uint8 ``(t', H, W, 3)`` frames,
    observed ones framed in orange (:func:`vidiff.io.compare_frames`)."""
    from vidiff.io import compare_frames

    order = _frame_order(batch, i)
    observed = batch["observed"][i][order] if "observed" in batch else torch.zeros(len(order), dtype=bool)
    return compare_frames(batch["video"][i][order].float().clamp(-1, 1), fake[i][order].float().clamp(-1, 1),
                          observed.tolist(), batch["frame_idx"][i][order].tolist())
