"""Shapes world: determinism, analytic bouncing motion, exact palette colours, sample dicts."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vidiff.data.shapes import ShapesWorld, caption_of, fold
from vidiff.masks import FrameMaskSampler
from vidiff.palette import PALETTE, SHAPES


def _simulate(start, velocity, lo, hi, steps):
    """Step-by-step elastic bounces (reference for the analytic fold); speed < hi - lo."""
    p, v = np.array(start, dtype=np.float64), np.array(velocity, dtype=np.float64)
    out = [p.copy()]
    for _ in range(steps):
        p = p + v
        for ax in range(2):
            if p[ax] > hi[ax]:
                p[ax], v[ax] = 2 * hi[ax] - p[ax], -v[ax]
            elif p[ax] < lo[ax]:
                p[ax], v[ax] = 2 * lo[ax] - p[ax], -v[ax]
        out.append(p.copy())
    return np.stack(out)


def test_fold_matches_step_by_step_bounces_to_frame_10000():
    world = ShapesWorld(num_videos=4, seed=3)
    for index in range(4):
        scene = world.scene(index)
        for obj in range(len(scene.sizes)):
            s = scene.sizes[obj]
            ref = _simulate(scene.start[obj], scene.velocity[obj], [s, s], [32 - s, 32 - s], 10_000)
            frames = [0, 1, 7, 333, 9_999, 10_000]
            got = world.tracks(index, frames).centers[obj].double().numpy()
            np.testing.assert_allclose(got, ref[frames], atol=1e-3)


def test_fold_closed_form():
    lo, hi = np.array([2.0]), np.array([5.0])
    p = np.array([2.0, 3.5, 5.0, 6.0, 8.0, 9.5, 11.0, -1.0])
    np.testing.assert_allclose(fold(p, lo, hi), [2.0, 3.5, 5.0, 4.0, 2.0, 3.5, 5.0, 5.0])


def test_video_is_deterministic_per_seed_and_index():
    a, b, c = (
        ShapesWorld(num_videos=5, seed=1),
        ShapesWorld(num_videos=5, seed=1),
        ShapesWorld(num_videos=5, seed=2),
    )
    idx = torch.tensor([0, 5, 40])
    assert torch.equal(a.render(2, idx), b.render(2, idx))
    assert not torch.equal(a.render(2, idx), a.render(3, idx))
    assert not torch.equal(a.render(2, idx), c.render(2, idx))
    assert a.caption(4) == b.caption(4)


def test_colours_are_exact_palette_values_and_objects_stay_inside():
    world = ShapesWorld(num_videos=20, seed=0)
    allowed = {(0, 0, 0), *PALETTE.values()}
    for index in range(20):
        video = world.render(index, torch.arange(0, 200, 13))  # (k, 3, h, w)
        assert video.shape == (16, 3, 32, 32) and video.min() >= -1 and video.max() <= 1
        rgb = ((video + 1) * 127.5).round().to(torch.uint8)
        colours = {tuple(c) for c in rgb.permute(0, 2, 3, 1).reshape(-1, 3).unique(dim=0).tolist()}
        tracks = world.tracks(index, torch.arange(0, 200, 13))
        assert colours <= allowed
        assert colours - {(0, 0, 0)} <= {PALETTE[c] for c in tracks.colors}
        lo, hi = tracks.sizes[:, None, None], 32 - tracks.sizes[:, None, None]
        assert bool(((tracks.centers >= lo - 1e-4) & (tracks.centers <= hi + 1e-4)).all())


@pytest.mark.parametrize("shape", SHAPES)
def test_rendered_pixels_sit_at_the_track_centre(shape):
    world = ShapesWorld(num_videos=60, min_objects=1, max_objects=1, image_size=48, seed=5)
    found = 0
    for index in range(60):
        tracks = world.tracks(index, [0, 17])
        if tracks.shapes[0] != shape:
            continue
        found += 1
        video = world.render(index, [0, 17])
        s = float(tracks.sizes[0])
        for f in range(2):
            on = (video[f] > 0).any(0)  # (h, w)
            ys, xs = torch.nonzero(on, as_tuple=True)
            x, y = tracks.centers[0, f]
            assert abs(float(xs.double().mean() + 0.5) - float(x)) < 0.6
            if shape == "triangle":  # area centroid is 2/3 of the way down from the apex
                assert abs(float(ys.double().mean() + 0.5) - (float(y) + s / 3)) < 0.8
                area = 2 * s * s
            else:
                assert abs(float(ys.double().mean() + 0.5) - float(y)) < 0.6
                area = np.pi * s * s if shape == "circle" else 4 * s * s
            assert abs(int(on.sum()) - area) <= 4 * s + 4  # boundary pixels
    assert found > 0


def test_speed_and_attribute_ranges():
    world = ShapesWorld(num_videos=200, seed=0, speed=(0.5, 2.0), min_objects=1, max_objects=3)
    counts, colours, shapes = set(), set(), set()
    for index in range(200):
        scene = world.scene(index)
        speeds = np.linalg.norm(scene.velocity, axis=1)
        assert ((speeds >= 0.5) & (speeds <= 2.0)).all()
        assert len(set(scene.colors.tolist())) == len(scene.colors), "colours are distinct within a video"
        sizes = scene.sizes
        assert ((sizes >= 3.0) & (sizes <= 6.0)).all()
        counts.add(len(sizes))
        colours.update(world.tracks(index, [0]).colors)
        shapes.update(world.tracks(index, [0]).shapes)
    assert counts == {1, 2, 3} and colours == set(PALETTE) and shapes == set(SHAPES)


def test_captions():
    assert caption_of(["red"], ["circle"]) == "a red circle"
    assert caption_of(["red", "blue"], ["circle", "square"]) == "a red circle and a blue square"
    assert (
        caption_of(["red", "blue", "green"], ["circle", "square", "triangle"])
        == "a red circle, a blue square and a green triangle"
    )
    world = ShapesWorld(num_videos=3)
    tracks = world.tracks(1, [0])
    assert world.caption(1) == caption_of(tracks.colors, tracks.shapes)


def test_sample_dict_matches_render_and_tracks():
    world = ShapesWorld(num_videos=6, length=300, sampler=FrameMaskSampler(6), seed=4)
    sample = world[2]
    assert sample["video"].shape == (6, 3, 32, 32) and sample["video"].dtype == torch.float32
    assert sample["frame_idx"].dtype == torch.long and sample["frame_idx"].shape == (6,)
    assert sample["observed"].dtype == torch.bool and sample["valid"].all()
    assert (sample["frame_idx"].diff() > 0).all() and sample["frame_idx"].max() < 300
    assert torch.equal(sample["video"], world.render(2, sample["frame_idx"]))
    tracks = world.tracks(2, sample["frame_idx"])
    m = len(tracks.colors)
    assert sample["object_valid"].tolist() == [True] * m + [False] * (3 - m)
    assert torch.equal(sample["centers"][:m], tracks.centers) and (sample["centers"][m:] == 0).all()
    assert sample["colors"][:m].tolist() == [list(PALETTE).index(c) for c in tracks.colors]
    assert sample["shapes"][:m].tolist() == [SHAPES.index(s) for s in tracks.shapes]
    assert (sample["colors"][m:] == -1).all() and sample["caption"] == world.caption(2)


def test_short_video_slots_are_invalid_not_padded_frames():
    world = ShapesWorld(num_videos=3, length=5, sampler=FrameMaskSampler(8))
    sample = world[1]
    assert sample["valid"].tolist() == [True] * 5 + [False] * 3
    assert sample["frame_idx"][:5].tolist() == [0, 1, 2, 3, 4]
    assert (sample["frame_idx"].diff() > 0).all()
    assert not sample["observed"][5:].any() and (sample["video"][5:] == 0).all()
    assert (~sample["observed"][:5]).any(), "at least one real latent frame"


def test_epoch_keys_change_masks_not_content():
    world = ShapesWorld(num_videos=50, length=1000)
    assert all(torch.equal(world[i]["frame_idx"], world[(0, i)]["frame_idx"]) for i in range(5))
    changed = sum(not torch.equal(world[(0, i)]["frame_idx"], world[(1, i)]["frame_idx"]) for i in range(20))
    assert changed >= 15
    a, b = world[(0, 3)], world[(1, 3)]
    assert a["caption"] == b["caption"]
    assert torch.equal(b["video"], world.render(3, b["frame_idx"]))


def test_index_offset_gives_a_disjoint_world():
    a, b = ShapesWorld(num_videos=10), ShapesWorld(num_videos=10, index_offset=10)
    big = ShapesWorld(num_videos=20)
    assert torch.equal(b.render(3, [0, 9]), big.render(13, [0, 9]))
    assert not torch.equal(a.render(3, [0, 9]), b.render(3, [0, 9]))


def test_antialias_blends_edges():
    sharp, smooth = ShapesWorld(num_videos=2), ShapesWorld(num_videos=2, antialias=4)
    v_sharp, v_smooth = sharp.render(0, [0]), smooth.render(0, [0])
    assert set(v_sharp.unique().tolist()) <= {-1.0, 1.0}
    assert len(v_smooth.unique()) > 2
    assert (v_sharp - v_smooth).abs().mean() < 0.1


def test_default_collate_stacks_samples():
    world = ShapesWorld(num_videos=8, min_objects=1, max_objects=3)
    batch = next(iter(DataLoader(world, batch_size=4)))
    assert batch["video"].shape == (4, 8, 3, 32, 32)
    assert batch["centers"].shape == (4, 3, 8, 2) and len(batch["caption"]) == 4


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"num_videos": 0}, "num_videos"),
        ({"length": -3}, "length"),
        ({"image_size": 0}, "image_size"),
        ({"min_objects": 2, "max_objects": 1}, "max_objects"),
        ({"max_objects": 8}, "max_objects"),
        ({"speed": (2.0, 1.0)}, "speed"),
        ({"size": (3.0, 20.0)}, "size"),
        ({"antialias": 0}, "antialias"),
    ],
)
def test_bad_arguments_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        ShapesWorld(**kwargs)
