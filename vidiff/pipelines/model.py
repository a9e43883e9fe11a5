"""The one kind of object every generation path samples with: :class:`VideoModel`, a trained model's parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

NetFn = Callable[..., torch.Tensor]  # net(x (b,t,c,h,w), timesteps (b,) or (b,t), frame_idx (b,t), observed (b,t), ctx)


@dataclass
class VideoModel:
    """The parts of a trained model that sampling uses.

    Attributes:
        net: ``net(x, timesteps, frame_idx, observed, context)`` on ``(b, t, c, h, w)`` in model space.
        schedule: the training noise schedule (:class:`vidiff.diffusion.NoiseSchedule`).
        prediction: ``eps``, ``x0`` or ``v``.
        frame_shape: ``(c, h, w)`` of one frame in model space (latents for latent models).
        image_shape: ``(c, h, w)`` of one decoded frame.
        autoencoder: has ``encode_video(x, chunk_size)`` / ``decode_video(z, chunk_size)``, or None (pixel model).
        text_encoder: has ``encode(list[str]) -> (b, L, d)`` and ``null_embedding(b)``, or None.
        max_frames: frames the model saw per training sample (K), if known.
        global_step: the training step the weights come from, if known (shown in galleries).
    """

    net: NetFn
    schedule: Any
    prediction: str
    frame_shape: tuple[int, int, int]
    image_shape: tuple[int, int, int]
    autoencoder: Any = None
    text_encoder: Any = None
    max_frames: int | None = None
    global_step: int | None = None

    @classmethod
    def from_module(cls, module: Any, net: NetFn | None = None, text_encoder: Any = None) -> VideoModel:
        """The parts of a :class:`vidiff.lit.VideoDiffusion` (or any object with its attributes ``net``,
        ``schedule``, ``prediction``, ``channels``, ``image_size``, ``max_frames``, ``autoencoder``,
        ``text_encoder``); ``net`` / ``text_encoder`` replace the module's own (e.g. its EMA copies)."""
        missing = [name for name in ("net", "schedule", "prediction", "channels", "image_size")
                   if getattr(module, name, None) is None]
        if missing:
            raise ValueError(f"module: has no {', '.join(missing)}; expected a vidiff VideoDiffusion")
        size = int(module.image_size)
        image_shape = (int(module.channels), size, size)
        autoencoder = getattr(module, "autoencoder", None)
        frame_shape = image_shape if autoencoder is None else tuple(autoencoder.latent_shape(size, size))
        return cls(
            net=module.net if net is None else net,
            schedule=module.schedule,
            prediction=module.prediction,
            frame_shape=tuple(int(v) for v in frame_shape),
            image_shape=image_shape,
            autoencoder=autoencoder,
            text_encoder=getattr(module, "text_encoder", None) if text_encoder is None else text_encoder,
            max_frames=getattr(module, "max_frames", None),
        )

    @property
    def device(self) -> torch.device:
        """Where the net's weights are (cpu for a parameter-free net)."""
        params = self.net.parameters() if hasattr(self.net, "parameters") else iter(())
        return next(iter(params), torch.empty(0)).device

    def encode(self, video: torch.Tensor, chunk_size: int = 16) -> torch.Tensor:
        """Pixel video ``(b, t, c, h, w)`` in [-1, 1] -> model space (identity for pixel models)."""
        if self.autoencoder is None:
            return video
        return self.autoencoder.encode_video(video, chunk_size=chunk_size)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, chunk_size: int = 16) -> torch.Tensor:
        """Model-space video ``(b, t, c', h', w')`` -> pixels ``(b, t, c, h, w)``, ``chunk_size`` frames a call
        (identity for pixel models; no gradients: sampling only)."""
        if self.autoencoder is None:
            return z
        return self.autoencoder.decode_video(z, chunk_size=chunk_size)
