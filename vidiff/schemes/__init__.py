"""Long-video sampling schemes: plans of which frames to generate from which, stage by stage.

A model that sees at most ``K`` frames at once makes a ``T``-frame video in stages; a scheme decides, for each
stage, the ``observed`` frames (given or already generated) and the ``latent`` frames to generate. Plans are
pure data (FDM's insight): they are checked, drawn and batched without a model. Per-frame noise-level schedules
(Diffusion Forcing, rolling diffusion, FIFO-Diffusion) are data too: :func:`level_plan` (:mod:`.levels`).
See docs/schemes.md.

    >>> from vidiff.schemes import plan, batches
    >>> stages = plan("hierarchy-2", length=300, max_frames=20, step_size=10, given=range(36))
    >>> stages[0].latent[:3], len(stages), len(batches(stages))
    ([36, 65, 94], 27, 27)
"""

from .adaptive import choose_observed, frame_embedding, resolve_stage
from .levels import LEVEL_SCHEMES, LevelPlan, Window, check_level_plan, level_plan
from .registry import ALIASES, SCHEMES, check_plan_arguments, plan, scheme_names
from .stage import Stage, batches, check_plan

__all__ = [
    "ALIASES",
    "LEVEL_SCHEMES",
    "LevelPlan",
    "Window",
    "check_level_plan",
    "level_plan",
    "SCHEMES",
    "Stage",
    "batches",
    "check_plan_arguments",
    "check_plan",
    "choose_observed",
    "frame_embedding",
    "plan",
    "resolve_stage",
    "scheme_names",
]
