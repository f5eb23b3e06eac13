"""The answer on one page: Table 6.2 and the key figures, as ``summary.html`` (the report opens on it).

A person who opens a run's results wants the answer first: which candidate each method chose and how it fared
against Standard, and the curves behind it. The tables and figures stages already write each of them; this page
sets Table 6.2 (its HTML form, :func:`pblf.results.tables.render_html`) and Figures 6.1-6.3 side by side, each with a
one-line title, and nothing else. The figures are embedded as data URIs, so that the page is one file that can be
mailed or opened anywhere, and the page is an HTML5 document that is also a valid fragment (no ``<html>`` or
``<body>``): the report's front page (``report/workflow.rst``) embeds it as it is. Same inputs, same bytes.
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

from pblf.core.errors import InputError
from pblf.core.files import read_bytes, read_text, write_text
from pblf.core.layout import SUMMARY
from pblf.core.names import figure_stem
from pblf.core.provenance import Outcome

log = logging.getLogger(__name__)

#: The figures the page shows, by id, with their one-line titles (the full captions are in the report).
KEY_FIGURES: dict[str, str] = {
    "6.1": "Top-1 (test) and validation accuracy per epoch of each method's chosen candidate and Standard over the "
           "repeat seeds, at the smallest budget",
    "6.2": "the same at the largest budget",
    "6.3": "every candidate PBLF-BO and PBLF-RS evaluated, projected to two principal components and coloured by "
           "Top-1 (test); each search's choice highlighted",
}

#: What Table 6.2 shows, in a line (its full caption, with the config's numbers, is the report's).
TABLE_TITLE = ("the candidate each method chose at each budget and its Top-1 (test) accuracy over the repeat seeds; "
               "\u0394 vs Standard is the mean seed-paired difference with its 95 % interval, and p (Holm) its "
               "paired t-test adjusted over the budget's comparisons.")

STYLE = ("<style>\n"
         ".pblf-summary{font:14px/1.5 system-ui,sans-serif;max-width:80rem}\n"
         ".pblf-summary figure{margin:1em 0}\n"
         ".pblf-summary img{max-width:100%;height:auto;border:1px solid #e2e2e2}\n"
         "</style>\n")


def figure_id(path: Path) -> str:
    """Which key figure a PNG is, from its file name (``figure_6_1.png`` -> ``6.1``); another file is an error."""
    for figure in KEY_FIGURES:
        if path.name == f"{figure_stem(figure)}.png":
            return figure
    raise InputError(f"{path}: not one of the key figures "
                     f"({', '.join(figure_stem(figure) + '.png' for figure in KEY_FIGURES)})")


def render_summary(table_html: str, figures: dict[str, bytes]) -> str:
    """The page: Table 6.2's HTML fragment, then each figure (PNG bytes by id) in :data:`KEY_FIGURES`'s order."""
    parts = ['<!DOCTYPE html>\n<meta charset="utf-8">\n<title>PBLF: Table 6.2 and the key figures</title>\n', STYLE,
             '<section class="pblf-summary">\n<h2>Table 6.2</h2>\n',
             f"<p>Table 6.2: {html.escape(TABLE_TITLE)}</p>\n", table_html]
    for figure, title in KEY_FIGURES.items():
        if figure in figures:
            data = base64.b64encode(figures[figure]).decode("ascii")
            parts.append(f'<figure>\n<img alt="Figure {figure}" src="data:image/png;base64,{data}">\n'
                         f"<figcaption>Figure {figure}: {html.escape(title)}.</figcaption>\n</figure>\n")
    parts.append("</section>\n")
    return "".join(parts)


def stage_summary(table: Path, figures: list[Path], out: Path) -> Outcome:
    """``pblf summary``: write ``summary.html`` into the folder ``out`` from Table 6.2's HTML and the key figures'
    PNGs (those the run drew: Figure 6.2 needs two budgets)."""
    pngs = {figure_id(Path(path)): read_bytes(path) for path in figures}
    path = write_text(render_summary(read_text(table), pngs), Path(out) / SUMMARY)
    log.info("wrote %s (Table 6.2 and Figures %s)", path, ", ".join(sorted(pngs)) or "none")
    return Outcome()
