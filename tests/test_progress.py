"""The fit progress bar counts optimizer steps out of max_steps (not Lightning's per-epoch 'Epoch 0')."""

from __future__ import annotations

from lit_helpers import tiny_cli_args

from vidiff.lit.cli import run_lightning_cli
from vidiff.lit.progress import StepRichProgressBar, StepTQDMProgressBar


def test_fit_progress_bar_counts_steps_of_max_steps(tmp_path, capsys):
    args = tiny_cli_args(tmp_path / "run", max_steps=4, val_every=4)
    i = args.index("--trainer.enable_progress_bar")
    args[i + 1] = "true"
    cli = run_lightning_cli(["fit", *args])
    bars = [c for c in cli.trainer.callbacks if isinstance(c, (StepRichProgressBar, StepTQDMProgressBar))]
    assert len(bars) == 1 and cli.trainer.progress_bar_callback is bars[0]
    out = capsys.readouterr()
    text = out.out + out.err
    assert "4/4" in text and "step" in text, text[-800:]
    assert "Epoch 0" not in text
