"""Does the autoencoder keep the objects' colours? Train the tiny f4 autoencoder with each reconstruction loss
and score its reconstructions of held-out Shapes-world videos with the Shapes detector.

    python scripts/bench_autoencoder_colours.py --steps 2000 --reconstruction l1 l2
    python scripts/bench_autoencoder_colours.py --ckpt runs/autoencoder_f4/checkpoints/last.ckpt

"caption colour" is the text-to-video caption score (vidiff.metrics.caption_accuracy) of the *reconstructed*
ground-truth videos: the ceiling of any latent model trained on top of this autoencoder (1.0 for the real frames).
The training loop is AutoencoderModule's loss and optimiser without Lightning, at configs/autoencoder/shapes_f4.yaml's
architecture, learning rate and 16 frames per step, so one table compares losses at equal steps.
"""

from __future__ import annotations

import argparse
import time

import torch

from vidiff.data.shapes import ShapesWorld
from vidiff.lit.autoencoder import AutoencoderModule
from vidiff.metrics.detect import detect_objects
from vidiff.metrics.shapes import caption_accuracy
from vidiff.nn.autoencoder import AutoencoderKL, load_autoencoder

ARCH = dict(in_channels=3, ch=16, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=4, embed_dim=4,
            attn_levels=[], mid_attention=True, norm_groups=8)  # configs/autoencoder/shapes_f4.yaml


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


def train(reconstruction: str, steps: int, lr: float, frames: int, videos: list[dict], report: int) -> None:
    torch.manual_seed(0)
    module = AutoencoderModule(AutoencoderKL(**ARCH), reconstruction=reconstruction, kl_weight=1e-6, lr=lr)
    opt = module.configure_optimizers()
    world, n, start = ShapesWorld(10000, length=64, seed=0), 0, time.time()
    for step in range(1, steps + 1):
        batch = []
        while sum(len(b) for b in batch) < frames:
            batch.append(world[n]["video"])
            n += 1
        loss = module.losses(torch.cat(batch)[:frames], sample=True)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % report == 0 or step == steps:
            acc, mse = score(module.autoencoder, videos)
            print(f"| {reconstruction} | {step} | {acc:.3f} | {mse:.4f} | {time.time() - start:.0f} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000, help="training steps per loss")
    p.add_argument("--reconstruction", nargs="+", default=["l1", "l2"], choices=["l1", "l2"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--frames", type=int, default=16, help="frames per training step")
    p.add_argument("--report", type=int, default=500, help="score every this many steps")
    p.add_argument("--num-videos", type=int, default=16, help="held-out videos (8 frames each) scored")
    p.add_argument("--ckpt", default=None, help="score this autoencoder checkpoint instead of training")
    args = p.parse_args()
    val = ShapesWorld(args.num_videos, length=64, seed=0, index_offset=10**6)
    videos = [val[i] for i in range(args.num_videos)]
    print("| reconstruction | steps | caption colour of reconstructions | MSE | s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    if args.ckpt:
        acc, mse = score(load_autoencoder(args.ckpt), videos)
        print(f"| {args.ckpt} | — | {acc:.3f} | {mse:.4f} | — |")
        return
    for rec in args.reconstruction:
        train(rec, args.steps, args.lr, args.frames, videos, args.report)


if __name__ == "__main__":
    main()
