"""``trials.csv`` (SPEC section 3): one row per repeat, the file every table is made of, with what each method's
search cost in candidates and epochs (from the searches' ``evaluations.csv``; its seconds are in the timings table,
:mod:`pblf.results.timings`).

Each run's identity is read from its ``metrics.json`` (:func:`pblf.core.layout.read_run`), never from its folder name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pblf.core.candidate import Candidate
from pblf.core.errors import InputError
from pblf.core.files import write_csv
from pblf.core.layout import TRIALS, read_run
from pblf.core.names import TRIALS_COLUMNS, places_text
from pblf.core.provenance import Outcome
from pblf.search.registry import search_methods
from pblf.search.select import read_evaluations

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchSpend:
    """What one search spent: the candidates it trained, their epochs, their seconds of training, and the
    machines those seconds were measured on."""

    candidates: int
    epochs: int
    seconds: float
    measured_on: tuple[str, ...]


def search_spend(evaluations: Sequence[str | Path]) -> dict[tuple[int, str, int], SearchSpend]:
    """What each search (budget, method, search) in ``evaluations`` spent. A candidate's runs continue one another
    (successive halving), so what it cost is what its furthest run reached, whose epochs include those it
    continued."""
    spent = {}
    for path in evaluations:
        rows = read_evaluations(path)
        reached: dict[str, tuple[int, float]] = {}
        for row in rows:
            key = Candidate.from_dict(row).key
            reached[key] = max(reached.get(key, (0, 0.0)), (row["epochs"], row["seconds"]))
        spent[rows[0]["budget_epochs"], rows[0]["method"], rows[0]["search"]] = SearchSpend(
            len(reached), sum(epochs for epochs, _ in reached.values()),
            round(sum(seconds for _, seconds in reached.values()), 3),
            tuple(sorted({row.get("measured_on") or "" for row in rows} - {""})))
    return spent


def collect_trials(metrics: Sequence[str | Path], evaluations: Sequence[str | Path] = ()) -> list[dict[str, Any]]:
    """One trials row per repeat run, from its metrics: budget, method, search and seed from the run's identity,
    the meta-network's activation and places, and what the search that chose its candidate cost (from
    ``evaluations``; Standard searches nothing). A searched method whose evaluations are missing is an error."""
    spent = search_spend(evaluations)
    rows = []
    for path in metrics:
        run, result = read_run(path)
        if run.kind != "repeat":
            raise InputError(f"{path} is a {run.kind} run, not a repeat")
        if run.method in search_methods() and (run.budget, run.method, run.search) not in spent:
            raise InputError(f"{path}: no evaluations.csv of the {run.method} search {run.search} at {run.budget} "
                             "epochs was given")
        search = spent.get((run.budget, run.method, run.search), SearchSpend(0, 0, 0.0, ()))
        rows.append({
            "budget_epochs": run.budget,
            "method": run.method,
            "seed": run.seed,
            "search": run.search,
            "test_top1": result["test_top1"],
            "val_top1": result["val_top1"],
            **Candidate.from_dict(result["candidate"]).to_dict(),
            "activation": result["activation"],
            "places": places_text(),
            "search_candidates": search.candidates,
            "search_epochs": search.epochs,
        })
    return rows


def stage_trials(metrics: list[Path], evaluations: list[Path], out: Path) -> Outcome:
    """``pblf trials``: the repeats gathered into ``out/trials.csv``, one row per run, with their searches' cost."""
    rows = collect_trials(metrics, evaluations)
    path = write_csv(rows, TRIALS_COLUMNS, Path(out) / TRIALS)
    log.info("%d trials -> %s", len(rows), path)
    return Outcome()
