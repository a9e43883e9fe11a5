"""`vidiff sample` end to end on a tiny randomly initialised checkpoint, and its bad-input errors."""

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from lit_helpers import random_sampling_checkpoint

from vidiff.commands import sample as cmd
from vidiff.io import count_frames, write_video
from vidiff.pipelines import load_sampling_model


K = 20


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return random_sampling_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", K)


def _args(*argv):
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def test_300_frame_video_end_to_end(tiny_ckpt, tmp_path):
    decord = pytest.importorskip("decord")
    out = tmp_path / "run"
    args = _args("--ckpt", tiny_ckpt, "--length", 300, "--steps", 1, "--num-videos", 1, "--out", out,
                 "--png-strip", "--gif", "--batch-budget", 64, "--no-progress")
    assert cmd.run(args) == 0
    assert len(decord.VideoReader(str(out / "video_000.mp4"))) == 300
    assert count_frames(out / "video_000.mp4") == 300
    assert (out / "video_000.gif").is_file() and (out / "video_000.png").is_file()
    settings = json.loads((out / "settings.json").read_text())
    assert settings["scheme"] == "hierarchy-2" and settings["max_frames"] == K and settings["length"] == 300
    page = (out / "index.html").read_text()
    assert 'src="video_000.mp4"' in page and "hierarchy-2" in page
    assert not (out / "state").exists()  # the resume state is removed after a finished run
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_continue_clip_keeps_observed_frames_and_resumes(tiny_ckpt, tmp_path):
    clip = torch.linspace(-0.8, 0.8, 6)[:, None, None, None].expand(6, 3, 8, 8)
    write_video(tmp_path / "clip.mp4", clip, crf=0)
    base = ["--ckpt", tiny_ckpt, "--length", 40, "--steps", 1, "--num-videos", 2, "--observed", tmp_path / "clip.mp4",
            "--num-observed", 4, "--no-progress"]
    full = cmd.sample_to_folder(_args(*base, "--out", tmp_path / "a"))
    assert full["given_frames"] == 4
    with pytest.raises(Exception, match="stopped after wave 0"):
        cmd.sample_to_folder(_args(*base, "--out", tmp_path / "b", "--stop-after-wave", 0))
    assert (tmp_path / "b" / "state" / "state.safetensors").is_file()
    cmd.sample_to_folder(_args(*base, "--out", tmp_path / "b", "--resume", "--batch-budget", 1))
    for i in range(2):
        a = (tmp_path / "a" / f"video_00{i}.mp4").read_bytes()
        assert a == (tmp_path / "b" / f"video_00{i}.mp4").read_bytes()
    from vidiff.io import read_video

    got = read_video(tmp_path / "a" / "video_000.mp4", num_frames=4)
    assert (got - clip[:4]).abs().mean() < 0.03


def _png(path, value):
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)
    return path


def test_keyframes_interpolate(tiny_ckpt, tmp_path):
    a, b = _png(tmp_path / "a.png", 20), _png(tmp_path / "b.png", 230)
    out = tmp_path / "kf"
    s = cmd.sample_to_folder(_args("--ckpt", tiny_ckpt, "--length", 30, "--steps", 1, "--num-videos", 1,
                                   "--keyframes", a, b, "--keyframe-indices", 0, 29, "--out", out, "--no-progress"))
    assert s["scheme"] == "interpolate-inward" and s["step_size"] == 2 and s["given_frames"] == 2
    assert count_frames(out / "video_000.mp4") == 30


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--length", 10], "--length"),
        (["--sampler", "euler"], "--sampler"),
        (["--scheme", "zigzag"], "--scheme"),
        (["--keyframes", "KEY", "--keyframe-indices", 45], "--keyframe-indices"),
        (["--keyframes", "KEY", "KEY", "--keyframe-indices", 3], "--keyframe-indices"),
        (["--observed", "CLIP", "--num-observed", 9], "--num-observed"),
        (["--observed", "CLIP", "--num-observed", 3, "--length", 20, "--max-frames", 4, "--step-size", 4],
         "step_size"),
        (["--prompt", "a red ball"], "--prompt"),
        (["--steps", 0], "--steps"),
    ],
)
def test_bad_input_names_the_argument(tiny_ckpt, tmp_path, extra, match, capsys):
    clip = tmp_path / "clip.mp4"
    write_video(clip, torch.zeros(5, 3, 8, 8))
    key = _png(tmp_path / "k.png", 100)
    extra = [clip if e == "CLIP" else key if e == "KEY" else e for e in extra]
    args = _args("--ckpt", tiny_ckpt, "--length", 40, "--out", tmp_path / "o", "--no-progress", *extra)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        cmd.sample_to_folder(args)
    assert cmd.run(args) == 2 and match in capsys.readouterr().err


