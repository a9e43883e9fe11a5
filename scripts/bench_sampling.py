#!/usr/bin/env python
"""Benchmark long-video sampling: network evaluations, wall time, batched vs sequential stage execution.

    python scripts/bench_sampling.py                         # 300 frames, 32x32, hierarchy-2, K=20, DDIM 50
    python scripts/bench_sampling.py --steps 2 --videos 1 4 --schemes hierarchy-2 predict-then-interpolate
    python scripts/bench_sampling.py --device cuda --ckpt vidiff/assets/shapes_reference.safetensors --videos 1 8

Uses ``--ckpt`` (default runs/shapes_tiny/checkpoints/last.ckpt) when it exists, else a randomly initialised
U-Net of configs/shapes/tiny.yaml (timings do not depend on the weights); it prints which. For each scheme and
number of videos it runs the whole plan twice, sequentially (``--batch-budget 1``) and batched, checks that both
give the same videos and prints network evaluations (stage x video x step), forward passes, wall time, time per
forward and the speed-up. With fewer than 50 steps it also prints the wall time extrapolated to 50 steps
(time scales linearly with steps: every step is one forward pass per batch).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff.diffusion import NoiseSchedule
from vidiff.pipelines import RunOptions, SamplerSettings, VideoModel, sample_long_videos
from vidiff.schemes import batches, plan

TINY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "shapes" / "tiny.yaml"


def tiny_net_args() -> dict:
    """The net arguments of configs/shapes/tiny.yaml, read from the config so that they cannot drift from it."""
    return yaml.safe_load(TINY_CONFIG.read_text())["model"]["init_args"]["net"]["init_args"]


def _model(ckpt: str | None, size: int, device: str) -> tuple[VideoModel, str]:
    if ckpt and Path(ckpt).is_file():
        from vidiff.pipelines import load_sampling_model

        return load_sampling_model(ckpt, device), f"trained checkpoint {ckpt}"
    from vidiff.nn.unet import SpaceTimeUNet

    torch.manual_seed(0)
    net = SpaceTimeUNet(**tiny_net_args()).eval().requires_grad_(False).to(device)
    model = VideoModel(net, NoiseSchedule("cosine", 1000), "v", (3, size, size), (3, size, size), max_frames=None)
    params = sum(p.numel() for p in net.parameters())
    return model, f"randomly initialised tiny U-Net (configs/shapes/tiny.yaml net, {params / 1e6:.2f} M parameters)"


class Counter:
    """Counts forward passes of the net (a batched pass counts once)."""

    def __init__(self, net):
        self.net, self.calls = net, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.net(*args, **kwargs)

    def parameters(self):
        return self.net.parameters()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default="runs/shapes_tiny/checkpoints/last.ckpt")
    p.add_argument("--length", type=int, default=300)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--max-frames", type=int, default=20)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--schemes", nargs="+", default=["hierarchy-2"])
    p.add_argument("--videos", nargs="+", type=int, default=[1])
    p.add_argument("--batch-budget", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="torch device (default cpu; cuda on a GPU machine)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, what = _model(args.ckpt, args.size, args.device)
    print(f"model: {what}")
    gpu = f", {torch.cuda.get_device_name(args.device)}" if torch.device(args.device).type == "cuda" else ""
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs{gpu}, torch {torch.__version__}, "
          f"{args.threads} threads; load average before: {os.getloadavg()[0]:.1f}")
    print(f"video: {args.length} frames at {args.size}x{args.size}, K={args.max_frames}, DDIM {args.steps} steps")
    header = "| scheme | videos | stages | waves | mode | network evals | forward passes | wall s | s / forward | " \
             "wall s at 50 steps | speed-up |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    settings = SamplerSettings("ddim", args.steps)
    for scheme in args.schemes:
        stages = plan(scheme, args.length, args.max_frames)
        waves = len(batches(stages))
        for n in args.videos:
            results = {}
            for mode, budget in (("sequential", 1), ("batched", args.batch_budget)):
                counter = Counter(model.net)
                m = VideoModel(counter, model.schedule, model.prediction, model.frame_shape, model.image_shape,
                               model.autoencoder, model.text_encoder, args.max_frames)
                start = time.perf_counter()
                videos = sample_long_videos(m, stages, length=args.length, num_videos=n, seed=0,
                                            settings=settings, options=RunOptions(batch_budget=budget))
                if torch.device(args.device).type == "cuda":
                    torch.cuda.synchronize(args.device)
                wall = time.perf_counter() - start
                results[mode] = (videos, wall)
                evals = len(stages) * n * args.steps
                speed = "" if mode == "sequential" else f"{results['sequential'][1] / wall:.2f}x"
                print(f"| {scheme} | {n} | {len(stages)} | {waves} | {mode} (budget {budget}) | {evals} | "
                      f"{counter.calls} | {wall:.1f} | {wall / counter.calls:.3f} | {wall * 50 / args.steps:.0f} | "
                      f"{speed} |", flush=True)
            same = torch.allclose(results["sequential"][0], results["batched"][0], atol=1e-4)
            print(f"|  |  |  |  | batched == sequential (atol 1e-4): {same} |  |  |  |  |  |  |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
