"""Gather finished runs into the flat CSV files the next stages read.

* :func:`collect_search`: every candidate of a search, in evaluation order, with its measured accuracies: a search's
  ``evaluations.csv`` (which the selection and Figure 6.3 read) and, reduced to the columns the proposer reads, the
  ``history.csv`` of the next BO iteration;
* :func:`collect_trials`: one row per repeat, the ``trials.csv`` of SPEC section 3 that every table is made of, with
  what each method's search cost (from the searches' ``evaluations.csv``).

Each run's identity (kind, method, budget, seed, iteration, index) is read from its ``metrics.json``, never from its
folder name, and checked against what the caller expects: a search must never go on from a partial or mixed-up
history by accident.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pblf.candidate import Candidate, read_proposal
from pblf.errors import InputError
from pblf.files import read_json, write_csv
from pblf.layout import EVALUATIONS, HISTORY, TRIALS, RunId
from pblf.names import EVALUATION_COLUMNS, HISTORY_COLUMNS, PROMOTED, PROPOSERS, TRIALS_COLUMNS, places_text
from pblf.provenance import Outcome
from pblf.select import read_evaluations

log = logging.getLogger(__name__)


def read_run(metrics_path: str | Path) -> tuple[RunId, dict[str, Any]]:
    """A finished run's identity and metrics; a metrics file without a valid ``run`` record is named."""
    metrics = read_json(metrics_path)
    try:
        return RunId.from_dict(metrics["run"]), metrics
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{metrics_path} has no valid run identity (\"run\": kind, method, budget, seed): {err}") \
            from None


