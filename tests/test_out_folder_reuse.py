"""A second run into the same --out never leaves the first run's files mixed with its own: it is refused in
one line, or with --overwrite exactly the files vidiff wrote are replaced (docs/decisions.md)."""

import json

import pytest

from lit_helpers import random_sampling_checkpoint
from test_txt2img import t2i_ckpt  # noqa: F401 - a fixture

from vidiff.cli import main


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return random_sampling_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", 8)


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_sample_refuses_a_used_out_folder_and_overwrite_replaces_only_its_files(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["sample", "--ckpt", str(tiny_ckpt), "--length", "16", "--steps", "1", "--no-progress",
            "--out", str(out)]
    assert main([*base, "--num-videos", "3", "--gif", "--png-strip"]) == 0
    (out / "notes.txt").write_text("mine")
    before = {name: (out / name).read_bytes() for name in _files(out)}
    capsys.readouterr()
    assert main([*base, "--num-videos", "1", "--seed", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"vidiff sample: error: --out: {out} holds an earlier run's outputs (index.html, "
                   "settings.json, video_000.gif and 8 more); choose another folder, or add --overwrite to "
                   "replace them (only the files vidiff wrote are removed)"]
    assert {name: (out / name).read_bytes() for name in _files(out)} == before
    assert main([*base, "--num-videos", "1", "--seed", "5", "--overwrite"]) == 0
    assert _files(out) == ["index.html", "notes.txt", "settings.json", "video_000.mp4"]
    assert json.loads((out / "settings.json").read_text())["seed"] == 5
    assert 'src="video_001.mp4"' not in (out / "index.html").read_text()


def test_txt2img_refuses_a_used_out_folder(t2i_ckpt, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "t2i"
    base = ["txt2img", "--ckpt", str(t2i_ckpt), "--prompt", "a red circle", "--steps", "1", "--out", str(out)]
    assert main([*base, "--num-images", "3"]) == 0
    assert main([*base, "--num-images", "1"]) == 2
    assert "add --overwrite to replace them" in capsys.readouterr().err.strip().splitlines()[-1]
    assert main([*base, "--num-images", "1", "--overwrite"]) == 0
    assert _files(out) == ["grid.png", "image_000.png", "settings.json"]
