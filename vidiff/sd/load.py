"""Load a Stable Diffusion 1.x single-file checkpoint into vidiff's autoencoder, U-Net and CLIP text encoder.

    sd = load_stable_diffusion("v1-5-pruned-emaonly.safetensors",
                               unet="configs/sd15/unet.yaml", autoencoder="configs/sd15/autoencoder.yaml",
                               text_encoder="configs/sd15/text_encoder.yaml")

Every tensor of the file must map (``vidiff.sd.keys.map_key``) or be a known non-weight, every weight of
the built modules must be in the file, and every shape must agree; otherwise a ``ValueError`` lists the
first missing, unexpected and mismatched keys (e.g. for an SD 2.x file: OpenCLIP keys, 1024-wide context).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from vidiff.io.checkpoint import read_state_dict
from vidiff.sd.configs import SD15, build_component
from vidiff.sd.keys import COMPONENTS, ema_key, map_key

__all__ = ["StableDiffusion", "check_schedule", "load_stable_diffusion"]

logger = logging.getLogger(__name__)

#: Stable Diffusion's training schedule: "scaled_linear" betas, sqrt-linear from 0.00085 to 0.012, 1000 steps.
SD_SCHEDULE = dict(kind="scaled_linear", beta_start=0.00085, beta_end=0.012, num_timesteps=1000)
_SHOWN = 10
_HINTS = (
    ("cond_stage_model.model.", "OpenCLIP text-encoder keys: a Stable Diffusion 2.x checkpoint"),
    ("conditioner.embedders.", "SDXL conditioner keys: a Stable Diffusion XL checkpoint"),
)


@dataclass
class StableDiffusion:
    """The imported parts (None where not requested) and what the file held besides weights."""

    autoencoder: nn.Module | None = None
    unet: nn.Module | None = None
    text_encoder: nn.Module | None = None
    ignored: list[str] = field(default_factory=list)
    schedule: dict[str, Any] = field(default_factory=dict)


def check_schedule(state: dict[str, Tensor]) -> dict[str, Any]:
    """Check the file's ``betas`` (if any) are SD's scaled-linear schedule; returns :data:`SD_SCHEDULE`.

    Raises:
        ValueError: when ``betas`` differ (another model family or a modified schedule).
    """
    betas = state.get("betas")
    if betas is None:
        return dict(SD_SCHEDULE)
    n, start, end = SD_SCHEDULE["num_timesteps"], SD_SCHEDULE["beta_start"], SD_SCHEDULE["beta_end"]
    expected = torch.linspace(start**0.5, end**0.5, n, dtype=torch.float64) ** 2
    got = betas.detach().to(torch.float64).flatten()
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-3, atol=1e-7):
        raise ValueError(
            f"betas: expected Stable Diffusion's scaled_linear schedule ({n} steps, {start}..{end}), got "
            f"{got.numel()} steps from {got[0].item():.6g} to {got[-1].item():.6g}"
        )
    return dict(SD_SCHEDULE)


def _split(state: dict[str, Tensor], wanted: tuple[str, ...]) -> tuple[dict[str, dict[str, Tensor]], list[str], list[str]]:
    """(per-component dicts, ignored keys, unexpected keys)."""
    parts: dict[str, dict[str, Tensor]] = {c: {} for c in COMPONENTS}
    ignored, unexpected = [], []
    for key, value in state.items():
        try:
            target = map_key(key)
        except KeyError:
            unexpected.append(key)
            continue
        if target is None or target[0] not in wanted:
            ignored.append(key)
        else:
            parts[target[0]][target[1]] = value
    return parts, ignored, unexpected


def _target(component: str, module: nn.Module) -> nn.Module:
    return module.text_transformer if component == "text_encoder" else module


def _adapt(key: str, value: Tensor, shape: torch.Size) -> Tensor:
    """The one layout difference that SD-family files have: linear (c, c) vs 1x1-conv (c, c, 1, 1) projections
    in the autoencoder's mid attention (``attn_1.{q,k,v,proj_out}.weight``)."""
    if value.shape != shape and ".attn_1." in key and value.ndim == 2 and tuple(shape[2:]) == (1, 1):
        return value.reshape(shape)
    return value


