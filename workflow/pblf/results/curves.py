"""Figures 6.1, 6.2 and 6.4: accuracy curves of the repeat runs and of the convergence reruns, from ``metrics.json``.

Each figure is its numbers (:func:`curve_figure`, :func:`convergence_figure`: pure functions of the runs, checked by
the tests against values worked out by hand) and their drawing (:func:`draw_curves`, :func:`draw_convergence`, which
only place those numbers on axes); :mod:`pblf.results.figures` pairs them.

* Figures 6.1, 6.2: per method, the Top-1 and Top-1 validation curves of the chosen candidate's repeat seeds against
  epoch, one panel each, then every method's Top-1 together. Lines are the mean over seeds, the band the min-max.
* Figure 6.4: the Top-1 curve of each convergence rerun, final Top-1 in the legend.

Inputs are checked before anything is drawn: a figure must never be made from a run that is still going, so a run
with status ``ok`` must have exactly one epoch row per epoch of its budget; a missing method or file is an
InputError naming it. A run with status ``diverged`` (its loss became non-finite) is legitimate and has fewer epoch
rows than its budget: it is left out of the mean and band and drawn on its own, a thin line over the epochs it
completed ending in an x at the epoch in which it diverged, at the accuracy measured then.

Same inputs, same bytes: runs are put in seed order before anything is computed, and
:func:`pblf.results.plotting.save_figure` strips run-varying metadata.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from pblf.core.errors import InputError
from pblf.core.files import read_json
from pblf.core.names import FINISHED_STATUSES, epochs_label
from pblf.results import plotting
from pblf.search.registry import methods

#: Curves with at most this many epochs also get a marker per epoch (a 1-epoch curve is otherwise invisible).
MARKER_EPOCHS = 30
VALIDATION_COLOUR = plotting.PALETTE[7]  # grey: validation curves in panels (a)-(c)


# --------------------------------------------------------------------------------------------------------- inputs


def load_metrics(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Read each ``metrics.json``; a missing file is an InputError naming it.

    Each dict gets a ``path`` key (the file it came from) so that later errors can name the run."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path} is missing: its run has not finished (or never started)")
    return [{**read_json(path), "path": str(path)} for path in paths]


def _run(metrics: Mapping[str, Any]) -> Mapping[str, Any]:
    """The run's identity (:class:`pblf.core.layout.RunId` as a dict) recorded in its metrics."""
    return metrics.get("run") or {}


def _describe(metrics: Mapping[str, Any], method: str | None = None) -> str:
    where = metrics.get("path") or f"seed {_run(metrics).get('seed', '?')}"
    return f"{method} run {where}" if method else f"run {where}"


def _check_run(metrics: Mapping[str, Any], budget: int, method: str) -> list[dict[str, Any]]:
    """The run's epoch rows in order, after checking that the run has finished with ``budget`` epochs."""
    name = _describe(metrics, method)
    status = metrics.get("status")
    if status not in FINISHED_STATUSES:
        raise InputError(f"{name} has status {status!r}, not one of {list(FINISHED_STATUSES)}: it has not finished")
    if "budget" in _run(metrics) and int(_run(metrics)["budget"]) != int(budget):
        raise InputError(f"{name} was trained for a budget of {_run(metrics)['budget']} epochs, expected {budget}")
    rows = sorted(metrics.get("epochs") or [], key=lambda row: int(row["epoch"]))
    epochs = [int(row["epoch"]) for row in rows]
    if epochs != list(range(1, len(rows) + 1)):
        raise InputError(f"{name} has epoch rows {epochs}: expected 1, 2, ... with none missing or repeated")
    if status == "ok" and len(rows) != budget:
        raise InputError(
            f"{name} has status 'ok' but {len(rows)} of {budget} epoch rows: it is incomplete (still running?)"
        )
    if len(rows) > budget:
        raise InputError(f"{name} has {len(rows)} epoch rows, more than its budget of {budget}")
    return rows


