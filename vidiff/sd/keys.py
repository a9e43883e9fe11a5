"""The explicit key map from a Stable Diffusion 1.x single-file checkpoint to vidiff's modules.

An original (CompVis / runwayml) SD 1.x checkpoint is the state dict of ldm's ``LatentDiffusion``:

| SD key | vidiff component and key |
| --- | --- |
| ``first_stage_model.<k>`` | ``autoencoder``: ``vidiff.nn.autoencoder.AutoencoderKL`` key ``<k>`` |
| ``model.diffusion_model.<k>`` | ``unet``: ``vidiff.nn.unet.SpaceTimeUNet`` (``temporal=False``) key ``<k>`` |
| ``cond_stage_model.transformer.text_model.<k>`` | ``text_encoder``: ``CLIPTextEncoder.text_transformer`` key ``<k>`` |
| ``cond_stage_model.transformer.<k>`` (old transformers layout, no ``text_model.``) | ``text_encoder``: ``<k>`` |
| ``model_ema.<k without dots>`` | ``unet`` EMA weights (only with ``use_ema=True``; ldm's ``LitEma`` naming) |
| :data:`SCHEDULE_KEYS`, :data:`OTHER_KNOWN_KEYS`, ``...embeddings.position_ids`` | not weights: ignored |

vidiff's modules use ldm's module names, so inside a component the key is the same string; what this
module pins down is which prefixes exist, which keys are not weights, and how ldm names EMA weights.
"""

from __future__ import annotations

__all__ = [
    "COMPONENTS",
    "OTHER_KNOWN_KEYS",
    "PREFIXES",
    "SCHEDULE_KEYS",
    "ema_key",
    "map_key",
    "sd_key",
]

#: The components of an SD checkpoint that vidiff imports.
COMPONENTS: tuple[str, ...] = ("autoencoder", "unet", "text_encoder")

#: (SD key prefix, component), tried in order.
PREFIXES: tuple[tuple[str, str], ...] = (
    ("first_stage_model.", "autoencoder"),
    ("model.diffusion_model.", "unet"),
    ("cond_stage_model.transformer.text_model.", "text_encoder"),
)

#: Old transformers versions stored CLIPTextModel without the ``text_model.`` level.
_LEGACY_CLIP = "cond_stage_model.transformer."
_LEGACY_CLIP_HEADS = ("embeddings.", "encoder.", "final_layer_norm.")

#: Noise-schedule buffers that ldm's ``DDPM`` registers (checked against SD's schedule, not loaded).
SCHEDULE_KEYS: tuple[str, ...] = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)

#: Other non-weight entries of SD 1.x checkpoints.
OTHER_KNOWN_KEYS: tuple[str, ...] = (
    "logvar",  # DDPM's per-timestep log-variance (learn_logvar=False)
    "scale_factor",  # latent scale when trained with scale_by_std
    "model_ema.decay",
    "model_ema.num_updates",
    "cond_stage_model.transformer.text_model.embeddings.position_ids",  # arange(77) buffer
    "cond_stage_model.transformer.embeddings.position_ids",
)

_EMA_PREFIX = "model_ema."


def map_key(key: str) -> tuple[str, str] | None:
    """Map one SD key to ``(component, vidiff key)``; None for known non-weights and EMA entries.

    Raises:
        KeyError: for a key that belongs to no known part of an SD 1.x checkpoint.
    """
    if key in SCHEDULE_KEYS or key in OTHER_KNOWN_KEYS or key.startswith(_EMA_PREFIX):
        return None
    for prefix, component in PREFIXES:
        if key.startswith(prefix):
            return component, key[len(prefix):]
    if key.startswith(_LEGACY_CLIP) and key[len(_LEGACY_CLIP):].startswith(_LEGACY_CLIP_HEADS):
        return "text_encoder", key[len(_LEGACY_CLIP):]
    raise KeyError(key)


def sd_key(component: str, key: str) -> str:
    """The inverse of :func:`map_key` (current layout): vidiff ``(component, key)`` -> SD key."""
    for prefix, name in PREFIXES:
        if name == component:
            return prefix + key
    raise ValueError(f"component: expected one of {list(COMPONENTS)}, got {component!r}")


def ema_key(unet_key: str) -> str:
    """ldm's ``LitEma`` name of a U-Net weight: ``model_ema.`` + ``diffusion_model.<key>`` without dots."""
    return _EMA_PREFIX + ("diffusion_model." + unet_key).replace(".", "")
