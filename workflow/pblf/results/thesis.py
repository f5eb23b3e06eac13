"""The thesis's own numbers (Tables 6.2, B.1, B.2, Figure 6.4's end points and the cost it reports), read from their
one transcription.

``thesis.yaml`` beside this module holds every number as the thesis prints it, with the table and page it comes
from; nothing else in the package types a thesis number. This module reads it into typed records and checks its
shape, so a typo in the transcription (a missing run, a method the thesis does not have) stops with the entry named
rather than showing up as a strange row of the reproduction table. Whether the numbers are the thesis's is checked
by ``tests/test_thesis.py`` against hand-picked cells and against each other.

The thesis's "±" is the sample variance of its five runs (Table 6.2's "95 ± 0.52" is the variance of Table B.1's
PBLF-BO runs at 100 epochs, whose standard deviation is 0.72), so it is kept as ``pm`` and never called a spread.
"""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pblf.core.candidate import Candidate
from pblf.core.names import PHI_NAMES, STANDARD

#: The transcription.
SOURCE = Path(__file__).with_name("thesis.yaml")
#: The methods the thesis compares (PBLF-HG is this project's), in its order.
THESIS_METHODS: tuple[str, ...] = ("PBLF-BO", "PBLF-RS", STANDARD)
#: The thesis's budgets, in epochs.
THESIS_BUDGETS: tuple[int, ...] = (20, 100)
#: The thesis's number of runs per method and budget ("averaged over five runs", Section 6.2).
RUNS = 5


@dataclass(frozen=True)
class Reported:
    """One (budget, method) of the thesis: its chosen candidate, Table 6.2's printed Top-1 and "±", and the five
    runs of Tables B.1 (test) and B.2 (validation) with their printed averages and "±"."""

    budget: int
    method: str
    candidate: Candidate
    top1: float
    pm: float
    test_runs: tuple[float, ...]
    test_average: float
    test_pm: float
    val_runs: tuple[float, ...]
    val_average: float
    val_pm: float

    def runs(self, field: str) -> tuple[float, ...]:
        """The five runs of ``field`` (``test_top1``: Table B.1, ``val_top1``: Table B.2)."""
        return {"test_top1": self.test_runs, "val_top1": self.val_runs}[field]

    def mean(self, field: str) -> float:
        return statistics.mean(self.runs(field))


@dataclass(frozen=True)
class ThesisNumbers:
    """Every number of the transcription: :class:`Reported` per (budget, method), Figure 6.4's end points, and
    where each table comes from."""

    reported: dict[tuple[int, str], Reported]
    convergence_epochs: int
    convergence_from_budget: int
    convergence_top1: dict[str, float]
    where: dict[str, str]
    setting: dict[str, str]
    #: Section 6.3.1's cost: the GPU days of the PBLF-BO search at 100 epochs, and the GPU it ran on.
    search_gpu_days: float
    gpu: str

    def trials(self) -> list[dict[str, Any]]:
        """The thesis's runs as rows of a trials file (SPEC section 3), run i as seed i: ``pblf tables`` makes the
        thesis's own Tables 6.2, B.1 and B.2 from them."""
        return [{"budget_epochs": r.budget, "method": r.method, "seed": i + 1, "test_top1": test, "val_top1": val,
                 **r.candidate.to_dict()}
                for r in self.reported.values() for i, (test, val) in enumerate(zip(r.test_runs, r.val_runs))]


class TranscriptionError(ValueError):
    """``thesis.yaml`` does not have the shape this module expects (a bug in the repository, not a user error)."""


@functools.cache
def load(path: Path = SOURCE) -> ThesisNumbers:
    """The transcription at ``path``, checked: every (budget, method) of the thesis once in each table, five runs
    each, Figure 6.4's three end points."""
    data = yaml.safe_load(path.read_text())
    tables = {name: _rows(data, name, path) for name in ("table_6_2", "table_B_1", "table_B_2")}
    reported = {}
    for key, row in sorted(tables["table_6_2"].items()):
        test, val = tables["table_B_1"][key], tables["table_B_2"][key]
        reported[key] = Reported(
            budget=key[0], method=key[1], candidate=Candidate.from_dict({k: row[k] for k in (*PHI_NAMES, "mode")}),
            top1=float(row["top1"]), pm=float(row["pm"]),
            test_runs=tuple(map(float, test["runs"])), test_average=float(test["average"]), test_pm=float(test["pm"]),
            val_runs=tuple(map(float, val["runs"])), val_average=float(val["average"]), val_pm=float(val["pm"]),
        )
    figure = data["figure_6_4"]
    if sorted(figure["top1"]) != sorted(THESIS_METHODS):
        raise TranscriptionError(f"{path}: figure_6_4.top1 must give {', '.join(THESIS_METHODS)}")
    return ThesisNumbers(
        reported=reported, convergence_epochs=int(figure["epochs"]),
        convergence_from_budget=int(figure["from_budget"]),
        convergence_top1={method: float(value) for method, value in figure["top1"].items()},
        where={name: str(data[name]["where"]) for name in (*tables, "figure_6_4", "compute")},
        setting={key: str(value) for key, value in data["setting"].items()},
        search_gpu_days=float(data["compute"]["gpu_days"]), gpu=str(data["compute"]["gpu"]),
    )


def _rows(data: dict[str, Any], name: str, path: Path) -> dict[tuple[int, str], dict[str, Any]]:
    """A table's rows by (budget, method), each (budget, method) of the thesis exactly once, runs five long."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for row in data[name]["rows"]:
        key = (int(row["budget_epochs"]), str(row["method"]))
        if key in rows:
            raise TranscriptionError(f"{path}: {name} lists budget {key[0]}, {key[1]} twice")
        if "runs" in row and len(row["runs"]) != RUNS:
            raise TranscriptionError(f"{path}: {name}, budget {key[0]}, {key[1]}: {len(row['runs'])} runs, not {RUNS}")
        rows[key] = row
    expected = {(budget, method) for budget in THESIS_BUDGETS for method in THESIS_METHODS}
    if set(rows) != expected:
        raise TranscriptionError(f"{path}: {name} must list every budget of {THESIS_BUDGETS} for every method of "
                                 f"{THESIS_METHODS} (it lists {sorted(rows)})")
    return rows
