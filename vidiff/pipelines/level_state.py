"""Resumable state of every executor: stage plans (:mod:`vidiff.pipelines.long_video`, after each wave),
per-frame plans (:func:`vidiff.pipelines.level_video.run_level_plan`, after a global step) and combined ones.

The whole video state ``x`` ``(n, T, ...)``, the next wave or step and (per-frame runs with ``eta > 0``) the
step-noise generators' states are saved atomically in ``state_dir`` as ``state.safetensors`` (+ a readable
``state.json``); ``kind`` tells the executors apart, so ``vidiff sample --resume`` and its checks treat all
alike: a global step of a per-frame plan is its wave (``next_wave`` = steps done). A run with other settings (plan, seed, videos, eta, guidance, given frames,
context) is refused by a signature; the batch budget may differ, it changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vidiff.io.atomic import atomic_path, write_json_atomic
from vidiff.io.errors import reading, writing

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
#: ``state.json``'s ``kind`` for a per-frame run's state
KIND = "per-frame steps"
#: ``kind`` of a stage plan's state (:mod:`vidiff.pipelines.long_video`)
STAGE_KIND = "stage waves"
ADVICE = "rerun with --overwrite instead of --resume to sample afresh"
#: ``kind`` of the keyframe phase of a combined run (:mod:`vidiff.pipelines.keyframe_video`)
KEYFRAME_KIND = "keyframe waves"


def digest(t: torch.Tensor | None) -> str | None:
    """A short sha256 of a tensor's values (None for None)."""
    if t is None:
        return None
    return hashlib.sha256(t.detach().cpu().float().contiguous().numpy().tobytes()).hexdigest()[:16]


def plan_digest(plan: Any) -> str:
    """A short sha256 of a level plan: its level matrix, windows, given prefix and history level."""
    h = hashlib.sha256(plan.levels.cpu().contiguous().numpy().tobytes())
    h.update(repr((plan.windows, plan.given, plan.history_level, plan.max_frames)).encode())
    return h.hexdigest()[:16]


def signature(**fields: Any) -> str:
    return json.dumps(fields, sort_keys=True, default=str)


@dataclass
class LevelState:
    """What a resumed run continues from: the state after ``next_step`` steps."""

    x: torch.Tensor
    next_step: int
    evaluations: int
    generators: list[torch.Tensor]
    waves_before: int = 0  # waves of an earlier phase (a combined run's keyframes), counted in state.json


def save_state(state_dir: Path, state: LevelState, sig: str, kind: str = KIND) -> None:
    """Write ``state`` atomically (the previous state stays intact until the new one is complete)."""
    from safetensors.torch import save_file

    path = state_dir / STATE_TENSORS
    kept = (f"the previous state in {path} is intact; free space and rerun with --resume" if path.is_file()
            else "no state was saved yet; free space and run again")
    tensors = {"frames": state.x.detach().cpu().contiguous()}
    tensors.update({f"generator_{v}": g.cpu().contiguous() for v, g in enumerate(state.generators)})
    meta = {"next_wave": str(state.next_step), "evaluations": str(state.evaluations), "signature": sig,
            "kind": kind}
    with atomic_path(path) as tmp, writing(path, kept):
        save_file(tensors, str(tmp), metadata=meta)
    with writing(state_dir / STATE_JSON, f"the state in {path} is saved; free space and rerun with --resume"):
        done = state.waves_before + state.next_step
        write_json_atomic(state_dir / STATE_JSON, {"next_wave": done, "kind": kind, "signature": json.loads(sig)})


def load_state(state_dir: Path, sig: str, generators: int, kind: str = KIND) -> LevelState | None:
    """The saved state of a run with signature ``sig`` (``kind``, ``generators`` step-noise generators), None
    when there is none; ValueError for another run's."""
    from safetensors import safe_open

    path = state_dir / STATE_TENSORS
    if not path.is_file():
        return None
    with reading(path, "sampling state", ADVICE), safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        same = (meta.get("signature") == sig and meta.get("kind", KIND) == kind
                and all(f"generator_{v}" in f.keys() for v in range(generators)))
        if not same:
            raise ValueError(f"resume: {path} was written by a run with other settings; "
                             "use the same settings (or another --out) to resume")
        x = f.get_tensor("frames")
        gens = [f.get_tensor(f"generator_{v}") for v in range(generators)]
    return LevelState(x, int(meta["next_wave"]), int(meta.get("evaluations", 0)), gens)


def saved_kind(state_dir: Path) -> str | None:
    """``state.json``'s ``kind`` in ``state_dir`` (:data:`KIND` for a per-frame run), None when absent."""
    try:
        return json.loads((state_dir / STATE_JSON).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def saved_frames(state_dir: Path) -> torch.Tensor:
    """The saved video state ``(n, T, ...)`` of ``state_dir``."""
    from safetensors import safe_open

    path = state_dir / STATE_TENSORS
    with reading(path, "sampling state", ADVICE), safe_open(str(path), framework="pt") as f:
        return f.get_tensor("frames")
