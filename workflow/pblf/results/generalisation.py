"""How the found equations generalise (the thesis's second shortfall, §6.3.1): the chosen candidate of each search,
and Standard, retrained at other batch sizes.

The thesis reports one sentence and no numbers: "some learned gradient update equations were particularly sensitive
to hyperparameter changes, for example we observed that changes to the batch size would result in exploding
gradients". This stage measures it. Each chosen candidate (of the ``generalisation.from_budget`` searches) and
Standard are trained at every batch size of ``generalisation.batch_sizes``, with the learning rate kept as configured
(``fixed``) or scaled in proportion to the batch size (``linear``, Goyal et al. 2017, warmed up when scaled up:
:func:`pblf.training.train.run_config`), for a few seeds each, under common random numbers (seed s of every method
starts from the same weights). A run whose loss becomes non-finite is a result here, not a failure: it counts in the
table as diverged, with the accuracy it had then.

* ``runs.csv``: one row per run (like ``tables/trials.csv`` for the repeats), the run at ``train.batch_size`` once
  under each scaling;
* ``generalisation.{csv,md,tex}``: per (method, batch size, lr scaling), Top-1 mean and sample std over the runs,
  n, how many diverged, and the paired difference to Standard with its interval;
* the figure: Top-1 against batch size, one line per method, one panel per lr scaling, every run a dot, diverged runs
  an x.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pblf.core.config import load_config, stage_config
from pblf.core.errors import InputError
from pblf.core.files import ACCURACY, COUNT, EPOCHS, Field, read_typed_csv, write_csv
from pblf.core.layout import GENERALISATION, GENERALISATION_RUNS, LR_SCALINGS, read_run
from pblf.core.names import STANDARD
from pblf.core.provenance import Outcome
from pblf.results.stats import paired
from pblf.results.tables import UNDEFINED, Column, interval_columns, write_table
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
    Column("diverged_fraction", "diverged_fraction", "diverged_fraction", "share", for_people=False),
    Column("diverged_label", "Diverged", "Diverged", "text", in_csv=False),
    *interval_columns("vs_standard_", "Δ vs Standard"),
)


def shared_runs(config: dict[str, Any], batch_size: int, lr_scaling: str) -> bool:
    """Whether the generalisation runs of ``batch_size`` and ``lr_scaling`` are those of the other scaling: a linear
    rate at ``train.batch_size`` is the fixed one, so with both scalings those runs are trained once, as ``fixed``,
    and listed under both."""
    return (batch_size == config["train"]["batch_size"] and lr_scaling == "linear"
            and "fixed" in config["generalisation"]["lr_scaling"])


def collect_runs(config: dict[str, Any], metrics: Sequence[str | Path]) -> list[dict[str, Any]]:
    """One row per generalisation run, from its metrics (its identity says method, batch size and scaling); a run
    shared by both scalings (:func:`shared_runs`) once under each."""
    rows = []
    for path in metrics:
        run, result = read_run(path)
        if run.kind != "generalisation":
            raise InputError(f"{path} is a {run.kind} run, not a generalisation run")
        row = {"budget_epochs": run.budget, "method": run.method, "batch_size": run.batch_size,
               "lr_scaling": run.lr_scaling, "seed": run.seed, "status": result["status"],
               "test_top1": result["test_top1"], "val_top1": result["val_top1"]}
        rows.append(row)
        if shared_runs(config, run.batch_size, "linear") and run.lr_scaling == "fixed":
            rows.append({**row, "lr_scaling": "linear"})
    return rows


def read_runs(path: str | Path) -> list[dict[str, Any]]:
    """``runs.csv`` with its numbers typed."""
    rows = [row for _, row in read_typed_csv(path, RUN_FIELDS, "a generalisation runs file")]
    if not rows:
        raise InputError(f"{path}: no generalisation runs")
    return rows


def summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (method, batch size, lr scaling), in method, batch-size and scaling order: Top-1 mean and sample std over
    every run (a diverged run counts with the accuracy it had when it diverged), n, how many diverged (and which share
    of n), and the paired difference to Standard in the same cell, seed by seed (common random numbers: seed s of
    every method starts from the same weights), with its 95 % interval. No p-values: the cells are many and the
    question is how large the differences are, not whether one of them passes a threshold."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["batch_size"], row["lr_scaling"]), []).append(row)
    order = sorted(groups, key=lambda key: (methods().index(key[0]), key[1], LR_SCALINGS.index(key[2])))
    table = []
    for method, batch, scaling in order:
        cell = groups[method, batch, scaling]
        top1 = [row["test_top1"] for row in cell]
        diverged = sum(row["status"] == "diverged" for row in cell)
        standard = {row["seed"]: row["test_top1"] for row in groups.get((STANDARD, batch, scaling), [])}
        versus = paired({row["seed"]: row["test_top1"] for row in cell}, standard, "vs_standard_")
        if method == STANDARD:
            versus["vs_standard_n"] = 0  # not compared with itself: the cells stay empty
        table.append({
            "budget_epochs": cell[0]["budget_epochs"],
            "method": method, "batch_size": batch, "lr_scaling": scaling,
            "test_top1_mean": statistics.mean(top1),
            "test_top1_std": statistics.stdev(top1) if len(top1) > 1 else None,
            "n": len(top1),
            "diverged": diverged,
            "diverged_fraction": diverged / len(top1),
            "diverged_label": f"{diverged / len(top1):.2f} ({diverged} of {len(top1)})",
            **{key: versus[key] for key in ("vs_standard_diff", "vs_standard_ci_low", "vs_standard_ci_high",
                                            "vs_standard_n", "vs_standard_all_equal")},
        })
    return table


def stage_generalisation(config: list[Path], metrics: list[Path], out: Path) -> Outcome:
    """``pblf generalisation``: every generalisation run as a row of ``out/runs.csv``."""
    cfg = load_config(config)
    rows = collect_runs(cfg, metrics)
    path = write_csv(rows, RUN_COLUMNS, Path(out) / GENERALISATION_RUNS)
    diverged = sum(row["status"] == "diverged" for row in rows)
    log.info("%d generalisation runs (%d diverged) -> %s", len(rows), diverged, path)
    return Outcome(stage_config(cfg, "generalisation"))


def stage_generalisation_table(runs: Path, out: Path) -> Outcome:
    """``pblf generalisation-table``: the table ``out/generalisation.{csv,md,tex}`` from ``runs.csv`` (like the
    tables of the repeats from ``trials.csv``, a pure function of it)."""
    paths = write_table(summary(read_runs(runs)), TABLE_COLUMNS, Path(out), GENERALISATION)
    log.info("generalisation table from %s -> %s", runs, ", ".join(map(str, paths)))
    return Outcome()


@dataclass(frozen=True)
class GeneralisationLine:
    """One method at one lr scaling: its mean Top-1 per batch size (the line) and every run (the dots; a diverged
    run an x), as (batch size, Top-1, diverged)."""

    batch_sizes: list[int]
    means: list[float]
    runs: list[tuple[int, float, bool]]


@dataclass(frozen=True)
class GeneralisationFigure:
    """The numbers of the generalisation figure: per lr scaling (a panel), per method, its line; the budget and
    the seeds of the runs."""

    panels: dict[str, dict[str, GeneralisationLine]]
    batch_sizes: list[int]
    budget: int
    seeds: list[int]


def generalisation_figure(rows: Sequence[dict[str, Any]]) -> GeneralisationFigure:
    """The numbers of the generalisation figure from the runs (``runs.csv``'s rows): the lines are the table's
    means (:func:`summary`), in the tables' order of methods and the schema's of scalings."""
    table = summary(rows)
    scalings = [s for s in LR_SCALINGS if any(row["lr_scaling"] == s for row in rows)]
    present = [m for m in methods() if any(row["method"] == m for row in rows)]
    panels = {}
    for scaling in scalings:
        lines = {}
        for method in present:
            line = [row for row in table if row["method"] == method and row["lr_scaling"] == scaling]
            runs = [(row["batch_size"], row["test_top1"], row["status"] == "diverged") for row in rows
                    if row["method"] == method and row["lr_scaling"] == scaling]
            lines[method] = GeneralisationLine([row["batch_size"] for row in line],
                                               [row["test_top1_mean"] for row in line], runs)
        panels[scaling] = lines
    return GeneralisationFigure(panels, sorted({row["batch_size"] for row in rows}), rows[0]["budget_epochs"],
                                sorted({row["seed"] for row in rows}))


def read_generalisation(inputs: Sequence[Path], config: Sequence[Path] | None = None) -> GeneralisationFigure:
    """The generalisation figure from ``runs.csv``."""
    if len(inputs) != 1:
        raise InputError(f"the generalisation figure is drawn from runs.csv, got {len(inputs)} inputs")
    return generalisation_figure(read_runs(inputs[0]))


def draw_generalisation(data: GeneralisationFigure, out_stem: str | Path, figure_id: str) -> list[Path]:
    """Top-1 against batch size (log scale), one line per method (the mean over its runs), every run a dot and a
    diverged run an x, one panel per lr scaling."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.lines import Line2D

    from pblf.results import plotting

    plotting.apply_style()
    fig, axes = plt.subplots(1, len(data.panels), figsize=(5.2 * len(data.panels), 4.0), sharey=True, squeeze=False)
    present: list[str] = []
    for ax, (scaling, lines) in zip(axes[0], data.panels.items()):
        present = list(lines)
        for offset, (method, line) in zip(np.linspace(-0.04, 0.04, len(lines)), lines.items()):
            colour = plotting.method_colour(method)
            ax.plot(line.batch_sizes, line.means, color=colour, linewidth=1.6, zorder=3)
            for diverged, marker in ((False, "o"), (True, "x")):
                points = [(batch, top1) for batch, top1, flag in line.runs if flag == diverged]
                if points:  # a small horizontal offset per method keeps coinciding dots apart
                    ax.scatter([batch * 2 ** offset for batch, _ in points], [top1 for _, top1 in points],
                               marker=marker, s=40 if diverged else 22, color=colour, alpha=0.7, zorder=4,
                               linewidths=1.4 if diverged else 0)
        ax.set_xscale("log", base=2)
        ax.set_xticks(data.batch_sizes, [str(b) for b in data.batch_sizes])
        ax.minorticks_off()
        ax.set_xlabel("batch size")
        ax.set_ylabel("Top-1 (%)")
        ax.set_title(f"lr {'scaled with the batch size' if scaling == 'linear' else 'fixed'}")
    handles = [Line2D([], [], color=plotting.method_colour(m), linewidth=1.6, label=m) for m in present]
    handles += [Line2D([], [], color="0.4", marker="o", linestyle="none", label="a run"),
                Line2D([], [], color="0.4", marker="x", linestyle="none", label="a diverged run")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize="small")
    seeds = data.seeds
    fig.suptitle(f"Generalisation to other batch sizes: the chosen candidates and Standard, {data.budget} epochs, "
                 f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}", fontsize="medium")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return plotting.save_figure(fig, out_stem)
