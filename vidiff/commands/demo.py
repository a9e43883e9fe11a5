"""`vidiff demo`: the main job of README's two-command set-up.

Trains the tiny Shapes-world model on CPU (``configs/shapes/tiny.yaml``), then samples two 300-frame videos from
its checkpoint that continue the first 8 frames of a held-out Shapes-world clip (autoregressive, one new frame per
stage, 5 DDIM steps with trailing spacing: the scheme that keeps objects best at the cost of hierarchy-2 with 20
steps; docs/benchmarks.md), and tells the user where everything is. ``--pretrained`` skips the
training and samples from the reference model shipped with vidiff (:data:`vidiff.assets.REFERENCE`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "train the tiny Shapes-world model on CPU, then sample a long video from it (README's main job)"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/shapes/tiny.yaml", help="training config (default: %(default)s)")
    parser.add_argument("--out", default="runs/demo", help="run folder (default: %(default)s)")
    parser.add_argument("--max-steps", type=int, default=None, help="override trainer.max_steps (quick trials)")
    parser.add_argument("--length", type=int, default=300, help="frames in the sampled long video (default: %(default)s)")
    parser.add_argument("--scheme", default="autoregressive",
                        help="long-video scheme (default: %(default)s, one new frame per stage; docs/benchmarks.md, "
                             "'Long videos: schemes at equal cost')")
    parser.add_argument("--step-size", type=int, default=1, help="frames generated per stage (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=5,
                        help="DDIM steps per stage, trailing spacing (default: %(default)s)")
    parser.add_argument("--num-observed", type=int, default=8,
                        help="frames of a held-out Shapes-world clip the long videos continue (default: %(default)s; "
                             "0: generate from nothing)")
    parser.add_argument("--skip-train", action="store_true", help="reuse the checkpoint already in --out")
    parser.add_argument(
        "--pretrained", action="store_true",
        help="no training: sample from the reference model shipped with vidiff (hours of CPU training; "
        "docs/benchmarks.md)",
    )
    parser.add_argument("--overwrite", action="store_true",
                        help="retrain although --out holds a checkpoint (the old ones are moved aside, not deleted)")


def run(args: argparse.Namespace) -> int:
    from vidiff.cli import main

    out = Path(args.out)
    if args.pretrained:
        from vidiff.assets import REFERENCE

        if not REFERENCE.is_file():
            raise SystemExit(f"vidiff demo: --pretrained: the reference model {REFERENCE} is missing from this install")
        ckpt = REFERENCE
    else:
        ckpt = _train(args, out, main)
    samples = out / "long_video"
    given = []
    if args.num_observed:
        clip = held_out_clip(ckpt, out / "given_clip.mp4", args.num_observed)
        given = ["--observed", str(clip), "--num-observed", str(args.num_observed)]
    code = main([
        "sample", "--ckpt", str(ckpt), "--scheme", args.scheme, "--step-size", str(args.step_size),
        "--length", str(args.length), "--sampler", "ddim", "--steps", str(args.steps), "--spacing", "trailing",
        "--num-videos", "2", "--seed", "0", "--out", str(samples), "--png-strip", "--overwrite", *given,
    ])
    train_samples = ckpt.parent.parent / "samples"
    trained = f"\n  training samples: {train_samples}/" if not args.pretrained and train_samples.is_dir() else ""
    clip = f"\n  given clip:      {out / 'given_clip.mp4'}" if given else ""
    print(f"\nvidiff demo done.\n  checkpoint:      {ckpt}{trained}{clip}"
          f"\n  long videos:     {samples}/ (open {samples}/index.html)")
    return code


def held_out_clip(ckpt: Path, path: Path, frames: int) -> Path:
    """Write the first ``frames`` frames of the first held-out video of the checkpoint's Shapes world (never
    trained on) to ``path`` (mp4) and return it: the clip the demo's long videos continue."""
    from vidiff.evaluate import checkpoint_world_settings, eval_world
    from vidiff.io import write_video
    from vidiff.pipelines import load_sampling_model

    if frames < 1:
        raise SystemExit(f"vidiff demo: --num-observed: expected >= 0 frames, got {frames}")
    size = load_sampling_model(str(ckpt)).image_shape[1]
    world = eval_world(checkpoint_world_settings(ckpt, size), 1, max(frames, 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, world.render(0, list(range(frames))), fps=8, crf=0)
    return path


#: The source checkout vidiff runs from (its configs/ folder holds the demo's config).
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def resolve_config(config: str) -> Path:
    """``config`` as given if it exists, else the same relative path in vidiff's checkout (``configs/...``), so
    that ``vidiff demo`` runs from any folder."""
    path = Path(config)
    if path.is_file():
        return path
    shipped = SOURCE_ROOT / path
    if not path.is_absolute() and shipped.is_file():
        return shipped
    raise SystemExit(f"vidiff demo: --config: {config} not found (nor under {SOURCE_ROOT}); give a config file")


def _train(args: argparse.Namespace, out: Path, main) -> Path:
    """Train (unless ``--skip-train``) and return the newest ``last.ckpt`` under ``out``."""
    config = str(resolve_config(args.config))
    if not args.skip_train:
        if list((out / "checkpoints").glob("*.ckpt")) and not args.overwrite:
            raise SystemExit(f"vidiff demo: {out}/checkpoints already holds a trained model; sample from it with "
                             "--skip-train, or retrain with --overwrite (moves the old checkpoints aside)")
        argv = ["fit", "--config", config, "--trainer.default_root_dir", str(out)]
        if args.overwrite:
            argv += ["--overwrite", "true"]
        if args.max_steps is not None:
            argv += ["--trainer.max_steps", str(args.max_steps)]
        main(argv)
    ckpts = sorted(out.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not ckpts:
        raise SystemExit(f"vidiff demo: no last.ckpt under {out}; training did not write a checkpoint")
    return ckpts[-1]
