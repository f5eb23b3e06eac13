"""Figures C.1-C.4 of Appendix C, drawn from the CSVs that :mod:`pblf.results.trajectories` writes.

Figures C.1-C.3 show, one panel per start (see :mod:`pblf.results.trajectories`), the path of (w1^(2), w2^(2)) for each beta
over the contours of the training loss (recomputed from the start's seed, the one thing not in the CSV); a black square marks the common start
and a black-edged circle the end of each path. Figure C.4 shows the velocity of the paths against beta, one panel per
optimiser, mean +/- std over runs. Beta includes 0, so its axis is categorical (evenly spaced, labelled by value).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from pblf.core.config import load_config
from pblf.core.errors import InputError
from pblf.core.files import read_text
from pblf.results import plotting
from pblf.results import trajectories as tj

#: Every beta any Appendix C figure uses, with one colour each, the same in every figure.
BETA_ORDER: tuple[float, ...] = (0.0, 0.5, 1.0, 5.0, 100.0)
_BETA_COLOURS = dict(zip(BETA_ORDER, [plotting.PALETTE[i] for i in (7, 4, 0, 1, 3)]))
W1_LABEL = r"$w_1^{(2)}$"
W2_LABEL = r"$w_2^{(2)}$"


def beta_colour(beta: float):
    """The colour of ``beta`` in every Appendix C figure (betas outside :data:`BETA_ORDER` get a fallback)."""
    return _BETA_COLOURS.get(float(beta), plotting.PALETTE[5])


def _optimizer_title(optimizer: str) -> str:
    label, lr, momentum = tj.OPTIMIZERS[optimizer]
    return f"{label} (lr {lr:g}" + (f", momentum {momentum:g})" if momentum is not None else ")")


def _read_frame(path: str | Path, dtypes: dict[str, type]) -> pd.DataFrame:
    try:
        return pd.read_csv(io.StringIO(read_text(path)), dtype=dtypes)
    except (ValueError, pd.errors.ParserError) as err:
        raise InputError(f"{path}: not a CSV of Appendix C ({err})") from None


def _panels(count: int, per_row: int, size: tuple[float, float]) -> tuple[plt.Figure, list]:
    """A styled figure of ``count`` panels, ``per_row`` to a row, each ``size`` inches; spare cells hidden."""
    plotting.apply_style()
    ncols = min(per_row, count)
    nrows = -(-count // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _landscape_window(paths: list[np.ndarray], grid_points: int) -> tuple[np.ndarray, np.ndarray]:
    points = np.concatenate(paths)
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.maximum(hi - lo, 0.5)
    centre = (lo + hi) / 2
    lo, hi = centre - 0.6 * span, centre + 0.6 * span  # 10 % margin on each side
    return np.linspace(lo[0], hi[0], grid_points), np.linspace(lo[1], hi[1], grid_points)


@dataclass(frozen=True)
class TrajectoryPanel:
    """One start of Figures C.1-C.3: its start point, each beta's path of (w1, w2) (steps in rows), and the training
    loss on a grid around the paths (recomputed from the start's seed, the one thing not in the CSV)."""

    start: int
    start_point: np.ndarray
    paths: dict[float, np.ndarray]
    w1_grid: np.ndarray
    w2_grid: np.ndarray
    loss: np.ndarray


@dataclass(frozen=True)
class TrajectoryFigure:
    """The numbers of one of Figures C.1-C.3."""

    figure_id: str
    optimizer: str
    steps: int
    betas: list[float]
    panels: list[TrajectoryPanel]


def trajectory_figure(csv_path: str | Path, seed: int, n_samples: int, max_panels: int = 4,
                      grid_points: int = 121) -> TrajectoryFigure:
    """The numbers of one of Figures C.1-C.3 from its CSV.

    ``seed`` and ``n_samples`` must be those the CSV was written with: they rebuild each start's loss landscape, and
    a mismatch (the recomputed start point differs from the CSV's step 0) raises ``InputError``. The first
    ``max_panels`` starts are drawn; the loss is evaluated on a ``grid_points`` x ``grid_points`` grid per panel."""
    frame = _read_frame(csv_path, {"figure": str, "optimizer": str})
    missing = [c for c in tj.TRAJECTORY_COLUMNS if c not in frame.columns]
    if missing or frame.empty:
        raise InputError(f"{csv_path}: not a trajectory CSV (missing columns {missing} or no rows)")
    figures, optimizers = frame["figure"].unique(), frame["optimizer"].unique()
    if len(figures) != 1 or len(optimizers) != 1:
        raise InputError(f"{csv_path}: expected one figure and one optimizer, got {list(figures)}, {list(optimizers)}")
    betas = sorted(float(b) for b in frame["beta"].unique())
    panels = []
    for number in sorted(int(t) for t in frame["start"].unique())[:max_panels]:
        rows = frame[frame["start"] == number]
        paths = {
            beta: rows[rows["beta"] == beta].sort_values("step")[["w1", "w2"]].to_numpy(dtype=np.float64)
            for beta in betas
        }
        seed_t = tj.start_seed(seed, number)
        start = tj.make_start(seed_t, n_samples).w0.numpy()
        for beta, path in paths.items():
            if not np.allclose(path[0], start, rtol=10.0 ** (1 - tj.FLOAT_DIGITS), atol=1e-12):
                raise InputError(
                    f"{csv_path}: start {number}, beta {beta:g} starts at {path[0]}, but seed {seed} with n_samples "
                    f"{n_samples} starts at {start}: pass the seed and n_samples the CSV was written with"
                )
        w1_grid, w2_grid = _landscape_window(list(paths.values()), grid_points)
        panels.append(TrajectoryPanel(number, start, paths, w1_grid, w2_grid,
                                      tj.loss_landscape(w1_grid, w2_grid, seed_t, n_samples)))
    return TrajectoryFigure(str(figures[0]), str(optimizers[0]), int(frame["step"].max()), betas, panels)


def read_trajectories(inputs: Sequence[Path], config: Sequence[Path] | None) -> TrajectoryFigure:
    """Figure C.1-C.3 from its trajectory CSV and the config it was written with (its seed and n_samples)."""
    if len(inputs) != 1:
        raise InputError(f"Figures C.1-C.3 are drawn from one CSV, got {len(inputs)} inputs")
    if not config:
        raise InputError("a trajectory figure (C.1-C.3) needs --config: the seed and n_samples its CSV was written with")
    cfg = load_config(config)
    return trajectory_figure(inputs[0], seed=cfg["seed"], n_samples=cfg["appendix_c"]["n_samples"])


def draw_trajectories(data: TrajectoryFigure, out_stem: str | Path, figure_id: str) -> list[Path]:
    """Draw one of Figures C.1-C.3 into ``out_stem.png`` and ``.pdf``."""
    fig, axes = _panels(len(data.panels), 2, (5.2, 4.3))
    for ax, panel in zip(axes, data.panels):
        filled = ax.contourf(panel.w1_grid, panel.w2_grid, panel.loss, levels=20, cmap="Greys", alpha=0.45)
        ax.contour(panel.w1_grid, panel.w2_grid, panel.loss, levels=filled.levels, colors="0.45", linewidths=0.4)
        colourbar = fig.colorbar(filled, ax=ax, fraction=0.046, pad=0.03)
        colourbar.set_label("training loss (cross-entropy)")
        # Thicker lines first: paths that coincide (Adam) stay visible as a coloured core inside a wider band.
        widths = 1.5 + 2.5 * np.arange(len(data.betas))[::-1]  # a 1.25 pt rim of each colour shows
        for (beta, path), width in zip(panel.paths.items(), widths):
            ax.plot(path[:, 0], path[:, 1], color=beta_colour(beta), linewidth=width, solid_capstyle="round")
            ax.plot(*path[-1], marker="o", markersize=7, markerfacecolor=beta_colour(beta),
                    markeredgecolor="black", markeredgewidth=1.2, linestyle="none", zorder=4)
        ax.plot(*panel.start_point, marker="s", markersize=7, color="black", linestyle="none", zorder=5)
        ax.set_title(f"start {panel.start}")
        ax.set_xlabel(W1_LABEL)
        ax.set_ylabel(W2_LABEL)

    handles = [Line2D([], [], color=beta_colour(b), linewidth=2.5, label=f"β = {b:g}") for b in data.betas]
    handles += [
        Line2D([], [], marker="s", color="black", linestyle="none", label="start"),
        Line2D([], [], marker="o", markerfacecolor="white", markeredgecolor="black", linestyle="none", label="end"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(f"Figure {data.figure_id}: gradient trajectories of (w1, w2), {_optimizer_title(data.optimizer)}, "
                 f"{data.steps} full-batch steps")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return plotting.save_figure(fig, out_stem)


def _panel_title(letter: str, optimizer: str, lr: float) -> str:
    label, _, momentum = tj.OPTIMIZERS.get(optimizer, (optimizer, lr, None))
    return f"({letter}) {label}, lr {lr:g}" + (f", momentum {momentum:g}" if momentum is not None else "")


@dataclass(frozen=True)
class VelocityPanel:
    """One (optimiser, learning rate) of Figure C.4: the betas and the mean and std of the velocity at each."""

    optimizer: str
    lr: float
    betas: np.ndarray
    mean: np.ndarray
    std: np.ndarray


@dataclass(frozen=True)
class VelocityFigure:
    """The numbers of Figure C.4: its panels, in the order of :data:`pblf.results.trajectories.VELOCITY_PANELS`
    (three SGD panels, then Adam and Adagrad), and how many start points each velocity is over."""

    panels: list[VelocityPanel]
    runs: list[int]


def velocity_figure(csv_path: str | Path) -> VelocityFigure:
    """The numbers of Figure C.4 from ``velocity.csv``."""
    frame = _read_frame(csv_path, {"optimizer": str})
    if list(frame.columns) != list(tj.VELOCITY_COLUMNS) or frame.empty:
        raise InputError(f"{csv_path}: expected columns {list(tj.VELOCITY_COLUMNS)} and at least one row")
    present = sorted({(str(o), float(lr)) for o, lr in zip(frame["optimizer"], frame["lr"])})
    order = [panel for panel in tj.VELOCITY_PANELS if panel in present]
    order += [panel for panel in present if panel not in order]
    panels = []
    for optimizer, lr in order:
        rows = frame[(frame["optimizer"] == optimizer) & (frame["lr"] == lr)].sort_values("beta")
        panels.append(VelocityPanel(optimizer, lr, rows["beta"].to_numpy(dtype=np.float64),
                                    rows["velocity_mean"].to_numpy(dtype=np.float64),
                                    rows["velocity_std"].to_numpy(dtype=np.float64)))
    return VelocityFigure(panels, sorted(int(r) for r in frame["runs"].unique()))


def read_velocity(inputs: Sequence[Path], config: Sequence[Path] | None = None) -> VelocityFigure:
    """Figure C.4 from ``velocity.csv``."""
    if len(inputs) != 1:
        raise InputError(f"Figure C.4 is drawn from one CSV, got {len(inputs)} inputs")
    return velocity_figure(inputs[0])


def draw_velocity(data: VelocityFigure, out_stem: str | Path, figure_id: str) -> list[Path]:
    """Draw Figure C.4: velocity against beta, one panel per (optimiser, learning rate), error bars = std."""
    fig, axes = _panels(len(data.panels), 3, (4.2, 3.6))
    for ax, letter, panel in zip(axes, "abcdefghijklmnopqrstuvwxyz", data.panels):
        positions = np.arange(len(panel.betas))
        colours = [beta_colour(b) for b in panel.betas]
        ax.plot(positions, panel.mean, color="0.6", linewidth=1.0, zorder=1)
        ax.errorbar(positions, panel.mean, yerr=panel.std, fmt="none", ecolor="0.2", elinewidth=1.0, capsize=4,
                    zorder=2)
        ax.scatter(positions, panel.mean, c=colours, s=45, edgecolors="black", linewidths=0.6, zorder=3)
        ax.set_xticks(positions, [f"{b:g}" for b in panel.betas])
        ax.set_xlabel("β (ReLU derivative at hidden layer 2)")
        ax.set_ylabel("velocity (mean ‖Δw‖ per step)")
        ax.set_ylim(bottom=0)
        ax.set_title(_panel_title(letter, panel.optimizer, panel.lr))
    runs = data.runs
    runs_text = str(runs[0]) if len(runs) == 1 else f"{runs[0]}-{runs[-1]}"
    fig.suptitle(f"Figure {figure_id}: velocity of the gradient trajectory per β (mean ± std over {runs_text} "
                 "start points)")
    fig.tight_layout()
    return plotting.save_figure(fig, out_stem)
