"""Context use of trained checkpoints on held-out Shapes-world videos (does the model use its observed frames?).

    python scripts/probe_context.py runs/demo/checkpoints/last.ckpt [more.ckpt ...] [--num-videos 16]

For each checkpoint: the context-use ratio (vidiff.metrics.context; 1.0 = ignored) at t/T = 0.3, 0.6, 0.8, 0.95,
on K consecutive frames (stride 1) and on K frames 4 apart (stride 4), the earliest half observed.
"""

from __future__ import annotations

import argparse

import torch

from vidiff.commands.sample import load_sampling_model
from vidiff.evaluate import checkpoint_world_settings, eval_world, ground_truth
from vidiff.evaluate.runner import context_use_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpts", nargs="+", help="checkpoints written by vidiff fit")
    parser.add_argument("--num-videos", type=int, default=16, help="held-out videos (default 16)")
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 4], help="frame strides (default 1 4)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    for path in args.ckpts:
        model = load_sampling_model(path)
        k = model.max_frames or 8
        world = checkpoint_world_settings(path, model.image_shape[1])
        length = max(args.strides) * (k - 1) + 1
        truth = ground_truth(eval_world(world, args.num_videos, length), length)
        step = torch.load(path, map_location="cpu", weights_only=True).get("global_step")
        for stride in args.strides:
            scores = context_use_scores(model, truth.videos, k, stride=stride)
            cells = "  ".join(f"{name.split()[-1]}: {value:.2f}" for name, value in scores.items())
            print(f"{path} (step {step}) stride {stride}: {cells}")


if __name__ == "__main__":
    main()
