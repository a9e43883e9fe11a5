"""Long videos by every scheme at equal network evaluations per generated frame (issue 15's comparison).

    python scripts/bench_long_schemes.py --length 300 --num-videos 8              # the reference model, CPU
    python scripts/bench_long_schemes.py --ckpt last.ckpt --length 300 --device cuda --evals-per-frame 10
    python scripts/bench_long_schemes.py --length 16 --num-videos 1               # smoke test: seconds

Each video continues the first ``--num-observed`` frames of a held-out Shapes-world clip (the ground truth and
scores of ``vidiff evaluate``'s long task: :mod:`vidiff.evaluate.truth`, :func:`vidiff.evaluate.scoring.
score_videos`) to ``--length`` frames. Every scheme gets about ``--evals-per-frame`` (E) network evaluations
per generated frame (T' = length - num_observed, K = the model's window):

=====================  =====================================================  ==========================
scheme                 settings                                               evaluations per video
=====================  =====================================================  ==========================
autoregressive         one new frame per stage, E DDIM steps                  E * T'
hierarchy-2            K // 2 frames per stage, steps = E * T' / stages       ~ E * T'
fifo                   n = E partitions (E * K levels)                        E * (T' + K - 1)
rolling                E * K levels                                           ~ E * T' + E * K
df-autoregressive      E levels a frame, chunks of K // 2                     E * T'
df-autoregressive+hg   E // 2 levels, history guidance (2 calls a window)     ~ E * T'
df-pyramid             E * c - c + 1 levels, chunks of c = K // 2             ~ E * T'
hierarchy-2+fifo       keyframes every min(2K, T') >= K by hierarchy-2,       ~ E * T'
                       fifo fill with E - 1 partitions
=====================  =====================================================  ==========================

Counted evaluations (network calls x items, per video) are printed beside the scores: persistence, miss rate,
objects per frame (detected, mean over generated frames; the ground truth's in its row), motion consistency,
wall seconds and peak memory (CPU: the peak resident set of a spawned child that runs only that scheme, so it
includes the loaded model and torch; CUDA: ``torch.cuda.max_memory_allocated``). Prints a markdown table;
``--out`` also writes it and the raw rows as JSON.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
SCHEMES = ("autoregressive", "hierarchy-2", "fifo", "rolling", "df-autoregressive", "df-autoregressive+hg",
           "df-pyramid", "hierarchy-2+fifo")
COLUMNS = ("scheme", "settings", "evaluations / video", "evaluations / frame", "persistence", "miss rate",
           "objects / frame", "motion consistency", "wall s", "peak memory MB")


@dataclass
class Run:
    """One row: a scheme name and the keyword arguments of ``VideoPipeline.generate``."""

    label: str
    scheme: str
    options: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options.items())


def runs(names: list[str], k: int, generated: int, evals: int, hg_scale: float, length: int,
         num_observed: int, num_timesteps: int) -> list[Run]:
    """The settings of each scheme at about ``evals`` evaluations per generated frame (module docstring)."""
    from vidiff.pipelines.video import make_plan

    c = max(1, k // 2)
    out = []
    for name in names:
        if name == "autoregressive":
            out.append(Run(name, name, dict(step_size=1, steps=evals)))
        elif name == "hierarchy-2":
            stages = make_plan(name, length=length, max_frames=k, num_timesteps=num_timesteps,
                               given=range(num_observed))
            out.append(Run(name, name, dict(steps=max(1, round(evals * generated / len(stages))))))
        elif name == "fifo":
            out.append(Run(name, name, dict(partitions=evals)))
        elif name == "rolling":
            out.append(Run(name, name, dict(steps=min(num_timesteps, evals * k))))
        elif name == "df-autoregressive":
            out.append(Run(name, name, dict(steps=evals, step_size=c)))
        elif name == "df-autoregressive+hg":
            out.append(Run(name, "df-autoregressive",
                           dict(steps=max(1, evals // 2), step_size=c, history_guidance=hg_scale)))
        elif name == "df-pyramid":
            out.append(Run(name, name, dict(steps=max(1, evals * c - c + 1), step_size=c)))
        elif name == "hierarchy-2+fifo":
            spacing = max(k, min(2 * k, generated))  # a keyframe even in short videos
            fill = max(1, evals - 1)
            plan = make_plan(name, length=length, max_frames=k, num_timesteps=num_timesteps, steps=1,
                             given=range(num_observed), keyframe_spacing=spacing, partitions=fill)
            steps = max(1, round((evals * generated - plan.fill.evaluations) / max(len(plan.stages), 1)))
            out.append(Run(name, name, dict(keyframe_spacing=spacing, partitions=fill, steps=steps)))
        else:
            raise ValueError(f"--schemes: unknown scheme {name!r}; valid: {', '.join(SCHEMES)}")
    return out


class Counting(torch.nn.Module):
    """Wraps a net and counts its evaluations (items of every forward batch)."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.inner, self.count = net, 0

    def forward(self, x, *args, **kwargs):
        self.count += x.shape[0]
        return self.inner(x, *args, **kwargs)


