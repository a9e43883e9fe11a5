"""NoiseSchedule: closed forms, zero terminal SNR, forward-process moments and eps/x0/v conversions."""

import math

import pytest
import torch

from vidiff.diffusion import NoiseSchedule, append_dims, rescale_zero_terminal_snr

KINDS = ["linear", "scaled_linear", "cosine"]


def test_linear_and_scaled_linear_betas_match_their_definitions():
    lin = NoiseSchedule("linear", num_timesteps=1000)
    assert lin.betas[0].item() == pytest.approx(1e-4) and lin.betas[-1].item() == pytest.approx(0.02)
    assert torch.allclose(lin.betas[1:] - lin.betas[:-1], torch.full((999,), (0.02 - 1e-4) / 999), atol=1e-9)
    sd = NoiseSchedule("scaled_linear", num_timesteps=1000)
    root = sd.betas.double().sqrt()
    assert root[0].item() == pytest.approx(0.00085**0.5) and root[-1].item() == pytest.approx(0.012**0.5)
    assert torch.allclose(
        root[1:] - root[:-1],
        torch.full((999,), (0.012**0.5 - 0.00085**0.5) / 999, dtype=torch.float64),
        atol=1e-7,
    )
    custom = NoiseSchedule("linear", num_timesteps=10, beta_start=0.001, beta_end=0.1)
    assert custom.betas[0].item() == pytest.approx(0.001) and custom.betas[-1].item() == pytest.approx(0.1)


def test_cosine_alphas_cumprod_closed_form():
    T, s = 1000, 0.008
    sched = NoiseSchedule("cosine", num_timesteps=T)

    def f(t):
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    expected = torch.tensor([f(t + 1) / f(0) for t in range(T)], dtype=torch.float64)
    unclipped = sched.betas.double() < 0.999 - 1e-9
    assert unclipped[:-1].all()  # only the last beta is clipped to 0.999
    assert torch.allclose(sched.alphas_cumprod_f64[:-1], expected[:-1], rtol=1e-10, atol=1e-14)
    assert sched.betas[-1].item() == pytest.approx(0.999)


@pytest.mark.parametrize("kind", KINDS)
def test_tables_are_consistent(kind):
    s = NoiseSchedule(kind, num_timesteps=100)
    ab = s.alphas_cumprod_f64
    assert torch.allclose(ab, torch.cumprod(1 - s.betas.double(), 0), rtol=1e-6)
    assert torch.all(ab[1:] < ab[:-1]) and 0 < ab[-1] < ab[0] < 1
    assert s.alphas_cumprod_prev[0] == 1 and torch.equal(s.alphas_cumprod_prev[1:], s.alphas_cumprod[:-1])
    assert torch.allclose(s.sqrt_alphas_cumprod**2 + s.sqrt_one_minus_alphas_cumprod**2, torch.ones(100))
    # DDPM eq. 7: beta~_t = (1 - ab_{t-1}) / (1 - ab_t) beta_t and the posterior mean coefficients
    a, ap, b = (
        ab,
        torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]]),
        1 - ab / torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]]),
    )
    assert torch.allclose(s.posterior_variance.double(), b * (1 - ap) / (1 - a), rtol=1e-5, atol=1e-12)
    assert torch.allclose(s.posterior_mean_coef1.double(), b * ap.sqrt() / (1 - a), rtol=1e-5)
    assert torch.allclose(s.posterior_mean_coef2.double(), (1 - ap) * (1 - b).sqrt() / (1 - a), rtol=1e-5)
    assert s.posterior_log_variance_clipped[0] == s.posterior_log_variance_clipped[1]
    assert all(
        getattr(s, n).dtype == torch.float32 for n in ("betas", "alphas_cumprod", "posterior_variance")
    )


@pytest.mark.parametrize("kind", KINDS)
def test_zero_terminal_snr(kind):
    plain = NoiseSchedule(kind, num_timesteps=1000)
    zt = NoiseSchedule(kind, num_timesteps=1000, zero_terminal_snr=True)
    assert zt.alphas_cumprod[-1].item() == 0 and zt.betas[-1].item() == 1
    assert zt.alphas_cumprod_f64[0].item() == pytest.approx(plain.alphas_cumprod_f64[0].item(), rel=1e-12)
    assert torch.all(zt.alphas_cumprod_f64[1:] < zt.alphas_cumprod_f64[:-1])
    # Algorithm 1 is an affine map of sqrt(alpha-bar): check it against the closed form
    r = plain.alphas_cumprod_f64.sqrt()
    expected = ((r - r[-1]) * r[0] / (r[0] - r[-1])) ** 2
    assert torch.allclose(zt.alphas_cumprod_f64, expected, atol=1e-12)
    assert zt.snr(999) == 0 and torch.equal(zt.snr(torch.tensor([999])), torch.zeros(1))
    assert torch.equal(
        rescale_zero_terminal_snr(plain.betas.double())[-1], torch.tensor(1.0, dtype=torch.float64)
    )


def test_respace_keeps_alphas_cumprod_at_the_kept_timesteps():
    s = NoiseSchedule("linear", num_timesteps=1000)
    kept = [999, 500, 250, 0]
    spaced = s.respace(kept)
    assert spaced.num_timesteps == 4
    assert torch.allclose(spaced.alphas_cumprod_f64, s.alphas_cumprod_f64[[0, 250, 500, 999]], rtol=1e-12)


