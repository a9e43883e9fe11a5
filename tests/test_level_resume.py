"""Resuming interrupted per-frame runs (fifo, df-*, rolling): the uninterrupted run's videos, bitwise."""

from __future__ import annotations

import argparse

import pytest
import torch
from test_level_video import SCHEDULE, exact_eps
from lit_helpers import random_sampling_checkpoint

from vidiff.commands import sample as cmd
from vidiff.pipelines import Interrupted
from vidiff.pipelines.level_video import run_level_plan
from vidiff.schemes.levels import level_plan

PLANS = [
    ("fifo", dict(partitions=2)),
    ("fifo", dict(partitions=1, lookahead=True)),
    ("df-pyramid", dict(steps=6, chunk=2, history_level=100)),
    ("df-autoregressive", dict(steps=3)),
    ("rolling", dict(steps=4)),
]


class Stop(Exception):
    pass


def _stop_after(step: int):
    def on_step(g, steps, evaluations):
        if g == step:
            raise Stop

    return on_step


@pytest.mark.parametrize("name, kwargs", PLANS)
def test_an_interrupted_run_resumes_to_the_uninterrupted_videos(tmp_path, name, kwargs):
    plan = level_plan(name, 10, 4, num_timesteps=1000, **kwargs)
    # eta > 0: step noise, so the generators' states must be saved too
    run = dict(num_videos=2, seed=4, eta=1.0, history_guidance=1.5, batch_budget=3)
    full = run_level_plan(exact_eps, plan, SCHEDULE, (5,), **run)
    for stop in (0, plan.steps // 2):
        state = tmp_path / f"state{stop}"
        with pytest.raises(Stop):
            run_level_plan(exact_eps, plan, SCHEDULE, (5,), state_dir=state, on_step=_stop_after(stop), **run)
        seen = []
        out = run_level_plan(exact_eps, plan, SCHEDULE, (5,), state_dir=state, resume=True,
                             on_step=lambda g, s, e: seen.append(g), **{**run, "batch_budget": 1})
        assert torch.equal(out, full)
        assert seen == list(range(stop + 1, plan.steps)), "progress continues over the whole run"


def test_save_every_and_stop_after_wave(tmp_path):
    plan = level_plan("fifo", 10, 4, num_timesteps=1000, partitions=1)
    full = run_level_plan(exact_eps, plan, SCHEDULE, (5,), eta=0.5, seed=1)
    with pytest.raises(Stop):  # saved after step 3; steps 4 and 5 are run again
        run_level_plan(exact_eps, plan, SCHEDULE, (5,), eta=0.5, seed=1, state_dir=tmp_path, save_every=4,
                       on_step=_stop_after(5))
    seen = []
    out = run_level_plan(exact_eps, plan, SCHEDULE, (5,), eta=0.5, seed=1, state_dir=tmp_path, resume=True,
                         on_step=lambda g, s, e: seen.append(g))
    assert torch.equal(out, full) and seen[0] == 4
    throttled = tmp_path / "throttled"
    with pytest.raises(Stop):  # save_interval: no save in the first hour, so nothing to resume from yet
        run_level_plan(exact_eps, plan, SCHEDULE, (5,), eta=0.5, seed=1, state_dir=throttled,
                       save_interval=3600, on_step=_stop_after(5))
    assert not (throttled / "state.safetensors").exists()
    with pytest.raises(Interrupted, match="stopped after step 2"):
        run_level_plan(exact_eps, plan, SCHEDULE, (5,), eta=0.5, seed=1, state_dir=tmp_path,
                       stop_after_wave=2)


def test_resuming_with_other_settings_is_refused(tmp_path):
    plan = level_plan("rolling", 10, 4, 4, 1000)
    with pytest.raises(Stop):
        run_level_plan(exact_eps, plan, SCHEDULE, (5,), seed=1, state_dir=tmp_path, on_step=_stop_after(2))
    with pytest.raises(ValueError, match="resume: .*state.safetensors was written by a run with other"):
        run_level_plan(exact_eps, plan, SCHEDULE, (5,), seed=2, state_dir=tmp_path, resume=True)
    other = level_plan("rolling", 10, 4, 5, 1000)
    with pytest.raises(ValueError, match="other settings"):
        run_level_plan(exact_eps, other, SCHEDULE, (5,), seed=1, state_dir=tmp_path, resume=True)


def test_vidiff_sample_resumes_a_per_frame_run(tmp_path):
    ckpt = random_sampling_checkpoint(tmp_path / "tiny.ckpt", 4)
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    base = ["--ckpt", str(ckpt), "--scheme", "fifo", "--partitions", "2", "--length", "10", "--eta", "0.5",
            "--no-progress"]
    cmd.sample_to_folder(parser.parse_args([*base, "--out", str(tmp_path / "full")]))
    out = tmp_path / "cut"
    with pytest.raises(Interrupted):
        cmd.sample_to_folder(parser.parse_args([*base, "--out", str(out), "--stop-after-wave", "4"]))
    assert cmd._saved_waves(out / "state") == 5
    with pytest.raises(ValueError, match="--out: .* interrupted run \\(5 waves done\\)"):
        cmd.sample_to_folder(parser.parse_args([*base, "--out", str(out)]))
    cmd.sample_to_folder(parser.parse_args([*base, "--out", str(out), "--resume"]))
    assert (out / "video_000.mp4").read_bytes() == (tmp_path / "full" / "video_000.mp4").read_bytes()
    assert not (out / "state").exists()
