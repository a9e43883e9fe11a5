#!/usr/bin/env python
"""vidiff's multistep samplers against diffusers' schedulers on Gaussian data with the exact denoiser.

    python3 -m venv /work/dvenv && /work/dvenv/bin/pip install torch==2.13.0   # the CPU build, first
    /work/dvenv/bin/pip install diffusers
    PYTHONPATH=. /work/dvenv/bin/python scripts/compare_diffusers_samplers.py            # markdown table
    PYTHONPATH=. /work/dvenv/bin/python scripts/compare_diffusers_samplers.py --n 4000 --steps 10 20

Data x0 ~ N(0.7, 0.4^2); the denoiser is the exact eps = E[eps | x_t] at the integer timestep it is given, so a
sampler that solved the probability-flow ODE exactly would return std 0.4 (up to starting at alpha-bar > 0,
negligible here). Both sides start from the same standard normal noise, standardised to mean 0 and std 1 (every
sampler is then an affine map, and the printed std is that map's scale), and use the same float64 alphas_cumprod
(diffusers' tables are replaced by vidiff's). diffusers runs ``DPMSolverMultistepScheduler(algorithm_type=
"dpmsolver++", solver_order=2)`` and ``UniPCMultistepScheduler()`` (defaults: bh2, predict_x0, order 2) with the
same ``timestep_spacing``, or ``use_karras_sigmas`` / ``use_exponential_sigmas``. The last column is the largest
per-sample difference between the two outputs (diffusers steps in float32).
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

from vidiff.diffusion import NoiseSchedule, sample

MU, S = 0.7, 0.4
TIMESTEP_SPACINGS = ("leading", "linspace", "trailing")
SIGMA_SAMPLERS = {"dpmpp_2m_karras": "use_karras_sigmas", "dpmpp_2m_exponential": "use_exponential_sigmas"}


def exact_eps(schedule: NoiseSchedule):
    """eps = E[eps | x_t] for data N(MU, S^2) at the integer timestep t (a LongTensor (b,) or a 0-d tensor)."""
    ab = schedule.alphas_cumprod_f64

    def denoiser(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = ab[t.long().reshape(-1)[:1]].item()
        x0 = MU + S**2 * a**0.5 / (S**2 * a + 1 - a) * (x - a**0.5 * MU)
        return (x - a**0.5 * x0) / (1 - a) ** 0.5

    return denoiser


def diffusers_scheduler(schedule: NoiseSchedule, sampler: str, spacing: str | None):
    """The diffusers scheduler vidiff's ``sampler`` reproduces, on vidiff's float64 alphas_cumprod."""
    from diffusers import DPMSolverMultistepScheduler, UniPCMultistepScheduler

    kw = {"num_train_timesteps": schedule.num_timesteps, "trained_betas": schedule.betas.tolist()}
    if spacing is not None:
        kw["timestep_spacing"] = spacing
    if sampler in SIGMA_SAMPLERS:
        kw[SIGMA_SAMPLERS[sampler]] = True
    if sampler == "unipc":
        sched = UniPCMultistepScheduler(**kw)
    else:
        sched = DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2, **kw)
    ab = schedule.alphas_cumprod_f64.clone()
    sched.alphas_cumprod = ab
    sched.alpha_t, sched.sigma_t = ab.sqrt(), (1 - ab).sqrt()
    sched.lambda_t = sched.alpha_t.log() - sched.sigma_t.log()
    sched.sigmas = ((1 - ab) / ab).sqrt()
    return sched


def run_diffusers(schedule: NoiseSchedule, sampler: str, spacing: str | None, steps: int, noise: torch.Tensor):
    """diffusers' sampling loop; returns the final sample and the states the model saw."""
    sched = diffusers_scheduler(schedule, sampler, spacing)
    sched.set_timesteps(steps)
    sched.set_begin_index(0)
    den, x, seen = exact_eps(schedule), noise.clone(), []
    for t in sched.timesteps:
        seen.append(x)
        x = sched.step(den(x, t), t, x).prev_sample
    return x, seen, [int(t) for t in sched.timesteps]


def run_vidiff(schedule: NoiseSchedule, sampler: str, spacing: str | None, steps: int, noise: torch.Tensor):
    """vidiff's ``sample``; returns the final sample and the states the model saw."""
    seen = []
    out = sample(
        exact_eps(schedule), noise, schedule, sampler, steps, spacing=spacing or "leading",
        callback=lambda i, n, x, x0: seen.append(x),
    )
    return out, seen


def cases(steps_list):
    """(schedule kind, steps, sampler, spacing or None) of the table."""
    for sampler in ("dpmpp_2m", "unipc"):
        for kind, steps in [("linear", s) for s in steps_list] + [("cosine", steps_list[0])]:
            for spacing in TIMESTEP_SPACINGS:
                yield kind, steps, sampler, spacing
    for sampler in SIGMA_SAMPLERS:
        for kind, steps in [("linear", s) for s in steps_list] + [("cosine", steps_list[0])]:
            yield kind, steps, sampler, None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=4000, help="samples (default 4000)")
    p.add_argument("--steps", type=int, nargs="+", default=[10, 20], help="step counts (default 10 20)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    import diffusers

    z = torch.randn(args.n, 1, generator=torch.Generator().manual_seed(args.seed), dtype=torch.float64)
    noise = (z - z.mean()) / z.std()
    machine = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, {machine}, {os.cpu_count()} CPUs")
    print(f"x0 ~ N({MU}, {S}^2), exact eps denoiser, {args.n} samples; target std {S}\n")
    print("| schedule | steps | sampler | spacing | vidiff std | diffusers std | max abs diff |")
    print("| --- | ---: | --- | --- | ---: | ---: | ---: |")
    for kind, steps, sampler, spacing in cases(args.steps):
        schedule = NoiseSchedule(kind)
        ours, _ = run_vidiff(schedule, sampler, spacing, steps, noise)
        ref, _, _ = run_diffusers(schedule, sampler, spacing, steps, noise)
        diff = (ours - ref).abs().max().item()
        print(
            f"| {kind} | {steps} | {sampler} | {spacing or '-'} | {ours.std().item():.4f} | "
            f"{ref.std().item():.4f} | {diff:.1e} |"
        )


if __name__ == "__main__":
    main()
