"""Figures 6.1-6.4 of Chapter 6, drawn from the runs' ``metrics.json`` and the searches' ``evaluations.csv``.

Each figure is split into the numbers it plots (pure functions: :func:`curve_summary` for the curves,
:func:`project_candidates` and :func:`chosen_candidate` for the scatter), which the tests check against values
worked out by hand, and the drawing, which only places those numbers on axes.

* :func:`draw_curves` (Figures 6.1, 6.2): per method, the Top-1 and Top-1 validation curves of the chosen candidate's
  repeat seeds against epoch (panels (a)-(d)), and the four Top-1 curves together (panel (e)). Lines are the mean over
  seeds, the shaded band the min-max over seeds.
* :func:`draw_search_scatter` (Figure 6.3): every candidate a search evaluated, projected to two principal
  components, coloured by Top-1, one panel per (budget, method); the chosen candidate is starred.
* :func:`draw_convergence` (Figure 6.4): the Top-1 curves of the convergence runs, final Top-1 in the legend.

Inputs are checked before anything is drawn: a figure must never be made from a run that is still going, so a run
with status ``ok`` must have exactly one epoch row per epoch of its budget, a missing method or an empty search is a
``ValueError`` and a missing file a ``FileNotFoundError``, each naming what is missing.

A run with status ``diverged`` (its loss became non-finite; :func:`pblf.training.train.train_candidate`) is legitimate and
has fewer epoch rows than its budget. It is left out of the mean and band, and drawn on its own as a thin line over
the epochs it completed, ending in an x at the epoch in which it diverged, at the accuracy measured after divergence
(the metrics' final ``test_top1`` / ``val_top1``). In Figure 6.3 a diverged candidate is an x instead of a dot.

Same inputs, same bytes: inputs are put in a canonical order (runs by seed, candidates by iteration and index) before
anything is computed, the PCA uses the exact ``full`` SVD with a fixed sign convention, and
:func:`pblf.results.plotting.save_figure` strips run-varying metadata.
"""

from __future__ import annotations

import logging
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
from sklearn.decomposition import PCA

from pblf.core.candidate import Candidate
from pblf.core.errors import InputError
from pblf.core.files import read_json
from pblf.core.names import FINISHED_STATUSES, PHI_NAMES, PROMOTED, epochs_label, figure_stem
from pblf.core.provenance import Outcome
from pblf.results import plotting
from pblf.search.registry import methods, sampling_methods
from pblf.search.select import read_evaluations, select_best

log = logging.getLogger(__name__)

#: The PCA inputs of Figure 6.3: phi, then the four mode bits as 0/1.
PCA_FEATURES: tuple[str, ...] = (*PHI_NAMES, "mode_1", "mode_2", "mode_3", "mode_4")
#: Curves with at most this many epochs also get a marker per epoch (a 1-epoch curve is otherwise invisible).
MARKER_EPOCHS = 30
VALIDATION_COLOUR = plotting.PALETTE[7]  # grey: validation curves in panels (a)-(c)
SCATTER_CMAP = "viridis"


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
class MethodCurves:
    """What Figures 6.1/6.2 draw for one method: a band per accuracy over its completed (``ok``) runs (None when
    every run diverged), and each diverged run's metrics and epoch rows, drawn on its own."""

    bands: dict[str, Band | None]
    diverged: list[tuple[Mapping[str, Any], list[dict[str, Any]]]]
    n_runs: int


def curve_summary(runs: Mapping[str, Sequence[Mapping[str, Any]]], budget: int) -> dict[str, MethodCurves]:
    """The numbers of Figures 6.1/6.2: per method (:func:`pblf.search.registry.methods`), the mean, minimum and maximum
    over its completed runs, per epoch, of Top-1 (``test_top1``) and Top-1 validation (``val_top1``).

    Every run must have finished (see :func:`_check_run`); a diverged run is kept out of the band."""
    _check_methods(runs, f"curves for budget {budget}")
    summary = {}
    for method in methods():
        if not runs[method]:
            raise InputError(f"curves for budget {budget}: method {method} has no runs")
        ok, diverged = _split_runs(runs[method], budget, method)
        bands: dict[str, Band | None] = {}
        for key in ("test_top1", "val_top1"):
            curves = np.stack([_curve(rows, key) for rows in ok]) if ok else None
            bands[key] = None if curves is None else Band(curves.mean(axis=0), curves.min(axis=0), curves.max(axis=0))
        summary[method] = MethodCurves(bands, diverged, len(ok) + len(diverged))
    return summary