def _sorted_runs(runs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(runs, key=lambda m: (int(_run(m).get("seed", 0)), str(m.get("path", ""))))


def _check_methods(present: Iterable[str], what: str) -> None:
    """Every method of the tables (:func:`pblf.search.registry.methods`) and nothing else."""
    present = set(present)
    missing = [m for m in methods() if m not in present]
    if missing:
        raise InputError(f"{what}: missing method(s) {missing}; every one of {list(methods())} is needed")
    unknown = sorted(present - set(methods()))
    if unknown:
        raise InputError(f"{what}: unknown method(s) {unknown}; expected {list(methods())}")


# -------------------------------------------------------------------------------------------------------- curves


def _curve(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([float(row[key]) for row in rows], dtype=np.float64)


def _marker_kwargs(n_epochs: int) -> dict[str, Any]:
    return {"marker": "o", "markersize": 3} if n_epochs <= MARKER_EPOCHS else {}


def _epoch_axis(ax, budget: int) -> None:
    """x axis "Epoch", integer ticks, from just before epoch 1 to just after the budget."""
    ax.set_xlabel("Epoch")
    ax.set_xlim(0.5 if budget <= MARKER_EPOCHS else 0, budget + (0.5 if budget <= MARKER_EPOCHS else 1))
    ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 5, 10], integer=True, min_n_ticks=1))


