"""Shapes-world detection and scores on frames drawn here with numpy (independent of vidiff.data)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidiff.metrics.detect import classify_pixels, classify_shape, detect_objects
from vidiff.metrics.shapes import (
    caption_accuracy,
    mean_scores,
    motion_consistency,
    parse_caption,
    persistence,
    prediction_error,
    shapes_scores,
)
from vidiff.palette import PALETTE

SIZE = 32


def _draw(frame: np.ndarray, shape: str, colour: str, x: float, y: float, s: float) -> None:
    """Paint one object on a (h, w, 3) uint8 frame; pixel (i, j) is sampled at (j + 0.5, i + 0.5)."""
    h, w, _ = frame.shape
    py, px = np.mgrid[0:h, 0:w] + 0.5
    dx, dy = px - x, py - y
    if shape == "circle":
        mask = dx**2 + dy**2 <= s**2
    elif shape == "square":
        mask = (np.abs(dx) <= s) & (np.abs(dy) <= s)
    else:  # triangle, apex up at (x, y - s), base at y + s
        mask = (dy <= s) & (np.abs(dx) <= (dy + s) / 2)
    frame[mask] = PALETTE[colour]


def _video(objects: list[dict], t: int) -> torch.Tensor:
    """objects: dicts with shape, colour, s and centres (t, 2) (None rows hide the object) -> (t, 3, h, w) in [-1, 1]."""
    frames = np.zeros((t, SIZE, SIZE, 3), dtype=np.uint8)
    for f in range(t):
        for o in objects:
            c = o["centres"][f]
            if c is not None:
                _draw(frames[f], o["shape"], o["colour"], c[0], c[1], o["s"])
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1


def _static(shape: str, colour: str, x: float, y: float, s: float, t: int = 1) -> dict:
    return {"shape": shape, "colour": colour, "s": s, "centres": [(x, y)] * t}


def _bounce(p0: float, v: float, lo: float, hi: float, t: int) -> list[float]:
    """Elastic bounces between lo and hi: reflect p0 + v t (a triangle wave)."""
    out = []
    for k in range(t):
        u = (p0 + v * k - lo) % (2 * (hi - lo))
        out.append(lo + (u if u <= hi - lo else 2 * (hi - lo) - u))
    return out


def test_detection_is_exact_on_clean_frames():
    video = _video(
        [
            _static("square", "red", 10.0, 12.0, 3.0),
            _static("circle", "blue", 22.0, 8.0, 4.0),
            _static("triangle", "yellow", 20.0, 24.0, 5.0),
        ],
        t=1,
    )
    det = detect_objects(video)
    assert (det.height, det.width) == (SIZE, SIZE)
    assert det.colours(0) == ("blue", "red", "yellow")
    red, blue, yellow = det.find(0, "red")[0], det.find(0, "blue")[0], det.find(0, "yellow")[0]
    assert (
        red.centre == pytest.approx((10.0, 12.0), abs=1e-9) and red.area == 36 and red.bbox == (7, 9, 12, 14)
    )
    assert blue.centre == pytest.approx((22.0, 8.0), abs=1e-9)
    assert yellow.centre == pytest.approx((20.0, 24.0), abs=0.5)
    assert [red.shape, blue.shape, yellow.shape] == ["square", "circle", "triangle"]


def test_detection_survives_blur_noise_and_dim_colours():
    video = _video(
        [_static("square", "yellow", 9.0, 9.0, 4.0, 2), _static("circle", "white", 22.0, 21.0, 5.0, 2)], t=2
    )
    blurred = F.avg_pool2d(
        (video + 1) / 2, 3, stride=1, padding=1
    )  # dim edge pixels: half-bright yellow etc.
    noisy = (blurred * 0.85 + 0.05 * torch.randn_like(blurred)).clamp(0, 1) * 2 - 1
    det = detect_objects(noisy)
    for t in range(2):
        assert det.colours(t) == ("white", "yellow")  # no red/green fringes, white is not a sum of objects
        assert det.find(t, "yellow")[0].centre == pytest.approx((9.0, 9.0), abs=0.5)
        assert det.find(t, "white")[0].centre == pytest.approx((22.0, 21.0), abs=0.5)


def test_half_bright_yellow_is_yellow_and_dark_pixels_are_background():
    frame = torch.zeros(1, 3, 2, 2)
    frame[0, :, 0, 0] = torch.tensor([0.5, 0.5, 0.0])  # half-bright yellow (nearest RGB would say red/green)
    frame[0, :, 0, 1] = torch.tensor([0.1, 0.0, 0.0])  # too dark
    frame[0, :, 1, 0] = torch.tensor([0.9, 0.9, 0.9])  # white
    labels = classify_pixels(frame, value_range=(0.0, 1.0))
    names = list(PALETTE)
    assert labels[0, 0, 0] == names.index("yellow")
    assert labels[0, 0, 1] == -1 and labels[0, 1, 1] == -1
    assert labels[0, 1, 0] == names.index("white")


def test_overlap_and_noise_specks():
    video = _video(
        [_static("circle", "red", 12.0, 12.0, 6.0), _static("square", "blue", 16.0, 12.0, 3.0)], t=1
    )
    video[0, :, 28, 28] = torch.tensor([-1.0, 1.0, -1.0])  # a one-pixel green speck: below min_area
    det = detect_objects(video)
    assert det.colours(0) == ("blue", "red")
    assert det.find(0, "blue")[0].centre == pytest.approx((16.0, 12.0), abs=1e-9)
    # a red circle cut in two by a blue bar counts once by default, twice when components are kept apart
    video = _video(
        [_static("circle", "red", 16.0, 16.0, 7.0), _static("square", "blue", 16.0, 16.0, 2.0)], t=1
    )
    video[0, :, :, 14:19] = torch.tensor([-1.0, -1.0, 1.0])[:, None, None]
    assert detect_objects(video).colours(0) == ("blue", "red")
    assert detect_objects(video, merge_same_colour=False).colours(0) == ("blue", "red", "red")


def test_classify_shape_rule():
    assert classify_shape(1.0) == "square"
    assert classify_shape(math.pi / 4) == "circle"
    assert classify_shape(0.5) == "triangle"
    assert classify_shape(0.7, offset=0.15) == "triangle"
    assert classify_shape(0.9, corners=4) == "square" and classify_shape(0.9, corners=0) == "circle"


def test_persistence():
    t = 10
    stable = _video(
        [_static("square", "red", 8.0, 8.0, 3.0, t), _static("circle", "green", 22.0, 22.0, 4.0, t)], t
    )
    assert persistence(detect_objects(stable)) == 1.0
    assert persistence(detect_objects(stable), reference=["green", "red"]) == 1.0
    vanish = _static("circle", "green", 22.0, 22.0, 4.0, t)
    vanish["centres"] = vanish["centres"][:5] + [None] * 5
    det = detect_objects(_video([_static("square", "red", 8.0, 8.0, 3.0, t), vanish], t))
    assert persistence(det) == pytest.approx(4 / 9)  # frames 1..9 against frame 0
    assert persistence(det, reference=["red", "green"]) == pytest.approx(5 / 10)
    assert persistence(det, reference=["red"]) == pytest.approx(5 / 10)
    with pytest.raises(ValueError, match="reference.*valid names"):
        persistence(det, reference=["purple"])


def test_prediction_error_is_zero_for_ground_truth_and_the_shift_otherwise():
    t = 6
    xs = [6.0 + 2 * k for k in range(t)]
    obj = {"shape": "square", "colour": "cyan", "s": 3.0, "centres": [(x, 10.0) for x in xs]}
    gt = torch.tensor([[(x, 10.0) for x in xs]])  # (1, t, 2)
    det = detect_objects(_video([obj], t))
    pe = prediction_error(det, gt, ["cyan"], frames=range(3, 6))
    assert pe.error.shape == (3,)
    torch.testing.assert_close(pe.error, torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(pe.miss_rate, torch.zeros(3, dtype=torch.float64))
    shifted = dict(obj, centres=[(x + 3.0, 14.0) for x in xs])  # off by (3, 4): distance 5
    pe = prediction_error(detect_objects(_video([shifted], t)), gt, ["cyan"])
    torch.testing.assert_close(pe.error, torch.full((t,), 5.0, dtype=torch.float64))
    # a missed object: nan error (or the penalty) and miss rate 1 at that step
    gone = dict(obj, centres=obj["centres"][:5] + [None])
    pe = prediction_error(detect_objects(_video([gone], t)), gt, ["cyan"])
    assert math.isnan(pe.error[5]) and pe.miss_rate[5] == 1.0 and pe.error[:5].abs().max() == 0
    pe = prediction_error(detect_objects(_video([gone], t)), gt, ["cyan"], miss_penalty=16.0)
    assert pe.error[5] == 16.0
    with pytest.raises(ValueError, match="centres"):
        prediction_error(det, gt[:, :3], ["cyan"])


def test_motion_consistency_bouncing_vs_jittering():
    t, s = 40, 3.0
    xs = _bounce(10.0, 1.0, s, SIZE - s, t)  # integer speeds: exact centroids, several wall bounces
    ys = _bounce(6.0, 2.0, s, SIZE - s, t)
    bouncing = {"shape": "square", "colour": "magenta", "s": s, "centres": list(zip(xs, ys))}
    for p in (xs, ys):  # it does bounce off the walls on both axes
        steps = np.diff(p)
        assert (steps > 0).any() and (steps < 0).any()
    assert motion_consistency(detect_objects(_video([bouncing], t))) == 1.0
    # sub-pixel speed and a circle: pixel quantisation only, still consistent within the tolerance
    circle = {
        "shape": "circle",
        "colour": "green",
        "s": 4.0,
        "centres": list(zip(_bounce(9.0, 0.7, 4.0, SIZE - 4.0, t), _bounce(20.0, -1.3, 4.0, SIZE - 4.0, t))),
    }
    assert motion_consistency(detect_objects(_video([circle], t))) >= 0.9
    rng = np.random.default_rng(0)
    jitter = dict(bouncing, centres=[(16.0 + rng.choice([-2.0, 2.0]), 16.0) for _ in range(t)])
    assert motion_consistency(detect_objects(_video([jitter], t))) < 0.5
    assert math.isnan(motion_consistency(detect_objects(_video([bouncing], 2))))


def test_parse_caption():
    assert parse_caption("a red circle and a blue square") == [("red", "circle"), ("blue", "square")]
    assert parse_caption("A Red circle, a green triangle and a white square") == [
        ("red", "circle"),
        ("green", "triangle"),
        ("white", "square"),
    ]
    assert parse_caption("two yellow circles and something magenta") == [
        ("yellow", "circle"),
        ("magenta", None),
    ]
    with pytest.raises(ValueError, match="caption"):
        parse_caption("a purple blob")


def test_caption_accuracy():
    t = 4
    red = _static("circle", "red", 9.0, 9.0, 5.0, t)
    blue = _static("square", "blue", 22.0, 22.0, 4.0, t)
    det = detect_objects(_video([red, blue], t))
    cs = caption_accuracy(det, "a red circle and a blue square")
    assert (cs.colour, cs.shape, cs.precision) == (1.0, 1.0, 1.0)
    cs = caption_accuracy(det, "a red circle and a blue triangle")
    assert (cs.colour, cs.shape) == (1.0, 0.5)
    green = _static("triangle", "green", 22.0, 8.0, 4.0, t)
    cs = caption_accuracy(detect_objects(_video([red, green], t)), "a red circle and a blue square")
    assert (cs.colour, cs.shape, cs.precision) == (0.5, 0.5, 0.5)


def test_shapes_scores_dict():
    t = 8
    xs = [6.0 + k for k in range(t)]
    obj = {"shape": "square", "colour": "red", "s": 3.0, "centres": [(x, 10.0) for x in xs]}
    video = _video([obj], t)
    out = shapes_scores(
        video,
        caption="a red square",
        centres=torch.tensor([[(x, 10.0) for x in xs]]),
        colours=["red"],
        frames=range(4, 8),
    )
    assert out["persistence"] == 1.0 and out["motion_consistency"] == 1.0
    assert out["prediction_error"] == 0.0 and out["prediction_error_per_step"] == [0.0] * 4
    assert out["caption_colour"] == 1.0 and out["caption_shape"] == 1.0
    with pytest.raises(ValueError, match="centres, colours"):
        shapes_scores(video, colours=["red"])


def test_mean_scores_ignores_nan_and_averages_steps():
    results = [
        {"persistence": 1.0, "motion_consistency": math.nan, "prediction_error_per_step": [0.0, 2.0]},
        {"persistence": 0.5, "motion_consistency": 0.8, "prediction_error_per_step": [1.0, math.nan]},
    ]
    out = mean_scores(results)
    assert out == {"persistence": 0.75, "motion_consistency": 0.8, "prediction_error_per_step": [0.5, 2.0]}
