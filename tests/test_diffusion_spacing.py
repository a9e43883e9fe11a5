"""Timestep spacing: the same timesteps as diffusers' DDIMScheduler.set_timesteps."""

from itertools import pairwise

import pytest

from vidiff.diffusion import make_timesteps


def test_documented_values_1000_steps_10():
    assert make_timesteps(1000, 10, "leading") == [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    assert make_timesteps(1000, 10, "trailing") == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert make_timesteps(1000, 10, "linspace") == [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]
    assert make_timesteps(1000, 10, "leading", steps_offset=1) == [
        901,
        801,
        701,
        601,
        501,
        401,
        301,
        201,
        101,
        1,
    ]


def test_other_known_values():
    # diffusers: T=1000, 3 steps; leading 333 apart, trailing round(1000 - k * 333.33) - 1, linspace rounds 499.5 to 500
    assert make_timesteps(1000, 3, "leading") == [666, 333, 0]
    assert make_timesteps(1000, 3, "trailing") == [999, 666, 332]
    assert make_timesteps(1000, 3, "linspace") == [999, 500, 0]
    assert make_timesteps(1000, 1, "trailing") == [999] and make_timesteps(1000, 1, "linspace") == [0]
    assert make_timesteps(1000, 1000, "leading") == list(range(999, -1, -1))
    assert make_timesteps(1000, 1000, "trailing") == list(range(999, -1, -1))


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_equals_numpy_transcription_of_diffusers(spacing):
    np = pytest.importorskip("numpy")

    def diffusers(T, n):
        if spacing == "linspace":
            return np.linspace(0, T - 1, n).round()[::-1].copy().astype(np.int64)
        if spacing == "leading":
            return (np.arange(0, n) * (T // n)).round()[::-1].copy().astype(np.int64)
        return np.round(np.arange(T, 0, -T / n)).astype(np.int64) - 1

    for T in (1000, 50):
        for n in range(1, T + 1):
            ours = make_timesteps(T, n, spacing)
            # numpy's float arange gives `trailing` one extra, negative, timestep for some n (e.g. T=1000, n=61)
            assert ours == diffusers(T, n).tolist()[:n], (T, n)
            assert len(ours) == n and all(a > b for a, b in pairwise(ours)) and 0 <= ours[-1] <= ours[0] < T


def test_bad_input():
    with pytest.raises(ValueError, match="'leading', 'trailing', 'linspace'"):
        make_timesteps(1000, 10, "karras")
    with pytest.raises(ValueError, match=r"steps must be an int in \[1, num_timesteps=1000\]"):
        make_timesteps(1000, 1001)
    with pytest.raises(ValueError, match="steps"):
        make_timesteps(1000, 0)
    with pytest.raises(ValueError, match="steps_offset"):
        make_timesteps(1000, 1000, "leading", steps_offset=1)
    with pytest.raises(ValueError, match="steps_offset"):
        make_timesteps(1000, 10, "trailing", steps_offset=1)
