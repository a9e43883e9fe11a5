"""`vidiff txt2img` end to end: a tiny latent text-to-image checkpoint and a tiny Stable Diffusion 1.x file."""

import argparse
import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from vidiff.commands import txt2img
from vidiff.pipelines import TextToImage
from vidiff.io import to_uint8
from vidiff.lit import VideoDiffusion
from vidiff.nn.autoencoder import AutoencoderKL, save_autoencoder

NET = {"class_path": "vidiff.nn.unet.SpaceTimeUNet",
       "init_args": dict(in_channels=4, model_channels=16, channel_mult=[1, 2], num_res_blocks=1,
                         attention_resolutions=[2], num_heads=2, context_dim=32, temporal=False,
                         observed_channel=False, norm_groups=4)}
TEXT = {"class_path": "vidiff.nn.text.BuiltinTextEncoder", "init_args": dict(dim=32, depth=1, heads=2, max_length=8)}


def _randomise(module, scale=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module


@pytest.fixture(scope="module")
def t2i_ckpt(tmp_path_factory):
    """A latent text-to-image checkpoint in vidiff fit's format (random weights; EMA = raw)."""
    folder = tmp_path_factory.mktemp("t2i")
    ae = _randomise(AutoencoderKL(ch=8, ch_mult=[1, 2], num_res_blocks=1, z_channels=4, embed_dim=4, norm_groups=4))
    save_autoencoder(ae, folder / "ae.safetensors")
    model = VideoDiffusion(net=NET, image_size=16, max_frames=2, schedule="cosine", prediction="v",
                           text_encoder=TEXT, autoencoder_ckpt=str(folder / "ae.safetensors"), ema_decay=0.9)
    _randomise(model.net, seed=1), _randomise(model.text_encoder, seed=2)
    model.ema.shadow.load_state_dict(model._trained().state_dict())
    path = folder / "t2i.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


def _run(argv):
    parser = argparse.ArgumentParser()
    txt2img.add_arguments(parser)
    return txt2img.run(parser.parse_args(argv))


def _png(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_txt2img_writes_grid_images_and_settings(t2i_ckpt, tmp_path):
    out = tmp_path / "out"
    argv = ["--ckpt", str(t2i_ckpt), "--prompt", "a red circle", "--negative-prompt", "a blue square",
            "--guidance", "3", "--steps", "3", "--sampler", "dpmpp_2m", "--num-images", "3", "--seed", "7",
            "--strength-cond", "0.8", "--prompt2", "a green square", "--mix", "0.3", "--out", str(out)]
    assert _run(argv) == 0
    expected = TextToImage.from_checkpoint(t2i_ckpt).generate(
        "a red circle", negative_prompt="a blue square", guidance_scale=3.0, steps=3, sampler="dpmpp_2m",
        num_images=3, seed=7, cond_strength=0.8, prompt2="a green square", mix=0.3)
    for i in range(3):
        assert np.array_equal(_png(out / f"image_{i:03d}.png"), to_uint8(expected[i : i + 1])[0])
    assert _png(out / "grid.png").shape == (2 + 18, 2 + 3 * 18, 3)  # one row of 16x16 images, 2 px padding
    settings = json.loads((out / "settings.json").read_text())
    assert settings["prompt"] == "a red circle" and settings["image_shape"] == [3, 16, 16]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_txt2img_inpainting_and_mask_size_error(t2i_ckpt, tmp_path, capsys):
    image = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "init.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[2:10, 4:12] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "inpaint"
    assert _run(["--ckpt", str(t2i_ckpt), "--prompt", "a red circle", "--init-image", str(tmp_path / "init.png"),
                 "--mask", str(tmp_path / "mask.png"), "--steps", "3", "--num-images", "1", "--out", str(out)]) == 0
    t2i = TextToImage.from_checkpoint(t2i_ckpt)
    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255 * 2 - 1
    recon = to_uint8(t2i.model.decode(t2i.model.encode(x[None, None])).clamp(-1, 1)[:, 0])[0]
    result = _png(out / "image_000.png")
    keep = mask == 0
    assert np.abs(result[keep].astype(int) - recon[keep].astype(int)).max() <= 1
    assert np.abs(result[~keep].astype(int) - recon[~keep].astype(int)).mean() > 1

    Image.fromarray(np.zeros((8, 12), np.uint8)).save(tmp_path / "small_mask.png")
    code = _run(["--ckpt", str(t2i_ckpt), "--init-image", str(tmp_path / "init.png"), "--mask",
                 str(tmp_path / "small_mask.png"), "--steps", "2", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and "--mask:" in err and "12x8" in err and "16x16" in err
    assert not (tmp_path / "bad" / "grid.png").exists()


def test_txt2img_bad_options(t2i_ckpt, tmp_path, capsys):
    cases = [
        (["--out", str(tmp_path)], "--ckpt, --sd-ckpt: give exactly one model"),
        (["--ckpt", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path)], "--ckpt: no checkpoint file"),
        (["--ckpt", str(t2i_ckpt), "--mask", "m.png", "--out", str(tmp_path)], "--mask: needs --init-image"),
        (["--ckpt", str(t2i_ckpt), "--sampler", "euler", "--steps", "1", "--out", str(tmp_path)],
         "--sampler: unknown sampler 'euler'"),
        (["--ckpt", str(t2i_ckpt), "--strength-cond", "2", "--steps", "1", "--out", str(tmp_path)],
         "--strength-cond: expected a number in [0, 1]"),
        (["--ckpt", str(t2i_ckpt), "--mix", "0.5", "--steps", "1", "--out", str(tmp_path)], "--mix: needs prompt2"),
    ]
    for argv, message in cases:
        assert _run(argv) == 2
        assert message in capsys.readouterr().err


transformers = pytest.importorskip("transformers")


def test_txt2img_stable_diffusion_file(tmp_path):
    from safetensors.torch import save_file

    from tests.test_sd_import import TINY_AE, TINY_TEXT, TINY_UNET, sd_layout, tiny_parts
    from tests.test_text import write_tiny_clip_tokenizer

    ae, unet, clip = tiny_parts()
    with torch.no_grad():  # tame the random weights so the images are not all saturated
        for module in (ae, unet):
            for p in module.parameters():
                p.mul_(0.1)
    save_file(sd_layout(ae, unet, clip), str(tmp_path / "sd.safetensors"))
    configs = tmp_path / "configs"
    configs.mkdir()
    classes = {"unet": "vidiff.nn.unet.SpaceTimeUNet", "autoencoder": "vidiff.nn.autoencoder.AutoencoderKL",
               "text_encoder": "vidiff.nn.text.CLIPTextEncoder"}
    for part, args in (("unet", TINY_UNET), ("autoencoder", TINY_AE), ("text_encoder", TINY_TEXT)):
        (configs / f"{part}.yaml").write_text(yaml.safe_dump({"class_path": classes[part], "init_args": args}))
    tok = write_tiny_clip_tokenizer(tmp_path)
    out = tmp_path / "out"
    argv = ["--sd-ckpt", str(tmp_path / "sd.safetensors"), "--sd-config", str(configs), "--tokenizer", str(tok),
            "--prompt", "red", "--guidance", "5", "--steps", "2", "--num-images", "2", "--size", "16",
            "--out", str(out)]
    assert _run(argv) == 0
    kwargs = {**TINY_TEXT, "tokenizer_path": tok}
    t2i = TextToImage.from_stable_diffusion(tmp_path / "sd.safetensors", TINY_UNET, TINY_AE, kwargs, image_size=16)
    assert t2i.model.schedule.kind == "scaled_linear" and t2i.model.prediction == "eps"
    expected = t2i.generate("red", guidance_scale=5.0, steps=2, num_images=2)
    assert expected.shape == (2, 3, 16, 16)
    assert np.array_equal(_png(out / "image_001.png"), to_uint8(expected[1:2])[0])
    # without a tokenizer the CLIP encoder cannot run: a clear error
    assert _run(argv[:4] + ["--out", str(tmp_path / "x")]) == 2
