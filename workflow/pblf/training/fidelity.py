"""How much of its budget a run trains: what low-fidelity search (:mod:`pblf.search.prune`) asks of a training run.

The search decides (a rung to stop at, the medians to stop below); the run only needs to know when to stop, so that
decision lives here, beside the training code, and the search imports it rather than the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def should_stop(val_curve: Sequence[float], thresholds: Mapping[int, float]) -> bool:
    """After epoch ``len(val_curve)``: is the run's best Top-1 validation so far below that epoch's threshold?"""
    epoch = len(val_curve)
    return epoch in thresholds and max(val_curve) < thresholds[epoch]


@dataclass(frozen=True)
class Fidelity:
    """How much of its budget a run trains (low-fidelity search, :mod:`pblf.search.prune`): up to epoch ``until`` (a
    successive-halving rung), and no further than a rung epoch at which its best Top-1 validation so far is below
    ``stop_below[epoch]`` (the median stopping rule). Either way it follows the full budget's schedule, so training
    it further later continues exactly where it stopped. The default trains the whole budget."""

    until: int | None = None
    stop_below: dict[int, float] = field(default_factory=dict)

    @classmethod
    def of_entry(cls, entry: dict[str, Any]) -> "Fidelity":
        """The fidelity a proposal entry asks for (``until``, ``stop_below``; JSON keys are strings)."""
        return cls(entry.get("until"), {int(epoch): float(value) for epoch, value in entry.get("stop_below", {}).items()})

    def stops(self, epoch: int, val_curve: Sequence[float], budget: int) -> bool:
        """Whether a run that has trained ``epoch`` epochs, with Top-1 validation ``val_curve``, is done short of
        ``budget``: its rung reached, or below the median there."""
        return epoch >= min(budget, self.until or budget) or should_stop(val_curve, self.stop_below)