def objects_per_frame(videos: torch.Tensor) -> float:
    """Mean number of detected objects per frame of ``videos`` ``(n, t, 3, h, w)``."""
    from vidiff.evaluate.scoring import detect_many

    counts = [len(frame) for det in detect_many(videos) for frame in det.frames]
    return sum(counts) / max(len(counts), 1)


def score(videos: torch.Tensor, truth: Any, spec: Any) -> dict[str, float]:
    from vidiff.evaluate.scoring import score_videos

    s = score_videos(videos, truth, spec, pixels=False)
    return {"persistence": s["persistence"], "miss rate": s["miss_rate"],
            "objects / frame": objects_per_frame(videos[:, list(spec.scored)]),
            "motion consistency": s["motion_consistency"]}


def run_one(pipe: Any, run: Run, truth: Any, spec: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Generate and score one scheme's videos; the row of the table."""
    device = torch.device(args.device)
    counter = Counting(pipe.model.net)
    net, pipe.model.net = pipe.model.net, counter
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    given = truth.videos[:, list(spec.given)]
    start = time.perf_counter()
    try:
        videos = pipe.generate(length=spec.length, scheme=run.scheme, seed=args.seed, num_videos=len(truth),
                               given=given, batch_budget=args.batch_budget, progress=not args.no_progress,
                               **run.options)
    finally:
        pipe.model.net = net
    wall = time.perf_counter() - start
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    per_video = counter.count / len(truth)
    return {"scheme": run.label, "settings": run.settings(), "evaluations / video": round(per_video),
            "evaluations / frame": per_video / len(spec.scored), **score(videos.float().cpu(), truth, spec),
            "wall s": wall, "peak memory MB": peak}


def _child(conn, pipe, run, truth, spec, args) -> None:
    try:
        conn.send(("ok", run_one(pipe, run, truth, spec, args)))
    except BaseException as err:  # noqa: BLE001 - reported by the parent
        conn.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


def run_isolated(pipe: Any, run: Run, truth: Any, spec: Any, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`run_one` in a child process (CPU), so its peak resident memory is this scheme's alone. The child
    is spawned, not forked: a child forked after torch's OpenMP threads ran can hang in its first parallel op."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, pipe, run, truth, spec, args))
    proc.start()
    child.close()
    status, value = parent.recv()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"{run.label}: {value}")
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=None,
                   help="checkpoint or weights file (default: the shipped reference model)")
    p.add_argument("--length", type=int, default=300, help="frames per video (default 300)")
    p.add_argument("--num-videos", type=int, default=4, help="held-out clips continued (default 4)")
    p.add_argument("--num-observed", type=int, default=8, help="ground-truth frames given (default 8)")
    p.add_argument("--evals-per-frame", type=int, default=5,
                   help="E: network evaluations per generated frame for every scheme (default 5)")
    p.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=SCHEMES,
                   help="schemes to run (default all)")
    p.add_argument("--history-guidance", type=float, default=2.0,
                   help="s of df-autoregressive+hg (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-budget", type=int, default=16, help="items per forward pass (default 16)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-fork", action="store_true",
                   help="run every scheme in this process (CPU peak memory is then the process's so far)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default=None, help="also write bench_long_schemes.md / .json to this folder")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for name in ("length", "num_videos", "num_observed", "evals_per_frame", "batch_budget"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(args, name)}")
    import vidiff
    from vidiff.assets import REFERENCE
    from vidiff.evaluate.tasks import task_spec
    from vidiff.evaluate.truth import checkpoint_world_settings, eval_world, ground_truth

    ckpt = args.ckpt or str(REFERENCE)
    pipe = vidiff.load(ckpt, device=args.device)
    model = pipe.model
    k = model.max_frames
    if args.length <= args.num_observed or args.length < k:
        p.error(f"--length: expected more than --num-observed={args.num_observed} and at least K={k} frames, "
                f"got {args.length}")
    spec = task_spec("long", k, num_observed=args.num_observed, length=args.length)
    world = checkpoint_world_settings(ckpt, model.image_shape[-1])
    truth = ground_truth(eval_world(world, args.num_videos, spec.length), spec.length)
    plan = runs(args.schemes, k, len(spec.scored), args.evals_per_frame, args.history_guidance, spec.length,
                args.num_observed, model.schedule.num_timesteps)
    rows = [{"scheme": "ground truth", "settings": "", **score(truth.videos, truth, spec)}]
    isolate = torch.device(args.device).type == "cpu" and not args.no_fork
    for run in plan:
        row = (run_isolated if isolate else run_one)(pipe, run, truth, spec, args)
        rows.append(row)
        print(f"{run.label}: done in {row['wall s']:.1f} s", file=sys.stderr)
    head = (f"{ckpt}: {args.num_videos} videos of {args.length} frames continuing {args.num_observed} given, "
            f"E = {args.evals_per_frame} evaluations per generated frame, K = {k}, seed {args.seed}, "
            f"{args.device}")
    text = head + "\n\n" + table(rows) + "\n"
    print(text)
    if args.out:
        from vidiff.io import write_json_atomic, write_text_atomic

        out = Path(args.out)
        write_text_atomic(out / "bench_long_schemes.md", text)
        write_json_atomic(out / "bench_long_schemes.json", {"settings": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
