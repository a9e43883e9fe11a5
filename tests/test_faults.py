"""File faults end in one line: a full disk while saving checkpoints, videos and sampling state; ffmpeg dying;
unsafe or corrupt checkpoints at every entry point; a killed save's temporary files are swept at the next start."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
from lit_helpers import tiny_cli_args

import vidiff.io.errors as errors
from vidiff.cli import main
from vidiff.io.atomic import sweep_temporaries
from vidiff.io.errors import UnreadableFile, UnsafeCheckpoint, WriteFault, read_fault, write_fault

ENFORCE = "[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"


class Custom:
    """Any class outside torch's safe list: torch.load(weights_only=True) refuses to import it."""


@pytest.fixture(scope="module")
def evil(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("evil") / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "x": Custom()}, path)
    return path


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    from vidiff.lit import VideoDiffusion
    from vidiff.nn.unet import SpaceTimeUNet

    net = SpaceTimeUNet(in_channels=3, model_channels=8, channel_mult=[1], num_res_blocks=1,
                        attention_resolutions=[], num_heads=1, norm_groups=4)
    model = VideoDiffusion(net=net, image_size=8, channels=3, max_frames=4, num_timesteps=100, ema_decay=0.9)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "datamodule_hyper_parameters": {"image_size": 8}}, path)
    return path


def _one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith(f"vidiff {command}: error: "), err
    assert not any("Traceback" in line for line in err)
    return err[-1]


# ------------------------------------------------------------------------------------------ the mapping itself
def test_write_faults_are_named_with_what_is_kept(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    enospc = OSError(errno.ENOSPC, "No space left on device")
    fault = write_fault(enospc, target, "the previous checkpoint X is intact")
    assert isinstance(fault, WriteFault)
    assert str(fault) == f"no space left on device while writing {target}; the previous checkpoint X is intact"
    rust = RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert str(write_fault(rust, target)).startswith("no space left on device while writing")
    # torch's zip writer loses the errno: a full file system decides the wording
    monkeypatch.setattr(errors, "_low_space", lambda folder: True)
    assert str(write_fault(RuntimeError(ENFORCE), target)).startswith("no space left on device while writing")
    pipe = OSError("[Errno 32] Broken pipe\n\nFFMPEG COMMAND:\nffmpeg -y -f rawvideo ...\n\nFFMPEG STDERR OUTPUT:\n")
    assert str(write_fault(pipe, target)) == (
        f"no space left on device while writing {target} (the ffmpeg encoder stopped)"
    )
    monkeypatch.setattr(errors, "_low_space", lambda folder: False)
    assert "unexpected pos 576 vs 534" in str(write_fault(RuntimeError(ENFORCE), target))
    message = str(write_fault(pipe, target))
    assert message.startswith(f"the ffmpeg encoder stopped while writing {target}") and "\n" not in message
    assert "FFMPEG COMMAND" not in message
    assert write_fault(ValueError("a bug"), target) is None  # anything else passes unchanged


def test_read_faults_tell_unsafe_from_corrupt(tmp_path, evil):
    def fault(path):
        try:
            torch.load(path, weights_only=True)
        except Exception as err:
            return read_fault(err, path)
        raise AssertionError("loaded")

    unsafe = fault(evil)
    assert isinstance(unsafe, UnsafeCheckpoint) and "\n" not in str(unsafe)
    assert str(unsafe).startswith(f"{evil} is not a safe checkpoint: it names the Python object test_faults.Custom")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all")
    data = evil.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) - 30])
    for name, why in (("empty", "empty"), ("junk", "corrupt or not"), ("cut", "truncated or corrupt")):
        got = fault(tmp_path / f"{name}.ckpt")
        assert isinstance(got, UnreadableFile) and why in str(got) and "\n" not in str(got), (name, got)
    assert read_fault(FileNotFoundError("x"), evil) is None


def test_a_readable_file_of_the_wrong_kind_keeps_its_own_error(tmp_path):
    from safetensors.torch import save_file

    from vidiff.nn.autoencoder import load_autoencoder

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="has no 'vidiff_autoencoder_config' metadata") as caught:
        load_autoencoder(path)
    assert not isinstance(caught.value, UnreadableFile)


