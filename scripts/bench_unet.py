"""Benchmark vidiff's SpaceTimeUNet against peer video U-Nets: fwd+bwd median time and peak memory.

CPU (the issue's setting; run with the benchmark venv that has the peers, see docs/unet.md):
    /work/bench-venv/bin/python scripts/bench_unet.py
GPU, vidiff only, attention backends compared at 64x64, 16 frames, bf16 autocast:
    python scripts/bench_unet.py --device cuda --backends xformers,sdpa --size 64 --frames 16 --bf16

Method.
  Time: all models are built in one process and timed interleaved (round-robin, one fwd+bwd each per round), so
  load from other processes on the machine hits every model alike; the median over rounds is reported, and
  the ratios vidiff / peer are the figures to read.
  Memory: each model runs in a fresh subprocess; on CPU the peak resident set size (``VmHWM``, reset through
  ``/proc/self/clear_refs`` once model, input and zeroed grads exist) over two fwd+bwd passes minus the resident
  size at that reset, i.e. the activation / workspace memory of one training step (``ru_maxrss`` would not do:
  Linux carries it over from the forking parent). torch's CPU allocations are
  invisible to tracemalloc, hence RSS. On CUDA it is ``torch.cuda.max_memory_allocated`` minus the allocation
  before the first pass.
  Peers: ``make_a_video_pytorch.SpaceTimeUnet`` and ``video_diffusion_pytorch.Unet3D`` (PyPI), configured to about
  vidiff's parameter count (counts printed). video-diffusion-pytorch imports torchvision at module level (only for
  its data loading); torchvision does not import beside the CPU torch build here, so a stub module is inserted
  into ``sys.modules`` before importing it. The U-Net code being timed does not use torchvision.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _stub_torchvision() -> None:
    """Insert an inert ``torchvision`` (transforms, utils) so video_diffusion_pytorch imports on CPU torch."""

    class _Stub:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __call__(self, *args, **kwargs):
            raise RuntimeError("torchvision is stubbed out for the benchmark")

    def _getattr(name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return _Stub

    tv = types.ModuleType("torchvision")
    for sub in ("transforms", "utils"):
        mod = types.ModuleType(f"torchvision.{sub}")
        mod.__getattr__ = _getattr  # PEP 562 module __getattr__
        setattr(tv, sub, mod)
        sys.modules[f"torchvision.{sub}"] = mod
    sys.modules["torchvision"] = tv


def load_config(path: Path) -> dict:
    """``init_args`` of a LightningCLI-style model config (``class_path`` + ``init_args``)."""
    import yaml

    with open(path) as f:
        cfg = yaml.safe_load(f)
    return cfg.get("init_args", cfg)


def build(name: str, args: argparse.Namespace) -> tuple[torch.nn.Module, callable]:
    """Model ``name`` and a closure running one forward pass on a fixed input, returning a scalar loss."""
    b, t, s = args.batch, args.frames, args.size
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(b, t, 3, s, s, generator=gen).to(args.device)
    steps = torch.randint(0, 1000, (b,), generator=gen).to(args.device)
    if name.startswith("vidiff"):
        from vidiff.nn import SpaceTimeUNet

        model = SpaceTimeUNet(**load_config(ROOT / args.config)).to(args.device)
        backend = name.split(":")[1] if ":" in name else None
        if backend:
            model.set_attention(backend)
        frame_idx = torch.arange(t, device=args.device).expand(b, t) * 3
        observed = torch.zeros(b, t, dtype=torch.bool, device=args.device)
        observed[:, :2] = True
        return model, lambda: model(x, steps, frame_idx, observed).float().square().mean()
    xv = x.transpose(1, 2).contiguous()  # peers take (b, c, t, h, w)
    if name == "make-a-video":
        from make_a_video_pytorch import SpaceTimeUnet

        model = SpaceTimeUnet(
            dim=32, channels=3, dim_mult=(1, 2, 4), self_attns=(False, False, True),
            temporal_compression=(False, False, False), resnet_block_depths=(1, 1, 1), attn_heads=4, attn_dim_head=32,
        ).to(args.device)
        return model, lambda: model(xv, timestep=steps.float()).square().mean()
    if name == "video-diffusion":
        _stub_torchvision()
        from video_diffusion_pytorch import Unet3D

        model = Unet3D(dim=32, dim_mults=(1, 2, 2, 4), attn_heads=4, attn_dim_head=32).to(args.device)
        return model, lambda: model(xv, steps.float()).square().mean()
    raise ValueError(f"model must be vidiff[:backend], make-a-video or video-diffusion, got {name!r}")


def step(model: torch.nn.Module, loss_fn, args: argparse.Namespace) -> None:
    """One forward + backward pass (bf16 autocast when asked)."""
    with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16):
        loss = loss_fn()
    loss.backward()
    model.zero_grad(set_to_none=False)
    if args.device == "cuda":
        torch.cuda.synchronize()


def _status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``: resident now, ``VmHWM``: peak resident) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> None:
    """Reset this process's peak RSS (``VmHWM``) to the current RSS (Linux >= 4.0: ``clear_refs`` value 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def memory_child(name: str, args: argparse.Namespace) -> None:
    """Subprocess body: print the peak memory of fwd+bwd of one model as JSON."""
    model, loss_fn = build(name, args)
    model.zero_grad(set_to_none=False)
    for p in model.parameters():  # grads allocated up front: the peak then counts activations and workspace
        p.grad = torch.zeros_like(p)
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        reset_peak_rss()
        base = _status_bytes("VmRSS")
    for _ in range(2):
        step(model, loss_fn, args)
    if args.device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _status_bytes("VmHWM") - base
    print(json.dumps({"peak_bytes": peak}))


