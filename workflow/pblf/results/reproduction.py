"""The reproduction tables: every number the thesis reports beside the pipeline's, with the difference and whether
the pipeline's number lies within the thesis's own spread.

Two tables, each written as CSV, Markdown and LaTeX into the tables folder:

* ``reproduction``: per budget and method, the Top-1 level (the thesis's mean and std over its five runs, the
  pipeline's over its repeat seeds, the difference, and whether the pipeline's mean lies within the range of the
  thesis's five runs), then the comparison with Standard side by side: the thesis's difference of means with
  Welch's 95 % interval (nothing says its runs were paired) and the pipeline's paired difference with its 95 %
  interval (common random numbers pair seed s of every method), and whether the pipeline's interval contains the
  thesis's difference. With different absolute levels (other data, recipe or network) the comparison is what can
  reproduce. Figure 6.4's end points (one run each) close the table.
* ``reproduction_cells``: every cell of Tables 6.2, B.1, B.2 and Figure 6.4's end points, one row each: the
  thesis's number as printed, the pipeline's, the difference, and, for accuracies, whether it lies within the range
  of the thesis's five runs. Run i of Table B.1 is set beside the pipeline's i-th repeat seed.

Budgets: a pipeline budget equal to a thesis budget (20, 100) is compared with it; the others are paired with the
remaining thesis budgets in increasing order (the demo's 3 and 6 epochs stand for 20 and 100), and the tables show
both. A thesis cell the pipeline has no number for (a budget it did not run, a fifth seed it did not train) is kept,
with an empty pipeline cell, so the table always lists every number of the thesis.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pblf.core.errors import InputError
from pblf.core.files import file_digest
from pblf.core.layout import read_run
from pblf.core.names import REPRODUCTION_TABLES, STANDARD
from pblf.core.provenance import PACKAGE, Outcome
from pblf.results.stats import paired, welch
from pblf.results.tables import UNDEFINED, Column, csv_only, format_number, groups_by_search, read_trials, write_table
from pblf.results.thesis import SOURCE, THESIS_METHODS, Reported, ThesisNumbers, load

log = logging.getLogger(__name__)

#: What a yes/no verdict cell holds.
YES, NO = "yes", "no"
#: The header of the tables' budget column: the budget the pipeline ran for the thesis's budget beside it.
PIPELINE_BUDGET = "Pipeline budget"
#: The (people-only) field that says a row is compared with Standard: Standard's own rows leave those cells empty.
COMPARED = "compared"

SUMMARY_COLUMNS: tuple[Column, ...] = (
    Column("source", "Source", "Source", "text"),
    Column("thesis_budget", "Thesis budget", "Thesis budget", "epochs"),
    Column("thesis_top1", "Thesis Top-1", "Thesis Top-1", "accuracy"),
    Column("thesis_std", "Thesis std", "Thesis std", "spread", UNDEFINED),
    Column("top1", "Top-1", "Top-1", "accuracy", UNDEFINED),
    Column("std", "Std", "Std", "spread", UNDEFINED),
    Column("n", "n", "$n$", "int"),
    Column("difference", "Difference", "Difference", "accuracy"),
    Column("in_thesis_range", "In thesis range", "In thesis range", "text"),
    Column("thesis_vs_standard", "Thesis Δ vs Standard", "Thesis $\\Delta$ vs Standard", "accuracy", when=COMPARED),
    Column("thesis_vs_standard_ci_low", "Thesis 95 % CI", "Thesis 95\\,\\% CI", "interval", UNDEFINED,
           pair="thesis_vs_standard_ci_high", in_csv=False, when=COMPARED),
    csv_only("thesis_vs_standard_ci_low", "accuracy"),
    csv_only("thesis_vs_standard_ci_high", "accuracy"),
    Column("vs_standard", "Δ vs Standard", "$\\Delta$ vs Standard", "accuracy", when=COMPARED),
    Column("vs_standard_ci_low", "95 % CI", "95\\,\\% CI", "interval", UNDEFINED, pair="vs_standard_ci_high",
           in_csv=False, when=COMPARED, equal="vs_standard_all_equal"),
    csv_only("vs_standard_ci_low", "accuracy"),
    csv_only("vs_standard_ci_high", "accuracy"),
    csv_only("vs_standard_n", "int"),
    Column("thesis_delta_in_ci", "Thesis Δ in CI", "Thesis $\\Delta$ in CI", "text", when=COMPARED),
)
CELL_COLUMNS: tuple[Column, ...] = (
    Column("source", "Source", "Source", "text"),
    Column("thesis_budget", "Thesis budget", "Thesis budget", "epochs"),
    Column("cell", "Cell", "Cell", "text"),
    Column("thesis_text", "Thesis", "Thesis", "text", in_csv=False),
    Column("text", "Pipeline", "Pipeline", "text", in_csv=False),
    Column("difference_text", "Difference", "Difference", "text", in_csv=False),
    csv_only("thesis", "text"),
    csv_only("pipeline", "text"),
    csv_only("difference", "accuracy"),
    Column("in_thesis_range", "In thesis range", "In thesis range", "text"),
)


def pair_budgets(budgets: Sequence[int], thesis_budgets: Sequence[int]) -> dict[int, int]:
    """Thesis budget -> the pipeline budget that stands for it: equal budgets pair with each other, the others in
    increasing order (pipeline [3, 6] -> {20: 3, 100: 6}; [6] -> {20: 6}; [20, 50, 100] -> {20: 20, 100: 100})."""
    equal = {budget: budget for budget in thesis_budgets if budget in budgets}
    ours = sorted(budget for budget in budgets if budget not in equal)
    theirs = sorted(budget for budget in thesis_budgets if budget not in equal)
    return {**equal, **dict(zip(theirs, ours))}


def _verdict(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or low is None or high is None:
        return ""
    return YES if low <= value <= high else NO


def _difference(ours: float | None, theirs: float) -> float | None:
    return None if ours is None else ours - theirs


def read_convergence(paths: Sequence[str | Path]) -> tuple[int | None, dict[str, float]]:
    """The convergence reruns' epochs and each method's final Top-1 (one run per method)."""
    epochs, top1 = None, {}
    for path in paths:
        run, metrics = read_run(path)
        if run.kind != "convergence":
            raise InputError(f"{path} is a {run.kind} run, not a convergence rerun")
        if run.method in top1:
            raise InputError(f"{path}: a second convergence run of {run.method}")
        epochs, top1[run.method] = run.budget, metrics["test_top1"]
    return epochs, top1


def _paired(rows: Sequence[dict[str, Any]], thesis: ThesisNumbers
            ) -> tuple[dict[tuple[int, str], list[dict[str, Any]]], list[tuple[int, int | None]]]:
    """The run's trials by (budget, method), of each method's first search (the thesis ran one), and each thesis
    budget (largest first, as the thesis lists them) with the run's budget that stands for it (None: none does)."""
    groups = {(budget, method): group for (budget, method, search), group in groups_by_search(rows) if search == 0}
    theirs = sorted({budget for budget, _ in thesis.reported})
    paired_budgets = pair_budgets(sorted({budget for budget, _ in groups}), theirs)
    return groups, [(budget, paired_budgets.get(budget)) for budget in reversed(theirs)]


