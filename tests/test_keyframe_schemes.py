"""Combined schemes (``hierarchy-2+fifo``, ...): keyframes by FDM stages, then a per-frame fill."""

from __future__ import annotations

import argparse

import pytest
import torch
from PIL import Image
from test_level_video import MU, SCHEDULE, STD, exact_eps
from lit_helpers import random_sampling_checkpoint

from vidiff.commands import sample as cmd
from vidiff.commands import scheme as scheme_cmd
from vidiff.diffusion.per_frame import CLEAN
from vidiff.diffusion.samplers import sample_ddim
from vidiff.pipelines import Interrupted, VideoModel, VideoPipeline
from vidiff.pipelines.inputs import RunOptions
from vidiff.pipelines.keyframe_video import sample_keyframe_videos
from vidiff.pipelines.stages import SamplerSettings
from vidiff.pipelines.video import make_plan
from vidiff.schemes.draw import layout
from vidiff.schemes.draw_levels import GIVEN_COLOUR, level_colour
from vidiff.schemes.keyframes import keyframe_plan

GRID = [
    ("hierarchy-2+fifo", dict(partitions=2)),
    ("hierarchy-3+fifo", dict(partitions=1, lookahead=True)),
    ("autoregressive+df-pyramid", dict(steps=4, chunk=3)),
    ("hierarchy-2+df-autoregressive", dict(steps=3, history_level=50)),
    ("long-range+rolling", dict(steps=9)),
]


@pytest.mark.parametrize("name, kwargs", GRID)
@pytest.mark.parametrize("length, k, spacing, given",
                         [(16, 5, None, 0), (40, 5, 7, 3), (33, 7, 9, 0), (64, 9, 9, 5)])
def test_invariants(name, kwargs, length, k, spacing, given):
    if kwargs.get("lookahead") and k % 2 == 0:
        pytest.skip("lookahead needs an even fill window K - 1")
    p = keyframe_plan(name, length, k, num_timesteps=1000, keyframe_spacing=spacing, stage_steps=7,
                      given=given, **kwargs)
    d = spacing or k
    first = 0 if given == 0 else given - 1 + d
    assert p.keyframes == tuple(range(first, length, d)) and p.spacing == d
    # the stages make exactly the keyframes, each once, observing only the prefix and earlier keyframes
    made: list[int] = []
    for s in p.stages:
        assert len(s) <= k and s.latent and set(s.observed) <= set(range(given)) | set(made)
        made += s.latent
    assert sorted(made) == list(p.keyframes)
    # the fill: every other frame visits each level of the ladder once; prefix and keyframes clean throughout
    fill = p.fill
    assert set(fill.given) == set(range(given)) | set(p.keyframes)
    assert bool((fill.levels[:, list(fill.given)] == CLEAN).all())
    ladder = list(fill.ladder)
    for f in set(range(length)) - set(fill.given):
        column = fill.levels[:, f].tolist()
        assert [v for i, v in enumerate(column) if i == 0 or v != column[i - 1]] == ladder, f
    keys = list(p.keyframes)
    for g, windows in enumerate(fill.windows):
        moving = set((fill.levels[g] != fill.levels[g + 1]).nonzero().flatten().tolist())
        assert set().union(*(w.update for w in windows)) == moving
        for w in windows:  # K contiguous frames holding the update, and the next keyframe when within reach
            assert list(w.frames) == list(range(w.frames[0], w.frames[0] + k))
            assert set(w.update) <= set(w.frames)
            ahead = [kf for kf in keys if kf > max(w.update)]
            if ahead and ahead[0] - min(w.update) <= k - 1:
                assert ahead[0] in w.frames
    assert p.evaluations == len(p.stages) * 7 + fill.evaluations
    assert p.steps == p.waves + fill.steps
    if name.endswith("+fifo") and not kwargs.get("lookahead"):  # fifo's count, with the window K - 1
        n_fill = length - len(fill.given)
        assert fill.evaluations == kwargs["partitions"] * (n_fill + (k - 1) - 1)