def _draw_mean_band(ax, epochs: np.ndarray, band: Band, colour, linestyle: str, band_alpha: float = 0.2) -> None:
    """Mean over seeds as a line, min-max over seeds as a band (an error bar when there is a single epoch)."""
    mean, low, high = band.mean, band.low, band.high
    ax.plot(epochs, mean, color=colour, linestyle=linestyle, linewidth=1.6, zorder=3, **_marker_kwargs(len(epochs)))
    if len(epochs) == 1:
        ax.errorbar(epochs, mean, yerr=[mean - low, high - mean], fmt="none", ecolor=colour, elinewidth=8,
                    alpha=band_alpha, zorder=2)
    else:
        ax.fill_between(epochs, low, high, color=colour, alpha=band_alpha, linewidth=0, zorder=2)


def _draw_diverged(ax, metrics: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], key: str, colour,
                   linestyle: str) -> None:
    """A diverged run: thin line over its completed epochs, then an x where it diverged (see the module doc)."""
    epochs = np.arange(1, len(rows) + 1, dtype=np.float64)
    values = _curve(rows, key)
    end_epoch = float((metrics.get("diverged_at") or {}).get("epoch", len(rows) + 1))
    end_value = float(metrics[key]) if metrics.get(key) is not None else (values[-1] if len(values) else np.nan)
    if len(rows):
        ax.plot(epochs, values, color=colour, linestyle=linestyle, linewidth=0.8, alpha=0.7, zorder=3)
        ax.plot([epochs[-1], end_epoch], [values[-1], end_value], color=colour, linestyle=":", linewidth=0.8,
                alpha=0.7, zorder=3)
    ax.plot([end_epoch], [end_value], marker="x", markersize=7, markeredgewidth=1.8, color=colour,
            linestyle="none", zorder=4)


def _split_runs(runs: Sequence[Mapping[str, Any]], budget: int, method: str):
    """(rows of every ``ok`` run, [(metrics, rows) of every diverged run]) in seed order."""
    ok, diverged = [], []
    for metrics in _sorted_runs(runs):
        rows = _check_run(metrics, budget, method)
        if metrics["status"] == "ok":
            ok.append(rows)
        else:
            diverged.append((metrics, rows))
    return ok, diverged


def draw_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    budget: int,
    out_stem: str | Path,
    *,
    figure_id: str | None = None,
) -> list[Path]:
    """Figure 6.1 (``budget`` 20) or 6.2 (100); writes ``out_stem.png`` and ``out_stem.pdf`` and returns both paths.

    ``runs`` maps each method (:func:`pblf.search.registry.methods`) to its repeat seeds' metrics (e.g. from
    :func:`load_metrics`). One panel per method (Top-1 and Top-1 validation), then one with every method's Top-1,
    then a cell for the legend, three to a row: with the four methods, (a)-(d), (e) and the legend fill 2 x 3.
    ``figure_id`` (e.g. ``"6.1"``) only prefixes the title."""
    summary = curve_summary(runs, budget)
    any_diverged = any(curves.diverged for curves in summary.values())
    drawn = list(summary)

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
        curves = summary[method]
        colour = plotting.method_colour(method)
        for key, line_colour, linestyle in (("val_top1", VALIDATION_COLOUR, "--"), ("test_top1", colour, "-")):
            if curves.bands[key] is not None:
                _draw_mean_band(ax, epochs, curves.bands[key], line_colour, linestyle)
            for metrics, rows in curves.diverged:
                _draw_diverged(ax, metrics, rows, key, line_colour, linestyle)
        seeds_text = f"{curves.n_runs} seed" + ("s" if curves.n_runs != 1 else "")
        if curves.diverged:
            seeds_text += f", {len(curves.diverged)} diverged"
        ax.set_title(f"({letter}) {method} ({seeds_text})")

    ax_all = panels[len(drawn)]
    for method in drawn:
        curves = summary[method]
        colour = plotting.method_colour(method)
        if curves.bands["test_top1"] is not None:
            _draw_mean_band(ax_all, epochs, curves.bands["test_top1"], colour, "-", band_alpha=0.12)
        for metrics, rows in curves.diverged:
            _draw_diverged(ax_all, metrics, rows, "test_top1", colour, "-")
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
    prefix = f"Figure {figure_id}: " if figure_id else ""
    fig.suptitle(f"{prefix}Top-1 and Top-1 validation accuracy, budget {epochs_label(budget)}")
    fig.tight_layout()
    return plotting.save_figure(fig, out_stem)


