"""Which training losses a step may use: non-finite ones never, loss spikes optionally, and how many skips in a row.

:class:`LossGuard` is the bookkeeping behind ``VideoDiffusion``'s ``on_nonfinite``, ``max_consecutive_skips`` and
``loss_spike_factor``:

* a NaN/inf loss is bad;
* with ``spike_factor`` set, a finite loss above ``spike_factor`` x the median of the last :data:`SPIKE_WINDOW`
  accepted losses is bad too, once :data:`SPIKE_MIN_HISTORY` losses were accepted (earlier there is no reference);
* skipped losses never enter the history, so a run of spikes does not raise its own threshold;
* :meth:`skip` counts skips in total and in a row, and raises ``FloatingPointError`` once
  ``max_consecutive_skips`` steps in a row were skipped.

The history lives in the process: after a resume the spike check re-arms after :data:`SPIKE_MIN_HISTORY` steps.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

from vidiff.arguments import check_int

SPIKE_WINDOW = 100
SPIKE_MIN_HISTORY = 20


class LossGuard:
    """Judges training losses and counts skipped steps.

    Args:
        max_consecutive_skips: skipped steps in a row that stop the run.
        spike_factor: a finite loss above this times the running median counts as bad; None: off.
    """

    def __init__(self, max_consecutive_skips: int = 20, spike_factor: float | None = None) -> None:
        check_int("max_consecutive_skips", max_consecutive_skips)
        if spike_factor is not None and not (math.isfinite(spike_factor) and spike_factor > 1):
            raise ValueError(f"loss_spike_factor: expected a number > 1 or null, got {spike_factor!r}")
        self.max_consecutive_skips, self.spike_factor = max_consecutive_skips, spike_factor
        self.history: deque[float] = deque(maxlen=SPIKE_WINDOW)
        self.steps = 0  # steps judged
        self.skipped = 0
        self.spikes = 0  # of the skipped, those for a spike (the rest: non-finite)
        self.consecutive = 0

    def problem(self, loss: float) -> str | None:
        """Why ``loss`` must not be used (one phrase), or None when it is fine."""
        if not math.isfinite(loss):
            return f"non-finite training loss ({loss})"
        if self.spike_factor is not None and len(self.history) >= SPIKE_MIN_HISTORY:
            median = statistics.median(self.history)
            if loss > self.spike_factor * median:
                return (
                    f"training loss spike ({loss:.4g} > loss_spike_factor={self.spike_factor:g} x {median:.4g}, "
                    f"the median of the last {len(self.history)} losses)"
                )
        return None

    def accept(self, loss: float) -> None:
        """Record a loss the step used."""
        self.steps += 1
        self.consecutive = 0
        self.history.append(loss)

    def skip(self, reason: str, where: str) -> None:
        """Record a skipped step; raises ``FloatingPointError`` at ``max_consecutive_skips`` in a row."""
        self.steps += 1
        self.skipped += 1
        self.spikes += reason.startswith("training loss spike")
        self.consecutive += 1
        if self.consecutive >= self.max_consecutive_skips:
            raise FloatingPointError(
                f"{self.consecutive} training steps in a row skipped ({reason} {where}): stopping. Weights, EMA "
                f"and the last checkpoint are those of the last good step (max_consecutive_skips="
                f"{self.max_consecutive_skips}); lower the learning rate or check the data"
            )

    def summary(self) -> str:
        """``3 of 120 training steps skipped (2 non-finite, 1 loss spikes)``."""
        return (
            f"{self.skipped} of {self.steps} training steps skipped "
            f"({self.skipped - self.spikes} non-finite, {self.spikes} loss spikes)"
        )
