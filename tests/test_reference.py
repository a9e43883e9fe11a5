"""The shipped reference model (vidiff/assets/shapes_reference.safetensors): end-to-end quality on CPU.

The model is configs/shapes/tiny.yaml trained by scripts/train_reference.sh and exported with `vidiff export`
(docs/benchmarks.md, "Reference model"). These tests sample from it as a user would and assert Shapes-world
scores far above what an untrained or context-blind model gets (blobs: persistence ~0.01, miss rate ~0.4).
"""

from __future__ import annotations

import pytest
import torch

from vidiff.assets import REFERENCE
from vidiff.commands.sample import load_sampling_model
from vidiff.evaluate import EvalConfig, checkpoint_world_settings, evaluate


@pytest.fixture(scope="module")
def reference():
    assert REFERENCE.is_file(), f"the reference model {REFERENCE} is missing (see docs/benchmarks.md)"
    torch.manual_seed(0)
    model = load_sampling_model(str(REFERENCE))
    return model, checkpoint_world_settings(REFERENCE, model.image_shape[1])


def _run(reference, **kwargs):
    model, world = reference
    report, _ = evaluate(model, world, EvalConfig(progress=False, num_videos=4, steps=10, **kwargs))
    return report["results"]


def test_reference_continues_clips_better_than_copying_the_last_frame(reference):
    res = _run(reference, task="prediction", baselines=["copy-last"])
    model, copy = res["model"], res["copy-last"]
    assert model["context_use t/T=0.95"] > 1.5, "the observed frames steer the prediction"
    assert model["persistence"] > 0.5 and model["miss_rate"] < 0.2
    assert model["centre_error"] < copy["centre_error"]


def test_reference_hierarchical_long_videos_keep_their_objects(reference):
    res = _run(reference, task="long", scheme="hierarchy-2", length=48)
    model = res["model"]
    assert model["persistence"] > 0.5 and model["miss_rate"] < 0.2, model
