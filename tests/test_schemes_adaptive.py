"""Adaptive context selection (FDM's Ad. schemes) with synthetic embeddings."""

import pytest
import torch
from test_schemes_properties import invalid_reason

from vidiff.schemes import choose_observed, frame_embedding, plan, resolve_stage


def test_greedy_max_min_picks_the_most_different_frames():
    # frames 0-4: scene A (0.0), 5-9: scene B (10.0) except frame 7 (5.0)
    emb = {f: [0.0] if f < 5 else [10.0] for f in range(10)}
    emb[7] = [5.0]
    # closest frame 9 first; then the farthest (scene A; among equals the temporally closest, 4); then 7
    assert choose_observed([10, 11], range(10), emb, max_frames=5) == [4, 7, 9]


def test_anchors_come_first_and_latent_frames_are_never_chosen():
    emb = {f: [float(f)] for f in range(20)}
    chosen = choose_observed([10, 11, 12], range(20), emb, max_frames=6, anchors=[9, 13])
    assert 9 in chosen and 13 in chosen and len(chosen) == 3
    assert not set(chosen) & {10, 11, 12}
    assert chosen == [0, 9, 13]  # farthest from {9, 13} in embedding space: frame 0 (distance 81) vs 19 (36)


def test_count_is_capped_by_what_is_available():
    emb = {0: [0.0], 1: [1.0]}
    assert choose_observed([2, 3], [0, 1], emb, max_frames=8) == [0, 1]
    assert choose_observed([2, 3], [], {}, max_frames=8) == []


@pytest.mark.parametrize("seed", range(5))
def test_random_embeddings_properties(seed):
    g = torch.Generator().manual_seed(seed)
    available = sorted(torch.randperm(40, generator=g)[:15].tolist())
    latent = [f for f in range(40) if f not in available][:4]
    emb = {f: torch.randn(6, generator=g) for f in available}
    chosen = choose_observed(latent, available, emb, max_frames=10)
    assert len(chosen) == 6 == len(set(chosen)) and set(chosen) <= set(available)
    closest = min(available, key=lambda f: (min(abs(f - t) for t in latent), f))
    assert closest in chosen
    # greedy invariant: the second pick is the frame farthest from the first
    vecs = torch.stack([emb[f] for f in available])
    far = available[int(((vecs - emb[closest]) ** 2).sum(1).argmax())]
    assert far in chosen


def test_embeddings_may_be_lists_tensors_or_mixed_and_missing_ones_are_named():
    emb = {0: torch.tensor([0.0, 1.0]), 1: [3.0, 4.0], 2: (1.0, 1.0)}
    assert choose_observed([3], [0, 1, 2], emb, max_frames=3) in ([1, 2], [0, 2])
    with pytest.raises(ValueError, match="embeddings.*1"):
        choose_observed([3], [0, 1, 2], {0: [0.0], 2: [1.0]}, max_frames=4)


def test_frame_embedding_is_a_small_thumbnail():
    frame = torch.rand(3, 32, 48) * 2 - 1
    e = frame_embedding(frame)
    assert e.shape == (3 * 8 * 8,)
    assert torch.allclose(e.view(3, 8, 8)[:, 0, 0], frame[:, :4, :6].mean(dim=(1, 2)), atol=1e-6)
    assert torch.allclose(frame_embedding(torch.full((1, 16, 16), 0.5), size=4), torch.full((16,), 0.5))
    with pytest.raises(ValueError, match="frame"):
        frame_embedding(torch.zeros(2, 3, 8, 8))


@pytest.mark.parametrize("name", ["adaptive", "adaptive-hierarchy-2", "adaptive-hierarchy-3"])
def test_executor_simulation_gives_valid_plans(name):
    length, k, s, given = 80, 8, 4, list(range(6))
    stages = plan(name, length, k, s, given)
    assert all(st.adaptive for st in stages)
    g = torch.Generator().manual_seed(0)
    emb, done, resolved = {f: torch.randn(4, generator=g) for f in given}, set(given), []
    for st in stages:
        assert set(st.anchors) <= done and set(st.observed) <= done
        run = resolve_stage(st, done, emb, k)
        assert not run.adaptive and run.latent == st.latent and set(st.anchors) <= set(run.observed)
        resolved.append(run)
        done |= set(st.latent)
        emb.update({f: torch.randn(4, generator=g) for f in st.latent})  # "generated" frames
    assert invalid_reason(resolved, length, k, given) is None


def test_adaptive_anchors_follow_fdm():
    auto = plan("adaptive", 40, 8, 4, range(10))
    assert auto[0].anchors == [9] and auto[0].latent == [10, 11, 12, 13]
    hier = plan("adaptive-hierarchy-2", 40, 8, 4, range(10))
    later = hier[1]  # a level-2 stage: two closest done frames before, one after
    lo, hi = min(later.latent), max(later.latent)
    assert len([a for a in later.anchors if a < lo]) == 2 and len([a for a in later.anchors if a > hi]) == 1
    uncond = plan("adaptive", 40, 8, 4)
    assert not uncond[0].adaptive and uncond[1].adaptive  # the unconditional first stage is fixed


def test_resolve_stage_leaves_fixed_stages_alone():
    st = plan("autoregressive", 20, 4, 2, range(3))[0]
    assert resolve_stage(st, range(3), {}, 4) is st
