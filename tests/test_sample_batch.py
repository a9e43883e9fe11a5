"""scripts/sample_batch.py: config validation and a tiny batch of two runs."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml


ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("sample_batch", ROOT / "scripts" / "sample_batch.py")
sample_batch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sample_batch)


def _write(tmp_path, config):
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_example_config_is_valid():
    for path in sorted((ROOT / "configs" / "sample").glob("*.yaml")):
        runs = sample_batch.build_runs(sample_batch.load_config(path))
        assert runs and all(args.ckpt and args.out for _, args in runs)


def test_runs_merge_defaults_and_overrides(tmp_path):
    config = {"out_root": str(tmp_path / "o"), "defaults": {"ckpt": "m.ckpt", "num-videos": 2, "steps": 5},
              "runs": [{"name": "a", "scheme": "hierarchy-3"}, {"name": "b", "steps": 7}]}
    runs = dict(sample_batch.build_runs(sample_batch.load_config(_write(tmp_path, config)), resume=True))
    assert runs["a"].scheme == "hierarchy-3" and runs["a"].steps == 5 and runs["a"].num_videos == 2
    assert runs["b"].steps == 7 and runs["b"].resume and runs["b"].out == str(tmp_path / "o" / "b")


@pytest.mark.parametrize(
    "config, match",
    [
        ({"defaults": {"ckpt": "m"}, "runs": [{"name": "a", "stepz": 3}]}, "stepz"),
        ({"defaults": {}, "runs": [{"name": "a"}]}, "ckpt"),
        ({"defaults": {"ckpt": "m"}, "runs": [{"name": "a"}, {"name": "a"}]}, "repeated"),
        ({"runs": []}, "runs"),
        ({"runs": [{"name": "a"}], "extra": 1}, "extra"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, config, match):
    with pytest.raises(ValueError, match=match):
        sample_batch.build_runs(sample_batch.load_config(_write(tmp_path, config)))
    assert sample_batch.main([str(_write(tmp_path, config)), "--dry-run"]) == 2


def test_batch_of_two_runs(tmp_path):


    from vidiff.lit import VideoDiffusion
    from vidiff.nn.unet import SpaceTimeUNet

    net = SpaceTimeUNet(in_channels=3, model_channels=8, channel_mult=[1], num_res_blocks=1, attention_resolutions=[],
                        num_heads=1, norm_groups=4)
    model = VideoDiffusion(net=net, image_size=8, channels=3, max_frames=8, num_timesteps=100, ema_decay=None)
    ckpt = tmp_path / "m.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, ckpt)
    config = {"out_root": str(tmp_path / "o"),
              "defaults": {"ckpt": str(ckpt), "length": 16, "steps": 1, "num_videos": 1, "no_progress": True},
              "runs": [{"name": "h2", "scheme": "hierarchy-2"}, {"name": "ar", "scheme": "autoregressive"}]}
    assert sample_batch.main([str(_write(tmp_path, config))]) == 0
    for name in ("h2", "ar"):
        assert (tmp_path / "o" / name / "video_000.mp4").is_file()
        assert (tmp_path / "o" / name / "index.html").is_file()
    runs = json.loads((tmp_path / "o" / "runs.json").read_text())
    assert runs["ar"]["scheme"] == "autoregressive"
    assert 'href="h2/index.html"' in (tmp_path / "o" / "index.html").read_text()
