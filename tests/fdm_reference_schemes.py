"""FDM's sampling-scheme index planning, ported for comparison tests only (not part of vidiff).

Source: plai-group/flexible-video-diffusion-modeling, ``improved_diffusion/sampling_schemes.py``
(Harvey et al. 2022, "Flexible Diffusion Modeling of Long Videos"), by the FDM authors; MIT License
(the repository builds on openai/improved-diffusion, also MIT). The MIT License permits use, copying and
modification provided the copyright and permission notice are kept; the software is provided "as is",
without warranty of any kind. Not shipped with vidiff: tests only.

Kept: the index logic of ``SamplingSchemeBase.__next__``, ``Autoregressive``, ``LongRangeAutoregressive`` and
``HierarchyNLevel`` (including its quirks: the ``[-0:]`` slices, the step-size retry that keeps a level reset,
``np.linspace`` truncation). Dropped: printing, LPIPS, optimal schedules, batch replication.
The tests run this faithfully and judge its plans; wherever a plan is valid, vidiff must give the same stages.
"""

from __future__ import annotations

import numpy as np


class SamplingSchemeBase:
    def __init__(self, video_length: int, num_obs: int, max_frames: int, step_size: int):
        self._video_length = video_length
        self._max_frames = max_frames
        self._num_obs = num_obs
        self._done_frames = set(range(self._num_obs))
        self._obs_frames = list(range(self._num_obs))
        self._step_size = step_size
        self._current_step = 0

    def get_unconditional_indices(self):
        return list(range(self._max_frames))

    def __next__(self):
        if self.is_done():
            raise StopIteration
        unconditional = False
        if self._num_obs == 0 and self._current_step == 0:
            obs_frame_indices = []
            latent_frame_indices = self.get_unconditional_indices()
            unconditional = True
        else:
            obs_frame_indices, latent_frame_indices = self.next_indices()
        assert isinstance(obs_frame_indices, list) and isinstance(latent_frame_indices, list)
        for idx in obs_frame_indices:
            assert idx in self._done_frames, f"conditioning on frame {idx} before it is generated"
        assert np.all(np.array(latent_frame_indices) < self._video_length)
        self._done_frames.update([idx for idx in latent_frame_indices if idx not in self._done_frames])
        if unconditional:
            self._obs_frames = latent_frame_indices
        self._current_step += 1
        return obs_frame_indices, latent_frame_indices

    def is_done(self):
        return len(self._done_frames) >= self._video_length

    def __iter__(self):
        return self

    def next_indices(self):
        raise NotImplementedError


class Autoregressive(SamplingSchemeBase):
    def next_indices(self):
        if len(self._done_frames) == 0:
            return [], list(range(self._max_frames))
        obs_frame_indices = sorted(self._done_frames)[-(self._max_frames - self._step_size) :]
        first_idx = obs_frame_indices[-1] + 1
        latent_frame_indices = list(range(first_idx, min(first_idx + self._step_size, self._video_length)))
        return obs_frame_indices, latent_frame_indices


class LongRangeAutoregressive(SamplingSchemeBase):
    def next_indices(self):
        n_to_condition_on = self._max_frames - self._step_size
        n_autoreg_frames = n_to_condition_on // 2
        frames_to_condition_on = set(sorted(self._done_frames)[-n_autoreg_frames:])
        reversed_obs_frames = sorted(self._obs_frames)[::-1]
        for i in reversed_obs_frames:
            frames_to_condition_on.add(i)
            if len(frames_to_condition_on) == n_to_condition_on:
                break
        obs_frame_indices = sorted(frames_to_condition_on)
        first_idx = max(self._done_frames) + 1
        latent_frame_indices = list(range(first_idx, min(first_idx + self._step_size, self._video_length)))
        return obs_frame_indices, latent_frame_indices


