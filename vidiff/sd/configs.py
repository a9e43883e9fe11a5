"""Full-size Stable Diffusion 1.x configs and building vidiff modules from config files.

A config is ``{"class_path": ..., "init_args": {...}}`` (LightningCLI's format, so the same YAML files can
be referenced from training configs) or a plain dict of constructor kwargs. The defaults below equal the
files in ``configs/sd15/`` (a test keeps them in sync).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from torch import nn

__all__ = ["CLASS_PATHS", "SD15", "build_component", "read_config"]

#: The class of each component (the only classes these configs may name).
CLASS_PATHS: dict[str, str] = {
    "autoencoder": "vidiff.nn.autoencoder.AutoencoderKL",
    "unet": "vidiff.nn.unet.SpaceTimeUNet",
    "text_encoder": "vidiff.nn.text.CLIPTextEncoder",
}

#: Stable Diffusion 1.x (v1-inference.yaml), as vidiff constructor kwargs.
SD15: dict[str, dict[str, Any]] = {
    "autoencoder": dict(
        in_channels=3, ch=128, ch_mult=[1, 2, 4, 4], num_res_blocks=2, z_channels=4, embed_dim=4,
        attn_levels=[], mid_attention=True, dropout=0.0, norm_groups=32, scaling_factor=0.18215,
    ),
    "unet": dict(
        in_channels=4, out_channels=4, model_channels=320, channel_mult=[1, 2, 4, 4], num_res_blocks=2,
        attention_resolutions=[4, 2, 1], num_heads=8, num_head_channels=-1, transformer_depth=1,
        context_dim=768, dropout=0.0, use_scale_shift_norm=False, temporal=False, use_linear_proj=False,
        observed_channel=False, norm_groups=32,
    ),
    "text_encoder": dict(
        config=dict(
            vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
            num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
            bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
        ),
        tokenizer_path=None, max_length=77, frozen=True,
    ),
}


def read_config(source: str | os.PathLike | dict[str, Any], component: str) -> dict[str, Any]:
    """Constructor kwargs of ``component`` from a YAML file or a dict (``class_path``/``init_args`` or plain).

    Raises:
        ValueError: unknown component, or a ``class_path`` other than the component's class.
    """
    if component not in CLASS_PATHS:
        raise ValueError(f"component: expected one of {list(CLASS_PATHS)}, got {component!r}")
    if isinstance(source, dict):
        config = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{component}: no config file at {path}")
        config = yaml.safe_load(path.read_text()) or {}
        if not isinstance(config, dict):
            raise ValueError(f"{component}: expected a mapping in {path}, got {type(config).__name__}")
    if "class_path" in config:
        if config["class_path"] != CLASS_PATHS[component]:
            raise ValueError(
                f"{component}: expected class_path {CLASS_PATHS[component]}, got {config['class_path']!r}"
            )
        config = dict(config.get("init_args") or {})
    return config


def build_component(component: str, source: str | os.PathLike | dict[str, Any] | nn.Module) -> nn.Module:
    """Instantiate ``component`` from a config (file or dict); a module is returned as it is."""
    if isinstance(source, nn.Module):
        return source
    kwargs = read_config(source, component)
    if component == "autoencoder":
        from vidiff.nn.autoencoder import AutoencoderKL

        return AutoencoderKL(**kwargs)
    if component == "unet":
        from vidiff.nn.unet import SpaceTimeUNet

        return SpaceTimeUNet(**kwargs)
    from vidiff.nn.text import CLIPTextEncoder

    return CLIPTextEncoder(**kwargs)
