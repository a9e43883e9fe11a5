"""DDP: two CPU processes (gloo) train a few steps on different data and end with identical weights and EMA."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import torch
    from pytorch_lightning.callbacks import Callback

    sys.path.insert(0, {tests!r})
    torch.set_num_threads(1)
    from lit_helpers import tiny_cli_args
    from vidiff.lit.cli import run_lightning_cli

    class Indices(Callback):
        def __init__(self):
            self.seen = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.seen += batch["index"].tolist()

    root = Path(sys.argv[1])
    args = tiny_cli_args(root, max_steps=3, val_every=3)
    cli = run_lightning_cli(
        [*args, "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"], run=False
    )
    indices = Indices()
    cli.trainer.callbacks.append(indices)
    cli.trainer.fit(cli.model, cli.datamodule)
    rank = cli.trainer.global_rank
    torch.save({{"state": cli.model.state_dict(), "seen": indices.seen, "world": cli.trainer.world_size}},
               root / f"rank{{rank}}.pt")
    """
)


def test_two_cpu_replicas_end_identical(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT.format(tests=str(TESTS)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    # 10 videos, 5 per rank, batches of 2, 2, 1: three steps are one epoch, split between the ranks
    assert sorted(r0["seen"] + r1["seen"]) == list(range(10))
    assert r0["state"].keys() == r1["state"].keys()
    assert any(k.startswith("ema.shadow.") for k in r0["state"])
    for key, value in r0["state"].items():
        assert torch.equal(value, r1["state"][key]), key
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
