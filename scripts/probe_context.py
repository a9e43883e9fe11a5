"""Context use of trained checkpoints on held-out Shapes-world videos (does the model use its observed frames?).

    python scripts/probe_context.py runs/demo/checkpoints/last.ckpt [more.ckpt ...] [--num-videos 16]

For each checkpoint: the context-use ratio (vidiff.metrics.context; 1.0 = ignored) at t/T = 0.3, 0.6, 0.8, 0.95,
on K consecutive frames (stride 1) and on K frames 4 apart (stride 4), the earliest half observed. The line
"copy-last" scores the baseline that predicts every latent frame as the last observed one (x0 prediction), for
reference: a model that uses its context well should beat it at high noise.
"""

from __future__ import annotations

import argparse

import torch

from vidiff.pipelines import load_sampling_model
from vidiff.evaluate import checkpoint_world_settings, eval_world, ground_truth
from vidiff.evaluate.runner import context_use_scores
from vidiff.io.checkpoint import read_checkpoint
from vidiff.metrics.context import context_use, format_context_use, prediction_mask


def _copy_last(x, t, frame_idx, observed, context):
    """x0 prediction of every frame: the latest observed frame (clips in frame order)."""
    last = observed.long().cumsum(1).argmax(1)  # slot of the last observed frame
    return x[torch.arange(len(x)), last][:, None].expand_as(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpts", nargs="+", help="checkpoints written by vidiff fit")
    parser.add_argument("--num-videos", type=int, default=16, help="held-out videos (default 16)")
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 4], help="frame strides (default 1 4)")
    parser.add_argument("--raw", action="store_true", help="score the raw trained weights instead of the EMA ones")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    for path in args.ckpts:
        if args.raw:
            model = load_sampling_model(path, use_ema=False)
        else:
            model = load_sampling_model(path)
        k = model.max_frames or 8
        world = checkpoint_world_settings(path, model.image_shape[1])
        length = max(args.strides) * (k - 1) + 1
        truth = ground_truth(eval_world(world, args.num_videos, length), length)
        step = read_checkpoint(path).get("global_step")
        for stride in args.strides:
            scores = context_use_scores(model, truth.videos, k, stride=stride)
            cells = "  ".join(f"{name.split()[-1]}: {value:.2f}" for name, value in scores.items())
            print(f"{path} (step {step}) stride {stride}: {cells}")
    for stride in args.strides:
        idx = torch.arange(k).repeat(len(truth.videos), 1) * stride
        ratios = context_use(_copy_last, model.schedule, "x0", model.encode(truth.videos[:, idx[0]]), idx,
                             prediction_mask(idx))
        print(f"copy-last stride {stride}: {format_context_use(ratios)}")


if __name__ == "__main__":
    main()