def load_stable_diffusion(
    path: str | os.PathLike,
    unet: str | os.PathLike | dict[str, Any] | nn.Module | None = None,
    autoencoder: str | os.PathLike | dict[str, Any] | nn.Module | None = None,
    text_encoder: str | os.PathLike | dict[str, Any] | nn.Module | None = None,
    components: tuple[str, ...] = COMPONENTS,
    use_ema: bool = False,
    check: bool = True,
) -> StableDiffusion:
    """Build vidiff modules and load an SD 1.x checkpoint into them.

    Args:
        path: ``.safetensors`` or ``.ckpt`` in the original single-file layout.
        unet, autoencoder, text_encoder: config file (``configs/sd15/*.yaml``), kwargs dict or a built module;
            None: the full-size SD 1.5 config (:data:`vidiff.sd.configs.SD15`).
        components: which parts to load; keys of the others are ignored. ``text_encoder`` is skipped with a
            warning when transformers is not installed.
        use_ema: load the U-Net from the ``model_ema.*`` copy (full, non-pruned checkpoints).
        check: check the noise schedule buffers (``betas``) are SD's scaled-linear schedule.

    Returns:
        :class:`StableDiffusion` with frozen (eval mode) modules.

    Raises:
        ValueError: missing / unexpected keys or shape mismatches (the first ones listed), an unknown
            component, or another schedule.
    """
    bad = [c for c in components if c not in COMPONENTS]
    if bad:
        raise ValueError(f"components: expected names from {list(COMPONENTS)}, got {bad}")
    components = tuple(components)
    if "text_encoder" in components:
        import importlib.util

        if importlib.util.find_spec("transformers") is None:
            logger.warning("transformers is not installed: skipping the CLIP text encoder (pip install 'vidiff[text]')")
            components = tuple(c for c in components if c != "text_encoder")
    state = read_state_dict(path)
    parts, ignored, unexpected = _split(state, components)
    sources = {"unet": unet, "autoencoder": autoencoder, "text_encoder": text_encoder}
    modules = {c: build_component(c, sources[c] if sources[c] is not None else SD15[c]) for c in components}
    if use_ema and "unet" in modules:
        ema = {k: state.get(ema_key(k)) for k in _target("unet", modules["unet"]).state_dict()}
        if any(v is None for v in ema.values()):
            raise ValueError(f"use_ema: {path} has no complete model_ema.* copy of the U-Net")
        parts["unet"] = ema
    missing, mismatched, loads = [], [], {}
    for component, module in modules.items():
        target = _target(component, module)
        own = target.state_dict()
        persistent_buffers = {n for n, _ in target.named_buffers()}
        loaded = {}
        for key, value in own.items():
            if key not in parts[component]:
                if key.endswith("position_ids") and key in persistent_buffers:
                    loaded[key] = value  # a constant buffer, ignored in the file
                else:
                    missing.append(f"{component}: {key}")
                continue
            got = _adapt(key, parts[component][key], value.shape)
            if got.shape != value.shape:
                mismatched.append(f"{component}.{key}: file {tuple(got.shape)} vs model {tuple(value.shape)}")
            loaded[key] = got
        unexpected += [f"{component}: {k}" for k in parts[component] if k not in own]
        loads[component] = loaded
    if missing or unexpected or mismatched:
        raise ValueError(_report(path, missing, unexpected, mismatched, state))
    schedule = check_schedule(state) if check else {}
    for component, module in modules.items():
        _target(component, module).load_state_dict(loads[component], strict=True)
        module.requires_grad_(False)
        module.eval()
    logger.info("loaded %s: %s; ignored %d non-weight keys", path,
                ", ".join(f"{c} ({len(loads[c])} tensors)" for c in modules), len(ignored))
    return StableDiffusion(**modules, ignored=sorted(ignored), schedule=schedule)


def _report(path: Any, missing: list[str], unexpected: list[str], mismatched: list[str],
            state: dict[str, Tensor]) -> str:
    lines = [f"path: {path} does not match the Stable Diffusion 1.x layout and the given configs"]
    for prefix, hint in _HINTS:
        if any(k.startswith(prefix) for k in state):
            lines.append(f"  ({hint}; vidiff imports SD 1.x)")
    for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if keys:
            more = f" ... and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
            lines.append(f"  {len(keys)} {name}: " + ", ".join(keys[:_SHOWN]) + more)
    return "\n".join(lines)
