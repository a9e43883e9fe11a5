"""`vidiff sample --scheme fifo|df-pyramid|df-autoregressive|rolling` and `vidiff scheme --name fifo --png` on a
tiny random checkpoint."""

import argparse
import json

import pytest
import torch
from PIL import Image

from lit_helpers import random_sampling_checkpoint

from vidiff.commands import sample as cmd
from vidiff.commands import scheme as scheme_cmd
from vidiff.io import count_frames, read_video, write_video
from vidiff.schemes.draw import layout
from vidiff.schemes.draw_levels import GIVEN_COLOUR, level_colour
from vidiff.schemes.levels import level_plan

K = 4


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return random_sampling_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", K)


def _args(*argv):
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


@pytest.mark.parametrize("scheme, extra, evaluations", [
    ("fifo", ["--partitions", 2], 2 * (10 + K - 1)),
    ("fifo", ["--steps", 8, "--lookahead"], 2 * 2 * (10 + K // 2 - 1)),
    ("df-pyramid", ["--steps", 3, "--history-level", 10], (3 + 3) + (3 + 1) * 3),
    ("df-autoregressive", ["--steps", 2], 2 * 10),
    ("rolling", ["--steps", 4], 9 + 4),
])
def test_per_frame_schemes_write_videos(tiny_ckpt, tmp_path, scheme, extra, evaluations):
    out = tmp_path / scheme
    settings = cmd.sample_to_folder(_args("--ckpt", tiny_ckpt, "--scheme", scheme, "--length", 10, "--num-videos", 2,
                                          "--out", out, "--no-progress", *extra))
    assert settings["scheme"] == scheme and settings["evaluations"] == evaluations
    assert json.loads((out / "settings.json").read_text())["evaluations"] == evaluations
    assert count_frames(out / "video_000.mp4") == 10 and count_frames(out / "video_001.mp4") == 10


def test_same_seed_same_video_and_the_clip_is_continued(tiny_ckpt, tmp_path):
    clip = torch.linspace(-0.8, 0.8, 5)[:, None, None, None].expand(5, 3, 8, 8)
    write_video(tmp_path / "clip.mp4", clip, crf=0)
    base = ["--ckpt", tiny_ckpt, "--scheme", "df-pyramid", "--steps", 2, "--length", 9, "--num-videos", 1,
            "--observed", tmp_path / "clip.mp4", "--num-observed", 3, "--history-guidance", 2, "--no-progress"]
    a = cmd.sample_to_folder(_args(*base, "--out", tmp_path / "a"))
    cmd.sample_to_folder(_args(*base, "--out", tmp_path / "b", "--batch-budget", 1))
    assert a["given_frames"] == 3
    assert (tmp_path / "a" / "video_000.mp4").read_bytes() == (tmp_path / "b" / "video_000.mp4").read_bytes()
    got = read_video(tmp_path / "a" / "video_000.mp4", num_frames=3)
    assert (got - clip[:3]).abs().mean() < 0.03


@pytest.mark.parametrize("extra, match", [
    (["--scheme", "fifo", "--sampler", "dpmpp_2m"], "--sampler"),
    (["--scheme", "fifo", "--recon-guidance", 2], "--recon-guidance"),
    (["--scheme", "df-pyramid", "--history-level", 100], "history_level"),
    (["--scheme", "df-pyramid", "--step-size", K], "chunk"),
    (["--scheme", "rolling", "--steps", 2], "steps"),
    (["--scheme", "fifo", "--keyframes", "KEY", "--keyframe-indices", 5], "given"),
])
def test_bad_per_frame_options_name_the_option(tiny_ckpt, tmp_path, extra, match, capsys):
    key = tmp_path / "k.png"
    Image.new("RGB", (8, 8), (100, 100, 100)).save(key)
    extra = [key if e == "KEY" else e for e in extra]
    args = _args("--ckpt", tiny_ckpt, "--length", 10, "--out", tmp_path / "o", "--no-progress", *extra)
    with pytest.raises(ValueError, match=match):
        cmd.sample_to_folder(args)
    assert cmd.run(args) == 2 and match in capsys.readouterr().err


def test_scheme_png_is_the_level_heat_map(tmp_path, capsys):
    out = tmp_path / "fifo.png"
    parser = argparse.ArgumentParser()
    scheme_cmd.add_arguments(parser)
    argv = ["--name", "fifo", "--length", "20", "--max-frames", "4", "--partitions", "2", "--given", "2",
            "--png", str(out), "--list"]
    assert scheme_cmd.run(parser.parse_args(argv)) == 0
    stdout = capsys.readouterr().out
    plan = level_plan("fifo", 20, 4, None, 1000, partitions=2, given=2)
    assert f"network evaluations per video: {plan.evaluations}" in stdout and f"wrote {out}" in stdout
    assert stdout.count("\n") > plan.steps  # --list: one line per row of the level matrix
    image = Image.open(out).convert("RGB")
    geo = layout(plan.steps + 1, 20)
    for g in (0, 5, plan.steps // 2, plan.steps):
        for f in (0, 2, 7, 19):
            x0, y0, x1, y1 = geo.cell_box(g, f)
            want = GIVEN_COLOUR if f < 2 else level_colour(int(plan.levels[g, f]), 1000)
            assert image.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) == want, (g, f)
    assert level_colour(-1, 1000) == (255, 255, 255) and level_colour(999, 1000) != level_colour(0, 1000)


def test_scheme_command_rejects_bad_per_frame_options(capsys):
    parser = argparse.ArgumentParser()
    scheme_cmd.add_arguments(parser)
    args = parser.parse_args(["--name", "fifo", "--length", "20", "--max-frames", "3", "--lookahead"])
    assert scheme_cmd.run(args) == 2 and "K must be even" in capsys.readouterr().err
