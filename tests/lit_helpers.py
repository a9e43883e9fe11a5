"""Shared tiny settings for the Lightning tests (no tests here; imported by test_lit*, test_fit*, test_resume, test_ddp)."""

from __future__ import annotations

from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "configs" / "shapes" / "tiny.yaml"

#: A ~10k-parameter SpaceTimeUNet for 8x8 frames.
TINY_NET = {
    "class_path": "vidiff.nn.unet.SpaceTimeUNet",
    "init_args": {
        "in_channels": 3,
        "model_channels": 8,
        "channel_mult": [1, 2],
        "num_res_blocks": 1,
        "attention_resolutions": [],
        "num_heads": 2,
        "norm_groups": 4,
        "rel_pos_hidden": 8,
    },
}


def tiny_cli_args(root: Path, max_steps: int = 4, val_every: int = 2) -> list[str]:
    """Overrides that shrink configs/shapes/tiny.yaml to 8x8 frames, 4 frames per sample, a few steps."""
    net = "--model.init_args.net.init_args."
    return [
        "--config",
        str(TINY_CONFIG),
        "--trainer.default_root_dir",
        str(root),
        "--trainer.max_steps",
        str(max_steps),
        "--trainer.val_check_interval",
        str(val_every),
        "--trainer.limit_val_batches",
        "1",
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--model.init_args.image_size",
        "8",
        "--model.init_args.max_frames",
        "4",
        "--model.init_args.num_timesteps",
        "100",
        f"{net}model_channels",
        "8",
        f"{net}channel_mult",
        "[1, 2]",
        f"{net}attention_resolutions",
        "[]",
        f"{net}norm_groups",
        "4",
        f"{net}rel_pos_hidden",
        "8",
        "--data.init_args.image_size",
        "8",
        "--data.init_args.max_frames",
        "4",
        "--data.init_args.length",
        "16",
        "--data.init_args.train_videos",
        "10",
        "--data.init_args.val_videos",
        "2",
        "--data.init_args.batch_size",
        "2",
        "--samples.num_videos",
        "1",
        "--samples.steps",
        "2",
    ]


def tiny_batch(b: int = 2, k: int = 4, size: int = 8) -> dict:
    """A batch in vidiff's layout: sample 0 observes frame 0, sample 1 has an invalid last slot."""
    observed = torch.zeros(b, k, dtype=torch.bool)
    observed[0, 0] = True
    valid = torch.ones(b, k, dtype=torch.bool)
    valid[-1, -1] = False
    return {
        "video": torch.rand(b, k, 3, size, size) * 2 - 1,
        "frame_idx": torch.arange(k).repeat(b, 1) * 2,
        "observed": observed,
        "valid": valid,
        "caption": ["a red circle"] * b,
    }


def random_sampling_checkpoint(path: Path, max_frames: int) -> Path:
    """An untrained 8x8 VideoDiffusion checkpoint (tiny U-Net, EMA) for sampling-command tests."""
    from vidiff.lit import VideoDiffusion
    from vidiff.nn.unet import SpaceTimeUNet

    torch.manual_seed(0)
    net = SpaceTimeUNet(in_channels=3, model_channels=8, channel_mult=[1], num_res_blocks=1,
                        attention_resolutions=[], num_heads=1, norm_groups=4)
    model = VideoDiffusion(net=net, image_size=8, channels=3, max_frames=max_frames, num_timesteps=100, ema_decay=0.9)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path
