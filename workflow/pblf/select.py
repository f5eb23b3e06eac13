"""Collect what a search evaluated, choose its candidate, and gather the repeats into the flat trials file.

Three small steps between training runs and tables, kept apart from Snakemake so that they can be rerun and tested
by hand:

* :func:`collect_search`: every candidate of a search, in evaluation order, with its measured accuracies
  (the history the proposer reads, and the scatter of Figure 6.3);
* :func:`select_best`: the candidate with the highest Top-1 validation; ties go to the earliest evaluated, so the
  choice does not depend on floating-point noise in the order of a sort;
* :func:`collect_trials`: one row per repeat seed, the ``trials.csv`` of SPEC section 3 that every table is made of.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pblf.candidate import PHI_NAMES, Candidate
from pblf.files import read_json, write_text
from pblf.workflow import search_run_name

HISTORY_COLUMNS = (*PHI_NAMES, "mode", "val_top1")
SEARCH_COLUMNS = ("iteration", "index", "source", *PHI_NAMES, "mode", "status", "val_top1", "test_top1", "run")
TRIALS_COLUMNS = ("budget_epochs", "method", "seed", "test_top1", "val_top1", *PHI_NAMES, "mode")


def write_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str], path: str | Path) -> Path:
    """A CSV with exactly ``columns``, Unix line ends, floats in Python's shortest round-trip form."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(buffer.getvalue(), path)


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as handle:
        return list(csv.DictReader(handle))


def collect_search(proposals: Sequence[str | Path], runs_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of every candidate of ``proposals`` (ordered by iteration) whose run in ``runs_dir`` has finished.

    ``runs_dir`` is the search's folder under ``results/runs`` (see :func:`pblf.workflow.search_run`); a missing
    metrics file is an error, because a search must never go on from a partial history by accident."""
    rows = []
    for iteration, proposal in enumerate(proposals):
        for index, entry in enumerate(read_json(proposal)["candidates"]):
            run = Path(runs_dir) / search_run_name(iteration, index)
            metrics_path = run / "metrics.json"
            if not metrics_path.is_file():
                raise FileNotFoundError(f"{metrics_path} is missing: candidate {index} of {proposal} has not finished")
            metrics = read_json(metrics_path)
            candidate = Candidate.from_dict(metrics["candidate"])
            if candidate != Candidate.from_dict(entry):
                raise ValueError(f"{metrics_path} trained {candidate} but {proposal} proposed {entry}")
            rows.append(
                {
                    "iteration": iteration,
                    "index": index,
                    "source": entry.get("source", "random"),
                    **candidate.to_dict(),
                    "status": metrics["status"],
                    "val_top1": metrics["val_top1"],
                    "test_top1": metrics["test_top1"],
                    "run": str(run),
                }
            )
    return rows


def select_best(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The row with the highest Top-1 validation; the earliest evaluated among equals."""
    if not rows:
        raise ValueError("no evaluated candidates to select from")
    best = rows[0]
    for row in rows[1:]:
        if float(row["val_top1"]) > float(best["val_top1"]):
            best = row
    return best


def selection_record(row: dict[str, Any], budget: int, method: str) -> dict[str, Any]:
    """What ``select/b<B>/<method>.json`` holds: the candidate, and where it came from."""
    candidate = Candidate.from_dict(row)
    record = {"budget": budget, "method": method, "candidate": candidate.to_dict()}
    for key in ("iteration", "index", "source", "val_top1", "test_top1", "run"):
        if key in row:
            record[key] = row[key]
    return record


def collect_trials(entries: Iterable[tuple[int, str, int, str | Path]]) -> list[dict[str, Any]]:
    """One trials row per (budget, method, seed, run folder) from the run's metrics.json."""
    rows = []
    for budget, method, seed, run in entries:
        metrics = read_json(Path(run) / "metrics.json")
        rows.append(
            {
                "budget_epochs": budget,
                "method": method,
                "seed": seed,
                "test_top1": metrics["test_top1"],
                "val_top1": metrics["val_top1"],
                **Candidate.from_dict(metrics["candidate"]).to_dict(),
            }
        )
    return rows
