"""vidiff.evaluate: tasks, baselines against hand-computed values on tiny Shapes videos, scoring and reports."""

import json
import math

import numpy as np
import pytest
import torch

from vidiff.data.shapes import Scene, ShapesWorld
from vidiff.evaluate import (
    TRUTH,
    EvalConfig,
    baseline_videos,
    build_report,
    centre_error,
    copy_last,
    evaluate,
    ground_truth,
    linear_blend,
    markdown_table,
    noise_frames,
    resolve_baselines,
    score_centres,
    score_videos,
    task_spec,
    world_settings,
    write_report,
)
from vidiff.masks import FrameMaskSampler


class FixedWorld(ShapesWorld):
    """A Shapes world whose videos are given scenes (one per index)."""

    def __init__(self, scenes, image_size=32):
        super().__init__(num_videos=len(scenes), length=16, image_size=image_size,
                         sampler=FrameMaskSampler(2, tasks={"unconditional": 1.0}))
        self.scenes = scenes

    def scene(self, index):
        return self.scenes[index]


def _square(start, velocity, size=3.0, colour=0):
    """One square (colour code ``colour``); integer size and half-integer positions rasterise symmetrically, so
    its detected centre is exact."""
    return Scene(start=np.array([start], float), velocity=np.array([velocity], float), sizes=np.array([size]),
                 colors=np.array([colour]), shapes=np.array([1]))


PRED = task_spec("prediction", 8)  # given 0..7, scored 8..15


# ---------------------------------------------------------------------------------------------------- tasks
def test_task_specs():
    assert PRED.given == tuple(range(8)) and PRED.scored == tuple(range(8, 16)) and PRED.scheme == "autoregressive"
    interp = task_spec("interpolation", 8)
    assert interp.given == (0, 15) and interp.scored == tuple(range(1, 15)) and interp.scheme == "interpolate-inward"
    long = task_spec("long", 8, num_observed=4)
    assert long.length == 128 and long.given == (0, 1, 2, 3) and len(long.scored) == 124
    assert long.scheme == "hierarchy-2" and long.reference_colours
    text = task_spec("text", 8)
    assert text.given == () and text.scored == tuple(range(8)) and text.uses_caption and not text.reference_colours
    assert task_spec("unconditional", 6, length=20, scheme="hierarchy-2").length == 20


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(task="future"), "valid names: unconditional, prediction"),
        (dict(task="prediction", length=20), "length: the prediction task uses clips of num_observed"),
        (dict(task="long", length=8), "length: the long task needs more than num_observed=8"),
        (dict(task="prediction", horizon=0), "horizon: expected a positive integer"),
    ],
)
def test_task_spec_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        task_spec(max_frames=8, **kwargs)


def test_resolve_baselines():
    assert resolve_baselines("prediction", ["all"]) == ["copy-last", "linear", "noise"]
    assert resolve_baselines("long", ["noise", "all"]) == ["noise", "copy-last"]
    assert resolve_baselines("text", None) == []
    with pytest.raises(ValueError, match="baseline: 'linear' does not apply to the long task; valid names: copy-last"):
        resolve_baselines("long", ["linear"])


# ------------------------------------------------------------------------------------------------ baselines
def test_copy_last_error_is_distance_travelled():
    v = (1.0, 0.5)
    world = FixedWorld([_square((5.0, 12.5), v)])  # at frame 7: (12, 16), no wall before frame 15
    truth = ground_truth(world, 16)
    out = copy_last(truth.videos, PRED.given)
    assert torch.equal(out[:, 8:], truth.videos[:, 7:8].expand(-1, 8, -1, -1, -1))
    assert torch.equal(out[:, :8], truth.videos[:, :8])
    scores = score_videos(out, truth, PRED)
    step = math.hypot(*v)
    np.testing.assert_allclose(scores["centre_error_per_step"], [h * step for h in range(1, 9)], atol=1e-6)
    assert scores["miss_rate"] == 0 and scores["persistence"] == 1.0


def test_linear_extrapolation_exact_before_a_bounce():
    # x: 9 + 2t reaches the wall (32 - 3 = 29) at t = 10 and folds back: 27 at t = 11, 25 at t = 12, ...
    # video 0: a red square bouncing at h = 4; video 1: a blue one far from the walls
    world = FixedWorld([_square((9.0, 16.0), (2.0, 0.0)), _square((4.5, 4.0), (0.5, 1.0), colour=2)])
    truth = ground_truth(world, 16)
    predicted = baseline_videos("linear", PRED, truth)
    red = predicted[0]["red"]
    np.testing.assert_allclose(red[:, 0].numpy(), [9 + 2 * t for t in range(8, 16)], atol=1e-9)
    err, miss = centre_error(predicted[0], truth.centres[0][:, 8:], truth.colours[0])
    overshoot = [0, 0, 0, 4, 8, 12, 16, 20]  # |linear - folded| for the red square, h = 1..8
    np.testing.assert_allclose(err.numpy(), overshoot, atol=1e-5)
    assert miss.tolist() == [0.0] * 8
    err_blue, _ = centre_error(predicted[1], truth.centres[1][:, 8:], truth.colours[1])
    np.testing.assert_allclose(err_blue.numpy(), 0.0, atol=1e-5)
    scores = score_centres(predicted, truth, PRED)
    assert set(scores) == {"centre_error", "centre_error_per_step", "miss_rate", "miss_rate_per_step"}
    np.testing.assert_allclose(scores["centre_error_per_step"], [o / 2 for o in overshoot], atol=1e-5)