@pytest.mark.parametrize("shape", [(4000, 3), (2000, 2, 3), (500, 2, 3, 2, 2)])
def test_q_sample_marginal_moments_any_rank(shape):
    s = NoiseSchedule("cosine", num_timesteps=1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full(shape, 0.7, dtype=torch.float64)
    t = torch.full((shape[0],), 300, dtype=torch.long)
    xt = s.q_sample(x0, t, torch.randn(shape, generator=g, dtype=torch.float64))
    a = s.alphas_cumprod_f64[300].item()
    n = xt.numel()
    assert xt.mean().item() == pytest.approx(math.sqrt(a) * 0.7, abs=4 * math.sqrt((1 - a) / n))
    assert xt.var().item() == pytest.approx(1 - a, rel=4 * math.sqrt(2 / n))
    # per-sample timesteps broadcast over any rank and int t equals a constant tensor t
    t_mixed = torch.tensor([0, 999] * (shape[0] // 2))
    noise = torch.randn(shape, dtype=torch.float64)
    out = s.q_sample(x0, t_mixed, noise)
    expect = (
        append_dims(s.sqrt_alphas_cumprod[t_mixed].double(), len(shape)) * x0
        + append_dims(s.sqrt_one_minus_alphas_cumprod[t_mixed].double(), len(shape)) * noise
    )
    assert torch.allclose(out, expect, atol=1e-6)
    assert torch.allclose(s.q_sample(x0, 300, noise), s.q_sample(x0, t, noise), atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("zero_terminal_snr", [False, True])
def test_eps_x0_v_conversions_round_trip(kind, zero_terminal_snr):
    s = NoiseSchedule(kind, num_timesteps=1000, zero_terminal_snr=zero_terminal_snr)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(6, 2, 3, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 100, 500, 998, 998])
    xt = s.q_sample(x0, t, eps)
    v = s.get_v(x0, eps, t)
    tol = {"atol": 1e-4, "rtol": 1e-4}  # float32 tables
    assert torch.allclose(s.predict_x0(xt, t, eps), x0, **tol)
    assert torch.allclose(s.predict_eps(xt, t, x0), eps, **tol)
    for prediction, pred in (("eps", eps), ("x0", x0), ("v", v)):
        x0_hat, eps_hat = s.to_x0_eps(pred, xt, t, prediction)
        assert torch.allclose(x0_hat, x0, **tol) and torch.allclose(eps_hat, eps, **tol), prediction
        assert torch.equal(s.get_target(x0, eps, t, prediction), pred)
    # v = sqrt(a) eps - sqrt(1 - a) x0 with float64 coefficients at an int timestep
    a = s.alphas_cumprod_f64[500].item()
    assert torch.allclose(s.get_v(x0, eps, 500), math.sqrt(a) * eps - math.sqrt(1 - a) * x0, atol=1e-14)


def test_zero_terminal_snr_last_step_v_and_x0_work_eps_does_not():
    s = NoiseSchedule("linear", num_timesteps=1000, zero_terminal_snr=True)
    x0, eps = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    xt = s.q_sample(x0, 999, eps)
    assert torch.equal(xt, eps)  # pure noise
    x0_hat, eps_hat = s.to_x0_eps(s.get_v(x0, eps, 999), xt, 999, "v")
    assert torch.allclose(x0_hat, x0) and torch.allclose(eps_hat, eps)
    assert torch.allclose(s.to_x0_eps(x0, xt, 999, "x0")[1], eps)
    assert not torch.isfinite(s.predict_x0(xt, 999, eps)).all()


def test_snr_and_lookup():
    s = NoiseSchedule("linear", num_timesteps=1000)
    t = torch.tensor([0, 10, 999])
    a = s.alphas_cumprod_f64[t]
    assert s.snr(t).dtype == torch.float32
    assert torch.allclose(s.snr(t).double(), a / (1 - a), rtol=1e-6)
    assert s.snr(10) == pytest.approx((a[1] / (1 - a[1])).item(), rel=1e-12)
    x = torch.zeros(3, 2, 5, 1, 4, 4, dtype=torch.float16)
    c = s.at("sqrt_alphas_cumprod", t, x)
    assert c.shape == (3, 1, 1, 1, 1, 1) and c.dtype == torch.float16
    assert isinstance(s.at("betas", 5, x), float)
    moved = s.to("cpu")
    assert moved is not s and torch.equal(moved.betas, s.betas) and moved.device == torch.device("cpu")


def test_bad_input():
    with pytest.raises(ValueError, match="'linear', 'scaled_linear', 'cosine'"):
        NoiseSchedule("quadratic")
    with pytest.raises(ValueError, match="num_timesteps"):
        NoiseSchedule("linear", num_timesteps=1)
    with pytest.raises(ValueError, match="beta_start"):
        NoiseSchedule("cosine", beta_start=1e-4)
    with pytest.raises(ValueError, match="beta_start"):
        NoiseSchedule("linear", beta_start=0.1, beta_end=0.01)
    s = NoiseSchedule("linear", num_timesteps=10)
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="'eps', 'x0', 'v'"):
        s.get_target(x, x, 1, "sample")
    with pytest.raises(ValueError, match=r"t must lie in \[0, 9\]"):
        s.q_sample(x, 10, x)
    with pytest.raises(ValueError, match=r"shape \(\) or \(2,\)"):
        s.q_sample(x, torch.tensor([1, 2, 3]), x)
    with pytest.raises(ValueError, match="noise must have the shape of x0"):
        s.q_sample(x, 1, torch.zeros(2, 4))
