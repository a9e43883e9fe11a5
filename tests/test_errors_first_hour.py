"""Issue 13, "Errors: one clear line, the cause last": each probe runs the command and checks its last stderr line,
its exit status and that it leaves no files behind."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lit_helpers import random_sampling_checkpoint, tiny_cli_args

from vidiff.cli import main
from vidiff.io import write_video

K = 20


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("INFO ", "WARNING "))]
    return lines[-1] if lines else ""


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("vidiff ")]


# ------------------------------------------------------------------------------------------------ vidiff fit
def _fit(tmp_path: Path, *extra: str) -> tuple[int, Path]:
    root = tmp_path / "run"
    code = main(["fit", *tiny_cli_args(root), *extra])
    return code, root


def test_misspelt_keys_are_all_reported_with_a_suggestion(tmp_path, capsys):
    config = tmp_path / "typo.yaml"
    config.write_text("model:\n  init_args:\n    max_frame: 4\ntrainer:\n  max_stepz: 3\n")
    code, root = _fit(tmp_path, "--config", str(config), "--model.init_args.imag_size", "8")
    err = capsys.readouterr().err
    assert code == 2
    errors = _errors(err)
    assert len(errors) == 3 and errors == err.strip().splitlines()  # no usage text, one line per problem
    assert "vidiff fit: error: trainer.max_stepz: no such setting (given 3); did you mean `max_steps`" in err
    assert "model.init_args.max_frame: VideoDiffusion has no setting `max_frame` (given 4); did you mean " \
           "`max_frames`?" in err
    assert _last_line(err) == ("vidiff fit: error: model.init_args.imag_size: VideoDiffusion has no setting "
                               "`imag_size` (given 8); did you mean `image_size`?")
    assert not root.exists()


def test_a_misspelt_nested_key_names_its_class(tmp_path, capsys):
    code, root = _fit(tmp_path, "--model.init_args.net.init_args.model_chanels", "8")
    assert code == 2
    assert _last_line(capsys.readouterr().err).startswith(
        "vidiff fit: error: model.init_args.net.init_args.model_chanels: SpaceTimeUNet has no setting "
        "`model_chanels` (given 8); did you mean `model_channels`")
    assert not root.exists()


def test_a_wrong_type_names_key_value_and_fix(tmp_path, capsys):
    code, root = _fit(tmp_path, "--config", 'model: {init_args: {max_frames: "abc"}}')
    assert code == 2
    assert _last_line(capsys.readouterr().err) == (
        "vidiff fit: error: model.init_args.max_frames: expected an integer, got 'abc'; give an integer such as 8 "
        "(the default)")
    assert not root.exists()


def test_a_bad_value_names_key_and_value(tmp_path, capsys):
    code, root = _fit(tmp_path, "--model.init_args.image_size", "-8", "--data.init_args.image_size", "-8")
    assert code == 2
    assert _last_line(capsys.readouterr().err) == (
        "vidiff fit: error: model.init_args.image_size: expected a positive integer, got -8")
    assert not root.exists()


def test_model_and_data_that_disagree(tmp_path, capsys):
    code, root = _fit(tmp_path, "--data.init_args.image_size", "16")
    assert code == 2
    assert _last_line(capsys.readouterr().err) == (
        "vidiff fit: error: model.init_args.image_size is 8 but data.init_args.image_size is 16; they must agree: "
        "set both to the same value (e.g. --data.init_args.image_size 8)")
    assert not root.exists()


def test_a_missing_ckpt_path(tmp_path, capsys):
    missing = tmp_path / "nope.ckpt"
    code, root = _fit(tmp_path, "--ckpt_path", str(missing))
    assert code == 2
    assert _last_line(capsys.readouterr().err) == (
        f"vidiff fit: error: ckpt_path: no checkpoint file at '{missing}'; give an existing .ckpt file, or "
        f"`--ckpt_path last` to continue the run in {tmp_path / 'run'}")
    assert not (tmp_path / "run").exists()


def _video_folder_fit(tmp_path: Path, folder: Path) -> tuple[int, Path]:
    args = tiny_cli_args(tmp_path / "run")
    start = args.index("--data.init_args.image_size")
    args = args[:start] + args[start + 12:]  # the ShapesDataModule settings
    data = (f"{{class_path: vidiff.data.VideoFolderDataModule, init_args: {{root: '{folder}', image_size: 8, "
            "max_frames: 4, batch_size: 2, num_workers: 0}}")
    return main(["fit", *args, "--data", data]), tmp_path / "run"


def test_a_missing_video_folder(tmp_path, capsys):
    code, root = _video_folder_fit(tmp_path, tmp_path / "nowhere")
    assert code == 2
    last = _last_line(capsys.readouterr().err)
    assert last.startswith(f"vidiff fit: error: data.init_args.root: video folder '{tmp_path / 'nowhere'}' does not")
    assert not root.exists()


def test_an_empty_video_folder(tmp_path, capsys):
    (tmp_path / "videos").mkdir()
    code, root = _video_folder_fit(tmp_path, tmp_path / "videos")
    assert code == 2
    assert _last_line(capsys.readouterr().err) == (
        "vidiff fit: error: root: no video files with extensions ['mp4', 'avi', 'mov', 'webm', 'gif', 'mkv'] under "
        f"'{tmp_path / 'videos'}'; put videos there, or give another folder (or set `extensions`)")
    assert not root.exists()  # nor lightning_logs/version_0, nor an empty lightning_logs/


def test_an_all_corrupt_video_folder(tmp_path, capfd):
    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(3):
        (folder / f"clip{i}.mp4").write_bytes(b"\x00garbage" * 100)
    (folder / "zero.mp4").write_bytes(b"")
    code, root = _video_folder_fit(tmp_path, folder)
    assert code == 2
    err = capfd.readouterr().err
    assert _last_line(err) == (
        f"vidiff fit: error: root: none of the 4 video files under '{folder}' could be decoded: clip0.mp4, clip1.mp4, "
        "clip2.mp4 (not a video, or truncated); zero.mp4 (empty file); give a folder of videos that ffmpeg can play")
    assert "moov atom" not in err and "video_reader.cc" not in err and "Traceback" not in err  # decord's C++ logs
    assert not root.exists()


def test_the_debug_switch_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDIFF_DEBUG", "1")
    with pytest.raises(Exception, match="imag_size"):
        _fit(tmp_path, "--model.init_args.imag_size", "8")


def test_the_skip_warning_is_short(tmp_path, caplog):
    from vidiff.data.video_folder import VideoFolder

    write_video(tmp_path / "good.mp4", torch.zeros(8, 3, 8, 8))
    for i in range(9):
        (tmp_path / f"bad_{i}.mp4").write_bytes(b"not a video" * 50)
    with caplog.at_level(logging.WARNING):
        VideoFolder(tmp_path, image_size=8, cache_index=False)
    (message,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert message == (f"skipping 9 of 10 video files under {tmp_path} that do not decode: bad_0.mp4, bad_1.mp4, "
                       "bad_2.mp4, bad_3.mp4, bad_4.mp4, bad_5.mp4 and 3 more (not a video, or truncated)")


# --------------------------------------------------------------------------------------------- vidiff sample
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return random_sampling_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", K)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    write_video(folder / "good.mp4", torch.zeros(12, 3, 8, 8))
    (folder / "truncated.mp4").write_bytes((folder / "good.mp4").read_bytes()[:1500])
    (folder / "zero.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("hello\n")
    (folder / "text.png").write_text("hello\n")
    return folder


@pytest.mark.parametrize(
    "option, name, expected",
    [
        ("--observed", "zero.mp4", "is an empty file (0 bytes); give a video file"),
        ("--observed", "truncated.mp4", "is not a readable video (truncated, corrupt or another format); give a "
                                        "video file that ffmpeg can open"),
        ("--observed", "text.mp4", "is not a readable video (truncated, corrupt or another format); give a video "
                                   "file that ffmpeg can open"),
        ("--keyframes", "truncated.mp4", "is not a readable video"),
        ("--keyframes", "text.png", "is not a readable image (truncated, corrupt or another format); give an image "
                                    "file that Pillow can open"),
    ],
)
def test_a_bad_given_file_is_one_line(ckpt, bad_files, tmp_path, capfd, option, name, expected):
    out = tmp_path / "out"
    code = main(["sample", "--ckpt", str(ckpt), option, str(bad_files / name), "--length", "30", "--steps", "1",
                 "--out", str(out), "--no-progress"])
    err = capfd.readouterr().err
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith(f"vidiff sample: error: {option}: {bad_files / name} ") and line.endswith(expected) or (
        expected in line)
    assert not out.exists()


def test_decoder_logs_never_reach_the_terminal(ckpt, bad_files, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "vidiff", "sample", "--ckpt", str(ckpt), "--observed", str(bad_files / "truncated.mp4"),
         "--length", "30", "--out", str(tmp_path / "out"), "--no-progress"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"vidiff sample: error: --observed: {bad_files / 'truncated.mp4'} is not a readable video (truncated, "
        "corrupt or another format); give a video file that ffmpeg can open"]


def test_ctrl_c_says_how_to_resume_and_a_rerun_keeps_the_state(ckpt, tmp_path, capsys, monkeypatch):
    import vidiff.pipelines.level_state as executor

    real_save = executor.save_state

    def save_then_interrupt(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    out = tmp_path / "out"
    argv = ["sample", "--ckpt", str(ckpt), "--length", "60", "--steps", "1", "--num-videos", "1", "--out", str(out),
            "--no-progress"]
    monkeypatch.setattr(executor, "save_state", save_then_interrupt)
    assert main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        f"vidiff sample: interrupted; 1 finished wave saved in {out / 'state'}; continue with: vidiff sample --ckpt "
        f"{ckpt} --length 60 --steps 1 --num-videos 1 --out {out} --no-progress --resume"]
    assert sorted(p.name for p in out.rglob("*")) == ["state", "state.json", "state.safetensors"]
    monkeypatch.setattr(executor, "save_state", real_save)

    saved = (out / "state" / "state.safetensors").read_bytes()
    assert main(argv) == 2  # without --resume: refused, the state kept
    assert capsys.readouterr().err.strip().splitlines() == [
        f"vidiff sample: error: --out: {out / 'state'} holds the frames of an interrupted run (1 wave done); "
        "continue it with --resume (same settings), or add --overwrite to discard them and sample afresh"]
    assert (out / "state" / "state.safetensors").read_bytes() == saved
    assert main([*argv, "--resume", "--overwrite"]) == 2
    assert main([*argv, "--resume"]) == 0
    assert (out / "video_000.mp4").is_file() and not (out / "state").exists()


def test_overwrite_discards_the_saved_state(ckpt, tmp_path, monkeypatch, capsys):
    import vidiff.pipelines.long_video as executor

    out = tmp_path / "out"
    argv = ["sample", "--ckpt", str(ckpt), "--length", "60", "--steps", "1", "--num-videos", "1", "--out", str(out),
            "--no-progress"]
    with pytest.raises(executor.Interrupted):
        main([*argv, "--stop-after-wave", "0"])
    assert (out / "state" / "state.json").is_file()
    assert main([*argv, "--overwrite"]) == 0
    assert not (out / "state").exists() and (out / "video_000.mp4").is_file()
