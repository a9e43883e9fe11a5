"""`vidiff sample`'s gallery: videos first and looping, given frames marked on a timeline and in the numbered
strip, the settings actually used folded away below (and the same in settings.json). Parses the HTML; no
browser needed."""

import json
from html.parser import HTMLParser

import pytest
import torch

from lit_helpers import random_sampling_checkpoint

from vidiff import __version__
from vidiff.cli import main
from vidiff.io import write_labelled_strip, write_video
from vidiff.io.gallery import describe_frames, tick_step

K = 8


@pytest.fixture(scope="module")
def stepped_ckpt(tmp_path_factory):
    path = random_sampling_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", K)
    ckpt = torch.load(path, weights_only=False)
    ckpt["global_step"] = 1234
    torch.save(ckpt, path)
    return path


class Page(HTMLParser):
    """Start tags in order (with attributes), and the text inside each element of interest."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(path):
    page = Page()
    page.feed(path.read_text())
    return page


def test_gallery_shows_videos_first_marks_given_frames_and_folds_settings(stepped_ckpt, tmp_path, capsys):
    clip = torch.linspace(-0.8, 0.8, 6)[:, None, None, None].expand(6, 3, 8, 8)
    write_video(tmp_path / "clip.mp4", clip, crf=0)
    out = tmp_path / "run"
    code = main(["sample", "--ckpt", str(stepped_ckpt), "--length", "100", "--steps", "2",
                 "--num-videos", "2", "--observed", str(tmp_path / "clip.mp4"), "--num-observed", "5",
                 "--png-strip", "--no-progress", "--out", str(out)])
    assert code == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith(f"open {out / 'index.html'}")
    page = _parse(out / "index.html")
    names = [tag for tag, _ in page.tags]
    videos = [attrs for tag, attrs in page.tags if tag == "video"]
    assert len(videos) == 2 and all({"loop", "autoplay", "muted"} <= set(v) for v in videos)
    assert names.index("video") < names.index("details") < names.index("table"), "videos first"
    items = [attrs for tag, attrs in page.tags if tag == "div" and attrs.get("class") == "item"]
    assert [(i["data-frames"], i["data-given"]) for i in items] == [("100", "0,1,2,3,4")] * 2
    given_marks = [a for tag, a in page.tags if tag == "span" and a.get("class") == "given"]
    assert len(given_marks) == 2 and all("left:0.000%;width:5.000%" in a["style"] for a in given_marks)
    text = " ".join(page.text)
    assert "given frames 0-4" in text
    assert ("Strip: 32 of 100 frames, one every 1-4 (the frames between are skipped), numbered; given frames "
            "framed in orange (0, 3-4).") in text  # 31 spread evenly + frame 4, the end of the given run
    settings = json.loads((out / "settings.json").read_text())
    used = {"step_size": K // 2, "sampler": "ddim", "steps": 2, "spacing": "trailing",
            "checkpoint_step": 1234, "vidiff_version": __version__, "given_indices": [0, 1, 2, 3, 4],
            "scheme": "hierarchy-2"}
    assert {k: settings[k] for k in used} == used
    table = (out / "index.html").read_text().split("<details>")[1]
    for key, value in used.items():
        shown = value if isinstance(value, (int, str)) else json.dumps(value)
        assert f"<tr><th>{key}</th><td>{shown}" in table
    assert f"(step 1234) · vidiff {__version__}" in text


def test_strip_numbers_frames_and_keeps_given_ones(tmp_path):
    from PIL import Image

    video = torch.rand(300, 3, 8, 8) * 2 - 1
    shown = write_labelled_strip(tmp_path / "s.png", video, given=[0, 1, 2, 150], max_frames=32, nrow=8)
    assert {0, 2, 150, 299} <= set(shown) and len(shown) == 32 and shown == sorted(shown)
    with Image.open(tmp_path / "s.png") as im:
        assert im.size[0] == 8 * (48 + 6)  # frames enlarged to 48 px, 3 px frame on each side
        assert im.getpixel((1, 1)) == (255, 140, 0)  # frame 0 was given: framed in orange


def test_timeline_ticks_are_round_and_few():
    assert [tick_step(n) for n in (7, 19, 99, 299, 1000)] == [1, 2, 10, 50, 100]
    assert describe_frames([9, 0, 1, 2, 11, 12]) == "0-2, 9, 11-12"
