"""The context-use diagnostic: 1.0 for a net that ignores its observed frames, large for one that copies them."""

from __future__ import annotations

import pytest
import torch

from vidiff.diffusion import NoiseSchedule
from vidiff.diffusion.timesteps import draw_timesteps
from vidiff.metrics.context import context_use, format_context_use, level_timestep, prediction_mask

SCHEDULE = NoiseSchedule("cosine", 1000)


def _clips(b: int = 4, k: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips whose frames are one colour each (plus a little per-frame noise): the context says everything."""
    g = torch.Generator().manual_seed(0)
    colour = torch.rand(b, 1, 3, 1, 1, generator=g) * 2 - 1
    x0 = (colour + 0.01 * torch.randn(b, k, 3, 8, 8, generator=g)).clamp(-1, 1)
    return x0, torch.arange(k).repeat(b, 1)


def _ignoring(x, t, frame_idx, observed, ctx):
    return 0.5 * x  # each frame from its own input only


def _copying(x, t, frame_idx, observed, ctx):
    """Predicts x0 of every frame as the mean of the observed frames."""
    w = observed[:, :, None, None, None].to(x)
    mean = (x * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)
    return mean.expand_as(x)


def test_a_net_that_ignores_its_context_scores_exactly_one():
    x0, idx = _clips()
    ratios = context_use(_ignoring, SCHEDULE, "v", x0, idx, prediction_mask(idx))
    assert list(ratios) == [0.3, 0.6, 0.8, 0.95]
    assert all(r == 1.0 for r in ratios.values())


def test_a_net_that_copies_its_context_scores_far_above_one():
    x0, idx = _clips()
    ratios = context_use(_copying, SCHEDULE, "x0", x0, idx, prediction_mask(idx), levels=[0.5, 0.9])
    assert all(r > 100 for r in ratios.values())


def test_only_latent_valid_frames_count():
    x0, idx = _clips()
    observed = prediction_mask(idx)
    valid = torch.ones_like(observed)
    valid[:, -1] = False
    base = context_use(_copying, SCHEDULE, "x0", x0, idx, observed, valid, levels=[0.8])
    x0_changed = x0.clone()
    x0_changed[:, -1] = 5.0  # an invalid frame: must not change the figure
    assert context_use(_copying, SCHEDULE, "x0", x0_changed, idx, observed, valid, levels=[0.8]) == base


def test_prediction_mask_observes_the_earliest_frames_in_frame_order():
    idx = torch.tensor([[5, 0, 9, 2], [0, 1, 2, 3]])
    assert prediction_mask(idx).tolist() == [[False, True, False, True], [True, True, False, False]]
    assert prediction_mask(idx, 3).sum(1).tolist() == [3, 3]
    with pytest.raises(ValueError, match="num_observed"):
        prediction_mask(idx, 4)


def test_bad_inputs_name_the_problem():
    x0, idx = _clips(b=1)
    with pytest.raises(ValueError, match=">= 2 clips"):
        context_use(_ignoring, SCHEDULE, "v", x0, idx, prediction_mask(idx))
    x0, idx = _clips()
    with pytest.raises(ValueError, match="at least one observed"):
        context_use(_ignoring, SCHEDULE, "v", x0, idx, torch.zeros_like(idx, dtype=torch.bool))
    with pytest.raises(ValueError, match="levels"):
        level_timestep(1.5, 1000)


def test_format():
    assert format_context_use({0.3: 1.0, 0.8: 2.345}) == "t/T=0.3: 1.00, t/T=0.8: 2.35"


def test_uniform_timesteps_are_the_plain_randint_draw():
    a = draw_timesteps("uniform", 16, 1000, generator=torch.Generator().manual_seed(3))
    b = torch.randint(0, 1000, (16,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_logit_normal_timesteps_follow_their_median_and_range():
    g = torch.Generator().manual_seed(0)
    t = draw_timesteps("logit_normal", 20000, 1000, generator=g, mean=0.8, std=1.0)
    assert int(t.min()) >= 0 and int(t.max()) <= 999
    # median of sigmoid(m + s z) is sigmoid(m)
    assert abs(float(t.float().median()) / 1000 - torch.sigmoid(torch.tensor(0.8)).item()) < 0.01
    with pytest.raises(ValueError, match="timestep_sampling"):
        draw_timesteps("cosmic", 2, 1000)

