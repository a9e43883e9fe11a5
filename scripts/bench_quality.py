"""Quality benchmark: train the Shapes demo within a time budget, then score it beside simple baselines.

    python scripts/bench_quality.py --budget-min 12       # the demo's budget: 12 min of CPU training, tiny.yaml
    python scripts/bench_quality.py --budget-min 120 --config configs/shapes/base.yaml --device cuda
    python scripts/bench_quality.py --ckpt runs/shapes_tiny/checkpoints/last.ckpt   # skip training

Evaluations (`vidiff.evaluate`, held-out videos of the training world): future prediction (given 8, predict 8),
interpolation (given frames 0 and 15), 64- and 300-frame long videos with hierarchy-2 and with Diffusion Forcing's
autoregressive per-frame schedule (df-autoregressive) and with autoregressive stages of one new frame each (both
with as many network evaluations per frame as hierarchy-2), and 64 autoregressive (given 8; sampling with the
generation layer's default trailing spacing), the context-use ratio (in the prediction section), and
text-to-video when ``--t2v-config`` exists (trained with the same budget). Prints one table (every metric for the
model, the baselines and the ground truth) and the targets, and writes ``bench.md``/``bench.json`` plus each
evaluation's report under ``--out``. Figures for docs/benchmarks.md ("Quality").
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train(config: Path, budget_min: float, root: Path, device: str) -> Path:
    """`vidiff fit` with ``trainer.max_time``; checkpoints every 10 steps (no validation), returns ``last.ckpt``."""
    minutes = int(budget_min)
    seconds = int(round((budget_min - minutes) * 60))
    cmd = [
        sys.executable, "-m", "vidiff", "fit", "--config", str(config),
        "--trainer.default_root_dir", str(root),
        "--trainer.max_time", f"00:{minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}",
        "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
        "--checkpoint.monitor", "null", "--checkpoint.every_n_train_steps", "10",
    ]
    if device != "cpu":
        cmd += ["--trainer.accelerator", "gpu"]
    print("training:", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    ckpt = root / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise RuntimeError(f"training wrote no {ckpt} (fewer than 10 steps in {budget_min} min?)")
    print(f"trained for {time.perf_counter() - start:.0f} s -> {ckpt}", flush=True)
    return ckpt


def trained_steps(ckpt: Path) -> int:
    from vidiff.io.checkpoint import read_checkpoint

    return int(read_checkpoint(ckpt).get("global_step", -1))


def evaluate(ckpt: Path, sections: list[tuple[str, dict]], out: Path, device: str, progress: bool) -> list:
    """Run each ``(label, EvalConfig kwargs)``; returns ``[(label, report)]``."""
    from vidiff.pipelines import load_sampling_model
    from vidiff.evaluate import EvalConfig, checkpoint_world_settings, write_report
    from vidiff.evaluate import evaluate as run_eval

    model = load_sampling_model(str(ckpt), device)
    world = checkpoint_world_settings(ckpt, model.image_shape[1])
    results = []
    for label, kwargs in sections:
        start = time.perf_counter()
        report, _ = run_eval(model, world, EvalConfig(progress=progress, **kwargs))
        report["settings"]["ckpt"] = str(ckpt)
        slug = label.split(" (")[0].replace(" ", "_").replace(",", "")
        write_report(out / slug, report, title=label)
        print(f"{label}: {time.perf_counter() - start:.0f} s", flush=True)
        results.append((label, report))
    return results


COLUMNS = ("model", "copy-last", "linear", "noise", "ground truth")
ROWS = ("context_use t/T=0.3", "context_use t/T=0.6", "context_use t/T=0.8", "context_use t/T=0.95",
        "centre_error", "miss_rate", "psnr", "ssim", "persistence", "motion_consistency", "caption_colour",
        "caption_shape", "caption_precision")


def _fmt(v) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def table(results: list) -> str:
    """One markdown table: (evaluation, metric) rows, method columns; per-horizon errors for prediction."""
    lines = ["| evaluation | metric | " + " | ".join(COLUMNS) + " |", "| --- | --- |" + " ---: |" * len(COLUMNS)]
    for label, report in results:
        res = report["results"]
        for name in ROWS:
            if not any(name in r for r in res.values()):
                continue
            lines.append(f"| {label} | {name} | " + " | ".join(_fmt(res.get(c, {}).get(name)) for c in COLUMNS) + " |")
            if name == "centre_error" and report["task"] == "prediction":
                for h in range(len(report["spec"]["scored"])):
                    cells = [res.get(c, {}).get("centre_error_per_step") for c in COLUMNS]
                    lines.append(f"| {label} | centre_error h={h + 1} | "
                                 + " | ".join(_fmt(v[h]) if v else "—" for v in cells) + " |")
    return "\n".join(lines) + "\n"


def targets(results: list) -> list[str]:
    """The issue's CPU-budget targets (docs/benchmarks.md, "Quality"), each met or missed by how much."""
    out = []
    for label, report in results:
        res = report["results"]
        model = res.get("model", {})
        if report["task"] == "prediction":
            ratios = {k: v for k, v in model.items() if k.startswith("context_use t/T=")
                      and float(k.split("=")[1]) >= 0.8}
            low = [f"{k.split(' ')[1]}: {v:.2f}" for k, v in ratios.items() if v < 2.0]
            out.append("- context ratio >= 2 at t/T >= 0.8: " + ("met (" if not low else "NOT met (")
                       + ", ".join(f"{k.split(' ')[1]}: {v:.2f}" for k, v in ratios.items()) + ")")
        if report["task"] == "prediction" and "copy-last" in res:
            m, b = model["centre_error_per_step"], res["copy-last"]["centre_error_per_step"]
            worse = [(h + 1, mv - bv) for h, (mv, bv) in enumerate(zip(m, b)) if mv is None or bv is None or mv >= bv]
            out.append("- prediction error below copy-last at every horizon: "
                       + ("met" if not worse else "NOT met at h=" + ", ".join(
                           f"{h} (+{d:.2f} px)" if d is not None else f"{h}" for h, d in worse)))
        if report["task"] == "interpolation" and "linear" in res:
            m, b = model.get("centre_error"), res["linear"].get("centre_error")
            out.append(f"- interpolation error below linear: {'met' if m < b else 'NOT met'} ({m:.2f} vs {b:.2f} px)")
        if report["task"] == "long":
            p, miss = model.get("persistence"), model.get("miss_rate")
            ok = p is not None and p >= 0.8 and miss is not None and miss <= 0.1
            out.append(f"- {label}: persistence >= 0.8 and objects "
                       f"in >= 90% of frames: {'met' if ok else 'NOT met'} (persistence {_fmt(p)}, miss rate "
                       f"{_fmt(miss)})")
        if report["task"] == "text":
            c = model.get("caption_colour")
            out.append("- caption colour accuracy >= 0.8: "
                       + (f"met ({c:.3f})" if c is not None and c >= 0.8 else f"NOT met ({_fmt(c)})"))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/shapes/tiny.yaml", help="training config (default the CPU demo)")
    p.add_argument("--budget-min", type=float, default=20.0, help="training time budget in minutes (default 20)")
    p.add_argument("--ckpt", default=None, help="skip training and evaluate this checkpoint")
    p.add_argument("--t2v-config", default="configs/shapes/t2v_tiny.yaml", help="text-to-video config (if present)")
    p.add_argument("--t2v-ckpt", default=None, help="skip text-to-video training and evaluate this checkpoint")
    p.add_argument("--no-t2v", action="store_true", help="skip text-to-video")
    p.add_argument("--t2v-steps", type=int, default=50, help="text-to-video sampling steps (default 50)")
    p.add_argument("--guidance", type=float, default=3.0,
                   help="text-to-video classifier-free guidance (default 3, docs/text_to_video.md's setting)")
    p.add_argument("--num-videos", type=int, default=16, help="held-out videos per evaluation (default 16)")
    p.add_argument("--steps", type=int, default=25, help="DDIM steps per stage (default 25)")
    p.add_argument("--long-lengths", type=int, nargs="+", default=[64, 300],
                   help="frames of the hierarchy-2 and df-autoregressive long videos (default 64 300)")
    p.add_argument("--long-schemes", nargs="+", default=["hierarchy-2", "ar1", "df-autoregressive"],
                   choices=["hierarchy-2", "ar1", "df-autoregressive", "autoregressive"],
                   help="long-video schemes (default: hierarchy-2 ar1 df-autoregressive; ar1 = autoregressive with "
                        "one new frame per stage)")
    p.add_argument("--df-steps", type=int, default=None,
                   help="steps per frame of df-autoregressive and of autoregressive with step size 1 (default "
                        "--steps // 4: as many network evaluations per frame as hierarchy-2 with K = 8, which "
                        "generates 4 frames per stage)")
    p.add_argument("--device", default="cpu", help="torch device for training and sampling (default cpu)")
    p.add_argument("--out", default="runs/bench_quality", help="output folder (default runs/bench_quality)")
    p.add_argument("--no-progress", action="store_true", help="no sampling progress bars")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = dict(num_videos=args.num_videos, steps=args.steps)
    ckpt = Path(args.ckpt) if args.ckpt else train(ROOT / args.config, args.budget_min, out / "train", args.device)
    sections = [
        ("prediction (given 8, predict 8)", dict(task="prediction", baselines=["all"], **common)),
        ("interpolation (given 0 and 15)", dict(task="interpolation", baselines=["all"], **common)),
    ]
    few = dict(num_videos=args.num_videos, steps=args.df_steps or max(1, args.steps // 4))
    long_sections = {  # name -> (label suffix, EvalConfig settings), each at every --long-lengths
        "hierarchy-2": ("hierarchy-2", dict(scheme="hierarchy-2", baselines=["all"], **common)),
        "ar1": ("autoregressive step 1", dict(scheme="autoregressive", step_size=1, **few)),
        "df-autoregressive": ("df-autoregressive", dict(scheme="df-autoregressive", **few)),
        "autoregressive": ("autoregressive", dict(scheme="autoregressive", **common)),
    }
    for name in args.long_schemes:
        label, settings = long_sections[name]
        sections += [(f"long {n}, {label}", dict(task="long", length=n, **settings)) for n in args.long_lengths]
    results = evaluate(ckpt, sections, out, args.device, not args.no_progress)
    notes = [f"checkpoint {ckpt} ({trained_steps(ckpt)} steps)"]
    t2v = ROOT / args.t2v_config
    if args.no_t2v:
        notes.append("text-to-video skipped (--no-t2v)")
    elif args.t2v_ckpt or t2v.is_file():
        t2v_ckpt = Path(args.t2v_ckpt) if args.t2v_ckpt else train(t2v, args.budget_min, out / "train_t2v", args.device)
        settings = dict(task="text", baselines=["all"], num_videos=args.num_videos, steps=args.t2v_steps,
                        guidance=args.guidance)
        results += evaluate(t2v_ckpt, [("text-to-video", settings)], out, args.device, not args.no_progress)
        notes.append(f"text-to-video checkpoint {t2v_ckpt} ({trained_steps(t2v_ckpt)} steps)")
    else:
        notes.append(f"text-to-video skipped: {args.t2v_config} does not exist")
    text = table(results) + "\nTargets:\n" + "\n".join(targets(results)) + "\n\n" + "\n".join(notes) + "\n"
    print(text)
    from vidiff.io import write_json_atomic, write_text_atomic

    write_text_atomic(out / "bench.md", text)
    write_json_atomic(out / "bench.json", {label: report for label, report in results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
