"""The subcommands agree: one name per idea (old spellings still accepted, not shown), one default number of
steps shown in --help, choices listed for --sampler and --scheme, --device auto by default."""

import pytest
import torch

from vidiff.cli import main
from vidiff.commands.options import resolve_device
from vidiff.diffusion import SAMPLERS
from vidiff.pipelines import DEFAULT_STEPS
from vidiff.schemes import SCHEMES
from vidiff.schemes.levels import LEVEL_SCHEMES

GENERATORS = ("sample", "evaluate", "txt2img")


def _help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # unwrapped


@pytest.mark.parametrize("command", [*GENERATORS, "scheme", "export"])
def test_help_shows_one_spelling_per_idea(command, capsys):
    text = _help(command, capsys)
    for old in ("--name", "--max-batch", "--ckpt-path", "--ckpt_path", "--guidance-scale"):
        assert old not in text
    if command != "scheme":
        assert "--ckpt CKPT" in text
    if command in GENERATORS:
        assert "--device DEVICE torch device: auto (default: cuda when a GPU is present, else cpu)" in text
        assert f"(default {DEFAULT_STEPS})" in text.split("--steps STEPS")[-1][:60]
        assert all(name in text.split("--sampler SAMPLER")[-1][:200] for name in SAMPLERS)
    if command in ("sample", "scheme"):
        listed = text.split("--scheme SCHEME")[-1][:400]
        assert all(name in listed for name in [*SCHEMES, *LEVEL_SCHEMES])
    if command == "scheme":
        assert f"default {DEFAULT_STEPS})" in text.split("--steps STEPS")[-1][:60]


def test_old_spellings_and_underscores_still_work(tmp_path, capsys):
    assert main(["scheme", "--name", "hierarchy-2", "--length", "20", "--max_frames", "8",
                 "--max-batch", "2"]) == 0
    assert "waves (batched passes)" in capsys.readouterr().out
    assert main(["scheme", "--scheme", "hierarchy-2", "--length=20", "--max-frames=8",
                 "--batch_budget=0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vidiff scheme: --batch-budget: expected >= 1, got 0"]
    missing = tmp_path / "none.ckpt"
    with pytest.raises(SystemExit, match=f"vidiff export: --ckpt: no checkpoint file at '{missing}'"):
        main(["export", "--ckpt_path", str(missing), "--out", str(tmp_path / "w.safetensors")])


def test_device_auto_picks_the_gpu_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cpu") == "cpu"


def test_validation_samples_take_guidance_and_the_old_guidance_scale():
    from vidiff.lit.callbacks import SampleVideos

    assert SampleVideos().steps == DEFAULT_STEPS
    assert SampleVideos(guidance=3.0).guidance == 3.0 and SampleVideos(guidance_scale=2.0).guidance == 2.0
    with pytest.raises(ValueError, match="samples.guidance_scale: the old name of samples.guidance"):
        SampleVideos(guidance=3.0, guidance_scale=2.0)