def collect_search(proposals: Sequence[str | Path], metrics: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Rows of every candidate of ``proposals`` (the proposal files of iterations 0, 1, ..., in order), each with the
    results of its run among ``metrics``.

    Every proposed candidate must have exactly one finished search run of one search (one method and budget), and
    that run must have trained the proposed candidate."""
    runs: dict[tuple[int, int], tuple[Path, RunId, dict[str, Any]]] = {}
    searches = set()
    for path in map(Path, metrics):
        run, result = read_run(path)
        if run.kind != "search":
            raise InputError(f"{path} is a {run.kind} run, not a search run")
        if (run.iteration, run.index) in runs:
            raise InputError(f"{path} and {runs[run.iteration, run.index][0]} are both candidate {run.index} of "
                             f"iteration {run.iteration}")
        runs[run.iteration, run.index] = (path, run, result)
        searches.add((run.budget, run.method))
    if len(searches) > 1:
        raise InputError(f"the runs belong to several searches (budget, method): {sorted(searches)}")
    entries = [read_proposal(proposal) for proposal in proposals]
    continued = {(entry["resume"]["iteration"], entry["resume"]["index"])
                 for batch in entries for entry in batch if "resume" in entry}
    rows = []
    for iteration, (proposal, batch) in enumerate(zip(proposals, entries)):
        for index, entry in enumerate(batch):
            if (iteration, index) not in runs:
                raise InputError(f"candidate {index} of {proposal} (iteration {iteration}) has no finished run "
                                 "among the metrics given")
            path, run, result = runs.pop((iteration, index))
            trained = Candidate.from_dict(result["candidate"])
            if trained != Candidate.from_dict(entry):
                raise InputError(f"{path} trained {trained.to_json()} but {proposal} proposed {entry}")
            rows.append({
                "budget_epochs": run.budget,
                "method": run.method,
                "iteration": iteration,
                "index": index,
                "source": entry.get("source", ""),
                "replaced": entry.get("replaced", ""),
                **Candidate.from_dict(result.get("learned", trained.to_dict())).to_dict(),
                "status": PROMOTED if (iteration, index) in continued else result["status"],
                "epochs": epoch_reached(result),
                "val_top1": result["val_top1"],
                "test_top1": result["test_top1"],
                "seconds": training_seconds(result),
                "run": str(path.parent),
                "val_curve": " ".join(str(row["val_top1"]) for row in result["epochs"]),
            })
    if runs:
        extra = ", ".join(str(path) for path, _, _ in runs.values())
        raise InputError(f"runs of candidates that no proposal given proposed: {extra}")
    return rows


def epoch_reached(metrics: dict[str, Any]) -> int:
    """The epoch a run reached: its completed epochs (those it continued from included), plus the one a diverged
    run stopped in."""
    return len(metrics["epochs"]) + (metrics["status"] == "diverged")


def training_seconds(metrics: dict[str, Any]) -> float:
    """A run's training time: the sum of its epochs' seconds (its share of each epoch's job, the epochs of a run it
    continued included; evaluation, start-up and a diverged run's last partial epoch left out), to the millisecond
    (an epoch row without timing counts 0)."""
    return round(sum(row.get("seconds", 0.0) for row in metrics["epochs"]), 3)


def search_cost(evaluations: Sequence[str | Path]) -> dict[tuple[int, str], tuple[int, int, float]]:
    """(candidates trained, epochs spent, seconds of training) of each search (budget, method) in ``evaluations``.
    A candidate's runs continue one another (successive halving), so what it cost is what its furthest run reached,
    whose epochs include those it continued."""
    cost = {}
    for path in evaluations:
        rows = read_evaluations(path)
        reached: dict[str, tuple[int, float]] = {}
        for row in rows:
            key = Candidate.from_dict(row).key
            reached[key] = max(reached.get(key, (0, 0.0)), (row["epochs"], row["seconds"]))
        cost[rows[0]["budget_epochs"], rows[0]["method"]] = (
            len(reached), sum(epochs for epochs, _ in reached.values()),
            round(sum(seconds for _, seconds in reached.values()), 3))
    return cost


def collect_trials(metrics: Sequence[str | Path], evaluations: Sequence[str | Path] = ()) -> list[dict[str, Any]]:
    """One trials row per repeat run, from its metrics: budget, method and seed from the run's identity, the
    meta-network's activation and places, and what the search of its method at its budget cost (from
    ``evaluations``; Standard searches nothing). A searched method whose evaluations are missing is an error."""
    cost = search_cost(evaluations)
    rows = []
    for path in metrics:
        run, result = read_run(path)
        if run.kind != "repeat":
            raise InputError(f"{path} is a {run.kind} run, not a repeat")
        if run.method in PROPOSERS and (run.budget, run.method) not in cost:
            raise InputError(f"{path}: no evaluations.csv of the {run.method} search at {run.budget} epochs was given")
        candidates, epochs, seconds = cost.get((run.budget, run.method), (0, 0, 0.0))
        rows.append({
            "budget_epochs": run.budget,
            "method": run.method,
            "seed": run.seed,
            "test_top1": result["test_top1"],
            "val_top1": result["val_top1"],
            **Candidate.from_dict(result["candidate"]).to_dict(),
            "activation": result["activation"],
            "places": places_text(),
            "search_candidates": candidates,
            "search_epochs": epochs,
            "search_seconds": seconds,
        })
    return rows


# ------------------------------------------------------------------------------------------------------- stages


def stage_history(proposals: list[Path], metrics: list[Path], out: Path) -> Outcome:
    """``pblf history``: what the proposer of the next iteration reads, ``out/history.csv``."""
    rows = collect_search(proposals, metrics)
    path = write_csv(rows, HISTORY_COLUMNS, Path(out) / HISTORY)
    log.info("%d evaluated candidates from %d proposals -> %s", len(rows), len(proposals), path)
    return Outcome()


def stage_evaluations(proposals: list[Path], metrics: list[Path], out: Path) -> Outcome:
    """``pblf evaluations``: every candidate a search evaluated, in order, ``out/evaluations.csv``."""
    rows = collect_search(proposals, metrics)
    path = write_csv(rows, EVALUATION_COLUMNS, Path(out) / EVALUATIONS)
    log.info("%d evaluated candidates from %d proposals -> %s", len(rows), len(proposals), path)
    return Outcome()


def stage_trials(metrics: list[Path], evaluations: list[Path], out: Path) -> Outcome:
    """``pblf trials``: the repeats gathered into ``out/trials.csv``, one row per run, with their searches' cost."""
    rows = collect_trials(metrics, evaluations)
    path = write_csv(rows, TRIALS_COLUMNS, Path(out) / TRIALS)
    log.info("%d trials -> %s", len(rows), path)
    return Outcome()
