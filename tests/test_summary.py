"""The summary page: Table 6.2 and the key figures in one byte-stable file that embeds in the report."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from pblf.cli import main
from pblf.core.errors import InputError
from pblf.results.summary import KEY_FIGURES, figure_id, render_summary

TABLE = '<table class="pblf"><tr><td>95.00</td></tr></table>\n'
PNG = {figure: f"png of {figure}".encode() for figure in KEY_FIGURES}


def test_the_page_is_the_table_then_the_figures_in_order_embedded():
    page = render_summary(TABLE, {"6.3": PNG["6.3"], "6.1": PNG["6.1"]})
    assert page.startswith("<!DOCTYPE html>\n") and "<body" not in page and "<html" not in page
    assert page.index("<h2>Table 6.2</h2>") < page.index(TABLE) < page.index('alt="Figure 6.1"') \
        < page.index('alt="Figure 6.3"')
    sources = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert [base64.b64decode(s) for s in sources] == [PNG["6.1"], PNG["6.3"]]
    assert "Figure 6.2" not in page  # a run with one budget draws no Figure 6.2
    assert render_summary(TABLE, {"6.1": PNG["6.1"], "6.3": PNG["6.3"]}) == page


def test_figures_are_known_by_their_file_names():
    assert figure_id(Path("results/demo/figures/figure_6_2.png")) == "6.2"
    with pytest.raises(InputError, match="figure_6_4.png: not one of the key figures .*figure_6_1.png"):
        figure_id(Path("figure_6_4.png"))


def test_pblf_summary_writes_the_page_and_its_record(tmp_path: Path):
    (tmp_path / "table_6_2.html").write_text(TABLE)
    (tmp_path / "figure_6_1.png").write_bytes(PNG["6.1"])
    results = tmp_path / "results"
    argv = ["--results", str(results), "summary", "--table", str(tmp_path / "table_6_2.html"),
            "--figures", str(tmp_path / "figure_6_1.png"), "--out", str(results)]
    assert main(argv) == 0
    page = (results / "summary.html").read_text()
    assert TABLE in page and base64.b64encode(PNG["6.1"]).decode() in page
    assert list((results / "provenance").rglob("*.json"))
    assert main([*argv[:-1], str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "summary.html").read_bytes() == (results / "summary.html").read_bytes()