class HierarchyNLevel(SamplingSchemeBase):
    N = 2

    def get_unconditional_indices(self):
        self.current_level = 1
        self.last_sampled_idx = self._video_length - 1
        return list(int(i) for i in np.linspace(0, self._video_length - 1, self._max_frames))

    @property
    def sample_every(self):
        sample_every_on_level_1 = (self._video_length - len(self._obs_frames)) / (self._step_size - 1)
        return int(sample_every_on_level_1 ** ((self.N - self.current_level) / (self.N - 1)))

    def next_indices(self):
        if len(self._done_frames) == 0:
            self.current_level = 1
            self.last_sampled_idx = self._video_length - 1
            return [], list(int(i) for i in np.linspace(0, self._video_length - 1, self._max_frames))

        if len(self._done_frames) == len(self._obs_frames):
            self.current_level = 1
            self.last_sampled_idx = max(self._obs_frames)

        n_to_condition_on = self._max_frames - self._step_size
        n_to_sample = self._step_size

        idx = self.last_sampled_idx + self.sample_every
        if len([i for i in range(idx, self._video_length) if i not in self._done_frames]) == 0:
            self.current_level += 1
            self.last_sampled_idx = 0
            idx = (
                min(i for i in range(self._video_length) if i not in self._done_frames)
                - 1
                + self.sample_every
            )
        if self.current_level == 1:
            latent_frame_indices = list(
                int(i)
                for i in np.linspace(max(self._obs_frames) + 1, self._video_length - 0.001, n_to_sample)
            )
        else:
            latent_frame_indices = []
            while len(latent_frame_indices) < n_to_sample and idx < self._video_length:
                if idx not in self._done_frames:
                    latent_frame_indices.append(idx)
                    idx += self.sample_every
                elif idx in self._done_frames:
                    idx += 1

        obs_frame_indices = [
            i for i in range(min(latent_frame_indices), max(latent_frame_indices)) if i in self._done_frames
        ]
        obs_before_and_after = n_to_condition_on - len(obs_frame_indices)

        if obs_before_and_after < 2:
            if self._step_size == 1:
                raise Exception("Cannot condition before and after even with step size of 1")
            self._step_size -= 1
            result = self.next_indices()
            self._step_size += 1
            return result

        max_n_after = obs_before_and_after // 2
        obs_frame_indices.extend(
            [i for i in range(max(latent_frame_indices) + 1, self._video_length) if i in self._done_frames][
                :max_n_after
            ]
        )
        n_before = n_to_condition_on - len(obs_frame_indices)
        if self.current_level == 1:
            obs_frame_indices.extend(
                list(np.linspace(0, max(self._obs_frames) + 0.999, n_before).astype(np.int32))
            )
        else:
            obs_frame_indices.extend(
                [i for i in range(min(latent_frame_indices) - 1, -1, -1) if i in self._done_frames][:n_before]
            )

        self.last_sampled_idx = max(latent_frame_indices)
        return obs_frame_indices, latent_frame_indices


def get_hierarchy_n_level(n: int) -> type[HierarchyNLevel]:
    class Hierarchy(HierarchyNLevel):
        N = n

    return Hierarchy


SCHEMES = {
    "autoregressive": Autoregressive,
    "long-range": LongRangeAutoregressive,
    "hierarchy-2": get_hierarchy_n_level(2),
    "hierarchy-3": get_hierarchy_n_level(3),
    "hierarchy-4": get_hierarchy_n_level(4),
}


def reference_plan(
    name: str, length: int, max_frames: int, step_size: int, num_obs: int, max_stages: int | None = None
) -> list[tuple[list[int], list[int]]]:
    """Run FDM's scheme to completion and return its stages as (observed, latent) index lists.

    Raises whatever the reference raises (AssertionError, ZeroDivisionError, ValueError, Exception, ...)
    and RuntimeError("no progress") when it would loop forever (more than ``max_stages`` stages).
    """
    scheme = SCHEMES[name](length, num_obs, max_frames, step_size)
    limit = max_stages if max_stages is not None else 2 * length + 5
    stages = []
    for obs, lat in scheme:
        stages.append(([int(i) for i in obs], [int(i) for i in lat]))
        if len(stages) > limit:
            raise RuntimeError("no progress")
    return stages