def summary(rows: Sequence[dict[str, Any]], convergence: tuple[int | None, dict[str, float]],
            thesis: ThesisNumbers) -> list[dict[str, Any]]:
    """The ``reproduction`` table: levels and comparisons with Standard per budget and method, then Figure 6.4."""
    groups, budgets = _paired(rows, thesis)
    table = []
    for thesis_budget, ours_budget in budgets:
        standard = thesis.reported[thesis_budget, STANDARD]
        ours_standard = {row["seed"]: row["test_top1"] for row in groups.get((ours_budget, STANDARD), [])}
        for method in THESIS_METHODS:
            reported = thesis.reported[thesis_budget, method]
            ours = {row["seed"]: row["test_top1"] for row in groups.get((ours_budget, method), [])}
            table.append({"source": "Table 6.2", "thesis_budget": thesis_budget, "budget_epochs": ours_budget,
                          "method": method, COMPARED: method != STANDARD, **_level(reported, list(ours.values())),
                          **_versus(reported, standard, ours, ours_standard)})
    epochs, top1 = convergence
    for method in THESIS_METHODS:
        theirs, ours = thesis.convergence_top1[method], top1.get(method)
        theirs_delta = theirs - thesis.convergence_top1[STANDARD]
        ours_delta = ours - top1[STANDARD] if ours is not None and STANDARD in top1 else None
        table.append({"source": "Figure 6.4", "thesis_budget": thesis.convergence_epochs,
                      "budget_epochs": epochs if ours is not None else None, "method": method,
                      COMPARED: method != STANDARD, "thesis_top1": theirs, "thesis_std": None, "top1": ours,
                      "std": None, "n": int(ours is not None),
                      "difference": _difference(ours, theirs), "in_thesis_range": "",
                      **_no_versus(), **({"thesis_vs_standard": theirs_delta, "vs_standard": ours_delta}
                                         if method != STANDARD else {})})
    return table


