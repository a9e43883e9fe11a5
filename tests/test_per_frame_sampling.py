"""Per-frame noise levels in sampling (vidiff.diffusion.per_frame): level matrices, DDIM per frame."""

from __future__ import annotations

import pytest
import torch

from vidiff.diffusion import NoiseSchedule
from vidiff.diffusion.per_frame import CLEAN, check_levels, sample_ddim_levels
from vidiff.diffusion.samplers import sample_ddim
from vidiff.diffusion.spacing import make_timesteps

MU, STD = 0.7, 0.4


def _exact_eps(schedule: NoiseSchedule):
    """The exact eps denoiser of data x0 ~ N(MU, STD^2) per element, for per-frame or shared timesteps."""

    def eps(x, t):
        a = schedule.alphas_cumprod.to(x.dtype)[t]
        a = a.reshape(*a.shape, *([1] * (x.ndim - a.ndim)))
        return (1 - a).sqrt() * (x - a.sqrt() * MU) / (a * STD**2 + 1 - a)

    return eps


def test_equal_columns_are_ddim_bitwise():
    schedule = NoiseSchedule("cosine", 1000)
    eps = _exact_eps(schedule)
    ts = make_timesteps(1000, 20, "leading")
    x = torch.randn(3, 4, 2, 5, 5, generator=torch.Generator().manual_seed(0))
    ref = sample_ddim(lambda x, t: eps(x, t), x.clone(), schedule, ts)
    levels = torch.tensor([*ts, CLEAN])[:, None].expand(-1, 4)
    out = sample_ddim_levels(lambda x, t, clean: eps(x, t), x.clone(), schedule, levels)
    assert torch.equal(out, ref)


def test_staggered_levels_give_every_frame_the_data_distribution():
    """A pyramid: frame j starts its descent j steps later (Diffusion Forcing's pyramid / FIFO's diagonal). The
    exact denoiser treats elements independently, so each frame must get exactly plain DDIM's result, and with
    100 trailing steps that is the data's mean and std."""
    schedule = NoiseSchedule("linear", 1000)
    eps = _exact_eps(schedule)
    ts = make_timesteps(1000, 100, "trailing") + [CLEAN]
    k, delay = 4, 3
    rows = [[ts[min(max(i - delay * j, 0), len(ts) - 1)] for j in range(k)] for i in range(len(ts) + delay * (k - 1))]
    levels = check_levels(torch.tensor(rows), 1000, k)
    assert levels[0].tolist() == [ts[0]] * k and levels[-1].tolist() == [CLEAN] * k
    x = torch.randn(4000, k, 1, generator=torch.Generator().manual_seed(1))
    out = sample_ddim_levels(lambda x, t, clean: eps(x, t), x.clone(), schedule, levels)
    torch.testing.assert_close(out, sample_ddim(lambda x, t: eps(x, t), x.clone(), schedule, ts[:-1]))
    torch.testing.assert_close(out.mean(0).flatten(), torch.full((k,), MU), atol=0.03, rtol=0)
    torch.testing.assert_close(out.std(0).flatten(), torch.full((k,), STD), atol=0.03, rtol=0)


def test_clean_frames_are_held_and_shown_as_clean():
    schedule = NoiseSchedule("linear", 100)
    seen = []

    def denoiser(x, t, clean):
        seen.append((t.clone(), clean.clone()))
        return torch.zeros_like(x)

    levels = torch.tensor([[CLEAN, 90, 50], [CLEAN, 40, 50], [CLEAN, CLEAN, CLEAN]])
    x = torch.randn(2, 3, 4)
    given = x[:, 0].clone()
    out = sample_ddim_levels(denoiser, x, schedule, levels)
    assert torch.equal(out[:, 0], given), "a clean frame is never changed"
    assert seen[0][1].tolist() == [[True, False, False]] * 2 and seen[0][0].tolist() == [[0, 90, 50]] * 2
    assert seen[1][0].tolist() == [[0, 40, 50]] * 2  # frame 2 held at 50 in step 0, seen at its level


@pytest.mark.parametrize("levels, match", [
    ([[5, 5]], "at least 2 rows"),
    ([[5, 3], [6, CLEAN], [CLEAN, CLEAN]], "frame 0 goes up at step 0"),
    ([[5, 3], [2, 1]], "end clean"),
    ([[5, 3], [5, 3], [CLEAN, CLEAN]], "step 0 changes no frame"),
    ([[100, 3], [CLEAN, CLEAN]], r"\[-1, 99\]"),
])
def test_bad_level_matrices_name_the_problem(levels, match):
    with pytest.raises(ValueError, match=match):
        check_levels(torch.tensor(levels), 100)
