"""Stable Diffusion 1.x import: the explicit key map, full-size configs and the single-file loader."""

from vidiff.sd.configs import SD15, build_component, read_config
from vidiff.sd.keys import COMPONENTS, map_key, sd_key
from vidiff.sd.load import StableDiffusion, check_schedule, load_stable_diffusion

__all__ = [
    "COMPONENTS",
    "SD15",
    "StableDiffusion",
    "build_component",
    "check_schedule",
    "load_stable_diffusion",
    "map_key",
    "read_config",
    "sd_key",
]
