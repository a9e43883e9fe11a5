"""Statistics of FDM-style training masks (vidiff.masks)."""

import math

import pytest
import torch

from vidiff.masks import DEFAULT_MASK_TASKS, MASK_TASKS, FrameMask, FrameMaskSampler


def _draw(sampler: FrameMaskSampler, length: int, n: int, seed: int = 0) -> list[FrameMask]:
    g = torch.Generator().manual_seed(seed)
    return [sampler(length, g) for _ in range(n)]


@pytest.mark.parametrize("spacing", ["log_uniform", "uniform", "contiguous"])
@pytest.mark.parametrize("length", [1, 2, 5, 8, 37, 1000])
def test_masks_are_sorted_unique_in_range_with_a_latent_frame(spacing, length):
    sampler = FrameMaskSampler(
        8, spacing=spacing, tasks={"unconditional": 1, "prediction": 1, "arbitrary": 1}
    )
    for mask in _draw(sampler, length, 200):
        idx = mask.frame_idx
        assert idx.dtype == torch.long and mask.observed.dtype == torch.bool
        assert len(mask) == min(8, length) == mask.observed.numel()
        assert bool((idx[1:] > idx[:-1]).all()), "frame_idx must be sorted and unique"
        assert 0 <= int(idx.min()) and int(idx.max()) < length
        assert int(mask.latent.sum()) >= 1
        assert bool((mask.latent ^ mask.observed).all()), (
            "observed and latent are disjoint and cover the frames"
        )


def test_tasks_shape_the_split():
    sampler = FrameMaskSampler(8, tasks={t: 1.0 for t in MASK_TASKS})
    seen = set()
    for mask in _draw(sampler, 200, 600):
        obs = mask.observed.tolist()
        m = sum(obs)
        seen.add(mask.task)
        if mask.task == "unconditional":
            assert m == 0
        elif mask.task == "prediction":
            assert 1 <= m <= 7 and obs == [True] * m + [False] * (8 - m)
        elif mask.task == "past_prediction":
            assert 1 <= m <= 7 and obs == [False] * (8 - m) + [True] * m
        elif mask.task == "interpolation":
            assert obs[0] and obs[-1] and m <= 7
            first_latent, last_latent = obs.index(False), 7 - obs[::-1].index(False)
            assert all(not o for o in obs[first_latent : last_latent + 1]), (
                "latent frames form one middle block"
            )
        elif mask.task == "fdm":
            assert len(mask) <= 8 and int(mask.latent.sum()) >= 1
        else:
            assert 1 <= m <= 7
    assert seen == set(MASK_TASKS)


def test_task_mix_frequencies_match_weights():
    weights = {"unconditional": 1.0, "prediction": 4.0, "interpolation": 2.0, "arbitrary": 3.0}
    sampler = FrameMaskSampler(6, tasks=weights)
    n = 4000
    counts = {t: 0 for t in MASK_TASKS}
    for mask in _draw(sampler, 64, n):
        counts[mask.task] += 1
    total = sum(weights.values())
    for task in MASK_TASKS:
        p = weights.get(task, 0.0) / total
        tol = 4 * math.sqrt(p * (1 - p) / n) + 1e-9
        assert abs(counts[task] / n - p) <= tol, (task, counts[task] / n, p)


def test_log_uniform_spacing_covers_close_and_far_gaps_when_video_is_long():
    sampler = FrameMaskSampler(8, tasks={"unconditional": 1.0})
    gaps, spans = [], []
    for mask in _draw(sampler, 10_000, 1500):
        d = mask.frame_idx.diff().double()
        gaps.append(d)
        spans.append(float(mask.frame_idx[-1] - mask.frame_idx[0]))
    gaps = torch.cat(gaps)
    assert float((gaps == 1).double().mean()) > 0.02, "adjacent frames must appear"
    assert float((gaps >= 1000).double().mean()) > 0.05, "gaps of >= 10% of the video must appear"
    log_gap = gaps.log10()
    # log-uniform scales: every decade between 1 and 1000 frames holds a fair share of the gaps
    for lo in range(3):
        share = float(((log_gap >= lo) & (log_gap < lo + 1)).double().mean())
        assert share > 0.08, (lo, share)
    assert max(spans) > 5000 and min(spans) < 50


def test_uniform_spacing_is_mostly_far_and_contiguous_is_adjacent():
    uni = FrameMaskSampler(8, spacing="uniform", tasks={"unconditional": 1.0})
    con = FrameMaskSampler(8, spacing="contiguous", tasks={"unconditional": 1.0})
    gaps = torch.cat([m.frame_idx.diff() for m in _draw(uni, 10_000, 200)]).double()
    assert float(gaps.median()) > 300  # mean gap of a uniform 8-subset of 10k frames is ~1100
    for mask in _draw(con, 10_000, 50):
        assert mask.frame_idx.diff().eq(1).all()


def test_every_position_is_reachable_by_log_uniform_sampling():
    sampler = FrameMaskSampler(4, tasks={"unconditional": 1.0})
    hits = torch.zeros(40)
    for mask in _draw(sampler, 40, 800):
        hits[mask.frame_idx] += 1
    assert bool((hits > 0).all())


def test_max_observed_and_min_latent_are_respected():
    sampler = FrameMaskSampler(8, max_observed=3, min_latent=2, tasks={t: 1.0 for t in MASK_TASKS if t != "fdm"})
    for mask in _draw(sampler, 100, 400):
        assert int(mask.observed.sum()) <= 3
        assert int(mask.latent.sum()) >= 2


