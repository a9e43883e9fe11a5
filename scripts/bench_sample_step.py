"""Cost of one network evaluation in sampling, and which levers cut it (issue 14, "Cost of one step").

    python scripts/bench_sample_step.py                                   # the shipped reference model
    python scripts/bench_sample_step.py --ckpt runs/demo/checkpoints/last.ckpt --rounds 30 --batch 4

One evaluation is one call of the U-Net on ``--batch`` stage items of K frames (half of them observed) at a
random timestep, as the stage executor makes it. The variants run interleaved (round-robin, ``--calls`` calls
each per round) in one process, so machine load hits all alike; the medians' ratios to ``eager`` are the figures
to read. Each variant's output is compared with ``eager``'s on the same inputs (largest absolute difference of
the prediction, whose values are O(1)).

Variants (:class:`vidiff.pipelines.speed.Speed`; all but eager run under inference mode):
    eager          fp32 under ``torch.no_grad`` (what sampling did before the levers; the reference)
    inference      fp32 under ``torch.inference_mode``
    bf16           + ``torch.autocast("cpu", torch.bfloat16)``, output cast back to fp32
    channels_last  + the U-Net in channels-last memory format
    compile        + ``torch.compile`` of the U-Net (compile time reported separately)
    bf16_compile   bf16 and compile together
Batching: ``--batches`` also times eager at other batch sizes and reports the cost per item.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("eager", "inference", "bf16", "channels_last", "compile", "bf16_compile")


def inputs(model, batch: int, seed: int = 0):
    """One stage batch: ``batch`` items of K frames, the first half observed (clean), the rest noised."""
    g = torch.Generator().manual_seed(seed)
    k = model.max_frames or 8
    x = torch.randn((batch, k, *model.frame_shape), generator=g)
    t = torch.randint(0, model.schedule.num_timesteps, (batch,), generator=g)
    frame_idx = torch.arange(k).expand(batch, k).contiguous()
    observed = torch.zeros(batch, k, dtype=torch.bool)
    observed[:, : k // 2] = True
    return x, t, frame_idx, observed


def variant_net(model, name: str):
    """The callable a variant samples with, and its compile time (seconds, 0 when not compiled)."""
    from vidiff.pipelines.speed import FastNet, Speed

    if name == "eager":
        net = model.net

        def call(*args):
            with torch.no_grad():
                return net(*args)

        return call
    speed = Speed(precision="bf16" if "bf16" in name else "fp32", channels_last=name == "channels_last",
                  compile="compile" in name)
    return FastNet(copy.deepcopy(model.net), speed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default=str(ROOT / "vidiff/assets/shapes_reference.safetensors"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--batch", type=int, default=4, help="stage items per evaluation (default 4)")
    parser.add_argument("--batches", default="1,16", help="extra eager batch sizes, per-item cost (default 1,16)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=3, help="calls per variant per round")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from vidiff.pipelines import load_sampling_model

    model = load_sampling_model(args.ckpt)
    names = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; choose from {', '.join(VARIANTS)}")
    feed = inputs(model, args.batch)
    with torch.no_grad():
        reference = model.net(*feed)
    calls, setup, diff = {}, {}, {}
    for name in names:
        start = time.perf_counter()
        calls[name] = variant_net(model, name)
        out = calls[name](*feed)  # first call: compiles where asked
        setup[name] = time.perf_counter() - start
        diff[name] = float((out.float() - reference).abs().max())
    sizes = [int(s) for s in args.batches.split(",") if s]
    extra = {s: inputs(model, s) for s in sizes}
    times: dict[str, list[float]] = {n: [] for n in names}
    per_item: dict[int, list[float]] = {s: [] for s in sizes}
    for _ in range(args.rounds):
        for name in names:
            start = time.perf_counter()
            for _ in range(args.calls):
                calls[name](*feed)
            times[name].append((time.perf_counter() - start) / args.calls)
        for s in sizes:
            start = time.perf_counter()
            with torch.no_grad():
                model.net(*extra[s])
            per_item[s].append((time.perf_counter() - start) / s)

    base = statistics.median(times[names[0]])
    k = model.max_frames or 8
    print(f"checkpoint {args.ckpt}; {args.batch} items x {k} frames of {model.frame_shape}; "
          f"{args.threads} threads; median of {args.rounds} rounds x {args.calls} calls")
    print("| variant | ms / evaluation | ms / item | time / eager | first call s | max abs diff to eager |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        ms = 1000 * statistics.median(times[name])
        print(f"| {name} | {ms:.1f} | {ms / args.batch:.1f} | {ms / 1000 / base:.2f}x | {setup[name]:.1f} "
              f"| {diff[name]:.1e} |")
    per_base = base / args.batch
    for s in sizes:
        ms = 1000 * statistics.median(per_item[s])
        print(f"| eager, batch {s} | {ms * s:.1f} | {ms:.1f} | per item {ms / 1000 / per_base:.2f}x | | |")


if __name__ == "__main__":
    main()
