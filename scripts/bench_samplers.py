"""Quality against sampling steps: which sampler, how many steps (issue 14, "Few-step samplers").

    python scripts/bench_samplers.py                                # the shipped reference model
    python scripts/bench_samplers.py --samplers ddim unipc --steps 5 10 --long-length 32

For every sampler and step count, two evaluations of `vidiff evaluate` (held-out Shapes videos, trailing
spacing, the generation layer's default): prediction (given 8, predict 8: centre error, miss rate, persistence)
and a long continuation (given 8, ``--long-length`` frames, one new frame per stage: persistence, miss rate,
motion consistency). Prints one markdown table with the network evaluations per generated frame and the
sampling seconds; figures for docs/benchmarks.md ("Quality against steps").
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default=str(ROOT / "vidiff/assets/shapes_reference.safetensors"))
    parser.add_argument("--samplers", nargs="+", default=["ddim", "dpmpp_2m", "unipc"])
    parser.add_argument("--steps", nargs="+", type=int, default=[5, 10, 20, 50])
    parser.add_argument("--num-videos", type=int, default=16, help="prediction videos (default 16)")
    parser.add_argument("--long-videos", type=int, default=4, help="long continuations (default 4; 0: skip)")
    parser.add_argument("--long-length", type=int, default=64)
    parser.add_argument("--spacing", default="trailing")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from vidiff.evaluate import EvalConfig, checkpoint_world_settings
    from vidiff.evaluate import evaluate as run_eval
    from vidiff.pipelines import load_sampling_model

    model = load_sampling_model(args.ckpt, args.device)
    world = checkpoint_world_settings(Path(args.ckpt), model.image_shape[1])
    common = dict(spacing=args.spacing, progress=False)
    print(f"checkpoint {args.ckpt}; prediction: {args.num_videos} videos; long: {args.long_videos} videos of "
          f"{args.long_length} frames, one new frame per stage; {args.spacing} spacing", flush=True)
    print("| sampler | steps | prediction centre px | miss rate | persistence | s | long persistence | miss rate "
          "| motion | s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)
    for sampler in args.samplers:
        for steps in args.steps:
            cells = []
            start = time.perf_counter()
            report, _ = run_eval(model, world, EvalConfig(task="prediction", num_videos=args.num_videos,
                                                          sampler=sampler, steps=steps, **common))
            res = report["results"]["model"]
            cells += [res["centre_error"], res["miss_rate"], res["persistence"], time.perf_counter() - start]
            if args.long_videos:
                start = time.perf_counter()
                report, _ = run_eval(model, world, EvalConfig(
                    task="long", num_videos=args.long_videos, length=args.long_length, scheme="autoregressive",
                    step_size=1, sampler=sampler, steps=steps, **common))
                res = report["results"]["model"]
                cells += [res["persistence"], res["miss_rate"], res["motion_consistency"],
                          time.perf_counter() - start]
            print(f"| {sampler} | {steps} | " + " | ".join(f"{c:.3f}" if i % 4 != 3 else f"{c:.0f}"
                                                          for i, c in enumerate(cells)) + " |", flush=True)


if __name__ == "__main__":
    main()
