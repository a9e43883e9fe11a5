"""Training the KL autoencoder on video frames: reconstruction + KL (latent diffusion's first stage).

The loss is ldm's ``LPIPSWithDiscriminator`` without the perceptual and adversarial terms (nothing that
needs downloaded weights), divided by the number of pixels so the reconstruction term is a per-pixel mean:

    loss = mean_pixels |x - x_hat|^p + kl_weight * KL(q(z|x) || N(0, I)) / (c h w)

so ``kl_weight`` means what it means in ldm (1e-6 for Stable Diffusion's autoencoder). The latent
``scaling_factor`` can be re-estimated as ``1 / std(z)`` over training batches (ldm's ``scale_by_std``) and
is stored with the config in every checkpoint, so ``vidiff.nn.autoencoder.load_autoencoder(ckpt)`` returns
an autoencoder whose scaled latents have about unit variance.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from vidiff.arguments import check_int
from vidiff.nn.autoencoder import AutoencoderKL

__all__ = ["AutoencoderModule", "frames_of", "psnr"]

RECONSTRUCTION = ("l1", "l2")


def frames_of(batch: dict[str, Any]) -> Tensor:
    """The real frames ``(n, c, h, w)`` of a vidiff batch: ``video (b, t, c, h, w)`` where ``valid (b, t)``."""
    if "video" not in batch:
        raise ValueError(f"batch: expected a dict with 'video' (b, t, c, h, w), got keys {sorted(batch)}")
    video = batch["video"]
    if video.ndim != 5:
        raise ValueError(f"batch['video']: expected (b, t, c, h, w), got shape {tuple(video.shape)}")
    valid = batch.get("valid")
    if valid is None:
        return video.flatten(0, 1)
    return video[valid.bool()]


def psnr(x: Tensor, y: Tensor, data_range: float = 2.0) -> Tensor:
    """Mean over images of ``10 log10(range^2 / mse)``; images ``(n, c, h, w)`` in [-1, 1] (range 2)."""
    mse = (x - y).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return (10 * torch.log10(data_range**2 / mse)).mean()


class AutoencoderModule(pl.LightningModule):
    """LightningModule training an :class:`AutoencoderKL` on the frames of vidiff video batches.

    Args:
        autoencoder: the model (YAML: ``class_path: vidiff.nn.autoencoder.AutoencoderKL``); default: a small
            f=4 autoencoder (``ch=32, ch_mult=(1, 2, 2)``, 4 latent channels).
        reconstruction: ``"l1"`` or ``"l2"``.
        kl_weight: weight of the KL term (ldm convention, see the module docstring).
        lr: Adam learning rate (betas 0.5, 0.9 as ldm).
        sample_posterior: decode a posterior sample (True, as ldm) or the mode during training.
        max_frames_per_step: at most this many frames (randomly chosen) per training step (None: all).
        scale_by_std: track the latent variance and set ``scaling_factor = 1 / std`` in checkpoints.
    """

    def __init__(
        self,
        autoencoder: AutoencoderKL | None = None,
        reconstruction: str = "l1",
        kl_weight: float = 1e-6,
        lr: float = 2e-4,
        sample_posterior: bool = True,
        max_frames_per_step: int | None = None,
        scale_by_std: bool = True,
    ):
        super().__init__()
        if reconstruction not in RECONSTRUCTION:
            raise ValueError(f"reconstruction: expected one of {list(RECONSTRUCTION)}, got {reconstruction!r}")
        if kl_weight < 0 or lr <= 0:
            raise ValueError(f"kl_weight, lr: expected kl_weight >= 0 and lr > 0, got {kl_weight}, {lr}")
        if max_frames_per_step is not None:
            check_int("max_frames_per_step", max_frames_per_step, note=" or None")
        self.save_hyperparameters(ignore=["autoencoder"])
        if autoencoder is None:
            autoencoder = AutoencoderKL(ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=4, norm_groups=8)
        self.autoencoder = autoencoder
        self.reconstruction, self.kl_weight, self.lr = reconstruction, kl_weight, lr
        self.sample_posterior, self.max_frames_per_step = sample_posterior, max_frames_per_step
        self.scale_by_std = scale_by_std
        # running mean of E[z^2] (unscaled posterior samples): 1 / sqrt of it is the scaling factor
        self.register_buffer("latent_sq", torch.zeros(()))
        self.register_buffer("latent_count", torch.zeros((), dtype=torch.long))

    def losses(self, frames: Tensor, sample: bool) -> dict[str, Tensor]:
        """Loss terms for frames ``(n, c, h, w)`` in [-1, 1]: ``loss``, ``rec``, ``kl``, ``psnr``, latents ``z``."""
        posterior = self.autoencoder.encode(frames)
        z = posterior.sample() if sample else posterior.mode()
        recon = self.autoencoder.decode(z)
        diff = recon - frames
        rec = diff.abs().mean() if self.reconstruction == "l1" else diff.pow(2).mean()
        kl = posterior.kl().mean() / frames[0].numel()
        return {"loss": rec + self.kl_weight * kl, "rec": rec, "kl": kl, "psnr": psnr(recon.detach(), frames),
                "z": z.detach()}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        frames = frames_of(batch)
        if self.max_frames_per_step is not None and len(frames) > self.max_frames_per_step:
            frames = frames[torch.randperm(len(frames), device=frames.device)[: self.max_frames_per_step]]
        out = self.losses(frames, self.sample_posterior)
        self._track_latents(out["z"])
        self.log_dict({f"train/{k}": out[k] for k in ("loss", "rec", "kl", "psnr")}, prog_bar=True,
                      batch_size=len(frames))
        return out["loss"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        frames = frames_of(batch)
        out = self.losses(frames, sample=False)
        self.log_dict({f"val/{k}": out[k] for k in ("loss", "rec", "kl", "psnr")}, prog_bar=True,
                      batch_size=len(frames))

    @torch.no_grad()
    def generate(self, batch: dict[str, Any], **ignored: Any) -> Tensor:
        """Reconstructions ``(b, t, c, h, w)`` of ``batch["video"]`` (posterior mode), for the sample-video
        callback (``vidiff.lit.callbacks.SampleVideos`` writes them next to the real frames)."""
        ae = self.autoencoder
        return ae.decode_video(ae.encode_video(batch["video"])).clamp(-1, 1)

    def _track_latents(self, z: Tensor) -> None:
        self.latent_sq += (z.pow(2).mean() - self.latent_sq) / (self.latent_count + 1).clamp_max(1000)
        self.latent_count += 1

    def estimated_scaling_factor(self) -> float | None:
        """``1 / sqrt(E[z^2])`` over recent training latents, or None before any step."""
        if int(self.latent_count) == 0 or float(self.latent_sq) <= 0:
            return None
        return 1.0 / math.sqrt(float(self.latent_sq))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.scale_by_std and (factor := self.estimated_scaling_factor()) is not None:
            self.autoencoder.scaling_factor = factor
            self.autoencoder.config["scaling_factor"] = factor
        # load_autoencoder reads this config and the weights under state_dict[LIT_PREFIX + ...]
        checkpoint["autoencoder_config"] = dict(self.autoencoder.config)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.autoencoder.parameters(), lr=self.lr, betas=(0.5, 0.9))
