"""`vidiff evaluate` end to end on a tiny randomly initialised checkpoint, and its bad-input errors."""

import argparse
import json

import pytest
import torch

from vidiff.commands import evaluate as cmd

DATA = {"image_size": 16, "min_objects": 1, "max_objects": 2, "seed": 3, "train_videos": 100, "val_videos": 4}


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from vidiff.lit import VideoDiffusion
    from vidiff.nn.unet import SpaceTimeUNet

    torch.manual_seed(0)
    net = SpaceTimeUNet(in_channels=3, model_channels=8, channel_mult=[1], num_res_blocks=1,
                        attention_resolutions=[], num_heads=1, norm_groups=4)
    model = VideoDiffusion(net=net, image_size=16, channels=3, max_frames=8, num_timesteps=100, ema_decay=0.9)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "datamodule_hyper_parameters": DATA}, path)
    return path


def _args(*argv):
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def test_prediction_end_to_end(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "pred"
    args = _args("--ckpt", tiny_ckpt, "--task", "prediction", "--num-videos", 2, "--num-observed", 4, "--horizon", 4,
                 "--steps", 1, "--baseline", "all", "--out", out, "--no-progress", "--save-videos", 1)
    assert cmd.run(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "prediction" and report["methods"] == ["model", "copy-last", "linear", "noise",
                                                                    "ground truth"]
    assert report["spec"]["given"] == [0, 1, 2, 3] and report["spec"]["scored"] == [4, 5, 6, 7]
    model = report["results"]["model"]
    for key in ("centre_error", "miss_rate", "psnr", "ssim", "persistence", "motion_consistency"):
        assert key in model
        assert len(model.get(f"{key}_per_step", [0] * 4)) == 4
    assert report["settings"]["world"]["seed"] == 3 and report["settings"]["world"]["split_offset"] == 104
    assert report["settings"]["max_frames"] == 8 and report["settings"]["scheme"] == "autoregressive"
    assert report["settings"]["step_size"] == 1, "prediction's default: one new frame per stage"
    printed = capsys.readouterr().out
    assert "| metric | model | copy-last | linear | noise | ground truth |" in printed
    assert "centre_error h=1" in printed and "&" not in printed, "the terminal gets no HTML entities"
    assert (out / "report.md").read_text().count("centre_error h=") == 4
    assert (out / "videos" / "video_000.mp4").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "videos"]


def test_long_and_unconditional(tiny_ckpt, tmp_path):
    report = cmd.evaluate_to_folder(_args("--ckpt", tiny_ckpt, "--task", "long", "--length", 20, "--num-videos", 1,
                                          "--num-observed", 4, "--steps", 1, "--baseline", "copy-last",
                                          "--out", tmp_path / "long", "--no-progress"))
    assert report["spec"]["scheme"] == "hierarchy-2" and len(report["spec"]["scored"]) == 16
    assert report["settings"]["step_size"] is None, "other tasks keep their scheme's step size"
    assert report["methods"] == ["model", "copy-last", "ground truth"]
    assert 0.0 <= report["results"]["model"]["persistence"] <= 1.0
    report = cmd.evaluate_to_folder(_args("--ckpt", tiny_ckpt, "--task", "unconditional", "--num-videos", 1,
                                          "--steps", 1, "--out", tmp_path / "unc", "--no-progress"))
    assert report["spec"]["length"] == 8 and "centre_error" not in report["results"]["model"]


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--task", "text"], "--task: 'text' needs a model with a text encoder"),
        (["--task", "prediction", "--sampler", "euler"], "--sampler: unknown sampler 'euler'; valid names"),
        (["--task", "long", "--baseline", "linear"], "--baseline: 'linear' does not apply to the long task"),
        (["--task", "prediction", "--length", "30"], "--length: the prediction task uses clips"),
        (["--task", "prediction", "--num-videos", "0"], "--num-videos: expected a positive integer"),
        (["--task", "prediction", "--horizon", "4", "--i3d", "x.pt"], "--i3d: FVD needs >= 9 scored frames"),
    ],
)
def test_bad_input(tiny_ckpt, tmp_path, capsys, extra, match):
    args = _args("--ckpt", tiny_ckpt, "--num-videos", 2, "--steps", 1, "--out", tmp_path / "x", "--no-progress",
                 *extra)
    assert cmd.run(args) == 2
    assert match in capsys.readouterr().err


def test_missing_checkpoint(tmp_path, capsys):
    args = _args("--ckpt", tmp_path / "none.ckpt", "--task", "prediction", "--out", tmp_path / "x")
    assert cmd.run(args) == 2
    assert "--ckpt: no checkpoint file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _args("--ckpt", "a", "--task", "future", "--out", "x")
