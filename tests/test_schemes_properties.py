"""Plan invariants for every scheme over a grid of settings (corners included), bad input, and batching."""

import random

import pytest

from vidiff.schemes import SCHEMES, Stage, batches, check_plan, plan

ALL = [
    "autoregressive",
    "long-range",
    "hierarchy-2",
    "hierarchy-3",
    "adaptive",
    "adaptive-hierarchy-2",
    "predict-then-interpolate",
    "interpolate",
    "interpolate-inward",
    "unconditional",
]


def invalid_reason(stages, length, max_frames, given):
    """Why ``stages`` (Stage or (observed, latent) pairs) break a plan's invariants; None if valid.
    Written independently of vidiff.schemes.check_plan."""
    done = set(given)
    for i, st in enumerate(stages):
        obs, lat = (st.observed, st.latent) if isinstance(st, Stage) else st
        if not lat:
            return f"stage {i} generates nothing"
        if len(set(obs)) < len(obs) or len(set(lat)) < len(lat):
            return f"stage {i} repeats an index"
        if set(obs) & set(lat):
            return f"stage {i} observes a frame it generates"
        if len(obs) + len(lat) > max_frames:
            return f"stage {i} holds more than K frames"
        if min(obs + lat) < 0 or max(obs + lat) >= length:
            return f"stage {i} index out of range"
        if not set(obs) <= done:
            return f"stage {i} observes a frame not yet available"
        if done and not obs:
            return f"stage {i} observes nothing though frames are available"
        if set(lat) & done:
            return f"stage {i} regenerates a frame"
        done |= set(lat)
    if done != set(range(length)):
        return "some frames are never produced"
    return None


