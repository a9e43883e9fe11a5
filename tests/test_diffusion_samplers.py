"""Samplers against closed forms: Gaussian data has an exact denoiser, a single point an exact answer."""

import math

import pytest
import torch

from vidiff.diffusion import (
    SAMPLERS,
    NoiseSchedule,
    make_sigma_levels,
    make_solver_timesteps,
    make_timesteps,
    sample,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_unipc,
    sampler_timesteps,
)

MU = torch.tensor([0.5, -1.0], dtype=torch.float64)
S = torch.tensor([0.6, 1.5], dtype=torch.float64)
SCHEDULES = [("linear", False), ("scaled_linear", False), ("cosine", False), ("linear", True)]
DETERMINISTIC = ["ddim", "dpmpp_2m", "dpmpp_2m_karras", "dpmpp_2m_exponential", "unipc"]
SIGMA_SPACED = ["dpmpp_2m_karras", "dpmpp_2m_exponential"]


def gaussian_denoiser(schedule, prediction, mu=MU, s=S):
    """The exact denoiser of data N(mu, diag(s^2)) on (b, d): x0_hat = E[x0 | x_t], as an eps/x0/v predictor."""
    ab = schedule.alphas_cumprod_f64

    def denoiser(x, t):
        a = ab[t].to(x.dtype)[:, None]
        x0 = mu + s**2 * a.sqrt() / (s**2 * a + 1 - a) * (x - a.sqrt() * mu)
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        return {"eps": eps, "x0": x0, "v": a.sqrt() * eps - (1 - a).sqrt() * x0}[prediction]

    return denoiser


def ode_target(schedule, t_start):
    """Mean and std of the exact probability-flow map from N(0, I) at t_start to data N(MU, S^2).

    x0 = MU + S (x - sqrt(a) MU) / sqrt(S^2 a + 1 - a): the data moments, up to the prior mismatch of starting
    at a > 0 (negligible when the first timestep is T - 1 of a linear or cosine schedule).
    """
    a = schedule.alphas_cumprod_f64[t_start]
    scale = S / (S**2 * a + 1 - a).sqrt()
    return MU - scale * a.sqrt() * MU, scale


def standard_noise(n, generator):
    """N(0, I) draws standardised to sample mean 0 and std 1, so that an affine sampler's output moments are exact."""
    z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return (z - z.mean(0)) / z.std(0)


@pytest.mark.parametrize("kind,zero_terminal_snr", SCHEDULES)
@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize(
    "sampler,steps",
    [("ddim", 100), ("dpmpp_2m", 30), ("unipc", 30), ("dpmpp_2m_karras", 60), ("dpmpp_2m_exponential", 60)],
)
def test_deterministic_samplers_reproduce_gaussian_data(kind, zero_terminal_snr, prediction, sampler, steps):
    if zero_terminal_snr and prediction == "eps":
        pytest.skip("eps prediction is undefined at the zero-SNR step (tested as an error below)")
    if zero_terminal_snr and sampler in SIGMA_SPACED:
        pytest.skip("Karras / exponential sigmas need a finite sigma_max (tested as an error below)")
    if kind == "cosine" and sampler in SIGMA_SPACED:
        pytest.skip("cosine's last beta (0.999) puts its first levels far from any model timestep (docs/sampling.md)")
    sched = NoiseSchedule(kind, zero_terminal_snr=zero_terminal_snr)
    noise = standard_noise(64, torch.Generator().manual_seed(0))
    x = sample(
        gaussian_denoiser(sched, prediction),
        noise,
        sched,
        sampler,
        steps,
        prediction=prediction,
        spacing="trailing",
    )
    mean, std = ode_target(sched, 999)  # every sampler here starts at t = T - 1 (sigma_max)
    assert torch.allclose(x.mean(0), mean, atol=0.01 * S.min().item())
    assert torch.allclose(x.std(0) / std, torch.ones(2, dtype=torch.float64), atol=0.04)
    if sched.alphas_cumprod_f64[-1] < 1e-3:  # not scaled_linear, whose x_{T-1} keeps sqrt(0.0047) of the data
        assert torch.allclose(mean, MU, atol=0.01) and torch.allclose(std, S, rtol=0.01)  # = the data moments


