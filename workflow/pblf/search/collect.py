"""Gather a search's finished runs into the flat CSV files the next stages read.

:func:`collect_search` gives every candidate of a search, in evaluation order, with its measured accuracies: a
search's ``evaluations.csv`` (which the selection and Figure 6.3 read) and, reduced to the columns the proposer
reads, the ``history.csv`` of the next BO iteration.

Each run's identity (kind, method, budget, seed, iteration, index) is read from its ``metrics.json``, never from its
folder name, and checked against what the caller expects: a search must never go on from a partial or mixed-up
history by accident.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pblf.core.candidate import Candidate, read_proposal
from pblf.core.errors import InputError
from pblf.core.files import write_csv
from pblf.core.layout import EVALUATIONS, HISTORY, RunId, read_run
from pblf.core.names import EVALUATION_COLUMNS, HISTORY_COLUMNS, PROMOTED
from pblf.core.provenance import Outcome

log = logging.getLogger(__name__)


def collect_search(proposals: Sequence[str | Path], metrics: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Rows of every candidate of ``proposals`` (the proposal files of iterations 0, 1, ..., in order), each with the
    results of its run among ``metrics``.

    Every proposed candidate must have exactly one finished search run of one search (one method, budget and
    search), and that run must have trained the proposed candidate."""
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
        searches.add((run.budget, run.method, run.search))
    if len(searches) > 1:
        raise InputError(f"the runs belong to several searches (budget, method, search): {sorted(searches)}")
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
                "search": run.search,
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
                "measured_on": result.get("measured_on", ""),
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


# ------------------------------------------------------------------------------------------------------- stages


def _write(proposals: list[Path], metrics: list[Path], columns: tuple[str, ...], path: Path) -> Outcome:
    rows = collect_search(proposals, metrics)
    write_csv(rows, columns, path)
    log.info("%d evaluated candidates from %d proposals -> %s", len(rows), len(proposals), path)
    return Outcome()


def stage_history(proposals: list[Path], metrics: list[Path], out: Path) -> Outcome:
    """``pblf history``: what the proposer of the next iteration reads, ``out/history.csv``."""
    return _write(proposals, metrics, HISTORY_COLUMNS, Path(out) / HISTORY)


def stage_evaluations(proposals: list[Path], metrics: list[Path], out: Path) -> Outcome:
    """``pblf evaluations``: every candidate a search evaluated, in order, ``out/evaluations.csv``."""
    return _write(proposals, metrics, EVALUATION_COLUMNS, Path(out) / EVALUATIONS)