@dataclass(frozen=True)
class Band:
    """Per epoch (1, 2, ..., budget): the mean, minimum and maximum of one accuracy over a method's completed runs."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class DivergedRun:
    """A run whose loss became non-finite: per accuracy, its values over the epochs it completed and, at
    ``end_epoch`` (the epoch in which it diverged), the accuracy measured then."""

    values: dict[str, np.ndarray]
    end_epoch: int
    end: dict[str, float]


@dataclass(frozen=True)
class MethodCurves:
    """What Figures 6.1/6.2 draw for one method: a band per accuracy over its completed (``ok``) runs (None when
    every run diverged), and each diverged run, drawn on its own."""

    bands: dict[str, Band | None]
    diverged: list[DivergedRun]
    n_runs: int


@dataclass(frozen=True)
class CurveFigure:
    """The numbers of Figure 6.1 or 6.2: the budget, and per method (in the tables' order) its curves."""

    budget: int
    methods: dict[str, MethodCurves]


ACCURACIES: tuple[str, ...] = ("test_top1", "val_top1")


def _diverged(metrics: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> DivergedRun:
    values = {key: _curve(rows, key) for key in ACCURACIES}
    end_epoch = int((metrics.get("diverged_at") or {}).get("epoch", len(rows) + 1))
    end = {key: float(metrics[key]) if metrics.get(key) is not None else
           (float(values[key][-1]) if len(rows) else math.nan) for key in ACCURACIES}
    return DivergedRun(values, end_epoch, end)


def curve_figure(runs: Mapping[str, Sequence[Mapping[str, Any]]], budget: int) -> CurveFigure:
    """The numbers of Figures 6.1/6.2 from each method's repeat runs: per method, the mean, minimum and maximum over
    its completed runs, per epoch, of Top-1 and Top-1 validation, and its diverged runs.

    Every method of the tables must be there and every run finished (see :func:`_check_run`)."""
    _check_methods(runs, f"curves for budget {budget}")
    summary = {}
    for method in methods():
        if not runs[method]:
            raise InputError(f"curves for budget {budget}: method {method} has no runs")
        ok, diverged = [], []
        for metrics in _sorted_runs(runs[method]):
            rows = _check_run(metrics, budget, method)
            if metrics["status"] == "ok":
                ok.append(rows)
            else:
                diverged.append(_diverged(metrics, rows))
        bands: dict[str, Band | None] = {}
        for key in ACCURACIES:
            curves = np.stack([_curve(rows, key) for rows in ok]) if ok else None
            bands[key] = None if curves is None else Band(curves.mean(axis=0), curves.min(axis=0), curves.max(axis=0))
        summary[method] = MethodCurves(bands, diverged, len(ok) + len(diverged))
    return CurveFigure(budget, summary)


def read_curves(inputs: Sequence[Path], config: Sequence[Path] | None = None) -> CurveFigure:
    """Figures 6.1/6.2 from the repeat runs' ``metrics.json`` of one budget."""
    metrics = load_metrics(inputs)
    return curve_figure(_by_method(metrics), _one_budget(metrics))


def _draw_mean_band(ax, epochs: np.ndarray, band: Band, colour, linestyle: str, band_alpha: float = 0.2) -> None:
    """Mean over seeds as a line, min-max over seeds as a band (an error bar when there is a single epoch)."""
    mean, low, high = band.mean, band.low, band.high
    ax.plot(epochs, mean, color=colour, linestyle=linestyle, linewidth=1.6, zorder=3, **_marker_kwargs(len(epochs)))
    if len(epochs) == 1:
        ax.errorbar(epochs, mean, yerr=[mean - low, high - mean], fmt="none", ecolor=colour, elinewidth=8,
                    alpha=band_alpha, zorder=2)
    else:
        ax.fill_between(epochs, low, high, color=colour, alpha=band_alpha, linewidth=0, zorder=2)


def _draw_diverged(ax, run: DivergedRun, key: str, colour, linestyle: str) -> None:
    """A diverged run: thin line over its completed epochs, then an x where it diverged (see the module doc)."""
    values = run.values[key]
    epochs = np.arange(1, len(values) + 1, dtype=np.float64)
    if len(values):
        ax.plot(epochs, values, color=colour, linestyle=linestyle, linewidth=0.8, alpha=0.7, zorder=3)
        ax.plot([epochs[-1], run.end_epoch], [values[-1], run.end[key]], color=colour, linestyle=":",
                linewidth=0.8, alpha=0.7, zorder=3)
    ax.plot([run.end_epoch], [run.end[key]], marker="x", markersize=7, markeredgewidth=1.8, color=colour,
            linestyle="none", zorder=4)


def draw_curves(data: CurveFigure, out_stem: str | Path, figure_id: str) -> list[Path]:
    """Draw Figure 6.1 or 6.2 (``figure_id``) into ``out_stem.png`` and ``.pdf``; returns both paths.

    One panel per method (Top-1 and Top-1 validation), then one with every method's Top-1, then a cell for the
    legend, three to a row: with the four methods, (a)-(d), (e) and the legend fill 2 x 3."""
    budget, drawn = data.budget, list(data.methods)
    any_diverged = any(curves.diverged for curves in data.methods.values())

    plotting.apply_style()
    rows = math.ceil((len(drawn) + 2) / 3)
    fig, axes = plt.subplots(rows, 3, figsize=(11.4, 3.4 * rows), sharex=True, sharey=True)
    cells = list(axes.flat)
    panels, legend_cell = cells[:len(drawn) + 1], cells[len(drawn) + 1]
    for unused in cells[len(drawn) + 2:]:
        unused.axis("off")
    epochs = np.arange(1, budget + 1, dtype=np.float64)
    letters = string.ascii_lowercase
    for letter, method, ax in zip(letters, drawn, panels):
        curves = data.methods[method]
        colour = plotting.method_colour(method)
        for key, line_colour, linestyle in (("val_top1", VALIDATION_COLOUR, "--"), ("test_top1", colour, "-")):
            if curves.bands[key] is not None:
                _draw_mean_band(ax, epochs, curves.bands[key], line_colour, linestyle)
            for run in curves.diverged:
                _draw_diverged(ax, run, key, line_colour, linestyle)
        seeds_text = f"{curves.n_runs} seed" + ("s" if curves.n_runs != 1 else "")
        if curves.diverged:
            seeds_text += f", {len(curves.diverged)} diverged"
        ax.set_title(f"({letter}) {method} ({seeds_text})")

    ax_all = panels[len(drawn)]
    for method in drawn:
        curves = data.methods[method]
        colour = plotting.method_colour(method)
        if curves.bands["test_top1"] is not None:
            _draw_mean_band(ax_all, epochs, curves.bands["test_top1"], colour, "-", band_alpha=0.12)
        for run in curves.diverged:
            _draw_diverged(ax_all, run, "test_top1", colour, "-")
    ax_all.set_title(f"({letters[len(drawn)]}) Top-1 of the {len(drawn)} methods")

    for ax in panels:
        _epoch_axis(ax, budget)
        ax.set_ylabel("Accuracy (%)")
        ax.tick_params(labelbottom=True, labelleft=True)
    methods_row = [Line2D([], [], color=plotting.method_colour(m), linewidth=1.6, label=f"Top-1, {m}")
                   for m in drawn]
    keys_row = [
        Line2D([], [], color=VALIDATION_COLOUR, linestyle="--", linewidth=1.6, label="Top-1 validation"),
        Patch(facecolor="0.3", alpha=0.2, label="band: min–max over seeds (line: mean)"),
    ]
    if any_diverged:
        keys_row.append(Line2D([], [], color="0.3", marker="x", linestyle=":", linewidth=0.8,
                               label="diverged run (×: where it diverged)"))
    legend_cell.axis("off")  # the legend in the free cell, where it never hides a curve
    legend_cell.legend(handles=[*methods_row, *keys_row], loc="center", frameon=False, fontsize="small")
    fig.suptitle(f"Figure {figure_id}: Top-1 and Top-1 validation accuracy, budget {epochs_label(budget)}")
    fig.tight_layout()
    return plotting.save_figure(fig, out_stem)


# --------------------------------------------------------------------------------------------------- convergence


@dataclass(frozen=True)
class ConvergenceCurve:
    """One convergence rerun: its Top-1 per completed epoch and its final Top-1; ``diverged`` when its loss
    became non-finite (then drawn as in Figures 6.1/6.2)."""

    top1: np.ndarray
    final: float
    diverged: DivergedRun | None


@dataclass(frozen=True)
class ConvergenceFigure:
    """The numbers of Figure 6.4: the convergence budget and each method's rerun (in the tables' order)."""

    budget: int
    curves: dict[str, ConvergenceCurve]


def convergence_figure(runs: Mapping[str, Mapping[str, Any]]) -> ConvergenceFigure:
    """The numbers of Figure 6.4 from one metrics dict per method (those of ``convergence.methods``); every run
    must record the same budget and, if ``ok``, have one epoch row per epoch of it."""
    unknown = sorted(set(runs) - set(methods()))
    if unknown or not runs:
        raise InputError(f"convergence curves: unknown or no method(s) {unknown}; expected some of {list(methods())}")
    drawn = [method for method in methods() if method in runs]
    budgets = {}
    for method in drawn:
        if "budget" not in _run(runs[method]):
            raise InputError(f"{_describe(runs[method], method)} records no budget")
        budgets[method] = int(_run(runs[method])["budget"])
    if len(set(budgets.values())) != 1:
        raise InputError(f"convergence runs have different budgets: {budgets}")
    budget = budgets[drawn[0]]
    curves = {}
    for method in drawn:
        metrics = runs[method]
        rows = _check_run(metrics, budget, method)
        diverged = _diverged(metrics, rows) if metrics["status"] != "ok" else None
        curves[method] = ConvergenceCurve(_curve(rows, "test_top1"), float(metrics["test_top1"]), diverged)
    return ConvergenceFigure(budget, curves)


def read_convergence(inputs: Sequence[Path], config: Sequence[Path] | None = None) -> ConvergenceFigure:
    """Figure 6.4 from the convergence reruns' ``metrics.json`` (one per method, one budget)."""
    metrics = load_metrics(inputs)
    _one_budget(metrics)
    return convergence_figure({method: runs[0] for method, runs in _by_method(metrics).items()})


def draw_convergence(data: ConvergenceFigure, out_stem: str | Path, figure_id: str) -> list[Path]:
    """Draw Figure 6.4 into ``out_stem.png`` and ``.pdf``; returns both paths."""
    budget = data.budget
    plotting.apply_style()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    handles = []
    for method, curve in data.curves.items():
        colour = plotting.method_colour(method)
        if curve.diverged is None:
            epochs = np.arange(1, budget + 1, dtype=np.float64)
            ax.plot(epochs, curve.top1, color=colour, linewidth=1.4, zorder=3, **_marker_kwargs(budget))
            label = f"{method}: final Top-1 {curve.final:.2f} %"
            handles.append(Line2D([], [], color=colour, linewidth=1.4, label=label))
        else:
            _draw_diverged(ax, curve.diverged, "test_top1", colour, "-")
            label = f"{method}: diverged at epoch {curve.diverged.end_epoch} (Top-1 {curve.final:.2f} %)"
            handles.append(Line2D([], [], color=colour, marker="x", linestyle=":", label=label))
    ax.legend(handles=handles, loc="best", fontsize="small")
    _epoch_axis(ax, budget)
    ax.set_ylabel("Accuracy (%)")
    ax.set_title(f"Figure {figure_id}: Top-1 of the chosen candidates and Standard, {epochs_label(budget)}")
    fig.tight_layout()
    return plotting.save_figure(fig, out_stem)


def _by_method(metrics: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for run in metrics:
        grouped.setdefault(_run(run).get("method", "?"), []).append(run)
    return grouped


def _one_budget(metrics: Sequence[Mapping[str, Any]]) -> int:
    budgets = sorted({int(_run(run).get("budget", 0)) for run in metrics})
    if len(budgets) != 1 or budgets[0] < 1:
        raise InputError(f"the figure draws runs of one budget; these record budgets {budgets}")
    return budgets[0]
