"""Text-to-video by inflation: init equality, temporal-only training, and `vidiff sample --prompt` on the result."""

import argparse
import json

import pytest
import pytorch_lightning as pl
import torch

from vidiff.data import ShapesDataModule
from vidiff.lit.inflate import InitFromImageModel, init_from_image_model, read_image_model
from vidiff.lit import VideoDiffusion
from vidiff.nn.unet import is_temporal_name

SPATIAL = dict(in_channels=3, model_channels=16, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[2],
               num_heads=2, context_dim=32, norm_groups=4)
TEXT_ARGS = dict(dim=32, depth=1, heads=2, max_length=8)
IMAGE_NET = {"class_path": "vidiff.nn.unet.SpaceTimeUNet",
             "init_args": {**SPATIAL, "temporal": False, "observed_channel": False}}
VIDEO_NET = {"class_path": "vidiff.nn.unet.SpaceTimeUNet",
             "init_args": {**SPATIAL, "temporal": True, "observed_channel": True}}
TEXT = {"class_path": "vidiff.nn.text.BuiltinTextEncoder", "init_args": TEXT_ARGS}
FROZEN_TEXT = {"class_path": "vidiff.nn.text.BuiltinTextEncoder", "init_args": {**TEXT_ARGS, "frozen": True}}
COMMON = dict(image_size=16, schedule="cosine", prediction="v", ema_decay=0.9)


def _randomise(module, seed, scale=0.2):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


@pytest.fixture(scope="module")
def t2i(tmp_path_factory):
    """(model, checkpoint path) of a tiny pixel-space text-to-image model with random weights."""
    model = VideoDiffusion(net=IMAGE_NET, max_frames=2, text_encoder=TEXT, **COMMON)
    _randomise(model.net, 1), _randomise(model.text_encoder, 2)
    model.ema.shadow.load_state_dict(model._trained().state_dict())
    path = tmp_path_factory.mktemp("t2i") / "t2i.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return model.eval(), path


def _video_model(**kwargs):
    return VideoDiffusion(**{"net": VIDEO_NET, "max_frames": 3, "text_encoder": FROZEN_TEXT, **COMMON, **kwargs})


@torch.no_grad()
def test_inflated_model_equals_image_model_per_frame(t2i):
    image, path = t2i
    video = _video_model()
    init_from_image_model(video, path)
    video.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 3, 16, 16, generator=g)
    t = torch.tensor([10, 700])
    frame_idx = torch.tensor([[0, 5, 9], [3, 4, 20]])
    ctx = video.text_encoder.encode(["a red circle", "a blue square"])
    torch.testing.assert_close(ctx, image.text_encoder.encode(["a red circle", "a blue square"]))
    out = video.net(x, t, frame_idx, None, ctx)
    for i in range(3):
        torch.testing.assert_close(out[:, i], image.net(x[:, i], t, None, None, ctx), atol=1e-5, rtol=1e-5)
    # the EMA copy starts at the loaded weights too
    shadow = video.ema.shadow["net"]
    torch.testing.assert_close(shadow(x, t, frame_idx, None, ctx), out)


def test_temporal_only_training_keeps_spatial_weights(t2i, tmp_path):
    image, path = t2i
    video = _video_model(optimizer=lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1))
    data = ShapesDataModule(image_size=16, length=16, max_frames=3, train_videos=8, val_videos=2, batch_size=2)
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         callbacks=[InitFromImageModel(str(path), train_only="temporal")],
                         default_root_dir=tmp_path)
    before = {n: p.detach().clone() for n, p in video.net.named_parameters() if is_temporal_name(n)}
    trainer.fit(video, data)
    image_net = read_image_model(path)["net"]
    for name, p in video.net.named_parameters():
        if is_temporal_name(name):
            assert p.requires_grad
        else:
            assert not p.requires_grad and torch.equal(p, image_net[name]), name
    assert sum(not torch.equal(p, before[n]) for n, p in video.net.named_parameters() if n in before) > len(before) // 2
    trained = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert trained == {id(p) for p in video.net.temporal_parameters()}
    for name, p in video.text_encoder.named_parameters():
        torch.testing.assert_close(p, image.text_encoder.state_dict()[name])


def test_inflation_errors(t2i, tmp_path):
    _, path = t2i
    with pytest.raises(ValueError, match="text_encoder: train_only='temporal'.*frozen: true"):
        init_from_image_model(_video_model(text_encoder=TEXT), path)
    init_from_image_model(_video_model(text_encoder=TEXT), path, train_only="all")  # trains everything
    with pytest.raises(ValueError, match="prediction='v'"):
        init_from_image_model(_video_model(prediction="eps"), path)
    wide = {"class_path": VIDEO_NET["class_path"], "init_args": {**VIDEO_NET["init_args"], "model_channels": 8}}
    with pytest.raises(ValueError, match="does not fit the video U-Net's spatial layers.*mismatched"):
        init_from_image_model(_video_model(net=wide), path)
    with pytest.raises(ValueError, match="train_only: expected one of"):
        InitFromImageModel(str(path), train_only="spatial")
    with pytest.raises(FileNotFoundError, match="ckpt_path"):
        init_from_image_model(_video_model(), tmp_path / "missing.ckpt")


def test_sample_prompt_with_the_inflated_model(t2i, tmp_path):
    from vidiff.commands import sample as sample_command
    from vidiff.io import read_video

    _, path = t2i
    video = _video_model()
    init_from_image_model(video, path)
    ckpt = tmp_path / "t2v.ckpt"
    torch.save({"state_dict": video.state_dict(), "hyper_parameters": dict(video.hparams)}, ckpt)
    videos = {}
    for prompt in ("a red circle", "a blue square"):
        parser = argparse.ArgumentParser()
        sample_command.add_arguments(parser)
        out = tmp_path / prompt.replace(" ", "_")
        args = parser.parse_args(["--ckpt", str(ckpt), "--prompt", prompt, "--guidance", "5", "--length", "5",
                                  "--max-frames", "3", "--scheme", "autoregressive", "--steps", "2",
                                  "--num-videos", "1", "--no-progress", "--crf", "0", "--out", str(out)])
        assert sample_command.run(args) == 0
        assert json.loads((out / "settings.json").read_text())["prompt"] == prompt
        videos[prompt] = read_video(out / "video_000.mp4")
        assert videos[prompt].shape == (5, 3, 16, 16)
    diff = (videos["a red circle"] - videos["a blue square"]).abs()
    assert diff.mean() > 2e-3  # the prompt reaches the video net (identical inputs give identical files)


def test_checkpoints_naming_the_old_frozen_encoder_class_still_build():
    from vidiff.io.checkpoint import build_module

    old = {"class_path": "vidiff.generate.text.FrozenBuiltinTextEncoder", "init_args": TEXT_ARGS}
    enc = build_module(old, "text_encoder")
    assert type(enc).__name__ == "BuiltinTextEncoder" and enc.frozen
    assert not any(p.requires_grad for p in enc.parameters()) and not enc.train().training