def test_centre_error_counts_missing_colours_as_misses():
    centres = torch.tensor([[[1.0, 1.0]], [[5.0, 5.0]]])  # (m=2, k=1, 2)
    err, miss = centre_error({"red": torch.tensor([[4.0, 5.0]])}, centres, ["red", "blue"])
    assert err.tolist() == [5.0] and miss.tolist() == [0.5]
    err, miss = centre_error({}, centres, ["red", "blue"])
    assert math.isnan(err[0]) and miss.tolist() == [1.0]


def test_linear_blend_and_noise():
    videos = torch.zeros(2, 5, 3, 4, 4)
    videos[:, 0], videos[:, 4] = -1.0, 1.0
    blend = linear_blend(videos, [0, 4])
    np.testing.assert_allclose(blend[0, :, 0, 0, 0].numpy(), [-1.0, -0.5, 0.0, 0.5, 1.0], atol=1e-6)
    held = linear_blend(videos, [1, 3])  # outside the keyframes: held
    assert torch.equal(held[:, 0], videos[:, 1]) and torch.equal(held[:, 4], videos[:, 3])
    noise = noise_frames(videos, [0, 4], torch.Generator().manual_seed(0))
    assert torch.equal(noise[:, [0, 4]], videos[:, [0, 4]])
    assert noise[:, 1:4].abs().max() <= 1 and noise[:, 1:4].std() > 0.5
    with pytest.raises(ValueError, match="given: this baseline needs at least one given frame"):
        copy_last(videos, [])
    with pytest.raises(ValueError, match=r"given: expected frame indices in \[0, 5\)"):
        linear_blend(videos, [0, 7])


# -------------------------------------------------------------------------------------------------- scoring
def test_ground_truth_scores_itself_well():
    world = FixedWorld([_square((5.0, 12.5), (1.0, 0.5)), _square((20.0, 20.0), (-1.0, 0.0), colour=3)])
    truth = ground_truth(world, 16)
    scores = score_videos(truth.videos, truth, PRED)
    assert scores["centre_error"] < 1e-6 and scores["persistence"] == 1.0 and scores["motion_consistency"] == 1.0
    assert scores["psnr"] == 60.0 and scores["ssim"] == pytest.approx(1.0)
    assert len(scores["psnr_per_step"]) == 8 and len(scores["ssim_per_step"]) == 8
    with pytest.raises(ValueError, match="videos: expected the ground truth's shape"):
        score_videos(truth.videos[:, :8], truth, PRED)


def test_evaluate_baselines_only_and_report(tmp_path):
    world = world_settings({"image_size": 64, "max_objects": 1, "seed": 5, "train_videos": 10}, 16)
    assert world["split_offset"] == 10 + 64 and world["image_size"] == 16
    report, videos = evaluate(None, world, EvalConfig("interpolation", num_videos=2, num_observed=2, horizon=4,
                                                      baselines=["all"]))
    assert report["methods"] == ["copy-last", "linear", "noise", TRUTH]
    assert report["spec"]["given"] == [0, 5] and report["spec"]["scored"] == [1, 2, 3, 4]
    assert videos["linear"].shape == videos[TRUTH].shape == (2, 6, 3, 16, 16)
    lin = report["results"]["linear"]
    assert {"centre_error_per_step", "psnr_per_step", "ssim_per_step", "persistence"} <= set(lin)
    assert report["results"]["noise"]["psnr"] < lin["psnr"]
    json_path, md_path = write_report(tmp_path / "r", report)
    assert json.loads(json_path.read_text())["task"] == "interpolation"
    assert "| metric | copy-last | linear | noise | ground truth |" in md_path.read_text()
    assert not [p for p in (tmp_path / "r").iterdir() if p.name not in ("report.json", "report.md")]
    with pytest.raises(ValueError, match="baseline: with no model, name at least one baseline"):
        evaluate(None, world, EvalConfig("prediction"))


def test_report_nan_to_null_and_table_rows():
    spec = task_spec("prediction", 8, num_observed=2, horizon=2)
    report = build_report(spec, {"a": {"centre_error": float("nan"), "centre_error_per_step": [1.0, float("inf")],
                                       "persistence": 0.5}}, {"seed": 0})
    assert report["results"]["a"]["centre_error"] is None and report["results"]["a"]["centre_error_per_step"][1] is None
    json.dumps(report, allow_nan=False)
    table = markdown_table(report)
    assert "| centre_error (lower better) | n/a |" in table and "centre_error h=1 | 1.000 |" in table
    assert "| persistence | 0.500 |" in table
