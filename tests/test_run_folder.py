"""A second `vidiff fit` into a run folder: refused, continued with --ckpt_path last, or --overwrite true; never last-v1."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from lit_helpers import TINY_CONFIG, tiny_cli_args

from vidiff.io.lock import lock_folder
from vidiff.lit.cli import run_lightning_cli


def _step(path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def _fit(root, *extra: str, max_steps: int = 2):
    return run_lightning_cli(["fit", *tiny_cli_args(root, max_steps=max_steps, val_every=2), *extra])


def test_second_fit_refused_continued_or_overwritten_and_last_is_always_last_ckpt(tmp_path, capsys):
    ckpts = tmp_path / "checkpoints"
    last = ckpts / "last.ckpt"
    _fit(tmp_path)
    assert _step(last) == 2
    assert not (tmp_path / "vidiff.lock").exists()  # the run folder's lock is released at the end
    stamp = last.stat().st_mtime_ns

    with pytest.raises(SystemExit) as refused:  # a fresh fit: one line naming both ways on
        _fit(tmp_path)
    message = str(refused.value.code)
    assert "\n" not in message and "--ckpt_path last" in message and "--overwrite true" in message
    assert str(ckpts) in message and "last.ckpt" in message
    assert last.stat().st_mtime_ns == stamp and not list(ckpts.glob("last-v*"))
    versions = sorted(p.name for p in (tmp_path / "lightning_logs").iterdir())
    assert versions == ["version_0"], f"a refused start leaves no logger folder behind, found {versions}"

    best = next(ckpts.glob("best-*.ckpt"))
    with pytest.raises(SystemExit, match="would replace its last.ckpt"):  # from another checkpoint: also refused
        _fit(tmp_path, "--ckpt_path", str(best))
    assert last.stat().st_mtime_ns == stamp

    capsys.readouterr()
    cli = _fit(tmp_path, "--ckpt_path", "last", max_steps=4)  # continues, rewriting last.ckpt
    assert cli.trainer.global_step == 4 and _step(last) == 4
    assert not list(ckpts.glob("*-v*.ckpt"))
    assert f"last checkpoint: {last}\n" in capsys.readouterr().out

    cli = _fit(tmp_path, "--overwrite", "true")  # starts afresh; the old checkpoints are kept aside
    (moved,) = tmp_path.glob("checkpoints.replaced-*")
    assert _step(moved / "last.ckpt") == 4
    assert _step(last) == 2 and not list(ckpts.glob("*-v*.ckpt"))
    assert cli.trainer.checkpoint_callback.last_model_path == str(last)
    assert all(ckpts in Path(p).parents for p in cli.trainer.checkpoint_callback.best_k_models)
    assert f"last checkpoint: {last}\n" in capsys.readouterr().out


def test_demo_refuses_to_retrain_over_a_trained_model(tmp_path):
    from vidiff.cli import main

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(SystemExit, match="--skip-train, or retrain with --overwrite"):
        main(["demo", "--out", str(tmp_path), "--config", str(TINY_CONFIG)])


def test_a_fit_into_a_folder_another_fit_uses_stops_naming_it(tmp_path):
    with lock_folder(tmp_path, command="vidiff fit --config other.yaml"):
        with pytest.raises(SystemExit) as refused:
            _fit(tmp_path)
        message = str(refused.value.code)
        assert message.startswith(f"vidiff fit: {tmp_path} is in use by pid {os.getpid()} (vidiff fit --config other")
        assert f"lock file {tmp_path / 'vidiff.lock'}" in message and "\n" not in message
        assert not (tmp_path / "checkpoints").exists() and not list(tmp_path.glob("lightning_logs/version_*"))
    _fit(tmp_path, max_steps=1)  # free again


def test_ckpt_path_last_without_a_checkpoint_says_a_new_run_starts(tmp_path, capsys):
    import warnings

    from vidiff.lit.cli import run_lightning_cli

    root = tmp_path / "fresh"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli = run_lightning_cli(["fit", *tiny_cli_args(root, max_steps=2, val_every=2), "--ckpt_path", "last"])
    out = capsys.readouterr().out
    assert f"--ckpt_path last: no last.ckpt in {root.resolve()}/checkpoints yet; starting a new run there" in out
    assert cli.trainer.global_step == 2 and (root / "checkpoints" / "last.ckpt").is_file()
    assert not any("save_last" in str(w.message) for w in caught), "Lightning's hint does not reach the user"


def test_predict_writes_its_videos_and_says_where(tmp_path, capsys):
    root = tmp_path / "run"
    _fit(root, max_steps=2)
    ckpt = root / "checkpoints" / "last.ckpt"
    args = tiny_cli_args(root, max_steps=2, val_every=2) + ["--trainer.limit_predict_batches", "1"]
    run_lightning_cli(["predict", *args, "--ckpt_path", str(ckpt)])
    folder = root / "predictions" / "step_000002"
    videos = sorted(p.name for p in folder.glob("predict_*.mp4"))
    assert videos and videos[0] == "predict_00.mp4"
    assert f"vidiff predict: wrote {len(videos)} videos to {folder}/" in capsys.readouterr().out


def test_validate_names_its_sample_folder_after_the_checkpoint_step(tmp_path):
    root = tmp_path / "run"
    _fit(root, max_steps=2)
    ckpt = root / "checkpoints" / "last.ckpt"
    shutil.rmtree(root / "samples")
    run_lightning_cli(["validate", *tiny_cli_args(root, max_steps=2, val_every=2), "--ckpt_path", str(ckpt)])
    assert [p.name for p in (root / "samples").iterdir()] == ["step_000002"]


def test_fit_with_fdm_masks_validates_and_checkpoints(tmp_path):
    """FDM's masks leave padding slots; the context-use diagnostic scores only full clips instead of failing."""
    from vidiff.lit.callbacks import ContextUse

    cli = _fit(tmp_path, "--data.init_args.tasks", "{fdm: 1.0}", max_steps=2)
    assert cli.trainer.global_step == 2 and _step(tmp_path / "checkpoints" / "last.ckpt") == 2
    callback = ContextUse(num_clips=4)
    batch = {"video": torch.zeros(3, 4, 3, 8, 8), "valid": torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]]).bool(),
             "frame_idx": torch.arange(4).repeat(3, 1), "caption": ["a", "b", "c"]}
    callback.on_validation_epoch_start(None, None)
    callback.on_validation_batch_end(None, None, None, batch, 0)
    (clips,) = callback._clips
    assert clips["valid"].all() and len(clips["video"]) == 1 and clips["caption"] == ["b"]


def test_demo_runs_from_any_folder_and_prints_only_paths_that_exist(tmp_path, monkeypatch, capsys):
    """The default --config (configs/shapes/tiny.yaml) is found in vidiff's checkout from another folder."""
    from vidiff.cli import main
    from vidiff.commands.demo import resolve_config

    monkeypatch.chdir(tmp_path)
    assert resolve_config("configs/shapes/tiny.yaml").is_file()
    with pytest.raises(SystemExit, match="--config: nope.yaml not found"):
        resolve_config("nope.yaml")
    assert main(["demo", "--max-steps", "1", "--length", "10", "--steps", "2", "--out", "runs/demo"]) == 0
    summary = capsys.readouterr().out.split("vidiff demo done.")[1]
    lines = [line.split(":", 1)[1].split(" (open")[0].strip() for line in summary.splitlines() if ":" in line]
    assert lines and all((tmp_path / p).exists() for p in lines), lines
    assert (tmp_path / "runs/demo/long_video/index.html").is_file()
    from vidiff.io import read_video

    assert read_video(tmp_path / "runs/demo/given_clip.mp4").shape[0] == 8  # the held-out clip the videos continue
