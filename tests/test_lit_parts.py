"""VideoDiffusion with optional parts: a text encoder (CFG), a frozen autoencoder (latents), bf16 autocast."""

from __future__ import annotations

import copy

import torch
from lit_helpers import TINY_NET, tiny_batch, tiny_cli_args

from vidiff.lit import VideoDiffusion, load_model
from vidiff.lit.checkpoint import atomic_torch_save
from vidiff.lit.cli import run_lightning_cli

TEXT = {
    "class_path": "vidiff.nn.text.BuiltinTextEncoder",
    "init_args": {"dim": 8, "depth": 1, "heads": 2, "max_length": 6},
}


def test_text_conditioned_model_trains_text_encoder_with_ema_and_guides():
    net = copy.deepcopy(TINY_NET)
    net["init_args"]["context_dim"] = 8
    net["init_args"]["attention_resolutions"] = [1]
    model = VideoDiffusion(
        net=net, image_size=8, max_frames=4, num_timesteps=50, text_encoder=TEXT, cond_drop_prob=0.5
    )
    assert "text_encoder" in model.ema.shadow  # a trainable text encoder is averaged with the net
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    params = {id(p) for group in model.configure_optimizers().param_groups for p in group["params"]}
    assert {id(p) for p in model.text_encoder.parameters()} <= params and any(
        n.startswith("net.") for n in names
    )
    batch = tiny_batch()
    model.loss(batch, model.net, drop_prob=0.5).backward()
    assert model.text_encoder.token_embedding.weight.grad is not None
    plain = model.generate(batch, steps=2, seed=1)
    guided = model.generate(batch, steps=2, seed=1, guidance_scale=3.0)
    assert guided.shape == plain.shape and torch.equal(guided[0, 0], plain[0, 0])  # observed frame kept


def test_latent_model_encodes_with_frozen_autoencoder(tmp_path):
    from vidiff.nn.autoencoder import AutoencoderKL, save_autoencoder

    ae = AutoencoderKL(
        ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=2, norm_groups=4, scaling_factor=0.5
    )
    path = save_autoencoder(ae, tmp_path / "ae.safetensors")
    net = copy.deepcopy(TINY_NET)
    net["init_args"]["in_channels"] = 2
    model = VideoDiffusion(net=net, image_size=8, max_frames=4, num_timesteps=50, autoencoder_ckpt=str(path))
    assert not any(p.requires_grad for p in model.autoencoder.parameters())
    params = {id(p) for p in model.configure_optimizers().param_groups[0]["params"]}
    assert params.isdisjoint(id(p) for p in model.autoencoder.parameters())
    batch = tiny_batch()
    assert model.encode(batch["video"]).shape == (2, 4, 2, 4, 4)
    assert torch.isfinite(model.loss(batch, model.net))
    assert model.generate(batch, steps=2).shape == batch["video"].shape
    ckpt = atomic_torch_save(
        {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, tmp_path / "m.ckpt"
    )
    loaded = load_model(ckpt)
    assert loaded.autoencoder is not None and loaded.autoencoder.latent_channels == 2


def test_bf16_mixed_fast_dev_run(tmp_path):
    cli = run_lightning_cli(
        [
            "fit",
            *tiny_cli_args(tmp_path),
            "--trainer.fast_dev_run",
            "true",
            "--trainer.precision",
            "bf16-mixed",
        ]
    )
    assert cli.trainer.global_step == 1
    assert all(p.dtype == torch.float32 for p in cli.model.parameters())  # mixed: weights and EMA stay fp32
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())
