"""Guidance wrappers, conditioning arithmetic, thresholding, start-from-image and the known-region hook."""

import pytest
import torch

from vidiff.diffusion import (
    SAMPLERS,
    NoiseSchedule,
    classifier_free_guidance,
    dynamic_threshold,
    mix_conditioning,
    sample,
    sampler_timesteps,
    scale_conditioning,
    static_threshold,
    threshold_x0,
)


class ContextModel:
    """model_fn(x, t, context) = x * 0.1 + mean(context) per sample, counting calls and batch sizes."""

    def __init__(self):
        self.batches = []

    def __call__(self, x, t, context):
        self.batches.append(x.shape[0])
        return 0.1 * x + context.mean(dim=(1, 2)).view(-1, *([1] * (x.ndim - 1)))


def test_cfg_scale_one_zero_and_negative_context():
    model = ContextModel()
    x = torch.randn(3, 2, 4, 4)
    t = torch.full((3,), 10)
    c, null, neg = torch.randn(3, 5, 8), torch.zeros(1, 5, 8), torch.randn(3, 5, 8)
    cond, uncond, negative = model(x, t, c), model(x, t, null.expand(3, 5, 8)), model(x, t, neg)
    model.batches.clear()
    assert torch.allclose(classifier_free_guidance(model, c, null, 1.0)(x, t), cond, atol=1e-6)
    assert torch.allclose(classifier_free_guidance(model, c, null, 0.0)(x, t), uncond, atol=1e-6)
    assert torch.allclose(
        classifier_free_guidance(model, c, null, 7.5)(x, t), uncond + 7.5 * (cond - uncond), atol=1e-5
    )
    assert torch.allclose(
        classifier_free_guidance(model, c, null, 0.0, negative_context=neg)(x, t), negative, atol=1e-6
    )
    assert torch.allclose(
        classifier_free_guidance(model, c, null, 3.0, negative_context=neg)(x, t),
        negative + 3 * (cond - negative),
        atol=1e-5,
    )
    assert model.batches == [6] * 5  # one batched call (cond and uncond concatenated) per evaluation


def test_cfg_is_linear_so_parameterisations_agree():
    """Guiding a v-model then converting to eps equals guiding the eps predictions (both are linear in pred)."""
    sched = NoiseSchedule("cosine")
    x, t = torch.randn(2, 3, dtype=torch.float64), torch.tensor([300, 300])
    eps_c, eps_u = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)

    def as_v(eps):
        x0 = sched.predict_x0(x, 300, eps)
        return sched.get_v(x0, eps, 300)

    def model_v(x_in, t_in, ctx):
        return torch.where(ctx.view(-1, 1) > 0, as_v(eps_c).repeat(2, 1), as_v(eps_u).repeat(2, 1))

    guided_v = classifier_free_guidance(model_v, torch.ones(2), torch.zeros(2), 4.0)(x, t)
    _, guided_eps = sched.to_x0_eps(guided_v, x, 300, "v")
    assert torch.allclose(guided_eps, eps_u + 4.0 * (eps_c - eps_u), atol=1e-10)


def test_cfg_with_dict_and_none_contexts():
    def model(x, t, ctx):
        return x + (0.0 if ctx is None else ctx["y"].view(-1, 1))

    x, t = torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)
    out = classifier_free_guidance(model, {"y": torch.tensor([1.0, 2.0])}, {"y": torch.zeros(1)}, 2.0)(x, t)
    assert torch.allclose(out, torch.tensor([[2.0] * 3, [4.0] * 3]))
    out = classifier_free_guidance(lambda x, t, c: x + (0 if c is None else c), torch.ones(2, 3), None, 2.0)(
        x, t
    )
    assert torch.allclose(out, torch.full((2, 3), 2.0))  # falls back to two calls for a None context


def test_conditioning_strength_and_mix():
    c1, c2 = torch.randn(2, 4, 8), torch.randn(2, 4, 8)
    assert torch.allclose(scale_conditioning(c1, 0.3), 0.3 * c1)
    assert torch.allclose(mix_conditioning(c1, c2, 0.25), 0.25 * c1 + 0.75 * c2)
    assert torch.equal(mix_conditioning(c1, c2, 1.0), c1) and torch.equal(
        scale_conditioning(c1, 0.0), torch.zeros_like(c1)
    )
    with pytest.raises(ValueError, match=r"c2 must have the shape of c1"):
        mix_conditioning(c1, c2[:1], 0.5)