def test_short_video_drops_tasks_that_do_not_fit():
    sampler = FrameMaskSampler(8, tasks={"interpolation": 1.0, "prediction": 1.0})
    assert sampler.min_length() == 2
    tasks = {m.task for m in _draw(sampler, 2, 100)}
    assert tasks == {"prediction"}
    only_interp = FrameMaskSampler(8, tasks={"interpolation": 1.0})
    assert only_interp.min_length() == 3
    with pytest.raises(ValueError, match="video_length"):
        only_interp(2)


def test_same_generator_seed_same_masks():
    sampler = FrameMaskSampler(8)
    a, b = _draw(sampler, 500, 20, seed=3), _draw(sampler, 500, 20, seed=3)
    for x, y in zip(a, b):
        assert (
            torch.equal(x.frame_idx, y.frame_idx) and torch.equal(x.observed, y.observed) and x.task == y.task
        )


def test_default_tasks_are_valid_names():
    assert set(DEFAULT_MASK_TASKS) <= set(MASK_TASKS)
    assert FrameMaskSampler(4).tasks == {t: DEFAULT_MASK_TASKS.get(t, 0.0) for t in MASK_TASKS}


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"max_frames": 1}, "max_frames"),
        ({"max_frames": 8, "tasks": {"predict": 1.0}}, "predict"),
        ({"max_frames": 8, "tasks": {"prediction": -1.0}}, "prediction"),
        ({"max_frames": 8, "tasks": {"prediction": 0.0}}, "tasks"),
        ({"max_frames": 8, "spacing": "linear"}, "spacing"),
        ({"max_frames": 8, "min_latent": 0}, "min_latent"),
        ({"max_frames": 8, "max_observed": 8}, "max_observed"),
        ({"max_frames": 8, "max_observed": 1, "tasks": {"interpolation": 1.0}}, "interpolation"),
        ({"max_frames": 8, "max_observed": 0, "tasks": {"prediction": 1.0}}, "max_observed"),
    ],
)
def test_bad_arguments_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        FrameMaskSampler(**kwargs)


def test_unknown_task_lists_valid_names():
    with pytest.raises(ValueError, match="past_prediction"):
        FrameMaskSampler(8, tasks={"nope": 1.0})


def test_spacing_mixture_draws_each_spacing_in_proportion():
    sampler = FrameMaskSampler(8, spacing={"contiguous": 0.75, "log_uniform": 0.25})
    g = torch.Generator().manual_seed(0)
    contiguous = 0
    for _ in range(400):
        idx = sampler(64, g).frame_idx
        contiguous += bool((idx.diff() == 1).all())
    # log-uniform draws are almost never 8 consecutive frames out of 64
    assert 0.68 < contiguous / 400 < 0.82


def test_spacing_mixture_errors_name_the_key():
    with pytest.raises(ValueError, match="unknown spacing 'wobbly'"):
        FrameMaskSampler(8, spacing={"wobbly": 1.0})
    with pytest.raises(ValueError, match=r"spacing\['contiguous'\]"):
        FrameMaskSampler(8, spacing={"contiguous": -1.0})
    with pytest.raises(ValueError, match="at least one positive"):
        FrameMaskSampler(8, spacing={"contiguous": 0.0})


def test_fdm_mask_matches_fdm_closed_form_for_two_frames():
    """FDM's sample_all_masks with K = 2 on a very long video (collisions negligible): the first (latent) group
    has 1 or 2 frames (1/2 each); after 2 the next group never fits; after 1, the next group fits only with
    size 1 (1/2), and then joins the observed or the latent frames by a fair coin. So n = 1 with p 1/4, n = 2
    with p 3/4, and one observed frame with p 1/8."""
    sampler = FrameMaskSampler(2, tasks={"fdm": 1.0})
    masks = _draw(sampler, 10**6, 4000)
    n1 = sum(len(m) == 1 for m in masks) / len(masks)
    obs = sum(int(m.observed.sum()) == 1 for m in masks) / len(masks)
    for got, p in ((n1, 0.25), (obs, 0.125)):
        assert abs(got - p) <= 4 * math.sqrt(p * (1 - p) / len(masks)), (got, p)
    assert all(m.task == "fdm" and 1 <= len(m) <= 2 and not bool(m.observed.all()) for m in masks)


def test_fdm_masks_are_valid_and_often_shorter_than_k():
    sampler = FrameMaskSampler(8, tasks={"fdm": 1.0}, spacing="contiguous")  # spacing does not apply to fdm
    masks = _draw(sampler, 64, 1000)
    for mask in masks:
        idx = mask.frame_idx
        assert 1 <= len(mask) <= 8 and bool((idx[1:] > idx[:-1]).all())
        assert 0 <= int(idx.min()) and int(idx.max()) < 64 and int(mask.latent.sum()) >= 1
    lengths = [len(m) for m in masks]
    assert 0.6 < sum(n < 8 for n in lengths) / len(masks) < 0.9, "FDM stops at the first group that does not fit"
    gaps = torch.cat([m.frame_idx.diff() for m in masks if len(m) > 1])
    assert float((gaps > 1).float().mean()) > 0.5, "log-uniform group spacing, not contiguous frames"
    unconditional = sum(not bool(m.observed.any()) for m in masks) / len(masks)
    assert 0.6 < unconditional < 0.85, "most FDM draws observe nothing (the first latent group often fills K)"


def test_fdm_samples_pad_to_k_frames_in_the_shapes_world():
    from vidiff.data.shapes import ShapesWorld

    world = ShapesWorld(num_videos=4, length=32, image_size=16, sampler=FrameMaskSampler(8, tasks={"fdm": 1.0}))
    item = world[0]
    n = int(item["valid"].sum())
    assert item["video"].shape[0] == 8 and 1 <= n <= 8
    assert bool(item["valid"][:n].all()) and not bool(item["valid"][n:].any())
    assert not bool(item["observed"][n:].any()) and bool((item["video"][n:] == 0).all())
