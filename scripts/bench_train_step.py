"""Training-step throughput of a config (default configs/shapes/tiny.yaml): which levers make a step faster.

    python scripts/bench_train_step.py                          # every variant, 2 threads, 30 rounds
    python scripts/bench_train_step.py --variants eager,bf16 --rounds 50
    python scripts/bench_train_step.py --variants eager,batch16,batch32 --rounds 10   # clips/s against batch size

Each variant is a full optimiser step (forward, loss, backward, AdamW, EMA update) of the config's model on one
fixed batch of the config's data, built once; the variants run interleaved (round-robin, one step each per round)
in one process, so machine load hits all alike, and the medians' ratios to ``eager`` are the figures to read.
Variants:
    eager       fp32, the config as written (the reference path)
    bf16        ``torch.autocast("cpu", torch.bfloat16)`` around forward and loss
    channels_last  the U-Net in channels-last memory format
    compile     ``torch.compile`` of the U-Net (compile time reported separately)
    bf16_channels_last, bf16_compile  the two combined with bf16 autocast
    fused_adamw ``AdamW(fused=True)`` (one kernel for all parameters)
    threads1    eager with ``torch.set_num_threads(1)`` for the step
    batchN      eager on a batch of N clips instead of the config's (any N, e.g. batch16): the clips/s column
                says whether larger batches buy throughput on this machine
Data: the time to render and mask one training batch (``ShapesWorld`` + ``FrameMaskSampler``), which
``num_workers: 0`` puts on the critical path. Figures go to docs/benchmarks.md ("Training throughput").
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("eager", "bf16", "channels_last", "bf16_channels_last", "compile", "bf16_compile", "fused_adamw", "threads1")


def build(config: Path, channels_last: bool = False, fused: bool = False):
    """The config's VideoDiffusion (with AdamW as configured) and its data module."""
    from vidiff.data import ShapesDataModule
    from vidiff.lit import VideoDiffusion

    cfg = yaml.safe_load(config.read_text())
    model_args = copy.deepcopy(cfg["model"]["init_args"])
    opt = model_args.pop("optimizer", {}).get("init_args", {})
    model_args.pop("lr_scheduler", None)
    if channels_last:
        model_args["net"]["init_args"]["channels_last"] = True
    torch.manual_seed(0)
    model = VideoDiffusion(**model_args)
    data = ShapesDataModule(**cfg["data"]["init_args"])
    optimizer = torch.optim.AdamW(model.net.parameters(), **opt, **({"fused": True} if fused else {}))
    return model, data, optimizer


def batch_of(data, n: int) -> dict:
    items = [data.train_dataset[i] for i in range(n)]
    return torch.utils.data.default_collate(items)


def make_step(model, optimizer, batch, autocast: bool, net=None):
    net = model.net if net is None else net

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model.loss(batch, net)
        loss.backward()
        optimizer.step()
        if model.ema is not None:
            model.ema.update(model._trained())
        return float(loss.detach())

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs/shapes/tiny.yaml")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {VARIANTS} or batchN (N clips a step)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [v for v in args.variants.split(",") if v]
    unknown = sorted(n for n in set(names) - set(VARIANTS) if not (n.startswith("batch") and n[5:].isdigit()))
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")

    model, data, optimizer = build(args.config)
    batch = batch_of(data, data.batch_size)
    steps, threads, clips = {}, {}, {}
    for name in names:
        bf16 = name.startswith("bf16")
        clips[name] = batch["video"].shape[0]
        if name.startswith("batch"):
            m, _, o = build(args.config)
            clips[name] = int(name[5:])
            steps[name] = make_step(m, o, batch_of(data, clips[name]), False)
        elif name.endswith("channels_last"):
            m, _, o = build(args.config, channels_last=True)
            steps[name] = make_step(m, o, batch, bf16)
        elif name.endswith("compile"):
            m, _, o = build(args.config)
            compiled = torch.compile(m.net)
            start = time.perf_counter()
            make_step(m, o, batch, bf16, compiled)()
            print(f"{name}: first step (compilation) {time.perf_counter() - start:.1f} s", flush=True)
            steps[name] = make_step(m, o, batch, bf16, compiled)
        else:
            m, _, o = build(args.config, fused=name == "fused_adamw")
            steps[name] = make_step(m, o, batch, bf16)
        threads[name] = 1 if name == "threads1" else args.threads

    times: dict[str, list[float]] = {n: [] for n in names}
    data_times: list[float] = []
    for r in range(args.warmup + args.rounds):
        for name in names:
            torch.set_num_threads(threads[name])
            start = time.perf_counter()
            steps[name]()
            if r >= args.warmup:
                times[name].append(time.perf_counter() - start)
        torch.set_num_threads(args.threads)
        start = time.perf_counter()
        batch_of(data, data.batch_size)
        if r >= args.warmup:
            data_times.append(time.perf_counter() - start)

    base = statistics.median(times[names[0]])
    print(f"\n{args.config.name}: batch {batch['video'].shape[0]} x {batch['video'].shape[1]} frames, "
          f"{args.threads} threads, {args.rounds} interleaved rounds (median)")
    print("| variant | ms / step | steps/s | clips/s | frames/s | time / " + names[0] + " |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    per_clip = batch["video"].shape[1]  # frames per clip
    for name in names:
        med = statistics.median(times[name])
        print(f"| {name} | {med * 1e3:.1f} | {1 / med:.2f} | {clips[name] / med:.1f} | "
              f"{clips[name] * per_clip / med:.1f} | {med / base:.2f}x |")
    dmed = statistics.median(data_times)
    print(f"| data (render + mask one batch) | {dmed * 1e3:.1f} | — | — | — | {dmed / base:.2f}x |")


if __name__ == "__main__":
    main()