def test_thresholding():
    g = torch.Generator().manual_seed(0)
    inside = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1
    assert torch.equal(static_threshold(inside), inside) and torch.equal(dynamic_threshold(inside), inside)
    assert threshold_x0(inside, None) is inside
    big = 3 * torch.randn(4, 3, 8, 8, generator=g)
    big[0] = inside[0]  # one in-range sample in the batch stays untouched
    st = static_threshold(big)
    assert st.min() >= -1 and st.max() <= 1 and torch.equal(st[big.abs() <= 1], big[big.abs() <= 1])
    dyn = dynamic_threshold(big, 0.9)
    assert dyn.abs().max() <= 1 and torch.equal(dyn[0], big[0])
    # Imagen: s = max(1, percentile of |x0| over the sample); clip to [-s, s] and divide by s
    for i in range(1, 4):
        s = max(1.0, torch.quantile(big[i].abs().flatten(), 0.9).item())
        assert torch.allclose(dyn[i], big[i].clamp(-s, s) / s, atol=1e-6)
        assert (dyn[i].abs() == 1).float().mean() >= 0.09  # about 10% saturate at +-1
    with pytest.raises(ValueError, match="None, 'static', 'dynamic'"):
        threshold_x0(big, "clip")
    with pytest.raises(ValueError, match="dynamic_percentile"):
        dynamic_threshold(big, 1.5)


@pytest.mark.parametrize("threshold", ["static", "dynamic"])
def test_thresholding_inside_samplers_keeps_x0_hat_in_range(threshold):
    sched = NoiseSchedule("linear", num_timesteps=100)
    seen = []
    out = sample(
        lambda x, t: 4 * torch.ones_like(x),
        torch.randn(2, 3, 4, 4),
        sched,
        "ddim",
        10,
        prediction="x0",
        threshold=threshold,
        callback=lambda i, n, x, x0: seen.append(x0.abs().max().item()),
    )
    assert max(seen) <= 1 + 1e-6 and out.abs().max() <= 1 + 1e-6
    free = sample(
        lambda x, t: 4 * torch.ones_like(x), torch.randn(2, 3, 4, 4), sched, "ddim", 10, prediction="x0"
    )
    assert torch.allclose(free, torch.full_like(free, 4.0))


def _toy_denoiser(sched):
    """An eps-model of data concentrated near 0.5 (any smooth function will do for these invariance tests)."""
    return lambda x, t: 0.3 * x + 0.1 * torch.sin(x)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("known_noised", [True, False])
def test_known_region_equals_known_content_at_the_end(sampler, known_noised):
    sched = NoiseSchedule("linear", num_timesteps=200)
    b, t, c, h, w = 2, 4, 3, 6, 6
    known = torch.rand(b, t, c, h, w) * 2 - 1
    mask = torch.zeros(b, t, 1, 1, 1, dtype=torch.bool)
    mask[:, :2] = True  # first two frames observed
    seen = []

    def den(x, tt):
        seen.append(x[:, :2].clone())
        return _toy_denoiser(sched)(x, tt)

    g = torch.Generator().manual_seed(0)
    out = sample(
        den,
        torch.randn(b, t, c, h, w),
        sched,
        sampler,
        8,
        generator=g,
        known=known,
        known_mask=mask,
        known_noised=known_noised,
    )
    assert torch.equal(out[:, :2], known[:, :2])
    assert not torch.allclose(out[:, 2:], known[:, 2:], atol=1e-2)
    if known_noised:  # the model saw q_sample(known, t): noisier early, clean-ish late
        assert (seen[0] - known[:, :2]).abs().mean() > 0.5 > (seen[-1] - known[:, :2]).abs().mean()
    else:  # the model always saw the clean known frames
        assert all(torch.equal(s, known[:, :2]) for s in seen)


def test_known_region_pixel_mask_for_inpainting():
    sched = NoiseSchedule("cosine", num_timesteps=100)
    known = torch.randn(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :4] = True
    out = sample(
        _toy_denoiser(sched), torch.randn(1, 3, 8, 8), sched, "ddim", 5, known=known, known_mask=mask
    )
    assert torch.equal(out[..., :4], known[..., :4])


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_strength_zero_returns_image_and_one_equals_a_run_from_noise(sampler):
    sched = NoiseSchedule("scaled_linear", num_timesteps=100)
    image = torch.rand(2, 3, 8, 8) * 2 - 1
    noise = torch.randn(2, 3, 8, 8)
    den = _toy_denoiser(sched)
    assert torch.equal(sample(den, noise, sched, sampler, 10, init=image, strength=0.0), image)
    from_image = sample(
        den, noise, sched, sampler, 10, init=image, strength=1.0, generator=torch.Generator().manual_seed(4)
    )
    from_noise = sample(den, noise, sched, sampler, 10, generator=torch.Generator().manual_seed(4))
    assert torch.equal(from_image, from_noise)


