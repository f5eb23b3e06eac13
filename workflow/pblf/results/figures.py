"""Every figure, as a table: its id, how its numbers are read from its inputs, and how they are drawn.

A figure is two functions. ``read(inputs, config)`` is pure: it turns the input files into exactly the numbers the
figure plots (a dataclass of arrays), so the tests check a figure's numbers against values worked out by hand, not
only its bytes. ``draw(numbers, stem, figure_id)`` places those numbers on axes and writes ``stem.png`` and
``stem.pdf`` (byte-stable, :mod:`pblf.results.plotting`). ``pblf figure ID`` looks the pair up here; adding a figure
is a line of :data:`FIGURES_DRAWN` and its id in :data:`pblf.core.names.FIGURES`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pblf.core.config import load_config, stage_config
from pblf.core.names import figure_stem
from pblf.core.provenance import Outcome
from pblf.results import curves, figures_c, figures_hg, generalisation, scatter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Figure:
    """What a figure reads (its inputs and, for some, a config, to the numbers it plots) and how it draws them."""

    read: Callable[[Sequence[Path], Sequence[Path] | None], Any]
    draw: Callable[[Any, Path, str], list[Path]]


#: Every figure of :data:`pblf.core.names.FIGURES`, by id, with what it is read from: 6.1 and 6.2, the repeat runs'
#: ``metrics.json`` of one budget; 6.3, the sampling searches' ``evaluations.csv``; 6.4, the convergence reruns'
#: ``metrics.json``; C.1-C.3, a trajectory CSV and the config it was written with; C.4, ``velocity.csv``;
#: generalisation, ``generalisation/runs.csv``; hypergradient, the learning runs' ``metrics.json``.
FIGURES_DRAWN: dict[str, Figure] = {
    "6.1": Figure(curves.read_curves, curves.draw_curves),
    "6.2": Figure(curves.read_curves, curves.draw_curves),
    "6.3": Figure(scatter.read_scatter, scatter.draw_scatter),
    "6.4": Figure(curves.read_convergence, curves.draw_convergence),
    **{figure: Figure(figures_c.read_trajectories, figures_c.draw_trajectories) for figure in ("C.1", "C.2", "C.3")},
    "C.4": Figure(figures_c.read_velocity, figures_c.draw_velocity),
    "generalisation": Figure(generalisation.read_generalisation, generalisation.draw_generalisation),
    "hypergradient": Figure(figures_hg.read_hypergradient, figures_hg.draw),
}


def stage_figure(figure: str, inputs: list[Path], out: Path, config: list[Path] | None = None) -> Outcome:
    """``pblf figure ID``: read Figure ``ID``'s numbers from ``inputs`` and draw them into the folder ``out`` as
    ``figure_<ID>.png`` and ``.pdf``. A config (C.1-C.3's) goes into the record with the keys the figure reads."""
    spec = FIGURES_DRAWN[figure]
    paths = spec.draw(spec.read(inputs, config), Path(out) / figure_stem(figure), figure)
    log.info("drew %s", ", ".join(str(p) for p in paths))
    return Outcome(stage_config(load_config(config), "appendix_c") if config else None)