def _level(reported: Reported, ours: list[float]) -> dict[str, Any]:
    runs = reported.runs("test_top1")
    mean = statistics.mean(ours) if ours else None
    return {"thesis_top1": statistics.mean(runs), "thesis_std": statistics.stdev(runs), "top1": mean,
            "std": statistics.stdev(ours) if len(ours) > 1 else None, "n": len(ours),
            "difference": _difference(mean, statistics.mean(runs)),
            "in_thesis_range": _verdict(mean, min(runs), max(runs))}


def _no_versus() -> dict[str, Any]:
    return {key: None for key in ("thesis_vs_standard", "thesis_vs_standard_ci_low", "thesis_vs_standard_ci_high",
                                  "vs_standard", "vs_standard_ci_low", "vs_standard_ci_high", "vs_standard_n")} | \
        {"thesis_delta_in_ci": ""}


def _versus(reported: Reported, standard: Reported, ours: dict[int, float],
            ours_standard: dict[int, float]) -> dict[str, Any]:
    """The thesis's (Welch) and the pipeline's (paired) difference to Standard; nothing for Standard itself."""
    if reported.method == STANDARD:
        return _no_versus()
    theirs = welch(reported.runs("test_top1"), standard.runs("test_top1"))
    mine = paired(ours, ours_standard) if ours and ours_standard else {"diff": None, "ci_low": None,
                                                                      "ci_high": None, "n": 0, "all_equal": False}
    return {"thesis_vs_standard": theirs["diff"], "thesis_vs_standard_ci_low": theirs["ci_low"],
            "thesis_vs_standard_ci_high": theirs["ci_high"], "vs_standard": mine["diff"],
            "vs_standard_ci_low": mine["ci_low"], "vs_standard_ci_high": mine["ci_high"],
            "vs_standard_n": mine["n"], "vs_standard_all_equal": mine["all_equal"],
            "thesis_delta_in_ci": _verdict(theirs["diff"], mine["ci_low"], mine["ci_high"])}


def cells(rows: Sequence[dict[str, Any]], convergence: tuple[int | None, dict[str, float]],
          thesis: ThesisNumbers) -> list[dict[str, Any]]:
    """The ``reproduction_cells`` table: every number of Tables 6.2, B.1, B.2 and Figure 6.4's end points."""
    groups, budgets = _paired(rows, thesis)
    table = []
    for thesis_budget, ours_budget in budgets:
        for method in THESIS_METHODS:
            reported = thesis.reported[thesis_budget, method]
            group = groups.get((ours_budget, method), [])
            head = {"thesis_budget": thesis_budget, "budget_epochs": ours_budget if group else None,
                    "method": method}
            table += [{**head, **cell} for cell in _cells_of(reported, group)]
    epochs, top1 = convergence
    for method in THESIS_METHODS:
        ours, theirs = top1.get(method), thesis.convergence_top1[method]
        table.append({"thesis_budget": thesis.convergence_epochs, "budget_epochs": epochs if ours is not None else None,
                      "method": method, **_cell("Figure 6.4", "Top-1 at the end", theirs, ours, "accuracy")})
    return table


