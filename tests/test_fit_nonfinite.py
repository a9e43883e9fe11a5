"""A NaN loss stops the run at once (or skips the step); weights, EMA and the last good checkpoint stay intact."""

from __future__ import annotations

import logging

import pytest
import torch
from pytorch_lightning.loggers import Logger
from lit_helpers import tiny_cli_args

from vidiff.lit import loss_guard

from vidiff.lit import load_model
from vidiff.lit.cli import run_lightning_cli

BAD_STEP = 3  # the 4th training step (global_step 3) gets a NaN loss; checkpoints were written at step 2


def _cli_with_nan(root, policy: str, *extra: str, bad=lambda step: step == BAD_STEP, factor=float("nan"),
                  max_steps: int = 5):
    cli = run_lightning_cli(
        [*tiny_cli_args(root, max_steps=max_steps, val_every=2), "--model.init_args.on_nonfinite", policy, *extra],
        run=False,
    )
    model = cli.model
    original = model.loss

    def loss(batch, net, *args, **kwargs):
        value = original(batch, net, *args, **kwargs)
        if model.training and bad(model.global_step):
            return value * factor
        return value

    model.loss = loss
    return cli


def _all_finite(module: torch.nn.Module) -> bool:
    return all(torch.isfinite(t).all() for t in module.state_dict().values() if t.is_floating_point())


def test_nan_loss_stops_the_run_and_keeps_the_last_checkpoint(tmp_path):
    cli = _cli_with_nan(tmp_path, "error")
    with pytest.raises(FloatingPointError, match=f"non-finite training loss .* global step {BAD_STEP}"):
        cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.trainer.global_step == BAD_STEP  # stopped within the bad step: no optimizer step taken
    assert _all_finite(cli.model) and int(cli.model.ema.num_updates) == BAD_STEP
    last = tmp_path / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    assert int(load_model(last).ema.num_updates) == 2


def test_nan_loss_skip_policy_skips_the_step(tmp_path):
    cli = _cli_with_nan(tmp_path, "skip")
    cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.trainer.global_step == 5
    assert _all_finite(cli.model)
    assert int(cli.model.ema.num_updates) == 4  # the skipped step does not update the EMA


class _Recorder(Logger):
    """Keeps every ``log_metrics`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int, dict]] = []

    name = "recorder"
    version = 0

    def log_hyperparams(self, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.rows.append((step, dict(metrics)))


def test_skipped_steps_log_no_stale_loss_and_are_summarised(tmp_path, caplog, capsys):
    cli = _cli_with_nan(tmp_path, "skip")
    recorder = _Recorder()
    cli.trainer.loggers = [*cli.trainer.loggers, recorder]
    with caplog.at_level(logging.INFO):
        cli.trainer.fit(cli.model, cli.datamodule)
    steps = [step for step, metrics in recorder.rows if "train/loss" in metrics]
    assert steps == [0, 1, 2, 4]  # nothing for the skipped step (Lightning would repeat step 2's value)
    assert "on_nonfinite=skip: 1 of 5 training steps skipped (1 non-finite, 0 loss spikes)" in caplog.text
    from vidiff.lit.cli import _report

    _report(cli)
    assert "skipped steps:   1 of 5 training steps skipped" in capsys.readouterr().out


def test_too_many_skips_in_a_row_stop_the_run(tmp_path):
    cli = _cli_with_nan(tmp_path, "skip", "--model.init_args.max_consecutive_skips", "3", bad=lambda s: s >= 2,
                        max_steps=8)
    with pytest.raises(FloatingPointError, match=r"^3 training steps in a row skipped \(non-finite training loss "
                       r"\(nan\) at global step 4, batch 4\): stopping.*max_consecutive_skips=3"):
        cli.trainer.fit(cli.model, cli.datamodule)
    assert _all_finite(cli.model) and int(cli.model.ema.num_updates) == 2
    last = tmp_path / "checkpoints" / "last.ckpt"  # written at step 4's validation, with step 2's weights
    assert int(load_model(last).ema.num_updates) == 2 and _all_finite(load_model(last))


def test_loss_spike_counts_as_nonfinite(tmp_path, monkeypatch):
    monkeypatch.setattr(loss_guard, "SPIKE_MIN_HISTORY", 3)
    spike = ("--model.init_args.loss_spike_factor", "5")
    cli = _cli_with_nan(tmp_path / "skip", "skip", *spike, factor=1000.0, bad=lambda s: s == 4, max_steps=6)
    cli.trainer.fit(cli.model, cli.datamodule)
    guard = cli.model.loss_guard
    assert (guard.skipped, guard.spikes, guard.steps) == (1, 1, 6) and int(cli.model.ema.num_updates) == 5
    cli = _cli_with_nan(tmp_path / "error", "error", *spike, factor=1000.0, bad=lambda s: s == 4, max_steps=6)
    with pytest.raises(FloatingPointError, match=r"training loss spike \(.* > loss_spike_factor=5 x .*global step 4"):
        cli.trainer.fit(cli.model, cli.datamodule)


def test_loss_guard_threshold_is_factor_times_running_median(monkeypatch):
    guard = loss_guard.LossGuard(max_consecutive_skips=2, spike_factor=3.0)
    for value in [1.0] * (loss_guard.SPIKE_MIN_HISTORY - 1):
        guard.accept(value)
    assert guard.problem(100.0) is None  # too little history yet
    guard.accept(1.0)
    assert guard.problem(2.9) is None and "loss_spike_factor=3 x 1" in guard.problem(3.1)
    assert "non-finite" in guard.problem(float("inf"))
    guard.skip(guard.problem(3.1), "at step 1")
    guard.accept(1.0)  # a good step resets the run of skips
    guard.skip("x", "at step 3")
    with pytest.raises(FloatingPointError, match="2 training steps in a row"):
        guard.skip("x", "at step 4")
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_consecutive_skips"):
            loss_guard.LossGuard(max_consecutive_skips=bad)
    with pytest.raises(ValueError, match="loss_spike_factor"):
        loss_guard.LossGuard(spike_factor=0.5)
