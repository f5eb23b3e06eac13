"""Low-fidelity search: stop unpromising candidates before their full budget (the thesis's first shortfall, §6.3.1).

The thesis ran every candidate for its whole budget ("the PBLF-BO experiment for 100 epochs ran for 14 GPU days ...
We could mitigate these long training times with low-fidelity evaluations"). Two rules from the literature, one per
search, each the standard choice for how that search runs:

* **PBLF-BO: the median stopping rule** (Golovin et al. 2017, Google Vizier; Optuna's MedianPruner). BO is
  sequential, so each candidate can be compared with the candidates evaluated before it: at each rung epoch e, a run
  whose best Top-1 validation so far is below the median, over the earlier *completed* runs, of their running average
  of Top-1 validation up to e, is stopped. The thresholds are computed by the proposer from the history (earlier
  iterations only) and travel in the proposal, so the decision is a pure function of inputs the training job already
  has: reruns, SLURM retries and job order give the same trials.
* **PBLF-RS: successive halving** (Jamieson & Talwalkar 2016; Li et al. 2017, Hyperband's inner loop; the
  synchronous form of ASHA). RS trains its whole batch in parallel, so the batch is the comparison: every candidate
  trains to the first rung, the best 1/eta of them (by Top-1 validation at that rung; ties to the earliest) continue
  to the next rung, resumed from their checkpoints, and so on up to the full budget. Each rung is one iteration of
  the search (a Snakemake checkpoint), decided by the proposer from the finished runs of the previous rung. The
  asynchronous ASHA would promote by arrival order, which depends on timing; the synchronous form does not.

Every run trains under the schedule of the full budget (the learning-rate milestones of the budget, not of the
rung), so a run that is never stopped, or is promoted to the end, equals the run trained without pruning.

What the GP of PBLF-BO is told about a stopped run: its Top-1 validation at the epoch it stopped. Learning curves
rise, so this under-estimates what the candidate would have reached; the run was below the median of the completed
runs at that epoch, so it ranks among the weak candidates either way, and the GP keeps the information that this
region is poor (dropping the point would let UCB propose its neighbourhood again).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def rung_epochs(budget: int, fractions: Sequence[float]) -> list[int]:
    """The epochs (1 .. budget - 1) at which runs of ``budget`` epochs may be stopped: each fraction of the budget,
    rounded to a whole epoch (at least 1), duplicates and the budget itself dropped."""
    epochs = {max(1, round(fraction * budget)) for fraction in fractions}
    return sorted(epoch for epoch in epochs if epoch < budget)


def median_thresholds(curves: Sequence[Sequence[float]], rungs: Sequence[int], min_completed: int) -> dict[int, float]:
    """The median stopping rule's threshold at each rung epoch: the median, over the completed runs' validation
    curves (Top-1 validation per epoch, epoch 1 first), of their running average up to that epoch. Empty when fewer
    than ``min_completed`` runs have completed (too few to say what the median is)."""
    if len(curves) < min_completed:
        return {}
    return {epoch: statistics.median(sum(curve[:epoch]) / epoch for curve in curves)
            for epoch in rungs if all(len(curve) >= epoch for curve in curves)}


def promotions(rows: Sequence[dict[str, Any]], eta: int) -> list[dict[str, Any]]:
    """Successive halving: the best ``ceil(len(rows) / eta)`` of one rung's runs, by Top-1 validation at the rung,
    the earliest (iteration, index) among equals, in that order."""
    keep = math.ceil(len(rows) / eta)
    ranked = sorted(rows, key=lambda row: (-float(row["val_top1"]), int(row["iteration"]), int(row["index"])))
    return ranked[:keep]


def rs_batch_sizes(samples: int, eta: int, n_rungs: int) -> list[int]:
    """How many candidates successive halving trains at each rung (the first is the whole batch), and the last
    entry those it trains to the full budget."""
    sizes = [samples]
    for _ in range(n_rungs):
        sizes.append(math.ceil(sizes[-1] / eta))
    return sizes


# --------------------------------------------------------------------------------------------------- proposals


def rs_rungs(budget: int, pruning: dict[str, Any]) -> list[int]:
    """The rung epochs of successive halving at ``budget`` (empty with pruning off): iteration k trains to rung k,
    the iteration after the last rung to the full budget."""
    return rung_epochs(budget, pruning["rungs"]) if pruning["enabled"] else []


def promote(history: Sequence[Any], iteration: int, eta: int) -> list[dict[str, Any]]:
    """The proposal of successive halving's iteration ``iteration``: the best 1/eta of the runs of the iteration
    before (history observations with iteration, index, val_top1, candidate), each continuing from its run."""
    rows = [{"iteration": o.iteration, "index": o.index, "val_top1": o.val_top1, "observation": o}
            for o in history if o.iteration == iteration - 1]
    return [{**row["observation"].candidate.to_dict(), "source": "promoted",
             "resume": {"iteration": row["iteration"], "index": row["index"]}} for row in promotions(rows, eta)]


def rung_limits(entries: Sequence[dict[str, Any]], iteration: int, budget: int,
                pruning: dict[str, Any]) -> list[dict[str, Any]]:
    """Successive halving's proposal entries: each trains to its iteration's rung (``until``); the iteration after
    the last rung, to the full budget."""
    rungs = rs_rungs(budget, pruning)
    return [{**entry, "until": rungs[iteration]} if iteration < len(rungs) else dict(entry) for entry in entries]


def median_stops(entries: Sequence[dict[str, Any]], budget: int, pruning: dict[str, Any],
                 history: Sequence[Any]) -> list[dict[str, Any]]:
    """The median stopping rule's proposal entries: each stops at a rung where it falls below the median of the
    completed runs in ``history`` (``stop_below``; JSON keys are strings)."""
    completed = [o.curve for o in history if o.status == "ok" and len(o.curve) == budget]
    thresholds = median_thresholds(completed, rung_epochs(budget, pruning["rungs"]), pruning["min_completed"])
    stop_below = {str(epoch): value for epoch, value in thresholds.items()}
    return [{**entry, "stop_below": stop_below} if stop_below else dict(entry) for entry in entries]


def expected_median_rule(budget: int, rungs: list[int]) -> float:
    """The epochs to expect of a run under the median stopping rule: it stops below the median of the completed
    runs, so about half of the runs that reach a rung stop there (the rule's premise)."""
    ends = [*rungs, budget]
    return ends[0] + sum((ends[k + 1] - ends[k]) / 2 ** (k + 1) for k in range(len(ends) - 1))