def measure_memory(name: str, args: argparse.Namespace) -> int:
    cmd = [sys.executable, __file__, "--memory-child", name, "--device", args.device, "--size", str(args.size),
           "--frames", str(args.frames), "--batch", str(args.batch), "--threads", str(args.threads),
           "--config", args.config] + (["--bf16"] if args.bf16 else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_bytes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="vidiff,make-a-video,video-diffusion",
                        help="comma list of vidiff[:backend], make-a-video, video-diffusion")
    parser.add_argument("--backends", default="", help="comma list of attention backends: runs vidiff:<backend> each")
    parser.add_argument("--config", default="configs/model/unet_3m.yaml", help="vidiff model config (repo-relative)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child, args)
        return
    names = [f"vidiff:{b}" for b in args.backends.split(",") if b] or args.models.split(",")
    models = {n: build(n, args) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for n, (model, loss_fn) in models.items():  # warm-up
        step(model, loss_fn, args)
    for _ in range(args.rounds):
        for n, (model, loss_fn) in models.items():
            start = time.perf_counter()
            step(model, loss_fn, args)
            times[n].append(time.perf_counter() - start)
    del models
    print(f"input: {args.batch} videos x {args.frames} frames x 3 x {args.size} x {args.size}, device {args.device}, "
          f"{args.threads} threads, {'bf16 autocast' if args.bf16 else 'fp32'}, {args.rounds} interleaved rounds")
    rows = {}
    for n in names:
        model, _ = build(n, args)
        params = sum(p.numel() for p in model.parameters())
        del model
        rows[n] = (params, statistics.median(times[n]), measure_memory(n, args))
    print(f"{'model':24s} {'params':>10s} {'fwd+bwd ms':>11s} {'peak MiB':>9s}")
    for n, (params, t, mem) in rows.items():
        print(f"{n:24s} {params:10,d} {t * 1e3:11.1f} {mem / 2**20:9.1f}")
    first = names[0]
    for n in names[1:]:
        print(f"ratio {first} / {n}: time {rows[first][1] / rows[n][1]:.2f}x, memory {rows[first][2] / rows[n][2]:.2f}x")
    if args.device == "cuda":
        for n in names:
            videos_per_s = args.batch / rows[n][1]
            print(f"throughput {n}: {videos_per_s:.2f} videos/s (fwd+bwd)")


if __name__ == "__main__":
    main()
