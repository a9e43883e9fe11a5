"""End-to-end time and Shapes scores of long videos under several sampling settings, side by side in one run.

    python scripts/bench_long_speed.py --ckpt runs/shapes_tiny/checkpoints/last.ckpt \
        --setting "old: --sampler ddim --steps 50 --spacing leading --no-inference-mode" \
        --setting "new: --sampler ddim --steps 10"

Each setting is one `vidiff evaluate --task long` command (``--length`` frames continuing ``--num-observed``
given frames of ``--num-videos`` held-out Shapes videos, ``--scheme``), timed from start to exit, so loading,
sampling, decoding and scoring all count; the extra flags are the setting's. ``--rounds 2`` runs the list twice,
alternating, and keeps each setting's faster run. Prints one markdown table with seconds, the ratio to the
first setting and the scores (persistence, miss rate, motion consistency); figures for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(ckpt: str, flags: list[str], args: argparse.Namespace, out: Path) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "vidiff", "evaluate", "--ckpt", ckpt, "--task", "long", "--length",
           str(args.length), "--scheme", args.scheme, "--num-videos", str(args.num_videos), "--num-observed",
           str(args.num_observed), "--no-progress", "--out", str(out), *flags]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    report = json.loads((out / "report.json").read_text())
    return seconds, report["results"]["model"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--setting", action="append", required=True,
                        help="'label: extra vidiff evaluate flags' (repeat; the first is the reference)")
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--scheme", default="hierarchy-2")
    parser.add_argument("--num-videos", type=int, default=4)
    parser.add_argument("--num-observed", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    settings = []
    for text in args.setting:
        label, _, flags = text.partition(":")
        settings.append((label.strip(), shlex.split(flags)))
    best: dict[str, tuple[float, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, (label, flags) in enumerate(settings):
                seconds, scores = run(args.ckpt, flags, args, Path(tmp) / f"{r}_{i}")
                print(f"round {r}: {label}: {seconds:.1f} s", flush=True)
                if label not in best or seconds < best[label][0]:
                    best[label] = (seconds, scores)
    base = best[settings[0][0]][0]
    print(f"\n{args.ckpt}: {args.num_videos} videos x {args.length} frames, {args.scheme}, given "
          f"{args.num_observed}; best of {args.rounds} round(s)")
    print("| setting | flags | seconds | speed-up | persistence | miss rate | motion |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for label, flags in settings:
        seconds, s = best[label]
        print(f"| {label} | `{' '.join(flags)}` | {seconds:.1f} | {base / seconds:.2f}x | {s['persistence']:.3f} "
              f"| {s['miss_rate']:.3f} | {s['motion_consistency']:.3f} |")


if __name__ == "__main__":
    main()
