"""vidiff's FDM schemes against FDM's reference implementation (tests/fdm_reference_schemes.py).

Wherever the reference gives a valid plan, vidiff must give the same stages (index sets, same order);
wherever it breaks, vidiff must still give a valid plan. The invariants are checked by the test suite's own
``invalid_reason`` (test_schemes_properties.py), independent of vidiff's ``check_plan``.
"""

import pytest

np = pytest.importorskip("numpy")

from fdm_reference_schemes import reference_plan  # noqa: E402
from test_schemes_properties import invalid_reason  # noqa: E402

from vidiff.schemes import plan  # noqa: E402
from vidiff.schemes._index import linspace  # noqa: E402

FDM_SCHEMES = ["autoregressive", "long-range", "hierarchy-2", "hierarchy-3"]


def compare(name, length, max_frames, step_size, num_obs):
    """'match' / 'ref-broken'; asserts vidiff's plan is valid and equals the reference where that is valid."""
    ours = [(s.observed, s.latent) for s in plan(name, length, max_frames, step_size, range(num_obs))]
    assert invalid_reason(ours, length, max_frames, range(num_obs)) is None
    try:
        ref = reference_plan(name, length, max_frames, step_size, num_obs)
    except Exception:  # ZeroDivisionError, ValueError, Exception('Cannot condition ...'), no progress
        return "ref-broken"
    if invalid_reason(ref, length, max_frames, range(num_obs)) is not None:
        return "ref-broken"
    assert ours == [(sorted(o), sorted(lat)) for o, lat in ref], (
        name,
        length,
        max_frames,
        step_size,
        num_obs,
    )
    return "match"


@pytest.mark.parametrize("name", FDM_SCHEMES)
@pytest.mark.parametrize("length", [300, 500, 1000])
def test_paper_settings_match_reference(name, length):
    # FDM's defaults: K = 20 (training max_frames), step size K // 2, 36 observed frames (video_sample.py)
    assert compare(name, length, 20, 10, 36) == "match"


@pytest.mark.parametrize("name", FDM_SCHEMES)
@pytest.mark.parametrize(
    ("length", "max_frames", "step_size", "num_obs"), [(300, 20, 10, 0), (128, 16, 8, 16), (100, 10, 5, 10)]
)
def test_other_useful_settings_match_reference(name, length, max_frames, step_size, num_obs):
    assert compare(name, length, max_frames, step_size, num_obs) == "match"


def _grid():
    for length in [2, 3, 4, 5, 7, 9, 12, 16, 23, 31, 40]:
        for max_frames in range(2, min(length, 9) + 1):
            for step_size in range(1, max_frames):
                obs = {
                    0,
                    1,
                    2,
                    3,
                    max_frames - step_size,
                    max_frames,
                    length // 2,
                    length - 2,
                    length - 1,
                    length,
                }
                for num_obs in sorted(n for n in obs if 0 <= n <= length):
                    yield length, max_frames, step_size, num_obs


@pytest.mark.parametrize("name", FDM_SCHEMES)
def test_small_grid_matches_reference_or_reference_is_broken(name):
    outcomes = [compare(name, *setting) for setting in _grid()]
    # the comparison must mean something: most settings are valid in the reference
    assert outcomes.count("match") > len(outcomes) // 3


@pytest.mark.parametrize(
    ("name", "setting", "why"),
    [
        ("hierarchy-2", (300, 20, 10, 1), "level-1 context repeats frame 0 (n_obs < K - s)"),
        ("hierarchy-2", (12, 4, 1, 4), "s = 1 divides by zero"),
        ("hierarchy-2", (4, 4, 2, 3), "level-1 latents repeat (T - n_obs < s)"),
        ("hierarchy-3", (6, 5, 3, 0), "spacing rounds to 0: latents repeat"),
        ("long-range", (10, 4, 3, 2), "K - s = 1: [-0:] observes every frame, more than K"),
    ],
)
def test_documented_reference_corner_cases(name, setting, why):
    length, max_frames, step_size, num_obs = setting
    try:
        ref = reference_plan(name, *setting)
        assert invalid_reason(ref, length, max_frames, range(num_obs)) is not None, why
    except (ZeroDivisionError, ValueError, AssertionError):
        pass
    assert compare(name, *setting) == "ref-broken"


def test_hierarchy_4_empty_walk_is_fixed():
    # the reference fails with min() of an empty list; vidiff gives a valid plan
    with pytest.raises(ValueError, match="empty"):
        reference_plan("hierarchy-4", 4, 4, 2, 1)
    assert compare("hierarchy-4", 4, 4, 2, 1) == "ref-broken"


@pytest.mark.parametrize(
    ("start", "stop", "num"),
    [
        (0, 299, 20),
        (36, 299.999, 10),
        (0, 35.999, 10),
        (5, 5, 3),
        (0, 1.999, 7),
        (3, 1000 - 0.001, 9),
        (2, 7, 1),
    ],
)
def test_linspace_is_numpys(start, stop, num):
    assert linspace(start, stop, num) == np.linspace(start, stop, num).tolist()
    assert [int(v) for v in linspace(start, stop, num)] == np.linspace(start, stop, num).astype(
        np.int32
    ).tolist()