# ------------------------------------------------------------------------------------------------ search scatter


def candidate_features(row: Mapping[str, Any]) -> list[float]:
    """The PCA input of one candidate: w1, w2, b1, b2 and the four mode bits as 0/1 (:data:`PCA_FEATURES`)."""
    candidate = Candidate.from_dict(dict(row))
    return [*candidate.phi, *(float(bit) for bit in candidate.places)]


def project_candidates(rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project candidates onto their first two principal components.

    Returns ``(coordinates, explained_variance_ratio, components)``: an (n, 2) array in the order of ``rows``, the
    two ratios, and the (2, 8) loadings over :data:`PCA_FEATURES`. The PCA is fitted on the rows in a canonical
    (sorted) order with the exact ``full`` SVD, and each component's sign is fixed so that its largest-magnitude
    loading is positive; so the result does not depend on the order of ``rows``. Fewer than two candidates (or a
    rank below two) give zero coordinates and ratios for the missing components."""
    if not rows:
        raise InputError("no candidates to project")
    features = np.array([candidate_features(row) for row in rows], dtype=np.float64)
    order = np.lexsort(features.T[::-1])  # sort by w1, then w2, ..., then the mode bits
    canonical = features[order]
    n_components = min(2, len(canonical) - 1 if len(canonical) > 1 else 0, canonical.shape[1])
    components = np.zeros((2, canonical.shape[1]))
    ratios = np.zeros(2)
    if n_components > 0 and np.ptp(canonical, axis=0).max() > 0:
        pca = PCA(n_components=n_components, svd_solver="full").fit(canonical)
        components[:n_components] = pca.components_
        ratios[:n_components] = pca.explained_variance_ratio_
    for i in range(2):
        largest = int(np.argmax(np.abs(components[i])))
        if components[i, largest] < 0:
            components[i] = -components[i]
    mean = canonical.mean(axis=0)
    coordinates = (features - mean) @ components.T
    return coordinates, ratios, components


def _evaluation_order(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(rows, key=lambda r: (int(r["iteration"]), int(r["index"])))


def chosen_candidate(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The search's chosen candidate: highest Top-1 validation, the earliest evaluated (iteration, index) on ties."""
    return select_best(_evaluation_order(rows))


def _search_row(row: Mapping[str, Any], key: tuple[int, str]) -> dict[str, Any]:
    status = row.get("status", "ok")
    if status not in (*FINISHED_STATUSES, PROMOTED):
        raise InputError(f"search {key}: candidate {row.get('iteration')}/{row.get('index')} has status {status!r}")
    return dict(row)


def _check_searches(searches: Mapping[tuple[int, str], Sequence[Mapping[str, Any]]]):
    if not searches:
        raise InputError("no searches to draw")
    budgets = sorted({int(budget) for budget, _ in searches})
    sampled = [m for m in sampling_methods() if any(method == m for _, method in searches)]
    unknown = sorted({method for _, method in searches} - set(sampling_methods()))
    if unknown:
        raise InputError(f"searches of unknown method(s) {unknown}; expected {list(sampling_methods())}")
    normalised = {(int(b), m): rows for (b, m), rows in searches.items()}
    panels = {}
    for budget in budgets:
        for method in sampled:
            key = (budget, method)
            if key not in normalised:
                raise InputError(f"search {method} at budget {budget} is missing (other searches exist at this "
                                 f"budget or for this method)")
            if not normalised[key]:
                raise InputError(f"search {method} at budget {budget} is empty: no evaluated candidates")
            # one point per candidate: a run that a later rung continued (successive halving) is drawn as that run
            rows = [_search_row(row, key) for row in normalised[key] if row.get("status") != PROMOTED]
            panels[key] = _evaluation_order(rows)
    return budgets, sampled, panels


def draw_search_scatter(
    searches: Mapping[tuple[int, str], Sequence[Mapping[str, Any]]],
    out_stem: str | Path,
    *,
    figure_id: str | None = None,
) -> list[Path]:
    """Figure 6.3: every candidate of each search, in two principal components, coloured by Top-1.

    ``searches`` maps ``(budget, method)`` to the search's rows as read from its ``trials.csv``
    (:func:`pblf.search.select.read_csv`); one panel per key (budgets in rows, methods in columns). The PCA is fitted on all
    candidates of all panels, so the panels share axes and colour scale. The chosen candidate (highest Top-1
    validation, earliest on ties: :func:`pblf.search.select.select_best`) is starred."""
    budgets, sampled, panels = _check_searches(searches)
    keys = [(b, m) for b in budgets for m in sampled]
    all_rows = [row for key in keys for row in panels[key]]
    coordinates, ratios, _ = project_candidates(all_rows)
    top1 = np.array([float(row["test_top1"]) for row in all_rows])
    vmin, vmax = float(top1.min()), float(top1.max())
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5

    plotting.apply_style()
    nrows, ncols = len(budgets), len(sampled)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols + 1.0, 3.4 * nrows + 0.6), sharex=True,
                             sharey=True, squeeze=False, layout="constrained")
    start = 0
    mappable = None
    for key, ax in zip(keys, axes.flat):
        rows = panels[key]
        xy = coordinates[start:start + len(rows)]
        values = top1[start:start + len(rows)]
        start += len(rows)
        status = np.array([row.get("status", "ok") for row in rows])
        common = {"cmap": SCATTER_CMAP, "vmin": vmin, "vmax": vmax, "edgecolors": "0.25", "linewidths": 0.4,
                  "zorder": 3}
        for marker, size, kind in (("o", 30, "ok"), ("X", 45, "diverged"), ("v", 36, "stopped")):
            drawn = status == kind
            if drawn.any():
                mappable = ax.scatter(xy[drawn, 0], xy[drawn, 1], c=values[drawn], marker=marker, s=size, **common)
        best = chosen_candidate(rows)
        best_index = next(i for i, row in enumerate(rows) if row is best)
        ax.scatter(xy[best_index, 0], xy[best_index, 1], marker="*", s=260, c=[values[best_index]], cmap=SCATTER_CMAP,
                   vmin=vmin, vmax=vmax, edgecolors="black", linewidths=1.3, zorder=4)
        budget, method = key
        extra = "".join(f", {int((status == kind).sum())} {kind}" for kind in ("diverged", "stopped")
                        if (status == kind).any())
        ax.set_title(f"{method}, budget {epochs_label(budget)} ({len(rows)} candidates{extra})")
        ax.set_xlabel(f"PC 1 ({100 * ratios[0]:.0f} %)")
        ax.set_ylabel(f"PC 2 ({100 * ratios[1]:.0f} %)")
        ax.tick_params(labelbottom=True, labelleft=True)
    colourbar = fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.85, pad=0.02)
    colourbar.set_label("Top-1 (%)")
    handles = [
        Line2D([], [], marker="o", color="0.6", markeredgecolor="0.25", linestyle="none", label="candidate"),
        Line2D([], [], marker="*", markersize=12, color="0.6", markeredgecolor="black", linestyle="none",
               label="chosen candidate (highest Top-1 validation)"),
    ]
    if any(row.get("status", "ok") == "diverged" for row in all_rows):
        handles.append(Line2D([], [], marker="X", color="0.6", markeredgecolor="0.25", linestyle="none",
                              label="diverged candidate"))
    if any(row.get("status", "ok") == "stopped" for row in all_rows):
        handles.append(Line2D([], [], marker="v", color="0.6", markeredgecolor="0.25", linestyle="none",
                              label="stopped early (low fidelity; Top-1 at its last epoch)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize="small")
    prefix = f"Figure {figure_id}: " if figure_id else ""
    fig.suptitle(f"{prefix}sampled candidates in 2 principal components of (w1, w2, b1, b2, mode bits), "
                 f"fitted on all {len(all_rows)}", fontsize="medium")
    return plotting.save_figure(fig, out_stem)


# --------------------------------------------------------------------------------------------------- convergence


def draw_convergence(
    runs: Mapping[str, Mapping[str, Any]],
    out_stem: str | Path,
    *,
    figure_id: str | None = None,
) -> list[Path]:
    """Figure 6.4: the Top-1 curve of each method's convergence run, final Top-1 in the legend.

    ``runs`` maps methods (those of ``convergence.methods``) to one metrics dict each;
    every run must record the same ``budget`` (the convergence budget) and, if ``ok``, have one epoch row per epoch
    of it."""
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
    checked = {method: _check_run(runs[method], budget, method) for method in drawn}

    plotting.apply_style()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    handles = []
    for method in drawn:
        metrics, rows = runs[method], checked[method]
        colour = plotting.method_colour(method)
        if metrics["status"] == "ok":
            epochs = np.arange(1, budget + 1, dtype=np.float64)
            ax.plot(epochs, _curve(rows, "test_top1"), color=colour, linewidth=1.4, zorder=3,
                    **_marker_kwargs(budget))
            label = f"{method}: final Top-1 {float(metrics['test_top1']):.2f} %"
            handles.append(Line2D([], [], color=colour, linewidth=1.4, label=label))
        else:
            _draw_diverged(ax, metrics, rows, "test_top1", colour, "-")
            at = (metrics.get("diverged_at") or {}).get("epoch", len(rows) + 1)
            label = f"{method}: diverged at epoch {at} (Top-1 {float(metrics['test_top1']):.2f} %)"
            handles.append(Line2D([], [], color=colour, marker="x", linestyle=":", label=label))
    ax.legend(handles=handles, loc="best", fontsize="small")
    _epoch_axis(ax, budget)
    ax.set_ylabel("Accuracy (%)")
    prefix = f"Figure {figure_id}: " if figure_id else ""
    ax.set_title(f"{prefix}Top-1 of the chosen candidates and Standard, {epochs_label(budget)}")
    fig.tight_layout()
    return plotting.save_figure(fig, out_stem)


# ---------------------------------------------------------------------------------------------------------- stage


def _by_method(metrics: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for run in metrics:
        grouped.setdefault(_run(run).get("method", "?"), []).append(run)
    return grouped


def _one_budget(metrics: Sequence[Mapping[str, Any]], figure: str) -> int:
    budgets = sorted({int(_run(run).get("budget", 0)) for run in metrics})
    if len(budgets) != 1 or budgets[0] < 1:
        raise InputError(f"Figure {figure} draws runs of one budget; these record budgets {budgets}")
    return budgets[0]


def stage_figure(figure: str, inputs: list[Path], out: Path, config: list[Path] | None = None) -> Outcome:
    """``pblf figure ID``: draw Figure ``ID`` into the folder ``out`` as ``figure_<ID>.png`` and ``.pdf``.

    Inputs by figure: 6.1 and 6.2, the repeat runs' ``metrics.json`` of one budget; 6.3, the searches'
    ``evaluations.csv``; 6.4, the convergence runs' ``metrics.json``; C.1-C.3, a trajectory CSV and the config it
    was written with; C.4, ``velocity.csv``; generalisation, ``generalisation/runs.csv``; hypergradient, PBLF-HG's
    learning runs' ``metrics.json``."""
    stem = Path(out) / figure_stem(figure)
    if figure in ("6.1", "6.2"):
        metrics = load_metrics(inputs)
        paths = draw_curves(_by_method(metrics), _one_budget(metrics, figure), stem, figure_id=figure)
    elif figure == "6.3":
        searches = {}
        for path in inputs:
            rows = read_evaluations(path)
            searches[rows[0]["budget_epochs"], rows[0]["method"]] = rows
        paths = draw_search_scatter(searches, stem, figure_id=figure)
    elif figure == "6.4":
        metrics = load_metrics(inputs)
        _one_budget(metrics, figure)
        paths = draw_convergence({method: runs[0] for method, runs in _by_method(metrics).items()}, stem,
                                 figure_id=figure)
    elif figure == "hypergradient":
        from pblf.results.figures_hg import draw

        paths = draw(load_metrics(inputs), stem)
    elif figure == "generalisation":
        from pblf.results.generalisation import draw

        if len(inputs) != 1:
            raise InputError(f"the generalisation figure is drawn from runs.csv, got {len(inputs)} inputs")
        paths = draw(inputs[0], stem)
    else:
        from pblf.results.figures_c import stage_figure_c

        return stage_figure_c(figure, inputs, stem, config)
    log.info("drew %s", ", ".join(str(p) for p in paths))
    return Outcome()
