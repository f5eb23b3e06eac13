"""The PBLF-HG figure: where the learned derivative goes, from its learning runs' ``metrics.json``.

One column per budget. Top: w1, w2, b1 and b2 against training steps, from the start (Standard's sigma' == 1, see
:func:`pblf.training.hypergrad.learning_start`) to the candidate learned. Bottom: the four gates (one per place of the mode)
against training steps, with 0.5, where a gate's rounded bit flips. A reader sees whether phi settles, drifts or
returns to standard backpropagation, and which places the method switched off. The title of each column gives the
rounded candidate that the repeats then retrain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from pblf.core.candidate import Candidate
from pblf.core.errors import InputError
from pblf.core.names import PHI_NAMES, PLACES, epochs_label
from pblf.results import plotting
from pblf.results.curves import load_metrics
from pblf.search.registry import learning_methods
from pblf.training.hypergrad import TRAJECTORY_FIELDS

#: How each gate's line is drawn: the four often move together, so wider lines go under narrower ones with other
#: dashes, and every gate stays visible where they coincide.
GATE_WIDTHS: tuple[float, ...] = (4.0, 2.8, 1.8, 1.0)
GATE_STYLES: tuple[object, ...] = ("-", (0, (5, 2)), (0, (2, 1.5)), (0, (1, 1)))


def trajectories(runs: Sequence[Mapping[str, Any]]) -> dict[int, tuple[np.ndarray, Candidate]]:
    """Per budget, the trajectory of one learning run as an array (rows: hypergradient steps; columns:
    :data:`pblf.training.hypergrad.TRAJECTORY_FIELDS`) and the candidate it learned; runs that are not the search
    runs of a learning method (:func:`pblf.search.registry.learning_methods`), or two of one budget, are refused by
    name."""
    out: dict[int, tuple[np.ndarray, Candidate]] = {}
    for metrics in runs:
        run = metrics.get("run", {})
        if run.get("method") not in learning_methods() or run.get("kind") != "search" or "hypergrad" not in metrics:
            raise InputError(f"{metrics.get('path', 'a run')} is not a learning run of "
                             f"{' or '.join(learning_methods())} (run {run}); the figure draws their trajectories")
        budget = int(run["budget"])
        if budget in out:
            raise InputError(f"two learning runs of {epochs_label(budget)}")
        rows = metrics["hypergrad"]["trajectory"]
        out[budget] = (np.array([[float(row[key]) for key in TRAJECTORY_FIELDS] for row in rows]),
                       Candidate.from_dict(metrics["learned"]))
    if not out:
        raise InputError("no learning runs to draw")
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class HypergradientFigure:
    """The numbers of the figure: per budget, a learning run's trajectory and learned candidate
    (:func:`trajectories`), and the methods whose runs these are."""

    paths: dict[int, tuple[np.ndarray, Candidate]]
    learners: list[str]


def read_hypergradient(inputs: Sequence[Path], config: Sequence[Path] | None = None) -> HypergradientFigure:
    """The figure from the learning runs' ``metrics.json``."""
    runs = load_metrics(inputs)
    return HypergradientFigure(trajectories(runs), sorted({metrics["run"]["method"] for metrics in runs}))


def draw(data: HypergradientFigure, out_stem: str | Path, figure_id: str) -> list[Path]:
    """Draw the figure into ``out_stem.png`` and ``.pdf``."""
    paths, learners = data.paths, " and ".join(data.learners)
    plotting.apply_style()
    fig, axes = plt.subplots(2, len(paths), figsize=(4.6 * len(paths), 6.4), squeeze=False, sharex="col")
    for column, (budget, (rows, learned)) in enumerate(paths.items()):
        steps = rows[:, 0]
        marker = "o" if len(steps) == 1 else None  # a run too short for a hypergradient step: its start, as a dot
        top, bottom = axes[0, column], axes[1, column]
        for k, name in enumerate(PHI_NAMES):
            top.plot(steps, rows[:, 1 + k], color=plotting.PALETTE[k], linewidth=1.4, marker=marker,
                     linestyle=(0, (4, 3)) if k % 2 else "-", zorder=3 if k % 2 else 2,
                     label=name)  # w2 and b2 dashed, on top: w2 == b1 from the start
        top.axhline(0, color="0.6", linewidth=0.6, zorder=1)
        top.set_ylim(-1.05, 1.05)
        top.set_ylabel("phi")
        top.set_title(f"{epochs_label(budget)}: learned {learned.mode}\n"
                      + ", ".join(f"{name} {value:.3f}" for name, value in zip(PHI_NAMES, learned.phi)),
                      fontsize="small")
        for k, place in enumerate(PLACES):  # gates that move together coincide: wide to narrow, each dashed its own
            bottom.plot(steps, rows[:, 1 + len(PHI_NAMES) + k], color=plotting.PALETTE[4 + k],
                        linewidth=GATE_WIDTHS[k], linestyle=GATE_STYLES[k], marker=marker, label=place, zorder=2 + k)
        bottom.axhline(0.5, color="0.4", linestyle=":", linewidth=0.9, zorder=1)
        bottom.set_ylim(-0.03, 1.03)
        bottom.set_ylabel("gate g (bit = g >= 0.5)")
        bottom.set_xlabel("training step")
        top.legend(loc="best", fontsize="x-small", ncol=2)
        bottom.legend(loc="best", fontsize="x-small", ncol=2)
    fig.suptitle(f"{learners}: phi and the gates of the mode\nwhile the network trains")  # two lines fit one column
    fig.tight_layout()
    return plotting.save_figure(fig, out_stem)