def test_strength_runs_the_last_steps_from_the_noised_image():
    sched = NoiseSchedule("linear", num_timesteps=1000)
    image, noise = torch.rand(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    calls = []

    def den(x, t):
        calls.append((int(t[0]), x.clone()))
        return torch.zeros_like(x)

    sample(den, noise, sched, "ddim", 10, init=image, strength=0.3)
    assert [t for t, _ in calls] == [200, 100, 0]  # int(10 * 0.3) = 3 last leading timesteps
    # SDEdit: the image is destroyed down to t = 200
    assert torch.allclose(calls[0][1], sched.q_sample(image, 200, noise))
    calls.clear()  # sigma-spaced samplers: the last levels, the image noised to the first of them
    sample(den, noise, sched, "dpmpp_2m_karras", 10, init=image, strength=0.3)
    ts, levels = sampler_timesteps(sched, "dpmpp_2m_karras", 10)
    assert [t for t, _ in calls] == ts[7:]
    a = levels[7]
    assert torch.allclose(calls[0][1], a**0.5 * image + (1 - a) ** 0.5 * noise)


def test_bad_input():
    sched = NoiseSchedule("linear", num_timesteps=100)
    den, noise = _toy_denoiser(sched), torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"strength must lie in \[0, 1\]"):
        sample(den, noise, sched, "ddim", 5, init=noise, strength=1.5)
    with pytest.raises(ValueError, match="strength"):
        sample(den, noise, sched, "ddim", 5, strength=0.5)
    with pytest.raises(
        ValueError, match=r"init must have the same shape as noise: expected \(2, 3, 4, 4\), got \(2, 3, 4\)"
    ):
        sample(den, noise, sched, "ddim", 5, init=noise[..., 0], strength=0.5)
    with pytest.raises(
        ValueError,
        match=r"known must have the same shape as noise: expected \(2, 3, 4, 4\), got \(1, 3, 4, 4\)",
    ):
        sample(
            den, noise, sched, "ddim", 5, known=noise[:1], known_mask=torch.ones(2, 3, 4, 4, dtype=torch.bool)
        )
    with pytest.raises(
        ValueError, match=r"known_mask must have the rank of noise.*\(2, 3, 4, 4\).*got shape \(2, 3\)"
    ):
        sample(den, noise, sched, "ddim", 5, known=noise, known_mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"known_mask.*got shape \(2, 2, 1, 1\)"):
        sample(den, noise, sched, "ddim", 5, known=noise, known_mask=torch.ones(2, 2, 1, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="known_mask must be a bool tensor"):
        sample(den, noise, sched, "ddim", 5, known=noise, known_mask=torch.ones(2, 3, 4, 4))
    with pytest.raises(ValueError, match="known and known_mask must be given together"):
        sample(den, noise, sched, "ddim", 5, known=noise)
    with pytest.raises(ValueError, match="None, 'static', 'dynamic'"):
        sample(den, noise, sched, "ddim", 5, threshold="soft")


def test_thresholding_recomputes_eps_hat_from_the_clipped_x0():
    """DDIM step with a thresholded x0_hat uses eps_hat = (x_t - sqrt(a_t) x0_clipped) / sqrt(1 - a_t) (Imagen, diffusers)."""
    sched = NoiseSchedule("linear", num_timesteps=1000)
    xs = []

    def den(x, t):
        xs.append(x.clone())
        return torch.full_like(x, 4.0)  # an x0-model predicting out of range

    x_t = torch.randn(2, 5, dtype=torch.float64)
    sample(den, x_t, sched, "ddim", 2, prediction="x0", threshold="static")  # timesteps 500, 0
    a_t, a_s = sched.alphas_cumprod_f64[500].item(), sched.alphas_cumprod_f64[0].item()
    eps_hat = (x_t - a_t**0.5 * 1.0) / (1 - a_t) ** 0.5
    assert torch.allclose(xs[1], a_s**0.5 * 1.0 + (1 - a_s) ** 0.5 * eps_hat, atol=1e-12)