# -------------------------------------------------------------------------------------------- full disk: writes
def test_checkpoint_save_on_a_full_disk_keeps_the_previous_one(tmp_path, monkeypatch):
    from vidiff.lit import checkpoint as ckpt_module
    from vidiff.lit.checkpoint import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 1, "w": torch.ones(3)}, target)
    before = target.read_bytes()

    def full(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_module.torch, "save", full)
    with pytest.raises(WriteFault) as caught:
        io.save_checkpoint({"global_step": 2, "w": torch.zeros(3)}, target)
    assert str(caught.value) == (
        f"no space left on device while writing {target}; the previous checkpoint {target} is intact; "
        "free space and continue with --ckpt_path last"
    )
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_fit_on_a_full_disk_ends_in_one_line_and_the_next_start_sweeps_leftovers(tmp_path, monkeypatch, capsys):
    from vidiff.lit import checkpoint as ckpt_module

    saves = []
    real_save = torch.save

    def fills_up(obj, f, *args, **kwargs):  # the checkpoints of step 2 fit; the disk is full at step 4
        saves.append(obj["global_step"])
        if obj["global_step"] > 2:
            raise RuntimeError(ENFORCE)
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(ckpt_module.torch, "save", fills_up)
    monkeypatch.setattr(errors, "_low_space", lambda folder: True)
    assert main(["fit", *tiny_cli_args(tmp_path, max_steps=4, val_every=2)]) == 2
    last = tmp_path / "checkpoints" / "last.ckpt"
    line = _one_line(capsys, "fit")  # the first save of step 4: a new best-*.ckpt or last.ckpt
    assert line.startswith(f"vidiff fit: error: no space left on device while writing {last.parent}/")
    assert line.endswith(f"; the previous checkpoint {last} is intact; free space and continue with --ckpt_path last")
    assert torch.load(last, weights_only=True)["global_step"] == 2
    assert not [p for p in last.parent.iterdir() if ".tmp" in p.name]
    assert not (tmp_path / "vidiff.lock").exists()  # released on the way out

    monkeypatch.setattr(ckpt_module.torch, "save", real_save)
    leftover = last.parent / ".last.ckpt.k3x9_q2a.tmp"  # what a kill -9 mid-save leaves
    leftover.write_bytes(b"half")
    assert main(["fit", *tiny_cli_args(tmp_path, max_steps=4, val_every=2), "--ckpt_path", "last"]) == 0
    assert not leftover.exists() and torch.load(last, weights_only=True)["global_step"] == 4


def test_sweep_removes_only_atomic_writer_leftovers(tmp_path):
    keep = ["last.ckpt", ".vidiff_index.json", "notes.tmp", ".hidden"]
    gone = [".last.ckpt.ab_cd123.tmp", ".video_000.bl4yuvak.tmp.mp4", ".state.abcdefgh.tmp.safetensors"]
    for name in keep + gone:
        (tmp_path / name).write_bytes(b"x")
    assert sorted(p.name for p in sweep_temporaries(tmp_path, tmp_path / "missing")) == sorted(gone)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_mp4_write_when_ffmpeg_dies(tmp_path, monkeypatch):
    from vidiff.io import video

    def broken_pipe(path, frames, *args):
        Path(path).write_bytes(b"partial")
        raise OSError("[Errno 32] Broken pipe\n\nFFMPEG COMMAND:\nffmpeg -y ...\n\nFFMPEG STDERR OUTPUT:\n")

    target = tmp_path / "video_000.mp4"
    target.write_bytes(b"old video")
    monkeypatch.setattr(video, "_encode_mp4", broken_pipe)
    empty = RuntimeError(f"writing {target}: the encoder produced an empty file")
    assert errors.write_fault(empty, target) is None  # with space left, vidiff's own error stands
    monkeypatch.setattr(errors, "_low_space", lambda folder: True)
    assert str(errors.write_fault(empty, target)) == (
        f"no space left on device while writing {target} (the encoder produced an empty file)"
    )
    with pytest.raises(WriteFault) as caught:
        video.write_video(target, torch.zeros(2, 3, 8, 8))
    assert str(caught.value) == (
        f"no space left on device while writing {target} (the ffmpeg encoder stopped); "
        "the previous video_000.mp4 is intact"
    )
    assert target.read_bytes() == b"old video" and [p.name for p in tmp_path.iterdir()] == ["video_000.mp4"]


