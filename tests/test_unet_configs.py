"""Every configs/model/*.yaml builds a SpaceTimeUNet of the advertised size that runs on a tiny video."""

from pathlib import Path

import pytest
import torch
import yaml

from vidiff.nn import SpaceTimeUNet

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
# file -> (min, max) parameter count
SIZES = {"unet_3m.yaml": (3.0e6, 3.4e6), "unet_tiny.yaml": (0.3e6, 0.6e6)}


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_model_config_builds_and_runs(name):
    cfg = yaml.safe_load((CONFIGS / name).read_text())
    assert cfg["class_path"] == "vidiff.nn.SpaceTimeUNet"
    model = SpaceTimeUNet(**cfg["init_args"])
    n = sum(p.numel() for p in model.parameters())
    lo, hi = SIZES.get(name, (0, float("inf")))
    assert lo <= n <= hi, f"{name}: {n:,} parameters"
    x = torch.randn(1, 3, model.in_channels, 32, 32)
    out = model(x, torch.tensor([5]), torch.tensor([[0, 4, 9]]), torch.tensor([[True, False, False]]))
    assert out.shape == x.shape
    # freshly initialised: the zero-init output conv makes the prediction exactly zero
    assert torch.count_nonzero(out) == 0