@pytest.mark.parametrize("spacing", ["leading", "linspace"])
def test_deterministic_samplers_other_spacings(spacing):
    sched = NoiseSchedule("cosine")
    noise = standard_noise(64, torch.Generator().manual_seed(0))
    for sampler, steps in (("ddim", 100), ("dpmpp_2m", 100), ("unipc", 100)):
        mean, std = ode_target(sched, sampler_timesteps(sched, sampler, steps, spacing)[0][0])
        x = sample(
            gaussian_denoiser(sched, "v"), noise, sched, sampler, steps, prediction="v", spacing=spacing
        )
        assert torch.allclose(x.mean(0), mean, atol=0.01) and torch.allclose(
            x.std(0) / std, torch.ones(2, dtype=torch.float64), atol=0.03
        )


@pytest.mark.parametrize(
    "kind,zero_terminal_snr,prediction",
    [("linear", False, "eps"), ("cosine", False, "x0"), ("linear", True, "v")],
)
def test_ddpm_ancestral_reproduces_gaussian_data(kind, zero_terminal_snr, prediction):
    sched = NoiseSchedule(kind, zero_terminal_snr=zero_terminal_snr)
    g = torch.Generator().manual_seed(0)
    n = 20000
    noise = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x = sample(
        gaussian_denoiser(sched, prediction),
        noise,
        sched,
        "ddpm",
        250,
        prediction=prediction,
        spacing="trailing",
        generator=g,
    )
    # tolerances: 4 Monte-Carlo standard errors plus the 250-step discretisation bias (<= 2.5% measured)
    assert torch.allclose(
        (x.mean(0) - MU) / S, torch.zeros(2, dtype=torch.float64), atol=4 / math.sqrt(n) + 0.01
    )
    assert torch.allclose(x.std(0) / S, torch.ones(2, dtype=torch.float64), atol=4 / math.sqrt(2 * n) + 0.02)


