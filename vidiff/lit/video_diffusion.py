"""`VideoDiffusion`: the Lightning module that trains a video denoiser with FDM-style frame masks.

It composes pure-torch parts and owns no algorithm itself: a :class:`~vidiff.diffusion.NoiseSchedule`, the
denoiser (:class:`~vidiff.nn.unet.SpaceTimeUNet` or any module with its call signature), an optional frozen
autoencoder (latent diffusion), an optional text encoder (captions, classifier-free guidance), :class:`EMA`
weights, and the diffusion loss and samplers of :mod:`vidiff.diffusion`.

Training (per batch of ``k`` frames per video): observed frames stay clean (the net sees them at t = 0), latent
frames are noised, and the loss covers latent, valid frames only. Validation logs the same loss with fixed noise
on the EMA weights; :class:`vidiff.lit.callbacks.SampleVideos` turns validation batches into sample videos.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from vidiff.arguments import check_int
from vidiff.diffusion import PREDICTIONS, NoiseSchedule, diffusion_loss
from vidiff.diffusion.timesteps import TIMESTEP_SAMPLING, draw_timesteps
from vidiff.lit.ema import EMA
from vidiff.lit.loss_guard import LossGuard
from vidiff.io.checkpoint import build_module
from vidiff.lit.parts import build_callable, eval_mode, is_plain, module_spec
from vidiff.metrics.context import DEFAULT_LEVELS, context_use, prediction_mask
from vidiff.nn.text import TextEncoder
from vidiff.nn.unet import SpaceTimeUNet
from vidiff.pipelines import DEFAULT_SPACING, Conditioning, SamplerSettings, VideoModel, fill_frames

log = logging.getLogger(__name__)

NONFINITE_POLICIES = ("error", "skip")


def _frames(mask: torch.Tensor) -> torch.Tensor:
    """(b, t) -> (b, t, 1, 1, 1), to broadcast a per-frame mask over videos."""
    return mask[:, :, None, None, None]


class VideoDiffusion(pl.LightningModule):
    """Video diffusion model with frame masks, EMA, optional latent space and text conditioning.

    Args:
        net: the denoiser ``net(x (b,t,c,h,w), t (b,), frame_idx (b,t), observed (b,t), context) -> (b,t,c,h,w)``,
            or its ``{class_path, init_args}`` mapping (how it is stored in checkpoints).
        image_size: frame height and width in pixels.
        channels: pixel channels of the videos.
        max_frames: frames per training sample (``k``).
        schedule: noise schedule kind (``linear``, ``scaled_linear``, ``cosine``).
        num_timesteps: training timesteps T.
        zero_terminal_snr: rescale the schedule to zero terminal SNR (use with ``prediction: v``).
        prediction: what the net predicts: ``eps``, ``x0`` or ``v``.
        min_snr_gamma: min-SNR loss weighting gamma (e.g. 5), or None for the plain MSE.
        timestep_sampling: training timestep distribution, ``uniform`` or ``logit_normal``
            (:mod:`vidiff.diffusion.timesteps`).
        timestep_mean, timestep_std: location and scale of ``logit_normal`` (mean > 0: more high-noise steps).
        frame_noise: share of training samples whose frames each draw their own timestep (Diffusion Forcing,
            Chen et al. 2024) instead of one shared by the sample's latent frames; 0 (default): all shared.
        history_drop: probability per sample that its observed frames are dropped (history dropout, for
            history guidance's unconditional branch): they are shown as in that branch at sampling, as pure
            noise at the last timestep and not marked observed, and are not in the loss. 0 (default): never.
        text_encoder: caption encoder (``encode(list[str]) -> (b, L, d)``, ``null_embedding(b)``) or None.
        cond_drop_prob: probability of replacing a caption by the null embedding in training (for CFG).
        autoencoder_ckpt: file of a frozen autoencoder (``vidiff.nn.autoencoder.save_autoencoder``); the model
            then works on its latents. None: pixel space.
        optimizer: optimizer factory over the trainable parameters.
        lr_scheduler: learning-rate scheduler factory (stepped every optimizer step), or None.
        ema_decay: EMA decay in [0, 1), or None for no EMA (sampling and validation then use the raw weights).
        ema_warmup: ramp the EMA decay up as ``(1 + n) / (10 + n)`` over the first updates.
        on_nonfinite: on a NaN/inf training loss (or a loss spike, see ``loss_spike_factor``), ``error`` (stop
            the run) or ``skip`` (skip the step: no weight or EMA update, no ``train/loss`` logged).
        max_consecutive_skips: with ``skip``, this many skipped steps in a row stop the run with an error.
        loss_spike_factor: a finite training loss above this times the median of the last 100 losses counts
            as non-finite (once 20 losses are recorded); None: off (:mod:`vidiff.lit.loss_guard`).
        val_seed: seed of the fixed validation noise.
        init_weights: start from the sampling weights (EMA when present) of this checkpoint or ``vidiff export``
            file, e.g. the reference model, instead of a random net: fine-tuning. The net configs must match;
            the optimizer, step count and EMA start afresh (resuming a run is ``--ckpt_path last`` instead).
    """

    def __init__(
        self,
        net: SpaceTimeUNet,
        image_size: int = 32,
        channels: int = 3,
        max_frames: int = 8,
        schedule: str = "linear",
        num_timesteps: int = 1000,
        zero_terminal_snr: bool = False,
        prediction: str = "eps",
        min_snr_gamma: float | None = None,
        timestep_sampling: str = "uniform",
        timestep_mean: float = 0.0,
        timestep_std: float = 1.0,
        frame_noise: float = 0.0,
        history_drop: float = 0.0,
        text_encoder: TextEncoder | None = None,
        cond_drop_prob: float = 0.1,
        autoencoder_ckpt: str | None = None,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
        ema_decay: float | None = 0.999,
        ema_warmup: bool = True,
        on_nonfinite: str = "error",
        val_seed: int = 1234,
        max_consecutive_skips: int = 20,
        loss_spike_factor: float | None = None,
        init_weights: str | None = None,
    ) -> None:
        super().__init__()
        with warnings.catch_warnings():  # modules passed as objects are recorded by their config just below
            warnings.filterwarnings("ignore", message=r"Attribute '\w+' is an instance of `nn.Module`")
            self.save_hyperparameters()
        self._plain_hparams(net, text_encoder)
        self.image_size = check_int("image_size", image_size)
        self.channels = check_int("channels", channels)
        self.max_frames = check_int("max_frames", max_frames)
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction: expected one of {list(PREDICTIONS)}, got {prediction!r}")
        if on_nonfinite not in NONFINITE_POLICIES:
            raise ValueError(
                f"on_nonfinite: expected one of {list(NONFINITE_POLICIES)}, got {on_nonfinite!r}"
            )
        if not 0.0 <= cond_drop_prob <= 1.0:
            raise ValueError(f"cond_drop_prob: expected a probability in [0, 1], got {cond_drop_prob}")
        if min_snr_gamma is not None and not min_snr_gamma > 0:
            raise ValueError(f"min_snr_gamma: expected a positive number or null, got {min_snr_gamma}")
        if timestep_sampling not in TIMESTEP_SAMPLING:
            raise ValueError(
                f"timestep_sampling: expected one of {list(TIMESTEP_SAMPLING)}, got {timestep_sampling!r}"
            )
        if not timestep_std > 0:
            raise ValueError(f"timestep_std: expected a positive number, got {timestep_std}")
        self.timestep_sampling = (timestep_sampling, float(timestep_mean), float(timestep_std))
        if not 0.0 <= frame_noise <= 1.0:
            raise ValueError(f"frame_noise: expected a share in [0, 1], got {frame_noise}")
        self.frame_noise = float(frame_noise)
        if not 0.0 <= history_drop <= 1.0:
            raise ValueError(f"history_drop: expected a probability in [0, 1], got {history_drop}")
        self.history_drop = float(history_drop)
        self.schedule = NoiseSchedule(
            schedule, check_int("num_timesteps", num_timesteps), zero_terminal_snr=zero_terminal_snr
        )
        self.prediction, self.min_snr_gamma, self.cond_drop_prob = prediction, min_snr_gamma, cond_drop_prob
        self.on_nonfinite, self.val_seed = on_nonfinite, val_seed
        self.loss_guard = LossGuard(max_consecutive_skips, loss_spike_factor)
        self.optimizer_factory = build_callable(optimizer, "optimizer")
        self.lr_scheduler_factory = build_callable(lr_scheduler, "lr_scheduler")
        self.net = build_module(net, "net")
        self.text_encoder = (
            None if text_encoder is None else build_module(text_encoder, "text_encoder", TextEncoder)
        )
        self.autoencoder = None if autoencoder_ckpt is None else self._load_autoencoder(autoencoder_ckpt)
        if init_weights is not None:
            self._init_from(init_weights)
        self.ema = None if ema_decay is None else EMA(self._trained(), ema_decay, ema_warmup)

    # ----------------------------------------------------------------------------------------------- parts
    def _plain_hparams(self, net: Any, text_encoder: Any) -> None:
        """Keep only plain data in ``hparams`` so checkpoints load with ``torch.load(weights_only=True)``.

        Modules passed as objects are recorded by their ``{class_path, init_args}`` when they expose ``.config``.
        """
        for name, part in (("net", net), ("text_encoder", text_encoder)):
            if isinstance(part, nn.Module):
                spec = module_spec(part)
                if spec is not None:
                    self.hparams[name] = spec
        for key in [k for k, v in self.hparams.items() if not is_plain(v)]:
            log.debug("hparam %s is not plain data; it is not stored in checkpoints", key)
            del self.hparams[key]

    def _load_autoencoder(self, path: str) -> nn.Module:
        from vidiff.pipelines.load import frozen_autoencoder

        return frozen_autoencoder(path, self.channels)

    def _init_from(self, path: str) -> None:
        """Copy the trained modules of another model's sampling weights into this one (``init_weights``)."""
        from vidiff.lit.load import load_model

        try:
            source = load_model(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"init_weights: no checkpoint or weights file at {path!r}") from None
        mine, theirs = self._trained(), source._trained()
        if mine.keys() != theirs.keys():
            raise ValueError(
                f"init_weights: {path} trains {sorted(theirs.keys())}, this model {sorted(mine.keys())}"
            )
        try:
            mine.load_state_dict(theirs.state_dict(), strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[-1].strip()
            raise ValueError(
                f"init_weights: {path} holds a net of another shape ({first}); use its net settings "
                f"(`vidiff export` files and checkpoints store them under hyper_parameters.net)"
            ) from None
        log.info("init_weights: started from %s", path)

    def _trained(self) -> nn.ModuleDict:
        """The trained modules (the net and a trainable text encoder) as one tree: what EMA averages."""
        parts = {"net": self.net}
        if self.text_encoder is not None and any(p.requires_grad for p in self.text_encoder.parameters()):
            parts["text_encoder"] = self.text_encoder
        return nn.ModuleDict(parts)

    def sampling_parts(self, use_ema: bool = True) -> tuple[nn.Module, TextEncoder | None]:
        """``(net, text_encoder)`` to sample with: the EMA copies when ``use_ema`` and EMA is on."""
        if not use_ema or self.ema is None:
            return self.net, self.text_encoder
        shadow = self.ema.shadow
        return shadow["net"], shadow["text_encoder"] if "text_encoder" in shadow else self.text_encoder  # noqa: SIM401

    def train(self, mode: bool = True) -> VideoDiffusion:
        super().train(mode)
        if self.autoencoder is not None:
            self.autoencoder.eval()  # frozen
        return self

    # ---------------------------------------------------------------------------------------------- tensors
    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Pixels ``(b, t, c, h, w)`` in [-1, 1] -> what the net models (latents, or the pixels themselves)."""
        return video if self.autoencoder is None else self.autoencoder.encode_video(video)

    @torch.no_grad()
    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`encode`: ``(b, t, c', h', w')`` -> pixels ``(b, t, c, h, w)`` clamped to [-1, 1]."""
        x = x if self.autoencoder is None else self.autoencoder.decode_video(x)
        return x.float().clamp(-1, 1)

    def _check_batch(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
        missing = [k for k in ("video", "frame_idx", "observed", "valid") if k not in batch]
        if missing:
            raise ValueError(
                f"batch: missing keys {missing}; a vidiff batch has video, frame_idx, observed, valid"
            )
        video, frame_idx = batch["video"], batch["frame_idx"]
        observed, valid = batch["observed"].bool(), batch["valid"].bool()
        _, k, c, h, w = video.shape
        if (c, h, w) != (self.channels, self.image_size, self.image_size) or k > self.max_frames:
            raise ValueError(
                f"batch video: expected (b, <= max_frames={self.max_frames}, channels={self.channels}, "
                f"image_size={self.image_size}, {self.image_size}) from the model config, got {tuple(video.shape)}; "
                "make model.init_args and data.init_args agree"
            )
        return video, frame_idx, observed, valid

    def context(
        self,
        captions: list[str] | None,
        b: int,
        drop_prob: float = 0.0,
        text: TextEncoder | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor | None:
        """Text context ``(b, L, d)`` with each caption replaced by the null embedding with ``drop_prob``."""
        text = self.text_encoder if text is None else text
        if text is None:
            return None
        captions = list(captions) if captions is not None else [""] * b
        ctx = text.encode(captions)
        if drop_prob > 0:
            drop = torch.rand(b, device=ctx.device, generator=generator) < drop_prob
            ctx = torch.where(drop[:, None, None], text.null_embedding(b).to(ctx), ctx)
        return ctx

    def loss(
        self,
        batch: Mapping[str, Any],
        net: nn.Module,
        text: TextEncoder | None = None,
        drop_prob: float = 0.0,
        generator: torch.Generator | None = None,
        history_drop: float = 0.0,
    ) -> torch.Tensor:
        """Diffusion loss of one batch: latent, valid frames noised and scored; observed frames given clean.

        ``drop_prob`` (captions) and ``history_drop`` (observed frames) are the training-time dropouts;
        validation and test losses use neither."""
        video, frame_idx, observed, valid = self._check_batch(batch)
        x0 = self.encode(video)
        b = x0.shape[0]
        kind, mean, std = self.timestep_sampling
        t = draw_timesteps(kind, b, self.schedule.num_timesteps, x0.device, generator, mean, std)
        if self.frame_noise > 0:  # some samples: one timestep per frame (drawn only then: shared runs unchanged)
            k = x0.shape[1]
            own = draw_timesteps(kind, b * k, self.schedule.num_timesteps, x0.device, generator, mean, std)
            pick = torch.rand(b, device=x0.device, generator=generator) < self.frame_noise
            t = torch.where(pick[:, None], own.view(b, k), t[:, None].expand(b, k))
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        x_in = torch.where(_frames(observed), x0, self.schedule.q_sample(x0, t, noise))
        ctx = self.context(batch.get("caption"), b, drop_prob, text, generator)
        shown = observed
        if history_drop > 0:  # drawn only then: runs without history dropout unchanged
            x_in, t, shown = self._drop_history(x_in, t, observed, noise, history_drop, generator)
        pred = net(x_in, t, frame_idx, shown, ctx)
        weight = _frames(valid & ~observed)  # dropped observed frames are pure noise: nothing to learn there
        return diffusion_loss(pred, x0, noise, t, self.schedule, self.prediction, weight, self.min_snr_gamma)

    def _drop_history(
        self, x_in: torch.Tensor, t: torch.Tensor, observed: torch.Tensor, noise: torch.Tensor, p: float,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """History dropout: with probability ``p`` per sample, its observed frames become what history
        guidance's unconditional branch shows (:func:`vidiff.pipelines.denoiser.history_guided`): their pure
        noise at the last timestep, not marked observed. Returns ``(x_in, t, observed shown to the net)``."""
        b, k = observed.shape
        drop = torch.rand(b, device=x_in.device, generator=generator) < p
        hidden = observed & drop[:, None]
        if not bool(hidden.any()):
            return x_in, t, observed
        top = self.schedule.num_timesteps - 1
        t_frames = t if t.ndim == 2 else t[:, None].expand(b, k)
        t = torch.where(hidden, torch.full_like(t_frames, top), t_frames)
        return torch.where(_frames(hidden), noise, x_in), t, observed & ~hidden

    # ------------------------------------------------------------------------------------------- lightning
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor | None:
        loss = self.loss(batch, self.net, drop_prob=self.cond_drop_prob, history_drop=self.history_drop)
        value = float(loss.detach())  # one sync per step, as any finiteness check needs
        problem = self.loss_guard.problem(value)
        if self.trainer.strategy.reduce_boolean_decision(problem is None, all=True):
            self.loss_guard.accept(value)
            self.log(
                "train/loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(batch["video"])
            )
            return loss
        reason = problem or "a non-finite or spiking training loss on another rank"
        where = f"at global step {self.global_step}, batch {batch_idx}"
        if self.on_nonfinite == "error":
            raise FloatingPointError(
                f"{reason} {where}: stopping. Weights, EMA and the last checkpoint are those of the last good step "
                "(set model.init_args.on_nonfinite=skip to skip such steps instead)"
            )
        log.warning("%s %s: skipping the step (on_nonfinite=skip)", reason, where)
        self._skipped_step = True
        self._hide_step_metric("train/loss")
        self.log("train/skipped_steps", 1.0, reduce_fx="sum", on_step=False, on_epoch=True)
        self.loss_guard.skip(reason, where)
        return None

    def _hide_step_metric(self, name: str) -> None:
        """Keep Lightning from logging the previous step's value of ``name`` again for this (skipped) step."""
        results = getattr(self.trainer, "_results", None)
        for metric in [] if results is None else results.values():
            if getattr(getattr(metric, "meta", None), "name", None) == name:
                metric.has_reset = True  # excluded until the next ``self.log(name, ...)``

    def on_train_end(self) -> None:
        if self.on_nonfinite == "skip" and self.trainer.is_global_zero:
            (log.warning if self.loss_guard.skipped else log.info)("on_nonfinite=skip: %s", self.loss_guard.summary())

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        self._skipped_step = False
        super().optimizer_step(*args, **kwargs)  # runs the closure: training_step and backward
        if self.ema is not None and not self._skipped_step:
            self.ema.update(self._trained())

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        generator = torch.Generator(device=self.device).manual_seed(self.val_seed + batch_idx)
        net, text = self.sampling_parts()
        with eval_mode(net, text):
            loss = self.loss(batch, net, text, generator=generator)
        self.log(
            "val/loss", loss, prog_bar=True, on_epoch=True, sync_dist=True, batch_size=len(batch["video"])
        )
        return loss

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        generator = torch.Generator(device=self.device).manual_seed(self.val_seed + batch_idx)
        net, text = self.sampling_parts()
        with eval_mode(net, text):
            loss = self.loss(batch, net, text, generator=generator)
        self.log("test/loss", loss, on_epoch=True, sync_dist=True, batch_size=len(batch["video"]))
        return loss

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        return self.generate(batch, seed=self.val_seed + batch_idx)

    def configure_optimizers(self) -> Any:
        params = [p for p in self._trained().parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params)
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("state_dict", {})
        has_ema = any(key.startswith("ema.") for key in state)
        if self.ema is not None and not has_ema:
            raise RuntimeError(
                "checkpoint: has no EMA state (no 'ema.*' weights) but the model has ema_decay="
                f"{self.ema.decay}; refusing to fall back silently to the raw weights. Load it with ema_decay=null "
                "if it was trained without EMA."
            )

    # ------------------------------------------------------------------------------------------ diagnostics
    @torch.no_grad()
    def context_use(
        self,
        batch: Mapping[str, Any],
        levels: Sequence[float] = DEFAULT_LEVELS,
        num_observed: int | None = None,
        seed: int = 0,
        use_ema: bool = True,
    ) -> dict[float, float]:
        """Context-use ratio per noise level on these clips (:func:`vidiff.metrics.context.context_use`).

        The clips' earliest ``num_observed`` frames (default half) are observed, the rest latent; the batch's own
        ``observed`` is not used. 1.0: the observed frames are ignored.
        """
        video, frame_idx, _, valid = self._check_batch(batch)
        x0 = self.encode(video)
        net, text = self.sampling_parts(use_ema)
        with eval_mode(net, text):
            ctx = self.context(batch.get("caption"), x0.shape[0], text=text)
            observed = prediction_mask(frame_idx, num_observed)
            return context_use(
                net, self.schedule, self.prediction, x0, frame_idx, observed, valid, levels, ctx, seed
            )

    # -------------------------------------------------------------------------------------------- sampling
    def sampling_model(self, use_ema: bool = True) -> VideoModel:
        """The parts sampling uses (:class:`vidiff.pipelines.VideoModel`; the EMA copies when ``use_ema``)."""
        net, text = self.sampling_parts(use_ema)
        return VideoModel.from_module(self, net=net, text_encoder=text)

    @torch.no_grad()
    def generate(
        self,
        batch: Mapping[str, Any],
        sampler: str = "ddim",
        steps: int = 25,
        eta: float = 0.0,
        guidance_scale: float = 1.0,
        spacing: str = DEFAULT_SPACING,
        seed: int = 0,
        use_ema: bool = True,
    ) -> torch.Tensor:
        """Fill the latent frames of a batch, each clip one stage of :func:`vidiff.pipelines.fill_frames` (the path
        of ``vidiff sample``: the same clip, seed and settings give the same frames); observed frames are given.

        Returns:
            pixels ``(b, k, c, h, w)`` in [-1, 1]: observed frames reproduced, latent ones sampled.
        """
        video, frame_idx, observed, valid = self._check_batch(batch)
        model = self.sampling_model(use_ema)
        text = model.text_encoder
        with eval_mode(model.net, text):
            ctx = self.context(batch.get("caption"), video.shape[0], text=text)
            null = None if text is None else text.null_embedding(1)
            settings = SamplerSettings(sampler, steps, eta, spacing, guidance_scale)
            return fill_frames(model, video, frame_idx, observed, valid, seed=seed, settings=settings,
                               conditioning=Conditioning(ctx, null), batch_budget=video.shape[0])
