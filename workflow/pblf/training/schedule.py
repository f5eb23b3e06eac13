"""Learning-rate schedules: the learning rate of every training step, as a pure function of the step.

The thesis names no training recipe, so the schedule is configuration (``train.lr_schedule``). Every schedule here is
a function of (step, steps in the run) alone, for two reasons: a resumed run needs no scheduler state (the step it
stopped at says everything), and every budget follows the same shape, because the schedule's landmarks are fractions
of the run's steps, not epochs.

* ``step`` (the default, the WRN paper's recipe, Zagoruyko & Komodakis 2016): ``lr`` times ``lr_gamma`` to the power
  of the number of ``lr_milestones`` passed. With 20 epochs and milestones at 30/60/80 % it spends only 6 epochs at
  the peak rate, which is why schedules made for short budgets follow.
* ``warmup_cosine``: a linear warm-up over the first ``lr_warmup`` of the steps (Goyal et al. 2017), then half a
  cosine down to zero (Loshchilov & Hutter 2017, SGDR without restarts).
* ``warmup_linear``: the same warm-up, then a straight line down to zero.
* any of them with a gradual warm-up on top (``train.gradual_warmup``, Goyal et al. 2017): the rate starts at a share
  of the schedule's and rises linearly to it; the generalisation stage uses it for linearly scaled learning rates.
* ``onecycle``: Smith & Topin's one-cycle policy (2019) exactly as PyTorch's ``OneCycleLR`` draws it with its
  defaults (``anneal_strategy="cos"``, two phases): from ``lr / onecycle_div`` up to ``lr`` over the first
  ``onecycle_rise`` of the steps, then down to ``lr / (onecycle_div * onecycle_final_div)``. Only the learning
  rate cycles; momentum stays ``train.momentum`` (``OneCycleLR(cycle_momentum=False)``).

A warm-up step ``s`` (counting from 0) uses ``lr * (s + 1) / warmup_steps``, so the first step already moves the
weights; the decays never reach zero inside the run (their last step is one step short of the end).
"""

from __future__ import annotations

import math
from typing import Any

from pblf.core.config import allowed

#: The schedules ``train.lr_schedule`` may name (written in the schema).
SCHEDULES: tuple[str, ...] = allowed("train.lr_schedule")


def learning_rate(train_cfg: dict[str, Any], total_steps: int, step: int) -> float:
    """The learning rate of step ``step`` (0-based) of a run of ``total_steps`` steps under ``train_cfg``'s
    schedule (the config's ``train`` section)."""
    return _scheduled(train_cfg, total_steps, step) * gradual_warmup(train_cfg["gradual_warmup"], total_steps, step)


def _scheduled(train_cfg: dict[str, Any], total_steps: int, step: int) -> float:
    schedule = train_cfg["lr_schedule"]
    peak = train_cfg["lr"]
    if schedule == "step":
        return step_decay(peak, train_cfg["lr_milestones"], train_cfg["lr_gamma"], total_steps, step)
    if schedule in ("warmup_cosine", "warmup_linear"):
        return warmup_decay(peak, train_cfg["lr_warmup"], schedule.removeprefix("warmup_"), total_steps, step)
    if schedule == "onecycle":
        return one_cycle(peak, train_cfg["onecycle_rise"], train_cfg["onecycle_div"],
                         train_cfg["onecycle_final_div"], total_steps, step)
    raise ValueError(f"train.lr_schedule {schedule!r} must be one of {', '.join(SCHEDULES)}")


def gradual_warmup(warmup: dict[str, float], total_steps: int, step: int) -> float:
    """The factor Goyal et al.'s gradual warm-up puts on the schedule's rate at ``step``: from ``start_factor`` at
    the first step up to 1 at the end of ``fraction`` of the steps, linearly, and 1 after."""
    steps = round(warmup["fraction"] * total_steps)
    if step >= steps:
        return 1.0
    return warmup["start_factor"] + (1.0 - warmup["start_factor"]) * step / steps


def step_decay(lr: float, milestones: list[float], gamma: float, total_steps: int, step: int) -> float:
    """``lr * gamma^k`` after ``k`` milestones (fractions of the run's steps) have passed.

    Milestones are placed on steps rather than epochs so that every budget follows the same shape: with whole
    epochs, a 1-epoch budget never decays and a 2-epoch one decays twice at once. When a milestone falls on an epoch
    boundary (the thesis's budgets: 30 % of 20 epochs is epoch 6) both placements agree."""
    passed = sum(step >= round(fraction * total_steps) for fraction in milestones)
    return lr * gamma ** passed


def warmup_decay(lr: float, warmup: float, decay: str, total_steps: int, step: int) -> float:
    """A linear warm-up over ``round(warmup * total_steps)`` steps to ``lr``, then a ``cosine`` or ``linear`` decay
    towards zero over the remaining steps."""
    warmup_steps = round(warmup * total_steps)
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    if decay == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr * (1.0 - progress)


def one_cycle(lr: float, rise: float, div: float, final_div: float, total_steps: int, step: int) -> float:
    """PyTorch's ``OneCycleLR`` learning rate at ``step`` (its two-phase, cosine-annealed form, with its own
    placement of the phase boundary at ``rise * total_steps - 1``), for ``max_lr=lr``."""
    start, low = lr / div, lr / div / final_div
    rise_end = float(rise * total_steps) - 1
    if step <= rise_end:
        return _cosine_between(start, lr, step / rise_end if rise_end > 0 else 1.0)
    return _cosine_between(lr, low, (step - rise_end) / (total_steps - 1 - rise_end))


def _cosine_between(start: float, end: float, fraction: float) -> float:
    """From ``start`` (fraction 0) to ``end`` (fraction 1) along half a cosine."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1.0)
