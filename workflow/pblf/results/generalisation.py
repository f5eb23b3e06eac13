"""How the found equations generalise (the thesis's second shortfall, §6.3.1): the chosen candidate of each search,
and Standard, retrained at other batch sizes.

The thesis reports one sentence and no numbers: "some learned gradient update equations were particularly sensitive
to hyperparameter changes, for example we observed that changes to the batch size would result in exploding
gradients". This stage measures it. Each chosen candidate (of the ``generalisation.from_budget`` searches) and
Standard are trained at every batch size of ``generalisation.batch_sizes``, with the learning rate kept as configured
(``fixed``) or scaled in proportion to the batch size (``linear``, Goyal et al. 2017), for a few seeds each, under
common random numbers (seed s of every method starts from the same weights). A run whose loss becomes non-finite is
a result here, not a failure: it counts in the table as diverged, with the accuracy it had then.

* ``runs.csv``: one row per run (like ``tables/trials.csv`` for the repeats);
* ``generalisation.{csv,md,tex}``: per (method, batch size, lr scaling), Top-1 mean and sample std over the runs,
  n, and how many diverged;
* the figure: Top-1 against batch size, one line per method, one panel per lr scaling, every run a dot, diverged runs
  an x.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pblf.core.errors import InputError
from pblf.core.files import ACCURACY, COUNT, EPOCHS, Field, read_typed_csv, write_csv
from pblf.core.layout import GENERALISATION, GENERALISATION_RUNS, LR_SCALINGS, read_run
from pblf.core.provenance import Outcome
from pblf.results.tables import UNDEFINED, Column, write_table
from pblf.search.registry import methods

log = logging.getLogger(__name__)

RUN_COLUMNS: tuple[str, ...] = ("budget_epochs", "method", "batch_size", "lr_scaling", "seed", "status", "test_top1",
                                "val_top1")
#: How ``runs.csv`` is read back.
RUN_FIELDS: dict[str, Field] = {"budget_epochs": EPOCHS, "method": Field(str, "a method"),
                                "batch_size": Field(EPOCHS.parse, "a positive batch size"),
                                "lr_scaling": Field(str, "a scaling"), "seed": COUNT, "status": Field(str, "a status"),
                                "test_top1": ACCURACY, "val_top1": ACCURACY}
TABLE_COLUMNS: tuple[Column, ...] = (
    Column("batch_size", "Batch", "Batch", "int"),
    Column("lr_scaling", "LR", "LR", "text"),
    Column("test_top1_mean", "Top-1", "Top-1", "accuracy"),
    Column("test_top1_std", "Std", "Std", "spread", UNDEFINED),
    Column("n", "n", "$n$", "int"),
    Column("diverged", "diverged", "diverged", "int", for_people=False),
    Column("diverged_fraction", "Diverged", "Diverged", "share"),
)


def collect_runs(metrics: Sequence[str | Path]) -> list[dict[str, Any]]:
    """One row per generalisation run, from its metrics (its identity says method, batch size and scaling)."""
    rows = []
    for path in metrics:
        run, result = read_run(path)
        if run.kind != "generalisation":
            raise InputError(f"{path} is a {run.kind} run, not a generalisation run")
        rows.append({"budget_epochs": run.budget, "method": run.method, "batch_size": run.batch_size,
                     "lr_scaling": run.lr_scaling, "seed": run.seed, "status": result["status"],
                     "test_top1": result["test_top1"], "val_top1": result["val_top1"]})
    return rows


def read_runs(path: str | Path) -> list[dict[str, Any]]:
    """``runs.csv`` with its numbers typed."""
    rows = [row for _, row in read_typed_csv(path, RUN_FIELDS, "a generalisation runs file")]
    if not rows:
        raise InputError(f"{path}: no generalisation runs")
    return rows


def summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (method, batch size, lr scaling), in method, batch-size and scaling order: Top-1 mean and sample std over
    every run (a diverged run counts with the accuracy it had when it diverged), n, and how many diverged (and which
    share of n)."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["batch_size"], row["lr_scaling"]), []).append(row)
    order = sorted(groups, key=lambda key: (methods().index(key[0]), key[1], LR_SCALINGS.index(key[2])))
    table = []
    for method, batch, scaling in order:
        top1 = [row["test_top1"] for row in groups[method, batch, scaling]]
        table.append({
            "budget_epochs": groups[method, batch, scaling][0]["budget_epochs"],
            "method": method, "batch_size": batch, "lr_scaling": scaling,
            "test_top1_mean": statistics.mean(top1),
            "test_top1_std": statistics.stdev(top1) if len(top1) > 1 else None,
            "n": len(top1),
            "diverged": (diverged := sum(row["status"] == "diverged" for row in groups[method, batch, scaling])),
            "diverged_fraction": diverged / len(top1),
        })
    return table


def stage_generalisation(metrics: list[Path], out: Path) -> Outcome:
    """``pblf generalisation``: ``out/runs.csv`` and the table ``out/generalisation.{csv,md,tex}``."""
    rows = collect_runs(metrics)
    write_csv(rows, RUN_COLUMNS, Path(out) / GENERALISATION_RUNS)
    paths = write_table(summary(rows), TABLE_COLUMNS, Path(out), GENERALISATION)
    diverged = sum(row["status"] == "diverged" for row in rows)
    log.info("%d generalisation runs (%d diverged) -> %s", len(rows), diverged, ", ".join(map(str, paths)))
    return Outcome()


def draw(runs_csv: str | Path, out_stem: str | Path) -> list[Path]:
    """The generalisation figure from ``runs.csv``: Top-1 against batch size (log scale), one line per method (the
    mean over its runs), every run a dot and a diverged run an x, one panel per lr scaling."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.lines import Line2D

    from pblf.results import plotting

    rows = read_runs(runs_csv)
    table = summary(rows)
    scalings = [s for s in LR_SCALINGS if any(row["lr_scaling"] == s for row in rows)]
    present = [m for m in methods() if any(row["method"] == m for row in rows)]
    plotting.apply_style()
    fig, axes = plt.subplots(1, len(scalings), figsize=(5.2 * len(scalings), 4.0), sharey=True, squeeze=False)
    for ax, scaling in zip(axes[0], scalings):
        for offset, method in zip(np.linspace(-0.04, 0.04, len(present)), present):
            colour = plotting.method_colour(method)
            line = [row for row in table if row["method"] == method and row["lr_scaling"] == scaling]
            ax.plot([row["batch_size"] for row in line], [row["test_top1_mean"] for row in line], color=colour,
                    linewidth=1.6, zorder=3)
            for status, marker in (("ok", "o"), ("diverged", "x")):
                points = [row for row in rows if row["method"] == method and row["lr_scaling"] == scaling
                          and (row["status"] == "diverged") == (status == "diverged")]
                if points:  # a small horizontal offset per method keeps coinciding dots apart
                    ax.scatter([row["batch_size"] * 2 ** offset for row in points],
                               [row["test_top1"] for row in points], marker=marker, s=22 if marker == "o" else 40,
                               color=colour, alpha=0.7, zorder=4, linewidths=1.4 if marker == "x" else 0)
        batches = sorted({row["batch_size"] for row in rows})
        ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.minorticks_off()
        ax.set_xlabel("batch size")
        ax.set_ylabel("Top-1 (%)")
        ax.set_title(f"lr {'scaled with the batch size' if scaling == 'linear' else 'fixed'}")
    handles = [Line2D([], [], color=plotting.method_colour(m), linewidth=1.6, label=m) for m in present]
    handles += [Line2D([], [], color="0.4", marker="o", linestyle="none", label="a run"),
                Line2D([], [], color="0.4", marker="x", linestyle="none", label="a diverged run")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize="small")
    budget = rows[0]["budget_epochs"]
    seeds = sorted({row["seed"] for row in rows})
    fig.suptitle(f"Generalisation to other batch sizes: the chosen candidates and Standard, {budget} epochs, "
                 f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}", fontsize="medium")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return plotting.save_figure(fig, out_stem)
