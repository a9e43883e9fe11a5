"""Does the autoencoder keep the objects' colours? Train the tiny f4 autoencoder with each reconstruction loss
and score its reconstructions of held-out Shapes-world videos with the Shapes detector.

    python scripts/bench_autoencoder_colours.py --steps 2000 --reconstruction l1 l2
    python scripts/bench_autoencoder_colours.py --ckpt runs/autoencoder_f4/checkpoints/last.ckpt

"caption colour" is the text-to-video caption score (vidiff.metrics.caption_accuracy) of the *reconstructed*
ground-truth videos: the ceiling of any latent model trained on top of this autoencoder (1.0 for the real frames).
The training loop is configs/autoencoder/shapes_f4.yaml's AutoencoderModule (architecture, loss weights, learning
rate) and optimiser without Lightning, 16 frames per step, so one table compares losses at equal steps.
tests/test_autoencoder.py trains and scores the shipped config with the same functions.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import OmegaConf

from vidiff.data.shapes import ShapesWorld
from vidiff.lit.autoencoder import AutoencoderModule
from vidiff.metrics.detect import detect_objects
from vidiff.metrics.shapes import caption_accuracy
from vidiff.nn.autoencoder import AutoencoderKL, load_autoencoder

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "autoencoder" / "shapes_f4.yaml"


def config_module(reconstruction: str | None = None, lr: float | None = None) -> AutoencoderModule:
    """The config's AutoencoderModule (seeded), with its reconstruction loss or learning rate replaced."""
    args = OmegaConf.to_container(OmegaConf.load(CONFIG).model.init_args)
    args.update({k: v for k, v in (("reconstruction", reconstruction), ("lr", lr)) if v is not None})
    torch.manual_seed(0)
    return AutoencoderModule(AutoencoderKL(**args.pop("autoencoder")["init_args"]), **args)


def held_out(num_videos: int) -> list[dict]:
    """Held-out Shapes-world videos (8 frames each), disjoint from the training indices."""
    world = ShapesWorld(num_videos, length=64, seed=0, index_offset=10**6)
    return [world[i] for i in range(num_videos)]


@torch.no_grad()
def score(ae: AutoencoderKL, videos: list[dict]) -> tuple[float, float]:
    """Mean caption colour accuracy and pixel MSE of the reconstructions (posterior mode)."""
    ae.eval()
    accs, mses = [], []
    for s in videos:
        x = s["video"]
        r = ae.decode(ae.encode(x).mode()).clamp(-1, 1)
        mses.append((r - x).pow(2).mean().item())
        accs.append(caption_accuracy(detect_objects(r), s["caption"]).colour)
    ae.train()
    return sum(accs) / len(accs), sum(mses) / len(mses)


def train(module: AutoencoderModule, steps: int, frames: int = 16,
          on_step: Callable[[int], None] | None = None) -> None:
    """``steps`` Adam steps of the module's loss on ``frames`` fresh training frames each (whole videos in order)."""
    opt = module.configure_optimizers()
    world, n = ShapesWorld(10000, length=64, seed=0), 0
    for step in range(1, steps + 1):
        batch = []
        while sum(len(b) for b in batch) < frames:
            batch.append(world[n]["video"])
            n += 1
        loss = module.losses(torch.cat(batch)[:frames], sample=module.sample_posterior)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(step)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000, help="training steps per loss")
    p.add_argument("--reconstruction", nargs="+", default=["l1", "l2"], choices=["l1", "l2"])
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the config's)")
    p.add_argument("--frames", type=int, default=16, help="frames per training step")
    p.add_argument("--report", type=int, default=500, help="score every this many steps")
    p.add_argument("--num-videos", type=int, default=16, help="held-out videos (8 frames each) scored")
    p.add_argument("--ckpt", default=None, help="score this autoencoder checkpoint instead of training")
    args = p.parse_args()
    videos = held_out(args.num_videos)
    print("| reconstruction | steps | caption colour of reconstructions | MSE | s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    if args.ckpt:
        acc, mse = score(load_autoencoder(args.ckpt), videos)
        print(f"| {args.ckpt} | — | {acc:.3f} | {mse:.4f} | — |")
        return
    for rec in args.reconstruction:
        module, start = config_module(rec, args.lr), time.time()

        def report(step: int) -> None:
            if step % args.report == 0 or step == args.steps:
                acc, mse = score(module.autoencoder, videos)
                print(f"| {rec} | {step} | {acc:.3f} | {mse:.4f} | {time.time() - start:.0f} |", flush=True)

        train(module, args.steps, args.frames, report)


if __name__ == "__main__":
    main()
