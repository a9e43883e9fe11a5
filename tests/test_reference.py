"""The shipped reference model (vidiff/assets/shapes_reference.safetensors): end-to-end quality on CPU.

The model is configs/shapes/tiny.yaml trained by `scripts/train_reference.sh gpu` (batch 128, 1,084 steps on one
GPU) and exported with `vidiff export` (docs/benchmarks.md, "Quality on a GPU"). These tests sample from it as a
user would and assert Shapes-world scores far above what an untrained or context-blind model gets (blobs:
persistence ~0.01-0.05, miss rate ~0.4-0.5, centre error far above copy-last). It continues clips better than
copying the last frame at every horizon, keeps its objects through long videos made one frame per stage and
through interpolation from both ends; its hierarchy-2 videos keep the objects in about a third of the frames
(far keyframes are the open problem; docs/benchmarks.md).
"""

from __future__ import annotations

import pytest
import torch

from vidiff.assets import REFERENCE
from vidiff.pipelines import load_sampling_model
from vidiff.evaluate import EvalConfig, checkpoint_world_settings, evaluate


@pytest.fixture(scope="module")
def reference():
    assert REFERENCE.is_file(), f"the reference model {REFERENCE} is missing (see docs/benchmarks.md)"
    torch.manual_seed(0)
    model = load_sampling_model(str(REFERENCE))
    return model, checkpoint_world_settings(REFERENCE, model.image_shape[1])


def _run(reference, **kwargs):
    model, world = reference
    kwargs = {"steps": 20, **kwargs}
    report, _ = evaluate(model, world, EvalConfig(progress=False, num_videos=4, **kwargs))
    return report["results"]


def test_reference_continues_clips_better_than_copying_the_last_frame(reference):
    """Measured on these 4 videos: context use 6.4 / 4.0, persistence 1.0, miss rate 0, h = 8 error 5.2 against
    copy-last 7.5 px."""
    res = _run(reference, task="prediction", baselines=["copy-last"])
    model, copy = res["model"], res["copy-last"]
    assert model["context_use t/T=0.95"] > 3.0, "the observed frames steer the prediction (copy-last: 2.11)"
    assert model["context_use t/T=0.8"] > 4.0
    assert model["persistence"] > 0.8, "the given objects survive (a context-blind model: ~0.01)"
    assert model["miss_rate"] < 0.05, "objects are drawn in the predicted frames (blobs: ~0.4)"
    ahead, baseline = model["centre_error_per_step"], copy["centre_error_per_step"]
    assert len(ahead) == 8 and all(m < b for m, b in zip(ahead, baseline)), (ahead, baseline)  # every horizon


def test_reference_keeps_its_objects_through_a_long_video(reference):
    """32 frames continued from 8, one new frame per stage, 5 trailing DDIM steps (the demo's scheme): measured
    persistence 1.0, miss rate 0 and motion consistency 0.97; blobs score ~0.05, ~0.5 and ~0.4."""
    res = _run(reference, task="long", scheme="autoregressive", step_size=1, length=32, steps=5)["model"]
    assert res["persistence"] > 0.8 and res["miss_rate"] < 0.1, res
    assert res["motion_consistency"] > 0.8, res


def test_reference_interpolates_from_both_ends_without_losing_objects(reference):
    """Frames 1-14 between given frames 0 and 15 with the default scheme (interpolate-inward, 2 per stage):
    measured persistence 0.98 and miss rate 0; coarse-to-fine ``interpolate`` gave 0.49 and 0.17 (8 videos)."""
    res = _run(reference, task="interpolation")["model"]
    assert res["persistence"] > 0.8 and res["miss_rate"] < 0.1, res


def test_reference_hierarchy_2_is_above_the_blob_level(reference):
    """32 frames continued from 8 with FDM's hierarchy-2 (keyframes up to 24 frames from the context first):
    measured persistence 0.37 and miss rate 0.42; blobs score ~0.03 and ~0.5. The issue's target is 0.8."""
    res = _run(reference, task="long", scheme="hierarchy-2", length=32)["model"]
    assert res["persistence"] > 0.2 and res["miss_rate"] < 0.5, res


def test_demo_pretrained_samples_the_gallery_without_training(tmp_path, capsys):
    from vidiff.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--pretrained", "--length", "24", "--steps", "3", "--out", str(out)]) == 0
    videos = sorted(p.name for p in (out / "long_video").glob("video_*.mp4"))
    assert videos == ["video_000.mp4", "video_001.mp4"] and (out / "long_video" / "index.html").is_file()
    assert not (out / "checkpoints").exists(), "no training"
    assert str(REFERENCE) in capsys.readouterr().out