def given_variants(length, max_frames):
    rng = random.Random(length * 100 + max_frames)
    yield ()
    for n in {1, 2, max_frames - 1, max_frames, max_frames + 3, length // 2, length - 1, length}:
        if 0 < n <= length:
            yield tuple(range(n))
    yield (length - 1,)  # only the last frame
    yield (length // 2,)  # only a middle frame
    yield (0, length - 1)  # both ends
    yield tuple(range(0, length, 5))  # sparse keyframes
    yield tuple(sorted(rng.sample(range(length), max(1, length // 3))))  # random, not a prefix


def settings():
    for length, max_frames in [(2, 2), (3, 2), (5, 3), (8, 4), (8, 8), (13, 5), (20, 6), (31, 8), (40, 20)]:
        steps = sorted({1, 2, max_frames // 2, max_frames - 2, max_frames - 1} & set(range(1, max_frames)))
        for step_size in steps:
            for given in given_variants(length, max_frames):
                yield length, max_frames, step_size, given


@pytest.mark.parametrize("name", ALL)
def test_every_plan_is_valid_or_a_clear_error(name):
    valid = 0
    for length, max_frames, step_size, given in settings():
        try:
            stages = plan(name, length, max_frames, step_size, given)
        except ValueError as err:
            # the only legitimate refusals: scheme needs keyframes / takes none
            assert (name.startswith("interpolate") and not given) or (name == "unconditional" and given), err
            assert "given" in str(err)
            continue
        reason = invalid_reason(stages, length, max_frames, given)
        assert reason is None, (name, length, max_frames, step_size, given, reason)
        check_plan(stages, length, max_frames, given)  # vidiff's own check agrees
        valid += 1
    assert valid > (20 if name == "unconditional" else 100)


@pytest.mark.parametrize("name", ALL)
def test_paper_scale_plan_is_valid(name):
    given = () if name == "unconditional" else range(36)
    stages = plan(name, 300, 20, 10, given)
    assert invalid_reason(stages, 300, 20, given) is None
    assert all(len(s) <= 20 and len(s.latent) <= 10 for s in stages if s.observed)  # all but a first stage


def test_interpolate_inward_fills_each_gap_from_both_ends():
    stages = plan("interpolate-inward", 16, 8, 2, [0, 15])
    assert [list(s.latent) for s in stages] == [[1, 14], [2, 13], [3, 12], [4, 11], [5, 10], [6, 9], [7, 8]]
    assert list(stages[0].observed) == [0, 15] and set(stages[-1].observed) == {4, 5, 6, 9, 10, 11}
    # every interior frame it generates is next to a frame known before its stage, whatever the step size
    for step_size in (1, 2, 3, 5):
        done = {0, 9, 20, 39}
        for s in plan("interpolate-inward", 40, 8, step_size, sorted(done)):
            for f in s.latent:
                if 0 < f < 39:
                    assert f - 1 in done or f + 1 in done or f - 1 in s.latent or f + 1 in s.latent, (step_size, f)
            assert any(f - 1 in done or f + 1 in done for f in s.latent)
            done |= set(s.latent)


def test_everything_given_is_an_empty_plan():
    assert plan("hierarchy-2", 10, 4, 2, range(10)) == []
    assert plan("interpolate", 10, 4, 2, range(10)) == []


def test_stage_helpers():
    st = plan("autoregressive", 10, 4, 2, range(3))[0]
    assert st == Stage(observed=[1, 2], latent=[3, 4])
    assert st.frames == [1, 2, 3, 4] and st.observed_mask == [True, True, False, False] and len(st) == 4
    assert st.with_observed([0]).observed == [0]


def test_first_stages_when_nothing_given():
    assert plan("autoregressive", 30, 6, 3)[0] == Stage([], [0, 1, 2, 3, 4, 5])
    assert plan("unconditional", 30, 6, 3)[0] == Stage([], [0, 1, 2, 3, 4, 5])
    assert plan("hierarchy-2", 31, 4, 2)[0] == Stage([], [0, 10, 20, 30])  # spread over the video
    assert plan("predict-then-interpolate", 30, 4, 2)[0] == Stage([], [0, 3, 6, 9])  # keyframes, stride s + 1


def test_step_size_defaults_to_half_the_window():
    assert plan("autoregressive", 40, 8)[1].latent == [8, 9, 10, 11]


def test_interpolate_observes_both_bounding_keyframes():
    keys = [0, 9, 30, 39]
    stages = plan("interpolate", 40, 5, 3, keys)
    first_round = stages[:3]  # one stage per gap, observing only keyframes
    assert [s.latent for s in first_round] == [[2, 4, 6], [14, 19, 24], [32, 34, 36]]
    for s in stages:
        lo, hi = min(s.latent), max(s.latent)
        left = max((f for f in s.observed if f < lo), default=None)
        right = min((f for f in s.observed if f > hi), default=None)
        assert left is not None and right is not None, s  # all gaps here are interior
    # gap 10..29 (20 frames) > s = 3: its first stage spreads 3 frames evenly inside it
    assert first_round[1] == Stage([9, 30], [14, 19, 24])


def test_interpolate_extrapolates_outside_the_keyframes():
    stages = plan("interpolate", 12, 4, 2, [5])
    assert stages[0].latent == [3, 4] and stages[1].latent == [6, 7]
    assert invalid_reason(stages, 12, 4, [5]) is None


def test_predict_then_interpolate_has_few_waves():
    stages = plan("predict-then-interpolate", 300, 20, 10, range(36))
    keyframe_stages = [s for s in stages if len(s.latent) > 1 and s.latent[1] - s.latent[0] == 11]
    assert keyframe_stages[0].latent == list(range(46, 156, 11))
    assert len(batches(stages)) == len(keyframe_stages) + 1  # all in-betweens in one wave
    assert all(len(s.latent) <= 10 for s in stages)


@pytest.mark.parametrize(
    "name",
    ["autoregressive", "hierarchy-2", "hierarchy-3", "predict-then-interpolate", "interpolate", "adaptive"],
)
@pytest.mark.parametrize("given", [range(5), (0, 20, 40, 59), (30,)])
def test_batches_are_a_valid_parallel_schedule(name, given):
    stages = plan(name, 60, 8, 4, given)
    waves = batches(stages)
    assert sorted(j for w in waves for j in w) == list(range(len(stages)))
    done = set(given)
    for wave in waves:
        assert wave == sorted(wave)
        produced = set()
        for j in wave:
            assert set(stages[j].observed) <= done, (j, stages[j])
            produced |= set(stages[j].latent)
        for j in wave:  # no stage observes what another stage of its wave produces
            assert not set(stages[j].observed) & produced
        done |= produced
    assert done == set(range(60))
    if name == "adaptive":
        assert len(waves) == len(stages)


def test_batches_max_size_and_waves_of_interpolation():
    stages = plan("interpolate", 41, 6, 4, range(0, 41, 5))  # 8 gaps of 4 frames: one round
    assert batches(stages) == [list(range(8))]
    assert batches(stages, max_size=3) == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert batches([]) == []
    with pytest.raises(ValueError, match="max_size"):
        batches(stages, max_size=0)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        (dict(name="hierarchy-9x"), "name"),
        (dict(name="hierarchy-1"), "name"),
        (dict(step_size=0), "step_size"),
        (dict(step_size=8), "step_size"),
        (dict(step_size=9), "step_size"),
        (dict(length=5), "length"),  # shorter than K
        (dict(length=0), "length"),
        (dict(max_frames=1, step_size=1), "max_frames"),
        (dict(given=[0, 50]), "given"),
        (dict(given=[-1]), "given"),
        (dict(given=[3, 3]), "given"),
        (dict(given="0,1"), "given"),
        (dict(length=40.5), "length"),
        (dict(step_size=True), "step_size"),
        (dict(name="interpolate", given=()), "given"),
        (dict(name="unconditional", given=[0]), "given"),
    ],
)
def test_bad_input_names_the_argument(kwargs, argument):
    args = dict(name="autoregressive", length=40, max_frames=8, step_size=4, given=range(3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=argument):
        plan(**args)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        plan("zigzag", 40, 8, 4)
    for name in ("autoregressive", "long-range", "hierarchy-N", "adaptive", "interpolate", "unconditional"):
        assert name in str(err.value)
    assert set(SCHEMES) >= {
        "autoregressive",
        "long-range",
        "hierarchy-N",
        "adaptive",
        "predict-then-interpolate",
    }


def test_fdm_aliases_and_case():
    assert plan("autoreg", 40, 8, 4, range(3)) == plan("autoregressive", 40, 8, 4, range(3))
    assert plan("Hierarchy-2", 40, 8, 4, range(3)) == plan("hierarchy-2", 40, 8, 4, range(3))
    ad = plan("adaptive-autoreg", 40, 8, 4, range(3))
    assert all(s.adaptive for s in ad)


def test_given_accepts_any_iterable_of_ints_in_any_order():
    assert plan("interpolate", 20, 4, 2, [19, 0]) == plan("interpolate", 20, 4, 2, (0, 19))


def test_package_docstring_example():
    import doctest

    import vidiff.schemes

    result = doctest.testmod(vidiff.schemes)
    assert result.attempted >= 1 and result.failed == 0
