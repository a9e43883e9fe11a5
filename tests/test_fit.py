"""`vidiff fit` through LightningCLI: configs parse, a tiny run learns nothing wrong, errors name their keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from lit_helpers import REPO, tiny_cli_args

from vidiff.cli import main
from vidiff.lit import load_model
from vidiff.lit.checkpoint import AtomicCheckpointIO
from vidiff.io.errors import ConfigError
from vidiff.lit.cli import run_lightning_cli

CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


def _kind(path: Path) -> str:
    """``run`` (a `vidiff fit` config), ``net`` (a `{class_path, init_args}` denoiser) or ``other``."""
    spec = yaml.safe_load(path.read_text()) or {}
    if "model" in spec and "trainer" in spec:
        return "run"
    if path.parent.name == "model" and set(spec) <= {"class_path", "init_args"}:
        return "net"
    return "other"


RUN_CONFIGS = [p for p in CONFIGS if _kind(p) == "run"]
NET_CONFIGS = [p for p in CONFIGS if _kind(p) == "net"]


def test_the_shipped_training_configs_exist():
    names = {str(p.relative_to(REPO)) for p in RUN_CONFIGS}
    assert {
        "configs/shapes/tiny.yaml",
        "configs/shapes/base.yaml",
        "configs/video_folder/example.yaml",
    } <= names


@pytest.mark.parametrize("config", RUN_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_training_config_prints(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_lightning_cli(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "class_path: vidiff." in out and "default_root_dir: runs/" in out


@pytest.mark.parametrize("config", NET_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_net_config_plugs_into_the_model(config, capsys):
    """configs/model/*.yaml are `{class_path, init_args}` nets usable as `--model.init_args.net FILE`."""
    with pytest.raises(SystemExit):
        run_lightning_cli(
            [
                "fit",
                "--config",
                str(REPO / "configs/shapes/tiny.yaml"),
                f"--model.init_args.net={config}",
                "--print_config",
            ]
        )
    assert "SpaceTimeUNet" in capsys.readouterr().out


def test_fast_dev_run_on_tiny_config(tmp_path):
    cli = run_lightning_cli(["fit", *tiny_cli_args(tmp_path), "--trainer.fast_dev_run", "true"])
    assert cli.trainer.global_step == 1
    assert cli.model.ema is not None and int(cli.model.ema.num_updates) == 1
    assert isinstance(
        cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO
    )  # every checkpoint save is atomic


def test_fit_writes_checkpoints_samples_and_reruns_into_same_folder(tmp_path, capsys):
    args = ["fit", *tiny_cli_args(tmp_path, max_steps=4, val_every=2)]
    assert main(args) == 0
    out = capsys.readouterr().out
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert last.is_file() and f"last checkpoint: {last}" in out and "training loss:" in out
    assert "context use:     t/T=0.3: " in out and "t/T=0.95: " in out  # the diagnostic, in the summary
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_000002", "step_000004"]
    assert (tmp_path / "samples" / "step_000004" / "sample_00.mp4").stat().st_size > 0
    assert list((tmp_path / "checkpoints").glob("best-*.ckpt"))
    model = load_model(last)
    assert model.image_size == 8 and model.max_frames == 4 and int(model.ema.num_updates) == 4
    # a second run into the same folder: no crash, a new log version; and --ckpt_path last resumes
    cli = run_lightning_cli(
        [*args[:1], *tiny_cli_args(tmp_path, max_steps=6, val_every=2), "--ckpt_path", "last"]
    )
    assert cli.trainer.global_step == 6
    logged = cli.trainer.callback_metrics  # the context-use ratios are logged (TensorBoard) at every validation
    assert {f"context_use/t{v:.2f}" for v in (0.3, 0.6, 0.8, 0.95)} <= set(logged)
    assert all(float(logged[f"context_use/t{v:.2f}"]) > 0 for v in (0.3, 0.6, 0.8, 0.95))
    assert sorted(p.name for p in (tmp_path / "lightning_logs").iterdir()) == ["version_0", "version_1"]
    assert int(load_model(last).ema.num_updates) == 6
    validated = run_lightning_cli(["validate", *tiny_cli_args(tmp_path), "--ckpt_path", str(last)])
    assert torch.isfinite(validated.trainer.callback_metrics["val/loss"])


def test_mistyped_key_fails_with_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="imag_size: .* did you mean `image_size`"):
        run_lightning_cli(["fit", *tiny_cli_args(tmp_path), "--model.init_args.imag_size", "8"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  init_args:\n    ema_dacay: 0.9\n")
    with pytest.raises(ConfigError, match="ema_dacay: .* did you mean `ema_decay`"):
        run_lightning_cli(["fit", *tiny_cli_args(tmp_path), "--config", str(bad)])


@pytest.mark.parametrize(
    "override, message",
    [
        (["--model.init_args.image_size", "-8"], "image_size: expected a positive integer, got -8"),
        (
            ["--data.init_args.max_frames", "32", "--model.init_args.max_frames", "32"],
            "max_frames: expected at most",
        ),
        (
            ["--data.init_args.tasks", "{prediction: 1.0, teleport: 1.0}"],
            "tasks: unknown task name 'teleport'",
        ),
        (
            ["--data.init_args.image_size", "16"],
            "model.init_args.image_size is 8 but data.init_args.image_size is 16",
        ),
    ],
)
def test_bad_config_values_name_the_key(tmp_path, override, message):
    with pytest.raises(ValueError) as err:
        run_lightning_cli([*tiny_cli_args(tmp_path), *override], run=False)
    assert message in str(err.value)
