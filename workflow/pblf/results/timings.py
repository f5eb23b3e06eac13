"""The timings table: what each search's training took, and on what machine; the one table that is a measurement.

Every other table regenerates byte for byte from the same runs; the seconds a run took depend on the machine and
whatever else it was doing, so they live here, apart, with the GPU or processor they were measured on (each run's
``measured_on``, gathered into its search's ``evaluations.csv``). Per (budget, method, search): the candidates the search
trained and their epochs (as in Table 6.2), the seconds of training they took (each candidate's furthest run, the
runs it continued included; evaluation and start-up left out), and where.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pblf.core.names import TIMINGS
from pblf.core.provenance import Outcome
from pblf.results.tables import Column, for_searches, write_table
from pblf.results.trials import search_spend
from pblf.search.registry import methods

log = logging.getLogger(__name__)

COLUMNS: tuple[Column, ...] = (
    Column("search", "Search", "Search", "int"),
    Column("candidates", "Candidates", "Candidates", "int"),
    Column("epochs", "Epochs", "Epochs", "int"),
    Column("seconds", "Time (s)", "Time (s)", "seconds"),
    Column("measured_on", "Measured on", "Measured on", "text"),
)


def timings(evaluations: list[Path]) -> list[dict[str, Any]]:
    """One row per search in ``evaluations``, budgets largest first, methods in the tables' order, then searches."""
    spent = search_spend(evaluations)
    order = sorted(spent, key=lambda key: (-key[0], methods().index(key[1]), key[2]))
    return [{"budget_epochs": budget, "method": method, "search": search,
             "candidates": spent[budget, method, search].candidates, "epochs": spent[budget, method, search].epochs,
             "seconds": spent[budget, method, search].seconds,
             "measured_on": "; ".join(spent[budget, method, search].measured_on)}
            for budget, method, search in order]


def stage_timings(evaluations: list[Path], out: Path) -> Outcome:
    """``pblf timings``: ``out/timings.{csv,md,tex}`` from the searches' ``evaluations.csv``."""
    rows = timings(evaluations)
    several = any(row["search"] for row in rows)
    paths = write_table(rows, for_searches(COLUMNS, several), Path(out), TIMINGS)
    log.info("timings of %d searches -> %s", len(evaluations), ", ".join(map(str, paths)))
    return Outcome()
