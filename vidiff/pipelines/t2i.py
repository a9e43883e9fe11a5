"""Text-to-image generation with a latent (or pixel) diffusion model: prompts, guidance, img2img, inpainting.

:class:`TextToImage` wraps the parts sampling needs (a :class:`vidiff.pipelines.VideoModel`: net, schedule,
prediction, optional autoencoder and text encoder) and runs one frame per image through the image mode of the
U-Net (``t = 1``)::

    t2i = TextToImage.from_checkpoint("runs/shapes_t2i_tiny/checkpoints/last.ckpt")
    images = t2i.generate("a red circle", negative_prompt="a blue square", guidance_scale=3.0,
                          num_images=4, sampler="dpmpp_2m", steps=25, seed=0)        # (4, 3, 32, 32) in [-1, 1]

The generation parameters map onto :mod:`vidiff.diffusion`:

- guidance: :func:`~vidiff.diffusion.classifier_free_guidance` (Ho & Salimans 2022) with the negative prompt in
  place of the null context; ``guidance_scale == 1`` calls the model once, on the conditional context only;
- conditioning strength: the context is moved towards the null (unconditional) context,
  ``c <- null + s (c - null)`` (:func:`~vidiff.diffusion.mix_conditioning`), so 0 is unconditional, 1 the prompt;
- prompt mix: ``c <- (1 - mix) c(prompt) + mix c(prompt2)``;
- image-to-image (SDEdit, Meng et al. 2022): the init image's latents are noised to the first of the last
  ``int(steps * strength)`` timesteps (0 returns the autoencoder reconstruction, 1 pure noise);
- inpainting (blended latent diffusion, Avrahami et al. 2023): outside the mask the latents are replaced by the
  init image's latents noised to the current step at every step, and the decoded result is blended with the
  reconstruction of the init image in pixel space, so outside the mask it equals the input up to autoencoder
  reconstruction (exactly the input for pixel-space models).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange

from vidiff.arguments import check_int
from vidiff.diffusion import NoiseSchedule, check_sampler, mix_conditioning, sample
from vidiff.diffusion.guidance import Denoiser
from vidiff.pipelines.denoiser import conditioned_denoiser
from vidiff.pipelines.inputs import Conditioning
from vidiff.pipelines.model import VideoModel

log = logging.getLogger(__name__)


def _check_unit(name: str, value: float) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return float(value)


class TextToImage:
    """Generate images from prompts with a trained latent (or pixel) diffusion model.

    Args:
        model: the sampling parts (:func:`vidiff.pipelines.load_sampling_model`, or
            :meth:`from_stable_diffusion`).
        device: where to run (default: the net's device).
    """

    def __init__(self, model: VideoModel, device: str | torch.device | None = None) -> None:
        self.model = model
        self.device = torch.device(device) if device is not None else next(model.net.parameters()).device

    # ---------------------------------------------------------------------------------------- constructors
    @classmethod
    def from_checkpoint(cls, ckpt: str | os.PathLike, device: str | torch.device = "cpu", **overrides: Any) -> TextToImage:
        """A checkpoint written by ``vidiff fit`` or a ``vidiff export`` weights file (EMA weights).

        ``overrides`` replace stored constructor arguments (e.g. ``autoencoder_ckpt`` when the file moved).
        """
        from vidiff.pipelines.load import load_sampling_model

        return cls(load_sampling_model(ckpt, device, **overrides), device)

    @classmethod
    def from_stable_diffusion(
        cls,
        ckpt: str | os.PathLike,
        unet: Any = None,
        autoencoder: Any = None,
        text_encoder: Any = None,
        image_size: int = 512,
        device: str | torch.device = "cpu",
        use_ema: bool = False,
    ) -> TextToImage:
        """A Stable Diffusion 1.x single-file checkpoint (``vidiff.sd.load_stable_diffusion``; configs as there).

        Raises:
            ValueError: the file does not match the SD 1.x layout, or transformers is missing (no text encoder).
        """
        from vidiff.sd import load_stable_diffusion
        from vidiff.sd.load import SD_SCHEDULE

        sd = load_stable_diffusion(ckpt, unet=unet, autoencoder=autoencoder, text_encoder=text_encoder,
                                   use_ema=use_ema)
        if sd.text_encoder is None:
            raise ValueError("sd_ckpt: the CLIP text encoder needs transformers (pip install 'vidiff[text]')")
        schedule = NoiseSchedule(SD_SCHEDULE["kind"], SD_SCHEDULE["num_timesteps"],
                                 beta_start=SD_SCHEDULE["beta_start"], beta_end=SD_SCHEDULE["beta_end"])
        image_shape = (sd.autoencoder.in_channels, image_size, image_size)
        model = VideoModel(
            net=sd.unet.to(device), schedule=schedule, prediction="eps",
            frame_shape=tuple(sd.autoencoder.latent_shape(image_size, image_size)), image_shape=image_shape,
            autoencoder=sd.autoencoder.to(device), text_encoder=sd.text_encoder.to(device), max_frames=1,
        )
        return cls(model, device)

    # ---------------------------------------------------------------------------------------------- pieces
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(c, h, w)`` of the images the model was trained on."""
        return self.model.image_shape

    @torch.no_grad()
    def conditioning(
        self,
        prompt: str | Sequence[str],
        num_images: int = 1,
        negative_prompt: str | None = None,
        cond_strength: float = 1.0,
        prompt2: str | None = None,
        mix: float = 0.0,
    ) -> Conditioning:
        """Text contexts of one call (see the module docstring for strength and mix).

        Args:
            prompt: one prompt for every image, or one per image (``num_images`` of them).
            num_images: n.
            negative_prompt: replaces the empty prompt as guidance's unconditional context.
            cond_strength: s in [0, 1]: ``c <- null + s (c - null)``.
            prompt2: a second prompt mixed into the first with weight ``mix``.
            mix: weight of ``prompt2`` in [0, 1].
        """
        prompts = [prompt] * num_images if isinstance(prompt, str) else list(prompt)
        if len(prompts) != num_images:
            raise ValueError(f"prompt: expected one prompt or num_images={num_images} prompts, got {len(prompts)}")
        cond_strength, mix = _check_unit("cond_strength", cond_strength), _check_unit("mix", mix)
        enc = self.model.text_encoder
        if enc is None:
            given = [name for name, v in (("prompt", any(prompts)), ("negative_prompt", negative_prompt),
                                          ("prompt2", prompt2)) if v]
            if given:
                raise ValueError(f"{given[0]}: this model has no text encoder (it is unconditional)")
            return Conditioning(None, None)
        null = enc.null_embedding(1).to(self.device)
        context = enc.encode(prompts).to(self.device)
        if prompt2 is not None:
            context = mix_conditioning(context, enc.encode([prompt2] * num_images).to(context), 1.0 - mix)
        elif mix != 0.0:
            raise ValueError(f"mix: needs prompt2 (got mix={mix} without a second prompt)")
        if cond_strength != 1.0:
            context = mix_conditioning(context, null.expand_as(context), cond_strength)
        uncond = enc.encode([negative_prompt]).to(self.device) if negative_prompt is not None else null
        return Conditioning(context, uncond)

    def denoiser(self, cond: Conditioning, guidance_scale: float = 1.0) -> Denoiser:
        """``denoiser(x (n, 1, c, h, w), t (n,)) -> prediction``: the net on one frame, with CFG when scale != 1."""
        return conditioned_denoiser(self.model.net, context=cond.context, null_context=cond.uncond,
                                    guidance=guidance_scale)

    def _size(self, height: int | None, width: int | None, init_image: torch.Tensor | None) -> tuple[int, int]:
        _, h, w = self.image_shape
        if init_image is not None:
            h, w = init_image.shape[-2:]
        h, w = height or h, width or w
        factor = self.model.image_shape[1] // self.model.frame_shape[1]
        if h % factor or w % factor:
            raise ValueError(f"height, width: expected multiples of the autoencoder factor {factor}, got {h}x{w}")
        return h, w

    def _init_latents(self, init_image: torch.Tensor, n: int, size: tuple[int, int]) -> torch.Tensor:
        """Pixels ``(c, h, w)`` or ``(1 or n, c, h, w)`` in [-1, 1] -> latents ``(n, 1, c', h', w')``."""
        c = self.image_shape[0]
        image = init_image[None] if init_image.ndim == 3 else init_image
        if image.ndim != 4 or image.shape[1] != c or image.shape[0] not in (1, n):
            raise ValueError(
                f"init_image: expected (c, h, w) or (1 or num_images={n}, c, h, w) with c={c}, "
                f"got {tuple(init_image.shape)}"
            )
        if tuple(image.shape[-2:]) != size:
            raise ValueError(f"init_image: expected height x width {size} (height/width), got {tuple(image.shape[-2:])}")
        image = image.to(self.device, torch.float32).clamp(-1, 1)
        z = self.model.encode(rearrange(image, "b c h w -> b 1 c h w"))
        return z.expand(n, *z.shape[1:]).contiguous()

    def _mask(self, mask: torch.Tensor, n: int, size: tuple[int, int]) -> torch.Tensor:
        """``(h, w)``, ``(1, h, w)`` or ``(1 or n, 1, h, w)``, > 0.5 where to repaint -> bool ``(n, 1, 1, h, w)``."""
        m = mask
        if m.ndim == 2:
            m = m[None, None]
        elif m.ndim == 3:
            m = m[None]
        if m.ndim != 4 or m.shape[1] != 1 or m.shape[0] not in (1, n):
            raise ValueError(f"mask: expected (h, w), (1, h, w) or (1 or num_images={n}, 1, h, w), got {tuple(mask.shape)}")
        if tuple(m.shape[-2:]) != size:
            raise ValueError(
                f"mask: its size {tuple(m.shape[-2:])} does not match the init image's {size} (height, width)"
            )
        m = (m.to(self.device).float() > 0.5).expand(n, 1, *size)
        return rearrange(m, "b 1 h w -> b 1 1 h w")

    # ------------------------------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        prompt: str | Sequence[str] = "",
        negative_prompt: str | None = None,
        guidance_scale: float = 7.5,
        cond_strength: float = 1.0,
        prompt2: str | None = None,
        mix: float = 0.0,
        init_image: torch.Tensor | None = None,
        strength: float | None = None,
        mask: torch.Tensor | None = None,
        sampler: str = "ddim",
        steps: int = 50,
        eta: float = 0.0,
        spacing: str = "leading",
        num_images: int = 1,
        seed: int = 0,
        height: int | None = None,
        width: int | None = None,
        threshold: str | None = None,
    ) -> torch.Tensor:
        """Sample ``num_images`` images.

        Args:
            prompt, negative_prompt, cond_strength, prompt2, mix: see :meth:`conditioning`.
            guidance_scale: classifier-free guidance scale (1: conditional prediction only; 0: unconditional).
            init_image: ``(c, h, w)`` or ``(1 or n, c, h, w)`` in [-1, 1] for image-to-image / inpainting.
            strength: with ``init_image``: in [0, 1], 0 returns the (reconstructed) image, 1 starts from noise
                (default 0.8 for image-to-image, 1 for inpainting).
            mask: ``(h, w)`` (or batched) in [0, 1], 1 where to repaint; needs ``init_image`` of the same size.
            sampler: a name of :data:`vidiff.diffusion.SAMPLERS` (``ddpm``, ``ddim``, ``dpmpp_2m``, ``unipc``, ...).
            steps: sampling steps.
            eta: DDIM eta.
            spacing: timestep spacing (``leading``, ``trailing``, ``linspace``).
            num_images: n.
            seed: the noise seed (image i of a call depends on the seed and n).
            height, width: output size (default: the model's, or the init image's).
            threshold: ``None``, ``static`` or ``dynamic`` thresholding of x0_hat (pixel models).

        Returns:
            ``(n, c, h, w)`` images in [-1, 1].
        """
        check_sampler(sampler, spacing)
        check_int("num_images", num_images)
        if mask is not None and init_image is None:
            raise ValueError("mask: inpainting needs init_image (the image to repaint)")
        if strength is None:
            strength = 1.0 if mask is not None or init_image is None else 0.8
        elif init_image is None and strength != 1.0:
            raise ValueError(f"strength: needs init_image (got strength={strength} without an image)")
        strength = _check_unit("strength", strength)
        n = num_images
        size = self._size(height, width, init_image)
        cond = self.conditioning(prompt, n, negative_prompt, cond_strength, prompt2, mix)
        denoiser = self.denoiser(cond, guidance_scale)
        c_lat = self.model.frame_shape[0]
        factor = self.model.image_shape[1] // self.model.frame_shape[1]
        shape = (n, 1, c_lat, size[0] // factor, size[1] // factor)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        noise = torch.randn(shape, generator=generator, device=self.device)
        z_init = None if init_image is None else self._init_latents(init_image, n, size)
        kwargs: dict[str, Any] = {"threshold": threshold}
        pixel_mask = None
        if mask is not None:
            pixel_mask = self._mask(mask, n, size)  # (n, 1, 1, h, w)
            latent_mask = F.adaptive_max_pool2d(rearrange(pixel_mask.float(), "b t c h w -> (b t) c h w"),
                                                shape[-2:]) > 0.5  # repaint a latent pixel if any pixel asks
            known_mask = ~rearrange(latent_mask, "(b t) c h w -> b t c h w", b=n)
            kwargs.update(known=z_init, known_mask=known_mask, known_noised=True)
        if z_init is not None and strength < 1.0:
            kwargs.update(init=z_init, strength=strength)
        x0 = sample(denoiser, noise, self.model.schedule, sampler, steps, eta, self.model.prediction, spacing,
                    generator, **kwargs)
        images = self.model.decode(x0).float().clamp(-1, 1)  # (n, 1, c, h, w)
        if pixel_mask is not None:
            recon = self.model.decode(z_init).float().clamp(-1, 1)
            images = torch.where(pixel_mask, images, recon)
        return images[:, 0]

