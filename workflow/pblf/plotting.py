"""One figure style for every figure, and byte-stable PNG/PDF output.

Figures are part of what the pipeline reproduces, so the same inputs must give the same bytes: matplotlib stamps a
creation date and its version into PDFs and PNGs unless told otherwise, and picks fonts from the system. Everything
that draws calls :func:`apply_style` first and :func:`save_figure` last.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

#: The methods in the order and colours (seaborn's colour-blind palette) every figure uses.
METHOD_ORDER: tuple[str, ...] = ("PBLF-BO", "PBLF-RS", "Standard")
PALETTE = sns.color_palette("colorblind")
METHOD_COLOURS: dict[str, tuple[float, float, float]] = dict(zip(METHOD_ORDER, PALETTE))


def apply_style() -> None:
    """Fixed rcParams: bundled DejaVu fonts, embedded as TrueType, no hash salt in SVG ids."""
    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, font="DejaVu Sans")
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "pdf.fonttype": 42,
            "svg.hashsalt": "pblf",
            "path.simplify": True,
            "axes.titlesize": "medium",
        }
    )


def save_figure(fig: plt.Figure, stem: str | Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` with no date, software or other run-varying metadata; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], metadata={"Software": None})
    fig.savefig(paths[1], metadata={"Creator": None, "Producer": None, "CreationDate": None})
    plt.close(fig)
    return paths