def test_an_output_folder_in_use_is_refused(tiny_ckpt, tmp_path, capsys):
    import os

    from vidiff.io.lock import lock_folder

    out = tmp_path / "run"
    with lock_folder(out, command="vidiff sample --out run"):
        args = _args("--ckpt", tiny_ckpt, "--length", K, "--steps", 1, "--num-videos", 1, "--out", out, "--no-progress")
        assert cmd.run(args) == 2
        err = capsys.readouterr().err
        assert f"vidiff sample: error: --out: {out} is in use by pid {os.getpid()} (vidiff sample --out run" in err
        assert f"lock file {out / 'vidiff.lock'}" in err
        assert not list(out.glob("*.mp4"))
    assert cmd.run(args) == 0 and (out / "video_000.mp4").is_file() and not (out / "vidiff.lock").exists()


def test_checkpoint_without_model(tmp_path):
    bad = tmp_path / "empty.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, bad)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    for path in (bad, junk):
        with pytest.raises(ValueError, match="--ckpt"):
            cmd.sample_to_folder(_args("--ckpt", path, "--out", tmp_path / "o"))
    with pytest.raises(FileNotFoundError, match="--ckpt"):
        cmd.sample_to_folder(_args("--ckpt", tmp_path / "missing.ckpt", "--out", tmp_path / "o"))


def test_latent_model_end_to_end(tmp_path):
    """A latent checkpoint: given frames are encoded, latents decoded at the end, pixels written."""
    from vidiff.lit import VideoDiffusion
    from vidiff.nn.autoencoder import AutoencoderKL, save_autoencoder
    from vidiff.nn.unet import SpaceTimeUNet

    ae = AutoencoderKL(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=4, norm_groups=4, mid_attention=False)
    save_autoencoder(ae, tmp_path / "ae.safetensors")
    net = SpaceTimeUNet(in_channels=4, model_channels=8, channel_mult=[1], num_res_blocks=1,
                        attention_resolutions=[], num_heads=1, norm_groups=4)
    model = VideoDiffusion(net=net, image_size=8, channels=3, max_frames=8, num_timesteps=100, ema_decay=None,
                           autoencoder_ckpt=str(tmp_path / "ae.safetensors"))
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, tmp_path / "m.ckpt")
    loaded = load_sampling_model(str(tmp_path / "m.ckpt"))
    assert loaded.frame_shape == (4, 4, 4) and loaded.image_shape == (3, 8, 8)
    write_video(tmp_path / "clip.mp4", torch.zeros(4, 3, 8, 8))
    s = cmd.sample_to_folder(_args("--ckpt", tmp_path / "m.ckpt", "--length", 24, "--steps", 1, "--num-videos", 1,
                                   "--observed", tmp_path / "clip.mp4", "--num-observed", 2, "--decode-chunk", 5,
                                   "--out", tmp_path / "o", "--no-progress"))
    assert s["image_shape"] == [3, 8, 8]
    assert count_frames(tmp_path / "o" / "video_000.mp4") == 24


@pytest.mark.parametrize("sampler", ["unipc", "dpmpp_2m_karras", "dpmpp_2m_exponential"])
def test_every_core_sampler_is_accepted_and_listed_in_the_help(sampler):
    """`--sampler` takes every name of vidiff.diffusion.SAMPLERS; the help of each command lists them all."""
    from types import SimpleNamespace

    from vidiff.commands import evaluate, txt2img
    from vidiff.diffusion import SAMPLERS

    args = _args("--ckpt", "unused.ckpt", "--out", "unused", "--length", 16, "--sampler", sampler)
    assert cmd.check_sample_options(args, SimpleNamespace(max_frames=8))[1] == 8
    for module in (cmd, txt2img, evaluate):
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        text = next(a.help for a in parser._actions if "--sampler" in a.option_strings)
        assert all(name in text for name in SAMPLERS), (module.__name__, text)
