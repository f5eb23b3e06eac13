"""Figure 6.3: every candidate PBLF-BO and PBLF-RS (each sampling method) evaluated, in two principal components of
(w1, w2, b1, b2, the mode's bits), coloured by Top-1, one panel per (budget, method); the chosen candidate starred.

The numbers (:func:`scatter_figure`: the projected points, their Top-1 and status, the chosen candidate, the
explained variance) are a pure function of the searches' ``evaluations.csv``, checked by the tests against values
worked out by hand; :func:`draw_scatter` only places them. The PCA is fitted on every candidate of every panel in a
canonical order with the exact ``full`` SVD and a fixed sign convention, so the same candidates give the same
figure in any order. A diverged candidate is an x, one stopped early by low-fidelity search a triangle; a run that a
later rung continued (successive halving) is drawn once, as the run that continued it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from sklearn.decomposition import PCA

from pblf.core.candidate import Candidate
from pblf.core.errors import InputError
from pblf.core.names import FINISHED_STATUSES, PHI_NAMES, PROMOTED, epochs_label
from pblf.results import plotting
from pblf.search.registry import sampling_methods
from pblf.search.select import read_evaluations, select_best

#: The PCA inputs of Figure 6.3: phi, then the four mode bits as 0/1.
PCA_FEATURES: tuple[str, ...] = (*PHI_NAMES, "mode_1", "mode_2", "mode_3", "mode_4")
SCATTER_CMAP = "viridis"
#: How each status of a candidate is drawn: marker and size.
MARKERS: dict[str, tuple[str, int]] = {"ok": ("o", 30), "diverged": ("X", 45), "stopped": ("v", 36)}


@dataclass(frozen=True)
class ScatterPanel:
    """One search: its candidates' two principal coordinates (n, 2), Top-1 and status, in evaluation order, and the
    position of its chosen candidate."""

    budget: int
    method: str
    points: np.ndarray
    top1: np.ndarray
    status: tuple[str, ...]
    chosen: int


@dataclass(frozen=True)
class ScatterFigure:
    """The numbers of Figure 6.3: the panels (budgets in rows, methods in columns) and the share of variance each
    principal component explains."""

    budgets: list[int]
    methods: list[str]
    panels: list[ScatterPanel]
    ratios: np.ndarray


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


def scatter_figure(searches: Mapping[tuple[int, str], Sequence[Mapping[str, Any]]]) -> ScatterFigure:
    """The numbers of Figure 6.3 from each search's evaluations (``(budget, method)`` to its rows, as
    :func:`pblf.search.select.read_evaluations` reads them)."""
    budgets, sampled, panels = _check_searches(searches)
    keys = [(b, m) for b in budgets for m in sampled]
    all_rows = [row for key in keys for row in panels[key]]
    coordinates, ratios, _ = project_candidates(all_rows)
    made, start = [], 0
    for budget, method in keys:
        rows = panels[budget, method]
        best = chosen_candidate(rows)
        made.append(ScatterPanel(budget, method, coordinates[start:start + len(rows)],
                                 np.array([float(row["test_top1"]) for row in rows]),
                                 tuple(row.get("status", "ok") for row in rows),
                                 next(i for i, row in enumerate(rows) if row is best)))
        start += len(rows)
    return ScatterFigure(budgets, sampled, made, ratios)


def read_scatter(inputs: Sequence[Path], config: Sequence[Path] | None = None) -> ScatterFigure:
    """Figure 6.3 from the searches' ``evaluations.csv``."""
    searches = {}
    for path in inputs:
        rows = read_evaluations(path)
        searches[rows[0]["budget_epochs"], rows[0]["method"]] = rows
    return scatter_figure(searches)


def draw_scatter(data: ScatterFigure, out_stem: str | Path, figure_id: str) -> list[Path]:
    """Draw Figure 6.3 into ``out_stem.png`` and ``.pdf``; the panels share axes and colour scale."""
    top1 = np.concatenate([panel.top1 for panel in data.panels])
    vmin, vmax = float(top1.min()), float(top1.max())
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    statuses = {status for panel in data.panels for status in panel.status}

    plotting.apply_style()
    nrows, ncols = len(data.budgets), len(data.methods)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols + 1.0, 3.4 * nrows + 0.6), sharex=True,
                             sharey=True, squeeze=False, layout="constrained")
    common = {"cmap": SCATTER_CMAP, "vmin": vmin, "vmax": vmax}
    mappable = None
    for panel, ax in zip(data.panels, axes.flat):
        status = np.array(panel.status)
        for kind, (marker, size) in MARKERS.items():
            drawn = status == kind
            if drawn.any():
                mappable = ax.scatter(panel.points[drawn, 0], panel.points[drawn, 1], c=panel.top1[drawn],
                                      marker=marker, s=size, edgecolors="0.25", linewidths=0.4, zorder=3, **common)
        best = panel.chosen
        ax.scatter(panel.points[best, 0], panel.points[best, 1], marker="*", s=260, c=[panel.top1[best]],
                   edgecolors="black", linewidths=1.3, zorder=4, **common)
        extra = "".join(f", {int((status == kind).sum())} {kind}" for kind in ("diverged", "stopped")
                        if (status == kind).any())
        ax.set_title(f"{panel.method}, budget {epochs_label(panel.budget)} ({len(status)} candidates{extra})")
        ax.set_xlabel(f"PC 1 ({100 * data.ratios[0]:.0f} %)")
        ax.set_ylabel(f"PC 2 ({100 * data.ratios[1]:.0f} %)")
        ax.tick_params(labelbottom=True, labelleft=True)
    colourbar = fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.85, pad=0.02)
    colourbar.set_label("Top-1 (%)")
    handles = [
        Line2D([], [], marker="o", color="0.6", markeredgecolor="0.25", linestyle="none", label="candidate"),
        Line2D([], [], marker="*", markersize=12, color="0.6", markeredgecolor="black", linestyle="none",
               label="chosen candidate (highest Top-1 validation)"),
    ]
    if "diverged" in statuses:
        handles.append(Line2D([], [], marker="X", color="0.6", markeredgecolor="0.25", linestyle="none",
                              label="diverged candidate"))
    if "stopped" in statuses:
        handles.append(Line2D([], [], marker="v", color="0.6", markeredgecolor="0.25", linestyle="none",
                              label="stopped early (low fidelity; Top-1 at its last epoch)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize="small")
    fig.suptitle(f"Figure {figure_id}: sampled candidates in 2 principal components of (w1, w2, b1, b2, mode bits), "
                 f"fitted on all {len(top1)} candidates", fontsize="medium")
    return plotting.save_figure(fig, out_stem)
