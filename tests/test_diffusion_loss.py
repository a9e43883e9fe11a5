"""diffusion_loss: targets per parameterisation, masked averaging over unmasked elements only, min-SNR weights."""

import pytest
import torch

from vidiff.diffusion import NoiseSchedule, diffusion_loss, min_snr_weight


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    shape = (3, 4, 2, 5, 5)  # b t c h w
    x0 = torch.randn(shape, generator=g)
    noise = torch.randn(shape, generator=g)
    pred = torch.randn(shape, generator=g, requires_grad=True)
    t = torch.tensor([5, 400, 999])
    return NoiseSchedule("linear"), x0, noise, pred, t


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_unweighted_loss_is_mse_to_the_target(batch, prediction):
    sched, x0, noise, pred, t = batch
    target = {"eps": noise, "x0": x0, "v": sched.get_v(x0, noise, t)}[prediction]
    loss = diffusion_loss(pred, x0, noise, t, sched, prediction)
    assert loss.shape == () and torch.allclose(loss, ((pred - target) ** 2).mean())
    assert diffusion_loss(target, x0, noise, t, sched, prediction).item() == pytest.approx(0.0, abs=1e-10)


def test_masked_loss_averages_over_unmasked_elements_only(batch):
    sched, x0, noise, pred, t = batch
    observed = torch.tensor([[True, False, False, True], [False] * 4, [True, True, True, False]])
    weight = (~observed).float()[:, :, None, None, None]  # (b, t, 1, 1, 1): loss on latent frames only
    loss = diffusion_loss(pred, x0, noise, t, sched, "eps", weight=weight)
    err = (pred - noise) ** 2  # (b, t, c, h, w)
    manual = err[~observed].mean()  # the latent frames' elements, averaged
    assert torch.allclose(loss, manual)
    # bool masks work the same and values under the mask do not matter
    pred2 = pred.detach().clone()
    pred2[observed] = 1e3
    assert torch.allclose(
        diffusion_loss(pred2, x0, noise, t, sched, "eps", weight=~observed[:, :, None, None, None]), manual
    )
    # general weights: sum(w * err) / sum(w broadcast to err's shape)
    w = torch.rand(3, 4, 1, 1, 1)
    expected = (w * err).sum() / w.expand_as(err).sum()
    assert torch.allclose(diffusion_loss(pred, x0, noise, t, sched, "eps", weight=w), expected)
    loss.backward()
    assert torch.all(pred.grad[observed] == 0) and torch.all(pred.grad[~observed] != 0)


def test_all_zero_weight_gives_zero_loss_and_zero_grads(batch):
    sched, x0, noise, pred, t = batch
    loss = diffusion_loss(
        pred, x0, noise, t, sched, "v", weight=torch.zeros(3, 1, 1, 1, 1), min_snr_gamma=5.0
    )
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(pred.grad).all() and torch.all(pred.grad == 0)


def test_min_snr_weights_per_parameterisation():
    snr = torch.tensor([0.0, 0.5, 5.0, 100.0])
    g = 5.0
    assert torch.allclose(min_snr_weight(snr, g, "x0"), torch.tensor([0.0, 0.5, 5.0, 5.0]))
    assert torch.allclose(min_snr_weight(snr, g, "eps"), torch.tensor([1.0, 1.0, 1.0, 0.05]))
    assert torch.allclose(min_snr_weight(snr, g, "v"), torch.tensor([0.0, 0.5 / 1.5, 5.0 / 6.0, 5.0 / 101.0]))


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_min_snr_loss_equals_manually_weighted_loss(batch, prediction):
    sched, x0, noise, pred, t = batch
    snr = sched.alphas_cumprod_f64[t] / (1 - sched.alphas_cumprod_f64[t])
    w = {"eps": snr.clamp(max=5) / snr, "x0": snr.clamp(max=5), "v": snr.clamp(max=5) / (snr + 1)}[
        prediction
    ].float()
    target = sched.get_target(x0, noise, t, prediction)
    per_sample = ((pred - target) ** 2).flatten(1).mean(1)
    loss = diffusion_loss(pred, x0, noise, t, sched, prediction, min_snr_gamma=5.0)
    assert torch.allclose(loss, (w * per_sample).mean(), rtol=1e-5)
    # with a mask the min-SNR weights multiply the errors, the mask alone normalises
    m = torch.tensor([1.0, 0.0, 1.0])[:, None, None, None, None]
    masked = diffusion_loss(pred, x0, noise, t, sched, prediction, weight=m, min_snr_gamma=5.0)
    assert torch.allclose(masked, (w[[0, 2]] * per_sample[[0, 2]]).mean(), rtol=1e-5)


def test_min_snr_at_zero_terminal_snr_is_finite():
    sched = NoiseSchedule("cosine", zero_terminal_snr=True)
    x = torch.randn(2, 3, 4, 4)
    t = torch.tensor([999, 999])
    for prediction in ("eps", "x0", "v"):
        assert torch.isfinite(diffusion_loss(x, x, x, t, sched, prediction, min_snr_gamma=5.0))


def test_bad_input(batch):
    sched, x0, noise, pred, t = batch
    with pytest.raises(ValueError, match="'eps', 'x0', 'v'"):
        diffusion_loss(pred, x0, noise, t, sched, "velocity")
    with pytest.raises(
        ValueError, match=r"weight must have the rank of pred.*\(3, 4, 2, 5, 5\).*got shape \(3, 4\)"
    ):
        diffusion_loss(pred, x0, noise, t, sched, weight=torch.ones(3, 4))
    with pytest.raises(ValueError, match="weight"):
        diffusion_loss(pred, x0, noise, t, sched, weight=torch.ones(3, 2, 1, 1, 1))
    with pytest.raises(ValueError, match=r"x0 must have the same shape as pred"):
        diffusion_loss(pred, x0[:2], noise, t, sched)
    with pytest.raises(ValueError, match=r"t must have shape \(3,\)"):
        diffusion_loss(pred, x0, noise, t[:2], sched)
    with pytest.raises(ValueError, match="min_snr_gamma"):
        diffusion_loss(pred, x0, noise, t, sched, min_snr_gamma=0.0)