@pytest.mark.parametrize("name, kwargs, match", [
    ("hierarchy-2+fifo", dict(keyframe_spacing=3), "keyframe_spacing: expected >= max_frames=5"),
    ("hierarchy-2+nope", {}, "'nope' after '\\+' is not a per-frame scheme"),
    ("fifo+df-pyramid", {}, "'fifo' before '\\+' must be a stage scheme"),
    ("bogus+fifo", {}, "unknown scheme 'bogus'"),
    ("hierarchy-2+fifo", dict(given=[1, 2]), "given frames must be 0..n-1"),
    ("hierarchy-2+fifo", dict(keyframe_spacing=40, given=2), "keyframe_spacing: 40 places no keyframe"),
    ("adaptive+fifo", {}, "'adaptive' before '\\+' chooses its context at run time"),
])
def test_bad_input_names_the_problem(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        keyframe_plan(name, 30, 5, num_timesteps=1000, **kwargs)


class _ExactNet(torch.nn.Module):
    """The exact eps of N(MU, STD^2) data, frames independent, for shared or per-frame timesteps."""

    def forward(self, x, t, frame_idx=None, observed=None, context=None):
        return exact_eps(x, t)


@pytest.mark.parametrize("name, kwargs", [("hierarchy-2+fifo", dict(partitions=25)),
                                          ("autoregressive+df-pyramid", dict(step_size=2))])
def test_gaussian_data_every_frame_has_the_right_mean_and_variance(name, kwargs):
    """With the exact denoiser of N(MU, STD^2) data, DDIM over 100 trailing levels is an affine map of each
    element's initial noise, x0 = a * z + b (a ~ STD, b ~ MU up to discretisation): keyframes (stages) and
    fill frames (the ladder) alike must come out with mean b and standard deviation a."""
    model = VideoModel(_ExactNet(), SCHEDULE, "eps", (3, 20, 25), (3, 20, 25), max_frames=5)
    plan = make_plan(name, length=14, max_frames=5, num_timesteps=1000, steps=100, **kwargs)
    assert len(plan.ladder) - 1 == 100
    ends = sample_ddim(exact_eps, torch.tensor([[0.0], [1.0]]), SCHEDULE, list(plan.ladder[:-1]))
    b, a = float(ends[0]), float(ends[1] - ends[0])
    assert abs(a - STD) < 0.03 and abs(b - MU) < 0.01
    settings = SamplerSettings("ddim", 100)
    out = sample_keyframe_videos(model, plan, 2, 3, settings=settings, options=RunOptions(progress=False))
    per_frame = out.transpose(0, 1).reshape(14, -1)
    torch.testing.assert_close(per_frame.mean(1), torch.full((14,), b), atol=0.02, rtol=0)
    torch.testing.assert_close(per_frame.std(1), torch.full((14,), a), atol=0.02, rtol=0)
    again = sample_keyframe_videos(model, plan, 2, 3, settings=settings,
                                   options=RunOptions(batch_budget=1, progress=False))
    assert torch.equal(out, again)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return random_sampling_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", 4)


def _sample_args(*argv):
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def test_sample_command_python_api_and_resume_in_either_phase(tiny_ckpt, tmp_path):
    base = ["--ckpt", tiny_ckpt, "--scheme", "hierarchy-2+fifo", "--partitions", 1, "--steps", 3,
            "--length", 14, "--eta", 0.5, "--no-progress"]
    full = cmd.sample_to_folder(_sample_args(*base, "--out", tmp_path / "full"))
    plan = make_plan("hierarchy-2+fifo", length=14, max_frames=4, num_timesteps=100, steps=3, partitions=1)
    assert full["evaluations"] == plan.evaluations and full["stages"] == plan.steps
    video = (tmp_path / "full" / "video_000.mp4").read_bytes()
    for stop in (0, plan.waves + 2):  # in the keyframe phase, in the fill
        out = tmp_path / f"cut{stop}"
        with pytest.raises(Interrupted):
            cmd.sample_to_folder(_sample_args(*base, "--out", out, "--stop-after-wave", stop))
        assert cmd._saved_waves(out / "state") == stop + 1, "keyframe waves and fill steps, counted together"
        cmd.sample_to_folder(_sample_args(*base, "--out", out, "--resume"))
        assert (out / "video_000.mp4").read_bytes() == video, stop
    pipe = VideoPipeline.from_pretrained(tiny_ckpt)
    a = pipe.generate(length=14, scheme="hierarchy-2+fifo", steps=3, partitions=1, seed=1, keyframe_spacing=5)
    b = pipe.generate(length=14, scheme="hierarchy-2+fifo", steps=3, partitions=1, seed=1, keyframe_spacing=5,
                      batch_budget=1)
    assert a.shape == (1, 14, 3, 8, 8) and torch.equal(a, b)
    with pytest.raises(ValueError, match="keyframe_spacing: expected >= max_frames=4"):
        pipe.generate(length=14, scheme="hierarchy-2+fifo", keyframe_spacing=2)


def test_scheme_png_draws_keyframe_rows_then_the_fill(tmp_path, capsys):
    out = tmp_path / "kf.png"
    parser = argparse.ArgumentParser()
    scheme_cmd.add_arguments(parser)
    argv = ["--name", "hierarchy-2+fifo", "--length", "30", "--max-frames", "5", "--partitions", "1",
            "--given", "2", "--keyframe-spacing", "6", "--png", str(out), "--list"]
    assert scheme_cmd.run(parser.parse_args(argv)) == 0
    stdout = capsys.readouterr().out
    plan = keyframe_plan("hierarchy-2+fifo", 30, 5, None, 1000, keyframe_spacing=6, partitions=1, given=2)
    assert f"network evaluations per video: {plan.evaluations}" in stdout and f"wrote {out}" in stdout
    shown = plan.display(1000)
    assert shown.steps == plan.waves + plan.fill.steps
    image = Image.open(out).convert("RGB")
    geo = layout(shown.steps + 1, 30)
    for g in (0, plan.waves, shown.steps // 2, shown.steps):
        for f in (0, 1, 7, 10, 29):
            x0, y0, x1, y1 = geo.cell_box(g, f)
            want = GIVEN_COLOUR if f < 2 else level_colour(int(shown.levels[g, f]), 1000)
            assert image.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) == want, (g, f)
    # keyframe 7 is made first: pure noise before the keyframe waves, clean after them
    assert int(shown.levels[0, 7]) == 999 and int(shown.levels[plan.waves, 7]) == CLEAN