def _cells_of(reported: Reported, group: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One (budget, method)'s cells: Table 6.2's candidate, Top-1 and "±" (its variance), then Tables B.1 and B.2."""
    ours_test = [row["test_top1"] for row in group]
    candidate = group[0] if group else {}
    test_range = (min(reported.test_runs), max(reported.test_runs))
    made = [_cell("Table 6.2", name.upper()[0] + "_" + name[1], getattr(reported.candidate, name),
                  candidate.get(name), "phi") for name in ("w1", "w2", "b1", "b2")]
    made.append(_cell("Table 6.2", "Mode", reported.candidate.mode, candidate.get("mode"), "text"))
    made.append(_cell("Table 6.2", "Top-1", reported.top1, statistics.mean(ours_test) if ours_test else None,
                      "accuracy", test_range))
    made.append(_cell("Table 6.2", "± (variance)", reported.pm,
                      statistics.variance(ours_test) if len(ours_test) > 1 else None, "spread"))
    for source, field, average, pm in (("Table B.1", "test_top1", reported.test_average, reported.test_pm),
                                       ("Table B.2", "val_top1", reported.val_average, reported.val_pm)):
        runs = reported.runs(field)
        ours = [row[field] for row in group]
        span = (min(runs), max(runs))
        for i, value in enumerate(runs):
            seed = f" / seed {group[i]['seed']}" if i < len(group) else ""
            made.append(_cell(source, f"run {i + 1}{seed}", value, ours[i] if i < len(ours) else None, "accuracy",
                              span))
        made.append(_cell(source, "Avg.", average, statistics.mean(ours) if ours else None, "accuracy", span))
        made.append(_cell(source, "± (variance)", pm, statistics.variance(ours) if len(ours) > 1 else None,
                          "spread"))
    return made


def _cell(source: str, name: str, theirs: Any, ours: Any, kind: str,
          span: tuple[float, float] | None = None) -> dict[str, Any]:
    """One cell: both values as numbers (CSV) and as people read them, the difference, and the range verdict."""
    numeric = kind != "text"
    difference = ours - theirs if numeric and ours is not None else None
    show = (lambda value: "" if value is None else (str(value) if not numeric else format_number(value, kind)))
    return {"source": source, "cell": name, "thesis": theirs, "pipeline": ours, "difference": difference,
            "thesis_text": show(theirs), "text": show(ours),
            "difference_text": "" if difference is None else format_number(difference, kind),
            "in_thesis_range": _verdict(ours, *span) if span else ""}


def write_reproduction(trials: str | Path, convergence: Sequence[str | Path], out_dir: str | Path,
                       thesis: ThesisNumbers | None = None) -> list[Path]:
    """Write :data:`pblf.core.names.REPRODUCTION_TABLES` (each .csv, .md, .tex, .html) into ``out_dir``; their paths, sorted."""
    thesis = thesis or load()
    rows = read_trials(trials)
    runs = read_convergence(convergence)
    made = {"reproduction": (summary(rows, runs, thesis), SUMMARY_COLUMNS),
            "reproduction_cells": (cells(rows, runs, thesis), CELL_COLUMNS)}
    out_dir = Path(out_dir)
    return sorted(path for name in REPRODUCTION_TABLES
                  for path in write_table(*made[name], out_dir, name, budget_header=PIPELINE_BUDGET))


def stage_reproduction(trials: Path, out: Path, convergence: list[Path] | None = None) -> Outcome:
    """``pblf reproduction``: the reproduction tables from a trials file (and the convergence reruns' metrics).

    The transcription is part of the package, not of the results: its records name it by its sha256 (in
    ``thesis_numbers``) rather than listing it as an input the audit would have to find outside the results."""
    paths = write_reproduction(trials, convergence or [], out)
    log.info("reproduction tables from %s: %s", trials, ", ".join(p.name for p in paths))
    return Outcome(extra={"thesis_numbers": {"file": SOURCE.relative_to(PACKAGE.parent).as_posix(), "sha256": file_digest(SOURCE)}})
