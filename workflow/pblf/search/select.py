"""Choose a search's candidate: the highest Top-1 validation, the earliest evaluated among equals.

Ties go to the earliest evaluated candidate, so the choice does not depend on floating-point noise in the order of a
sort. The choice is written as a selection record, ``select/b<B>/r<R>/<method>.json`` (R: which of the method's
searches), which the repeats and the convergence reruns train; Standard backpropagation gets the same kind of record,
from the config, as search 0.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pblf.core.candidate import Candidate, standard_candidate
from pblf.core.config import load_config, stage_config
from pblf.core.errors import InputError
from pblf.core.files import AMOUNT, COUNT, EPOCHS, NUMBER, Field, read_typed_csv, write_json
from pblf.core.layout import selection_name
from pblf.core.names import FULL_BUDGET_STATUSES, PHI_NAMES, STANDARD
from pblf.core.provenance import Outcome

log = logging.getLogger(__name__)

#: How an ``evaluations.csv`` is read (:data:`pblf.core.names.EVALUATION_COLUMNS`); the candidate's columns are
#: read as one candidate. Top-1 may be any finite number (a diverged run's is what it had then).
EVALUATION_FIELDS: dict[str, Field] = {
    "budget_epochs": EPOCHS, "method": Field(str, "a method"),
    "search": COUNT.optional(0),  # a file written before search.repeats: the only search
    "iteration": COUNT, "index": COUNT, "epochs": COUNT,
    "val_top1": NUMBER, "test_top1": NUMBER, "seconds": AMOUNT,
    **{name: Field(str, "text") for name in (*PHI_NAMES, "mode")},
}

#: What a selection record keeps of the evaluation it chose (besides the candidate).
PROVENANCE_FIELDS: tuple[str, ...] = ("iteration", "index", "source", "val_top1", "test_top1", "run")


def select_best(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The row with the highest Top-1 validation among the runs that trained the full budget (a run stopped early
    by low-fidelity search measured a lower fidelity); the earliest in ``rows`` among equals."""
    rows = [row for row in rows if row.get("status", "ok") in FULL_BUDGET_STATUSES]
    if not rows:
        raise InputError("no evaluated candidate trained its full budget: nothing to select from")
    best = rows[0]
    for row in rows[1:]:
        if float(row["val_top1"]) > float(best["val_top1"]):
            best = row
    return best


def read_evaluations(path: str | Path) -> list[dict[str, Any]]:
    """A search's ``evaluations.csv`` with its numbers typed, in evaluation order; one search per file."""
    rows = [row for _, row in read_typed_csv(path, EVALUATION_FIELDS, "an evaluations file",
                                             lambda raw, row: {**row, **Candidate.from_dict(raw).to_dict()})]
    if not rows:
        raise InputError(f"{path}: no evaluated candidates")
    searches = sorted({(row["budget_epochs"], row["method"], row["search"]) for row in rows})
    if len(searches) > 1:
        raise InputError(f"{path} mixes several searches (budget, method, search): {searches}")
    return sorted(rows, key=lambda row: (row["iteration"], row["index"]))


def selection_record(candidate: Candidate, budget: int, method: str, search: int,
                     chosen: dict[str, Any] | None = None) -> dict:
    """What ``select/b<B>/r<R>/<method>.json`` holds: the candidate, which search chose it, and the evaluation it
    came from (if any)."""
    record = {"budget": budget, "method": method, "search": search, "candidate": candidate.to_dict()}
    record.update({key: chosen[key] for key in PROVENANCE_FIELDS if chosen and key in chosen})
    return record


def stage_select(evaluations: Path, out: Path) -> Outcome:
    """``pblf select``: the chosen candidate of the search in ``evaluations``, ``out/<method>.json``."""
    rows = read_evaluations(evaluations)
    best = select_best(rows)
    budget, method, search = best["budget_epochs"], best["method"], best["search"]
    record = selection_record(Candidate.from_dict(best), budget, method, search, best)
    path = write_json(record, Path(out) / selection_name(method))
    log.info("%s at %d epochs, search %d: %s (Top-1 validation %.2f) -> %s", method, budget, search,
             record["candidate"], best["val_top1"], path)
    return Outcome()


def stage_select_standard(config: list[Path], budget: int, out: Path) -> Outcome:
    """``pblf select-standard``: Standard backpropagation (``standard`` in the config), recorded like a search's
    choice so that the repeats train it the same way, ``out/Standard.json``."""
    cfg = load_config(config)
    candidate = standard_candidate(cfg)
    path = write_json(selection_record(candidate, budget, STANDARD, 0), Path(out) / selection_name(STANDARD))
    log.info("%s at %d epochs: %s -> %s", STANDARD, budget, candidate.to_dict(), path)
    return Outcome(stage_config(cfg, "select"))