def test_ddim_with_eta_1_is_ddpm_ancestral():
    """Song et al. 2021: eta = 1 gives the DDPM posterior; two independent implementations must agree draw for draw."""
    sched = NoiseSchedule("scaled_linear")
    ts = make_timesteps(1000, 20, "linspace")
    den = gaussian_denoiser(sched, "eps")
    noise = torch.randn(16, 2, dtype=torch.float64)
    a = sample_ddim(den, noise, sched, ts, eta=1.0, generator=torch.Generator().manual_seed(3))
    b = sample_ddpm(den, noise, sched, ts, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(a, b, atol=1e-10)
    c = sample_ddim(den, noise, sched, ts, eta=0.0, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(a, c, atol=1e-3)


def _k_diffusion_dpmpp_2m(denoiser, x_vp, schedule, timesteps):
    """Transcription of k-diffusion's sample_dpmpp_2m in its variance-exploding variables (x / alpha, sigma)."""
    ab = schedule.alphas_cumprod_f64
    sigmas = [math.sqrt((1 - ab[t].item()) / ab[t].item()) for t in timesteps] + [0.0]
    x = x_vp / math.sqrt(ab[timesteps[0]].item())
    old, t_fn = None, (lambda sig: -math.log(sig))
    for i, t in enumerate(timesteps):
        a = ab[t].item()
        eps = denoiser(x * math.sqrt(a), torch.full((x.shape[0],), t))
        denoised = x - sigmas[i] * eps  # x / alpha - sigma_ve * eps
        if old is None or sigmas[i + 1] == 0:
            x = (
                denoised
                if sigmas[i + 1] == 0
                else (sigmas[i + 1] / sigmas[i]) * x
                - math.expm1(-(t_fn(sigmas[i + 1]) - t_fn(sigmas[i]))) * denoised
            )
        else:
            h = t_fn(sigmas[i + 1]) - t_fn(sigmas[i])
            r = (t_fn(sigmas[i]) - t_fn(sigmas[i - 1])) / h
            d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old
            x = (sigmas[i + 1] / sigmas[i]) * x - math.expm1(-h) * d
        old = denoised
    return x


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_dpmpp_2m_equals_k_diffusion(spacing):
    sched = NoiseSchedule("linear")
    ts = make_timesteps(1000, 12, spacing)
    den = gaussian_denoiser(sched, "eps")
    noise = torch.randn(8, 2, dtype=torch.float64)
    assert torch.allclose(
        sample_dpmpp_2m(den, noise, sched, ts), _k_diffusion_dpmpp_2m(den, noise, sched, ts), atol=1e-9
    )


def test_convergence_orders():
    """DDIM is first order (error halves with twice the steps), DPM-Solver++(2M) second order (about a quarter)."""
    sched = NoiseSchedule("cosine")
    den = gaussian_denoiser(sched, "v")
    noise = standard_noise(16, torch.Generator().manual_seed(0))
    _, std = ode_target(sched, 999)

    def err(sampler, steps):
        x = sample(den, noise, sched, sampler, steps, prediction="v", spacing="trailing")
        return (x.std(0) / std - 1).abs().max().item()

    ddim = err("ddim", 20) / err("ddim", 40)
    dpm = err("dpmpp_2m", 20) / err("dpmpp_2m", 40)
    assert 1.6 < ddim < 2.5 and dpm > 3.0, (ddim, dpm)
    # UniPC-2 (its corrector raises the order by one, Zhao et al. 2023) beats DPM-Solver++(2M) at equal steps
    assert err("unipc", 20) < err("dpmpp_2m", 20) / 5 and err("unipc", 20) / err("unipc", 40) > 3.0


@pytest.mark.parametrize("sampler", DETERMINISTIC)
@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_single_point_data_is_reproduced_exactly(sampler, prediction):
    """For a one-point data set the exact denoiser always predicts that point, and both samplers end on it."""
    point = torch.tensor([[0.3, -0.7, 0.9]], dtype=torch.float64)
    sched = NoiseSchedule("scaled_linear")

    def den(x, t):
        a = sched.alphas_cumprod_f64[t][:, None]
        eps = (x - a.sqrt() * point) / (1 - a).sqrt()
        return {"eps": eps, "x0": point.expand_as(x), "v": a.sqrt() * eps - (1 - a).sqrt() * point}[
            prediction
        ]

    noise = 5 * torch.randn(7, 3, dtype=torch.float64)
    for steps in (1, 3, 17):
        x = sample(den, noise, sched, sampler, steps, prediction=prediction, spacing="trailing")
        assert torch.allclose(x, point.expand_as(x), atol=1e-9)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_any_rank_device_free_and_seeded(sampler):
    """Video tensors (b, t, c, h, w), float32; same generator seed -> same samples; t is a LongTensor (b,)."""
    sched = NoiseSchedule("cosine", num_timesteps=100)
    seen = []

    def den(x, t):
        assert t.dtype == torch.long and t.shape == (x.shape[0],)
        seen.append(int(t[0]))
        return 0.5 * x

    noise = torch.randn(2, 3, 4, 5, 5)
    eta = 0.5 if sampler == "ddim" else 0.0
    a = sample(den, noise, sched, sampler, 7, eta=eta, generator=torch.Generator().manual_seed(0))
    b = sample(den, noise, sched, sampler, 7, eta=eta, generator=torch.Generator().manual_seed(0))
    assert a.shape == noise.shape and a.dtype == torch.float32 and torch.equal(a, b)
    assert seen[:7] == sampler_timesteps(sched, sampler, 7, "leading")[0]
    if sampler in ("ddpm", "ddim"):
        c = sample(den, noise, sched, sampler, 7, eta=eta, generator=torch.Generator().manual_seed(1))
        assert not torch.equal(a, c)


def test_callback_reports_every_step():
    sched = NoiseSchedule("linear", num_timesteps=50)
    calls = []
    sample(
        lambda x, t: torch.zeros_like(x),
        torch.randn(2, 3),
        sched,
        "ddim",
        5,
        callback=lambda i, n, x, x0: calls.append((i, n, x.shape, x0.shape)),
    )
    assert calls == [(i, 5, (2, 3), (2, 3)) for i in range(5)]


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmpp_2m", "unipc"])
def test_eps_prediction_at_zero_terminal_snr_is_refused(sampler):
    sched = NoiseSchedule("linear", zero_terminal_snr=True)
    with pytest.raises(ValueError, match="prediction='eps' is undefined"):
        sample(lambda x, t: x, torch.randn(2, 2), sched, sampler, 10, spacing="trailing")
    out = sample(lambda x, t: torch.zeros_like(x), torch.randn(2, 2), sched, sampler, 10, spacing="leading")
    assert torch.isfinite(out).all()


def test_bad_input():
    sched = NoiseSchedule("linear", num_timesteps=100)
    den, noise = (lambda x, t: x), torch.randn(2, 3)
    with pytest.raises(ValueError, match="'ddpm', 'ddim', 'dpmpp_2m'"):
        sample(den, noise, sched, "euler")
    with pytest.raises(ValueError, match="'leading', 'trailing', 'linspace'"):
        sample(den, noise, sched, "ddim", spacing="uniform")
    with pytest.raises(ValueError, match="'eps', 'x0', 'v'"):
        sample(den, noise, sched, "ddim", prediction="epsilon")
    with pytest.raises(ValueError, match="steps"):
        sample(den, noise, sched, "ddim", steps=101)
    with pytest.raises(ValueError, match="steps"):
        sample(den, noise, sched, "ddim", steps=0)
    with pytest.raises(ValueError, match="eta only applies"):
        sample(den, noise, sched, "ddpm", eta=1.0)
    with pytest.raises(ValueError, match="eta must be >= 0"):
        sample(den, noise, sched, "ddim", eta=-1.0)
    with pytest.raises(ValueError, match="denoiser output must have the shape"):
        sample(lambda x, t: x[:, :2], noise, sched, "ddim", steps=3)
    with pytest.raises(ValueError, match="strictly decreasing"):
        sample_ddim(den, noise, sched, [10, 20])


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_per_sample_generators_make_samples_independent_of_the_batch(sampler):
    sched = NoiseSchedule("linear", num_timesteps=100)
    noise = torch.randn(2, 3, 4)
    mask = torch.zeros(2, 3, 1, dtype=torch.bool)
    mask[:, 0] = True
    kw = {"eta": 1.0 if sampler == "ddim" else 0.0, "known": torch.ones(2, 3, 4), "known_mask": mask}

    def gens(*seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    both = sample(lambda x, t: 0.5 * x, noise, sched, sampler, 6, generator=gens(1, 2), **kw)
    for i, seed in enumerate((1, 2)):
        one = {k: v[i : i + 1] if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
        alone = sample(lambda x, t: 0.5 * x, noise[i : i + 1], sched, sampler, 6, generator=gens(seed), **one)
        assert torch.allclose(both[i : i + 1], alone, atol=1e-6)
    with pytest.raises(ValueError, match="one generator per sample: expected 2, got 1"):
        sample(lambda x, t: x, noise, sched, sampler, 6, generator=gens(1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_cuda_half_precision_with_cpu_schedule(sampler):
    from vidiff.diffusion import diffusion_loss

    sched = NoiseSchedule("cosine", num_timesteps=100)  # tables stay on the CPU
    noise = torch.randn(2, 3, 4, 8, 8, device="cuda", dtype=torch.float16)
    mask = torch.zeros(2, 3, 1, 1, 1, dtype=torch.bool, device="cuda")
    mask[:, 0] = True
    g = torch.Generator(device="cuda").manual_seed(0)
    eta = 1.0 if sampler == "ddim" else 0.0
    out = sample(
        lambda x, t: 0.5 * x,
        noise,
        sched,
        sampler,
        5,
        eta=eta,
        generator=g,
        prediction="v",
        known=noise,
        known_mask=mask,
        threshold="dynamic",
    )
    assert out.device == noise.device and out.dtype == torch.float16 and torch.isfinite(out).all()
    t = torch.randint(0, 100, (2,), device="cuda")
    loss = diffusion_loss(noise, noise, noise, t, sched, "v", weight=(~mask).half(), min_snr_gamma=5.0)
    assert loss.device == noise.device and torch.isfinite(loss)


def test_samplers_called_directly_check_their_arguments():
    sched = NoiseSchedule("linear", num_timesteps=100, zero_terminal_snr=True)
    x = torch.randn(2, 3)
    for fn in (sample_ddpm, sample_ddim, sample_dpmpp_2m, sample_unipc):
        with pytest.raises(ValueError, match="prediction='eps' is undefined at t=99"):
            fn(lambda x, t: x, x, sched, [99, 50, 0])
        with pytest.raises(ValueError, match="noise must be a floating-point tensor"):
            fn(lambda x, t: x, torch.zeros(2, 3, dtype=torch.long), sched, [50, 0])
    with pytest.raises(ValueError, match="noise must be a floating-point tensor"):
        sample(lambda x, t: x, torch.tensor(1.0), sched, "ddim", 5)


# ---------------------------------------------------------------- multistep solvers against diffusers

# diffusers 0.42.1, DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2, timestep_spacing=...)
# and UniPCMultistepScheduler(timestep_spacing=...) (the same rules), T = 1000, linear betas:
# list(scheduler.set_timesteps(n) or scheduler.timesteps), computed once.
DIFFUSERS_SOLVER_TIMESTEPS = {
    ("leading", 10): [900, 810, 720, 630, 540, 450, 360, 270, 180, 90],
    ("linspace", 10): [999, 899, 799, 699, 599, 500, 400, 300, 200, 100],
    ("trailing", 10): [999, 899, 799, 699, 599, 499, 399, 299, 199, 99],
    ("leading", 7): [875, 750, 625, 500, 375, 250, 125],
    ("linspace", 7): [999, 856, 714, 571, 428, 285, 143],
    ("trailing", 7): [999, 856, 713, 570, 428, 285, 142],
    ("leading", 25): [950, 912, 874, 836, 798, 760, 722, 684, 646, 608, 570, 532, 494, 456, 418, 380, 342, 304,
                      266, 228, 190, 152, 114, 76, 38],
    ("linspace", 25): [999, 959, 919, 879, 839, 799, 759, 719, 679, 639, 599, 559, 519, 480, 440, 400, 360, 320,
                       280, 240, 200, 160, 120, 80, 40],
}
# the same scheduler with use_karras_sigmas=True / use_exponential_sigmas=True, 10 steps; cosine and
# scaled_linear with vidiff's betas passed as trained_betas
DIFFUSERS_SIGMA_TIMESTEPS = {
    ("linear", "dpmpp_2m_karras"): [999, 937, 864, 775, 663, 511, 301, 102, 18, 0],
    ("linear", "dpmpp_2m_exponential"): [999, 886, 757, 602, 409, 202, 72, 21, 4, 0],
    ("scaled_linear", "dpmpp_2m_karras"): [999, 916, 815, 687, 523, 327, 146, 41, 7, 0],
    ("scaled_linear", "dpmpp_2m_exponential"): [999, 874, 723, 538, 329, 152, 52, 14, 2, 0],
    ("cosine", "dpmpp_2m_karras"): [999, 999, 999, 998, 998, 995, 983, 895, 259, 0],
    ("cosine", "dpmpp_2m_exponential"): [999, 998, 998, 994, 974, 871, 476, 104, 14, 0],
}


@pytest.mark.parametrize("spacing,steps", list(DIFFUSERS_SOLVER_TIMESTEPS))
def test_solver_timesteps_equal_diffusers(spacing, steps):
    expected = DIFFUSERS_SOLVER_TIMESTEPS[spacing, steps]
    assert make_solver_timesteps(1000, steps, spacing) == expected
    sched = NoiseSchedule("linear")
    for sampler in ("dpmpp_2m", "unipc"):
        assert sampler_timesteps(sched, sampler, steps, spacing) == (expected, None)
    assert sampler_timesteps(sched, "ddim", steps, spacing)[0] == make_timesteps(1000, steps, spacing)
    if spacing == "leading":  # steps_offset is added to every timestep, as in diffusers
        assert make_solver_timesteps(1000, steps, spacing, 1) == [t + 1 for t in expected]


@pytest.mark.parametrize("kind,sampler", list(DIFFUSERS_SIGMA_TIMESTEPS))
def test_sigma_spaced_timesteps_equal_diffusers(kind, sampler):
    ts, levels = sampler_timesteps(NoiseSchedule(kind), sampler, 10)
    assert ts == DIFFUSERS_SIGMA_TIMESTEPS[kind, sampler] and len(levels) == 10


@pytest.mark.parametrize("kind", ["karras", "exponential"])
def test_sigma_levels_closed_form(kind):
    """Karras et al. eq. 5: sigma^(1/7) is linear in the step index; exponential: log sigma is; both span the
    schedule's sigmas; each level's timestep is the nearest (Karras) or next lower (exponential) fractional one."""
    sched = NoiseSchedule("scaled_linear")
    ab = sched.alphas_cumprod_f64
    ts, levels = make_sigma_levels(ab.tolist(), 12, kind)
    sigma = ((1 - torch.tensor(levels, dtype=torch.float64)) / torch.tensor(levels, dtype=torch.float64)).sqrt()
    table = ((1 - ab) / ab).sqrt()
    assert torch.allclose(sigma[[0, -1]], table[[-1, 0]], rtol=1e-12)
    f = sigma ** (1 / 7) if kind == "karras" else sigma.log()
    assert torch.allclose(f.diff(), f.diff()[:1].expand(11), rtol=1e-9)
    for t, s in zip(ts, sigma):
        frac = torch.searchsorted(table, s).item()  # table[frac - 1] < s <= table[frac]
        assert t in (frac - 1, frac) and (abs(t - frac) <= 1)
        if kind == "exponential":
            assert table[t] <= s * (1 + 1e-12)  # truncated: t's sigma is at most the level's


def test_solver_timesteps_bad_input():
    sched = NoiseSchedule("linear")
    with pytest.raises(ValueError, match=r"steps must be an int in \[1, num_timesteps - 1 = 999\]"):
        make_solver_timesteps(1000, 1000, "leading")
    assert make_solver_timesteps(1000, 1000, "trailing") == list(range(999, -1, -1))
    with pytest.raises(ValueError, match="spacing must be one of"):
        make_solver_timesteps(1000, 10, "uniform")
    with pytest.raises(ValueError, match="kind must be one of 'karras', 'exponential'"):
        make_sigma_levels([0.9, 0.5], 3, "lu")
    with pytest.raises(ValueError, match="alphas_cumprod must hold >= 2 values in \\(0, 1\\)"):
        zero_snr = NoiseSchedule("linear", zero_terminal_snr=True)
        sample(lambda x, t: x, torch.randn(2, 2), zero_snr, "dpmpp_2m_karras", 5, prediction="v")
    with pytest.raises(ValueError, match="non-increasing"):
        sample_dpmpp_2m(lambda x, t: x, torch.randn(2, 2), sched, [10, 20], alphas_cumprod=[0.5, 0.6])
    with pytest.raises(ValueError, match="one strictly increasing level"):
        sample_unipc(lambda x, t: x, torch.randn(2, 2), sched, [20, 20], alphas_cumprod=[0.6, 0.5])


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize(
    "sampler,spacing",
    [("dpmpp_2m", "leading"), ("dpmpp_2m", "linspace"), ("dpmpp_2m", "trailing"), ("unipc", "leading"),
     ("unipc", "linspace"), ("dpmpp_2m_karras", "leading"), ("dpmpp_2m_exponential", "leading")],
)
def test_many_steps_reach_the_data_std(kind, sampler, spacing):
    """The issue's setting: x0 ~ N(0.7, 0.4^2), exact eps denoiser; with many steps the std approaches 0.4."""
    sched = NoiseSchedule(kind)
    mu, s = torch.tensor([0.7], dtype=torch.float64), torch.tensor([0.4], dtype=torch.float64)
    noise = standard_noise(256, torch.Generator().manual_seed(0))[:, :1]
    steps = 500 if sampler == "dpmpp_2m_karras" and kind == "cosine" else 200
    x = sample(gaussian_denoiser(sched, "eps", mu, s), noise, sched, sampler, steps, spacing=spacing)
    start = sampler_timesteps(sched, sampler, steps, spacing)[0][0]
    a = sched.alphas_cumprod_f64[start]
    target = s / (s**2 * a + 1 - a).sqrt()  # the exact ODE map from N(0, 1) at the first step (about 0.4)
    assert abs(x.std().item() / target.item() - 1) < 0.01, (x.std().item(), target.item())


def _diffusers_run(schedule, sampler, spacing, steps, noise, denoiser, prediction):
    """diffusers' own loop with the scheduler vidiff's ``sampler`` reproduces, on vidiff's alphas_cumprod; returns the
    final sample, the states the model saw and the timesteps."""
    diffusers = pytest.importorskip("diffusers")
    kw = {
        "num_train_timesteps": schedule.num_timesteps,
        "trained_betas": schedule.betas.tolist(),
        "prediction_type": {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}[prediction],
        "timestep_spacing": spacing,
    }
    if sampler == "unipc":
        sched = diffusers.UniPCMultistepScheduler(**kw)
    else:
        extra = {"dpmpp_2m_karras": "use_karras_sigmas", "dpmpp_2m_exponential": "use_exponential_sigmas"}
        if sampler in extra:
            kw[extra[sampler]] = True
        sched = diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2, **kw)
    ab = schedule.alphas_cumprod_f64.clone()  # the same alphas_cumprod on both sides
    sched.alphas_cumprod, sched.alpha_t, sched.sigma_t = ab, ab.sqrt(), (1 - ab).sqrt()
    sched.lambda_t, sched.sigmas = sched.alpha_t.log() - sched.sigma_t.log(), ((1 - ab) / ab).sqrt()
    sched.set_timesteps(steps)
    sched.set_begin_index(0)
    x, seen = noise.clone(), []
    for t in sched.timesteps:
        seen.append(x)
        x = sched.step(denoiser(x, t.reshape(1).expand(x.shape[0])), t, x).prev_sample
    return x, seen, sched.timesteps.tolist()


@pytest.mark.parametrize(
    "sampler,spacing,kind,prediction,steps",
    [
        ("dpmpp_2m", "leading", "linear", "eps", 10),
        ("dpmpp_2m", "linspace", "linear", "eps", 10),
        ("dpmpp_2m", "trailing", "linear", "eps", 10),
        ("dpmpp_2m", "leading", "cosine", "v", 20),
        ("dpmpp_2m", "linspace", "scaled_linear", "x0", 7),
        ("unipc", "leading", "linear", "eps", 10),
        ("unipc", "linspace", "linear", "eps", 10),
        ("unipc", "trailing", "linear", "eps", 10),
        ("unipc", "leading", "cosine", "v", 20),
        ("unipc", "linspace", "scaled_linear", "x0", 3),
        ("dpmpp_2m_karras", "leading", "linear", "eps", 10),
        ("dpmpp_2m_karras", "leading", "scaled_linear", "v", 25),
        ("dpmpp_2m_exponential", "leading", "linear", "eps", 10),
        ("dpmpp_2m_exponential", "leading", "cosine", "x0", 15),
    ],
)
def test_step_for_step_equal_to_diffusers(sampler, spacing, kind, prediction, steps):
    """Every state the model sees, its timesteps and the result equal diffusers' (which steps in float32)."""
    sched = NoiseSchedule(kind)
    mu, s = torch.tensor([0.7, -0.2], dtype=torch.float64), torch.tensor([0.4, 1.1], dtype=torch.float64)
    base = gaussian_denoiser(sched, prediction, mu, s)
    told = []

    def den(x, t):
        told.append(int(t[0]))
        return base(x, t)

    noise = torch.randn(32, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref, ref_seen, ref_ts = _diffusers_run(sched, sampler, spacing, steps, noise, base, prediction)
    seen = []
    out = sample(den, noise, sched, sampler, steps, prediction=prediction, spacing=spacing,
                 callback=lambda i, n, x, x0: seen.append(x))
    assert told == ref_ts and len(seen) == len(ref_seen) == steps
    for ours, theirs in zip(seen, ref_seen):
        assert torch.allclose(ours, theirs, atol=2e-5, rtol=1e-5)
    assert torch.allclose(out, ref, atol=2e-5, rtol=1e-5)


def test_unipc_corrector_changes_the_states_and_karras_levels_reach_the_denoiser():
    """UniPC's predictor is DPM-Solver++(2M)'s update, so the two differ only by the corrector: equal first
    step, different second state. The Karras sampler converts predictions at its own levels, not at t."""
    sched = NoiseSchedule("linear")
    den = gaussian_denoiser(sched, "eps")
    noise = torch.randn(8, 2, dtype=torch.float64)
    states = {"dpmpp_2m": [], "unipc": []}
    for sampler, seen in states.items():
        sample(den, noise, sched, sampler, 6, callback=lambda i, n, x, x0, seen=seen: seen.append(x))
    assert torch.allclose(states["dpmpp_2m"][1], states["unipc"][1], atol=1e-12)  # no correction before step 1
    assert not torch.allclose(states["dpmpp_2m"][2], states["unipc"][2], atol=1e-4)
    _, levels = sampler_timesteps(sched, "dpmpp_2m_karras", 6)
    x0s = []
    sample(lambda x, t: torch.zeros_like(x), noise, sched, "dpmpp_2m_karras", 6,
           callback=lambda i, n, x, x0: x0s.append((x, x0)))
    x, x0 = x0s[0]
    assert torch.allclose(x0, x / math.sqrt(levels[0]), rtol=1e-12)  # eps = 0: x / sqrt(level), not sqrt(ab[t])
