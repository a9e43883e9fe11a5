"""Evaluation on the Shapes world: tasks, ground truth, baselines, scores and reports (`vidiff evaluate`).

    from vidiff.evaluate import EvalConfig, evaluate, write_report
    report, videos = evaluate(model, world_settings(None, 32), EvalConfig("prediction", baselines=["all"]))
    write_report("eval/prediction", report)

See docs/evaluation.md for the tasks, the baselines and what every number means.
"""

from vidiff.evaluate.baselines import centre_error, copy_last, extrapolate_centres, linear_blend, noise_frames
from vidiff.evaluate.report import build_report, markdown_table, write_report
from vidiff.evaluate.runner import TRUTH, EvalConfig, baseline_videos, evaluate, generate
from vidiff.evaluate.scoring import PSNR_CAP, score_centres, score_videos
from vidiff.evaluate.tasks import (
    BASELINES,
    DEFAULT_SCHEMES,
    DEFAULT_STEP_SIZES,
    TASK_BASELINES,
    EVAL_TASKS,
    TaskSpec,
    resolve_baselines,
    task_spec,
)
from vidiff.evaluate.truth import GroundTruth, checkpoint_world_settings, eval_world, ground_truth, world_settings

__all__ = [
    "BASELINES",
    "DEFAULT_SCHEMES",
    "DEFAULT_STEP_SIZES",
    "EvalConfig",
    "GroundTruth",
    "PSNR_CAP",
    "EVAL_TASKS",
    "TASK_BASELINES",
    "TRUTH",
    "TaskSpec",
    "baseline_videos",
    "build_report",
    "centre_error",
    "checkpoint_world_settings",
    "copy_last",
    "eval_world",
    "evaluate",
    "extrapolate_centres",
    "generate",
    "ground_truth",
    "linear_blend",
    "markdown_table",
    "noise_frames",
    "resolve_baselines",
    "score_centres",
    "score_videos",
    "task_spec",
    "world_settings",
    "write_report",
]
