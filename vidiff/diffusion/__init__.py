"""The diffusion core: noise schedules, the training loss, timestep spacing, samplers and guidance (pure torch).

Public API::

    from vidiff.diffusion import NoiseSchedule, sample
    schedule = NoiseSchedule("cosine", num_timesteps=1000)
    x0 = sample(denoiser, torch.randn(b, t, c, h, w), schedule, sampler="ddim", steps=50, prediction="v")
"""

from vidiff.diffusion.guidance import (
    THRESHOLDS,
    classifier_free_guidance,
    dynamic_threshold,
    mix_conditioning,
    scale_conditioning,
    static_threshold,
    threshold_x0,
)
from vidiff.diffusion.hooks import SamplingHooks
from vidiff.diffusion.loss import diffusion_loss, min_snr_weight
from vidiff.diffusion.samplers import (
    SAMPLERS,
    check_sampler,
    sample,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_unipc,
    sampler_timesteps,
)
from vidiff.diffusion.schedule import PREDICTIONS, SCHEDULE_KINDS, NoiseSchedule, rescale_zero_terminal_snr
from vidiff.diffusion.spacing import (
    SIGMA_SPACINGS,
    TIMESTEP_SPACINGS,
    make_sigma_levels,
    make_solver_timesteps,
    make_timesteps,
)
from vidiff.diffusion.utils import append_dims

__all__ = [
    "PREDICTIONS",
    "SAMPLERS",
    "SCHEDULE_KINDS",
    "SIGMA_SPACINGS",
    "TIMESTEP_SPACINGS",
    "THRESHOLDS",
    "NoiseSchedule",
    "SamplingHooks",
    "append_dims",
    "check_sampler",
    "classifier_free_guidance",
    "diffusion_loss",
    "dynamic_threshold",
    "make_sigma_levels",
    "make_solver_timesteps",
    "make_timesteps",
    "min_snr_weight",
    "mix_conditioning",
    "rescale_zero_terminal_snr",
    "sample",
    "sample_ddim",
    "sample_ddpm",
    "sample_dpmpp_2m",
    "sample_unipc",
    "sampler_timesteps",
    "scale_conditioning",
    "static_threshold",
    "threshold_x0",
]
