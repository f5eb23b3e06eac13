"""One figure style for every figure, and byte-stable PNG/PDF output.

Figures are part of what the pipeline reproduces, so the same inputs must give the same bytes: matplotlib stamps a
creation date and its version into PDFs and PNGs unless told otherwise, and picks fonts from the system. Everything
that draws calls :func:`apply_style` first and :func:`save_figure` last.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from pblf.core.files import write_bytes  # noqa: E402
from pblf.search.registry import methods  # noqa: E402

#: Seaborn's colour-blind palette: one colour per method, in the tables' order of methods, in every figure.
PALETTE = sns.color_palette("colorblind")


def method_colour(method: str) -> tuple[float, float, float]:
    """The colour of ``method`` in every figure."""
    return PALETTE[methods().index(method) % len(PALETTE)]


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
    paths = []
    for fmt, metadata in (("png", {"Software": None}), ("pdf", {"Creator": None, "Producer": None,
                                                                 "CreationDate": None})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, metadata=metadata)
        paths.append(write_bytes(buffer.getvalue(), stem.with_name(f"{stem.name}.{fmt}")))
    plt.close(fig)
    return paths