def test_sampling_state_on_a_full_disk_and_a_corrupt_state(tmp_path, monkeypatch):
    import safetensors.torch

    from vidiff.pipelines.level_state import STAGE_KIND, LevelState, load_state, save_state

    def _save_state(path, frames, next_wave, sig):
        save_state(path, LevelState(frames, next_wave, 0, []), sig, STAGE_KIND)

    def _load_state(path, sig):
        state = load_state(path, sig, 0, STAGE_KIND)
        return state.x, state.next_step

    _save_state(tmp_path, torch.ones(2, 3), 1, '{"a": 1}')
    before = (tmp_path / "state.safetensors").read_bytes()

    def full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(WriteFault) as caught:
        _save_state(tmp_path, torch.zeros(2, 3), 2, '{"a": 1}')
    path = tmp_path / "state.safetensors"
    assert str(caught.value) == (
        f"no space left on device while writing {path}; the previous state in {path} is intact; "
        "free space and rerun with --resume"
    )
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["state.json",
                                                                                           "state.safetensors"]
    monkeypatch.undo()
    frames, wave = _load_state(tmp_path, '{"a": 1}')
    assert wave == 1 and torch.equal(frames, torch.ones(2, 3))
    path.write_bytes(before[:20])
    with pytest.raises(UnreadableFile,
                       match=r"is not a readable sampling state: .*; rerun with --overwrite instead of --resume"):
        _load_state(tmp_path, '{"a": 1}')


def test_sample_on_a_full_disk_ends_in_one_line(tiny_ckpt, tmp_path, monkeypatch, capsys):
    import safetensors.torch

    def full(tensors, filename, metadata=None):
        raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    out = tmp_path / "out"
    argv = ["sample", "--ckpt", str(tiny_ckpt), "--length", "8", "--steps", "1", "--num-videos", "1",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    assert _one_line(capsys, "sample").endswith(
        f"no space left on device while writing {out / 'state' / 'state.safetensors'}; no state was saved yet; "
        "free space and run again"
    )
    assert not (out / "vidiff.lock").exists()


# ------------------------------------------------------------------------------ unsafe checkpoints, every entry
def _unsafe_line(capsys, command: str, path: Path) -> None:
    line = _one_line(capsys, command)
    assert f"{path} is not a safe checkpoint: it names the Python object test_faults.Custom" in line, line


@pytest.mark.parametrize("argv", [
    ["txt2img", "--ckpt", "{evil}", "--prompt", "a", "--out", "{out}"],
    ["sample", "--ckpt", "{evil}", "--out", "{out}"],
    ["export", "--ckpt", "{evil}", "--out", "{out}/w.safetensors"],
    ["evaluate", "--ckpt", "{evil}", "--task", "prediction", "--out", "{out}"],
    ["evaluate", "--ckpt", "{ckpt}", "--task", "prediction", "--i3d", "{evil}", "--out", "{out}"],
    ["txt2img", "--sd-ckpt", "{evil}", "--tokenizer", "{out}", "--prompt", "a", "--out", "{out}"],
], ids=["txt2img-ckpt", "sample-ckpt", "export-ckpt", "evaluate-ckpt", "evaluate-i3d", "txt2img-sd-ckpt"])
def test_unsafe_checkpoints_at_the_tool_commands(argv, evil, tiny_ckpt, tmp_path, capsys):
    filled = [a.format(evil=evil, out=tmp_path, ckpt=tiny_ckpt) for a in argv]
    assert main(filled) == 2
    _unsafe_line(capsys, argv[0], evil)
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("report.*"))


@pytest.mark.parametrize("option", ["--ckpt_path", "--model.init_args.autoencoder_ckpt"])
def test_unsafe_checkpoints_at_fit(option, evil, tmp_path, capsys):
    assert main(["fit", *tiny_cli_args(tmp_path, max_steps=1), option, str(evil)]) == 2
    _unsafe_line(capsys, "fit", evil)
    assert not (tmp_path / "checkpoints").exists()


def test_corrupt_checkpoint_at_fit(evil, tmp_path, capsys):
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(evil.read_bytes()[:-30])
    assert main(["fit", *tiny_cli_args(tmp_path / "run", max_steps=1), "--ckpt_path", str(cut)]) == 2
    assert f"{cut} is not a readable checkpoint: it is truncated or corrupt" in _one_line(capsys, "fit")
    assert os.path.getsize(cut) > 0
