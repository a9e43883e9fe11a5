"""The Python API (vidiff.load -> VideoPipeline.generate): the README snippet as written, argument errors, and the
promise that loading and sampling import no Lightning."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vidiff
from vidiff.assets import REFERENCE
from vidiff.io import count_frames

ROOT = Path(__file__).resolve().parents[1]


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippet_runs_as_written(tmp_path, monkeypatch):
    """Run in a folder where the snippet's relative weights path exists and out.mp4 lands."""
    (tmp_path / "vidiff").mkdir()
    (tmp_path / "vidiff" / "assets").symlink_to(REFERENCE.parent)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(readme_snippet(), "README.md", "exec"), scope)
    video = scope["video"]
    assert video.shape == (1, 16, 3, 32, 32) and video.min() >= -1 and video.max() <= 1
    assert count_frames(tmp_path / "out.mp4") == 16


@pytest.fixture(scope="module")
def pipe():
    return vidiff.load(REFERENCE)


def test_generate_continues_a_clip_deterministically(pipe):
    clip = torch.linspace(-1, 1, 4)[None, :, None, None, None].expand(1, 4, 3, 32, 32)
    a = pipe.generate(length=12, given=clip, steps=2, seed=1, num_videos=2)
    b = pipe.generate(length=12, given=clip, steps=2, seed=1, num_videos=2)
    assert a.shape == (2, 12, 3, 32, 32) and torch.equal(a, b)
    assert torch.equal(a[:, :4], clip.expand(2, -1, -1, -1, -1))
    fifo = pipe.generate(length=12, scheme="fifo", partitions=1, given=clip, seed=1)
    assert fifo.shape == (1, 12, 3, 32, 32)


@pytest.mark.parametrize("kwargs, message", [
    (dict(length=4), "length: expected at least max_frames=8"),
    (dict(length=16, sampler="euler"), "sampler: unknown sampler 'euler'"),
    (dict(length=16, steps=0), "steps: expected a positive integer"),
    (dict(length=16, prompt="a red circle"), "prompt: this model has no text encoder"),
    (dict(length=16, given=torch.zeros(1, 2, 3, 16, 16)), "given: expected a (1 or num_videos, g, 3, 32, 32)"),
    (dict(length=16, given=torch.zeros(1, 2, 3, 32, 32), given_indices=[0]), "given_indices: 1 indices for 2"),
    (dict(length=16, scheme="nope"), "scheme: 'nope'"),
])
def test_errors_name_the_argument(pipe, kwargs, message):
    with pytest.raises(ValueError) as caught:
        pipe.generate(**kwargs)
    assert str(caught.value).startswith(message), str(caught.value)


def test_load_errors_name_the_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^path: no checkpoint file"):
        vidiff.load(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"^path: "):
        vidiff.load(tmp_path / "junk.ckpt")
    with pytest.raises(TypeError, match="generate"):
        vidiff.load(REFERENCE).generate(16)  # keyword-only


def test_loading_and_sampling_import_no_lightning():
    code = ("import sys, vidiff; from vidiff.assets import REFERENCE; "
            "vidiff.load(REFERENCE).generate(length=8, steps=1); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'lightning_fabric')"
            " or m.startswith(('vidiff.lit', 'vidiff.commands', 'vidiff.data'))]; print(bad); assert not bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
