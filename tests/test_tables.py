"""Tests of Table 6.2, Table B.1 and Table B.2 (pblf.results.tables), made from the thesis's own numbers.

The trials file below holds Table B.1 (Top-1) and Table B.2 (Top-1 validation) for 20 and 100 epochs, seed by seed,
with the candidates of Table 6.2. Expected statistics are worked out by hand in the tests, not by the code under test.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest

from pblf.core.files import read_csv
from pblf.results.stats import holm, paired
from pblf.results.tables import Column, read_trials, render_html, table_6_2, table_6_2_paired, table_b, write_tables

HEADER = "budget_epochs,method,seed,test_top1,val_top1,w1,w2,b1,b2,mode"

#: Table B.1 of the thesis: Top-1 of seeds 0..4.
TOP1 = {
    (100, "PBLF-BO"): (95.42, 95.38, 95.29, 95.17, 93.72),
    (100, "PBLF-RS"): (95.22, 95.26, 95.55, 95.08, 95.27),
    (100, "Standard"): (95.38, 95.3, 95.48, 95.46, 95.73),
    (20, "PBLF-BO"): (92.78, 92.89, 92.94, 92.45, 92.78),
    (20, "PBLF-RS"): (92.87, 92.74, 92.65, 92.71, 91.97),
    (20, "Standard"): (92.98, 92.76, 93.08, 92.83, 92.63),
}
#: Table B.2 of the thesis: Top-1 validation of seeds 0..4.
VAL = {
    (100, "PBLF-BO"): (96.119, 96.139, 96.099, 96.019, 94.819),
    (100, "PBLF-RS"): (95.979, 95.839, 95.92, 96.059, 96.159),
    (100, "Standard"): (96.059, 96.159, 96.279, 96.059, 95.86),
    (20, "PBLF-BO"): (93.559, 93.76, 93.559, 93.439, 93.48),
    (20, "PBLF-RS"): (93.99, 93.99, 94.06, 93.69, 93.439),
    (20, "Standard"): (93.89, 93.44, 93.839, 93.839, 93.399),
}
#: Table 6.2 of the thesis: w1, w2, b1, b2, mode of each chosen candidate.
CANDIDATES = {
    (100, "PBLF-BO"): ("0.0365", "0", "0.5816", "0.375", "0010"),
    (100, "PBLF-RS"): ("0.2282", "0.2304", "-0.765", "0.8942", "1110"),
    (100, "Standard"): ("0", "0", "0", "1", "1111"),
    (20, "PBLF-BO"): ("0.0002", "0", "0.4306", "0", "1000"),
    (20, "PBLF-RS"): ("0.824", "0.2906", "0.3945", "0.8482", "1100"),
    (20, "Standard"): ("0", "0", "0", "1", "1111"),
}
#: The thesis's "Top-1 ... +- x" of Table 6.2.
THESIS_PLUS_MINUS = {
    (100, "PBLF-BO"): 0.52,
    (100, "PBLF-RS"): 0.03,
    (100, "Standard"): 0.03,
    (20, "PBLF-BO"): 0.04,
    (20, "PBLF-RS"): 0.13,
    (20, "Standard"): 0.03,
}
TABLE_NAMES = [f"{name}.{ext}" for name in ("table_6_2", "table_6_2_paired", "table_B_1", "table_B_2")
               for ext in ("csv", "md", "tex", "html")]


def thesis_lines(shuffle_seed: int | None = None) -> list[str]:
    """One trials line per (budget, method, seed), 20 epochs first (the tables must reorder them)."""
    lines = [
        ",".join([str(budget), method, str(seed), str(top1), str(val), *CANDIDATES[budget, method]])
        for (budget, method) in sorted(TOP1)
        for seed, (top1, val) in enumerate(zip(TOP1[budget, method], VAL[budget, method]))
    ]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(lines)
    return lines


def write_trials(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


@pytest.fixture
def trials(tmp_path: Path) -> Path:
    return write_trials(tmp_path / "trials.csv", thesis_lines())


@pytest.fixture
def table(trials: Path) -> dict[tuple[int, str], dict]:
    return {(row["budget_epochs"], row["method"]): row for row in table_6_2(read_trials(trials))}


def markdown_rows(text: str) -> list[list[str]]:
    """The cells of every body row of a pipe table (header and separator dropped)."""
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()[2:]]


# --- reading -------------------------------------------------------------------------------------------------------


def test_read_trials_types_and_keeps_mode_a_string(trials: Path) -> None:
    rows = read_trials(trials)
    assert len(rows) == 30
    first = rows[15]  # file order is kept: the 15 rows of 20 epochs come first
    assert first["budget_epochs"] == 100 and first["method"] == "PBLF-BO" and first["seed"] == 0
    assert first["test_top1"] == 95.42 and first["val_top1"] == 96.119
    assert (first["w1"], first["w2"], first["b1"], first["b2"]) == (0.0365, 0.0, 0.5816, 0.375)
    assert first["mode"] == "0010" and isinstance(first["mode"], str)


# --- Table 6.2 -----------------------------------------------------------------------------------------------------


def test_table_6_2_statistics_match_hand_computation(table: dict) -> None:
    bo = table[100, "PBLF-BO"]
    # mean of (95.42, 95.38, 95.29, 95.17, 93.72) = 474.98 / 5
    assert bo["test_top1_mean"] == pytest.approx(474.98 / 5) == pytest.approx(94.996)
    # deviations from 94.996: 0.424, 0.384, 0.294, 0.174, -1.276
    squares = 0.424**2 + 0.384**2 + 0.294**2 + 0.174**2 + 1.276**2
    assert squares == pytest.approx(2.07212)
    assert bo["test_top1_var"] == pytest.approx(squares / 4) == pytest.approx(0.51803)
    assert bo["test_top1_std"] == pytest.approx(math.sqrt(squares / 4)) == pytest.approx(0.719743, abs=1e-6)
    assert bo["n"] == 5

    standard = table[20, "Standard"]
    # mean of (92.98, 92.76, 93.08, 92.83, 92.63) = 464.28 / 5; deviations 0.124, -0.096, 0.224, -0.026, -0.226
    assert standard["test_top1_mean"] == pytest.approx(92.856)
    squares = 0.124**2 + 0.096**2 + 0.224**2 + 0.026**2 + 0.226**2
    assert standard["test_top1_var"] == pytest.approx(squares / 4) == pytest.approx(0.03163)
    assert standard["test_top1_std"] == pytest.approx(math.sqrt(0.03163))

    rs = table[20, "PBLF-RS"]
    # mean of (92.87, 92.74, 92.65, 92.71, 91.97) = 462.94 / 5; deviations 0.282, 0.152, 0.062, 0.122, -0.618
    assert rs["test_top1_mean"] == pytest.approx(92.588)
    assert rs["test_top1_var"] == pytest.approx((0.282**2 + 0.152**2 + 0.062**2 + 0.122**2 + 0.618**2) / 4)

    # every mean rounds to the thesis's Top-1 of Table 6.2
    thesis_means = {(100, "PBLF-BO"): 95.00, (100, "PBLF-RS"): 95.28, (100, "Standard"): 95.47,
                    (20, "PBLF-BO"): 92.77, (20, "PBLF-RS"): 92.59, (20, "Standard"): 92.86}
    assert {key: round(row["test_top1_mean"], 2) for key, row in table.items()} == thesis_means


def test_thesis_plus_minus_is_the_sample_variance_not_the_std(table: dict) -> None:
    """Why both spreads are reported: every "+-" of Table 6.2 is the sample variance rounded to 2 decimals."""
    assert {key: round(row["test_top1_var"], 2) for key, row in table.items()} == THESIS_PLUS_MINUS
    assert round(table[100, "PBLF-BO"]["test_top1_std"], 2) == 0.72 != THESIS_PLUS_MINUS[100, "PBLF-BO"]


def test_table_6_2_order_and_candidates(trials: Path) -> None:
    rows = table_6_2(read_trials(trials))
    assert [(row["budget_epochs"], row["method"]) for row in rows] == [
        (100, "PBLF-BO"), (100, "PBLF-RS"), (100, "Standard"), (20, "PBLF-BO"), (20, "PBLF-RS"), (20, "Standard"),
    ]
    for row in rows:
        w1, w2, b1, b2, mode = CANDIDATES[row["budget_epochs"], row["method"]]
        assert (row["w1"], row["w2"], row["b1"], row["b2"]) == (float(w1), float(w2), float(b1), float(b2))
        assert row["mode"] == mode


# --- Tables B.1 and B.2 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "source"), [("test_top1", TOP1), ("val_top1", VAL)])
def test_table_b_has_one_column_per_seed_and_the_mean(trials: Path, field: str, source: dict) -> None:
    rows = table_b(read_trials(trials), field)
    assert list(rows[0]) == ["budget_epochs", "method", "search", "seed 0", "seed 1", "seed 2", "seed 3", "seed 4",
                             f"{field}_mean",
                             f"{field}_var", f"{field}_std"]
    for row in rows:
        values = source[row["budget_epochs"], row["method"]]
        assert [row[f"seed {seed}"] for seed in range(5)] == list(values)
        assert row[f"{field}_mean"] == pytest.approx(sum(values) / 5)
    by_key = {(row["budget_epochs"], row["method"]): row for row in rows}
    if field == "val_top1":
        # (96.119 + 96.139 + 96.099 + 96.019 + 94.819) / 5 = 479.195 / 5
        assert by_key[100, "PBLF-BO"]["val_top1_mean"] == pytest.approx(95.839)


def test_partial_run_leaves_missing_seeds_empty(tmp_path: Path) -> None:
    lines = [
        "100,PBLF-BO,0,95.0,96.0,0.1,0.2,0.3,0.4,0010",
        "100,PBLF-BO,2,94.0,95.0,0.1,0.2,0.3,0.4,0010",
        "100,Standard,0,95.5,96.5,0,0,0,1,1111",
        "100,Standard,1,95.3,96.3,0,0,0,1,1111",
    ]
    trials = write_trials(tmp_path / "trials.csv", lines)
    rows = table_b(read_trials(trials), "test_top1")
    assert list(rows[0]) == ["budget_epochs", "method", "search", "seed 0", "seed 1", "seed 2", "test_top1_mean",
                             "test_top1_var", "test_top1_std"]
    assert rows[0]["seed 1"] is None and rows[0]["test_top1_mean"] == pytest.approx((95.0 + 94.0) / 2)
    assert rows[1]["seed 2"] is None and rows[1]["test_top1_mean"] == pytest.approx((95.5 + 95.3) / 2)

    write_tables(trials, tmp_path / "out")
    assert read_csv(tmp_path / "out" / "table_B_1.csv")[0]["seed 1"] == ""
    markdown = markdown_rows((tmp_path / "out" / "table_B_1.md").read_text())
    # variance of (95, 94) = 0.5, std 0.7071; of (95.5, 95.3) = 0.02, std 0.1414
    assert markdown[0] == ["100 epochs", "PBLF-BO", "95.00", "", "94.00", "94.50 ± 0.50", "0.7071"]
    assert markdown[1] == ["100 epochs", "Standard", "95.50", "95.30", "", "95.40 ± 0.02", "0.1414"]
    tex = (tmp_path / "out" / "table_B_1.tex").read_text()
    assert "PBLF-BO & 95.00 &  & 94.00 & $94.50\\ \\pm\\ 0.50$ & 0.7071 \\\\" in tex
    # only seed 0 is shared with Standard: one pair, so a difference but no interval and no p
    (row,) = [r for r in table_6_2(read_trials(trials)) if r["method"] == "PBLF-BO"]
    assert row["vs_standard_n"] == 1 and row["vs_standard_diff"] == pytest.approx(-0.5)
    assert row["vs_standard_ci_low"] is None and row["vs_standard_p"] is None


def test_table_b_rejects_an_unknown_field(trials: Path) -> None:
    with pytest.raises(ValueError, match="w1"):
        table_b(read_trials(trials), "w1")


# --- files ---------------------------------------------------------------------------------------------------------


def test_write_tables_writes_the_contract_names_byte_stably(tmp_path: Path, trials: Path) -> None:
    first = write_tables(trials, tmp_path / "a")
    assert first == sorted(first)
    assert [path.name for path in first] == sorted(TABLE_NAMES)
    snapshot = {path.name: path.read_bytes() for path in first}
    # again into the same folder, and from the same trials in another row order
    write_tables(trials, tmp_path / "a")
    shuffled = write_trials(tmp_path / "shuffled.csv", thesis_lines(shuffle_seed=3))
    second = write_tables(shuffled, tmp_path / "b")
    for name, data in snapshot.items():
        assert (tmp_path / "a" / name).read_bytes() == data
        assert (tmp_path / "b" / name).read_bytes() == data
        assert b"\r" not in data and data.endswith(b"\n")
    assert not list((tmp_path / "a").glob("*.tmp")) and len(second) == len(TABLE_NAMES)


def test_csv_headers_and_unrounded_numbers(tmp_path: Path, trials: Path) -> None:
    write_tables(trials, tmp_path)
    headers = {name: (tmp_path / name).read_text().splitlines()[0] for name in TABLE_NAMES if name.endswith(".csv")}
    assert headers == {
        "table_6_2.csv": "budget_epochs,method,search,w1,w2,b1,b2,mode,test_top1_mean,test_top1_std,test_top1_var,n,"
                         "search_candidates,search_epochs,vs_standard_diff,vs_standard_ci_low,"
                         "vs_standard_ci_high,vs_standard_p,vs_standard_p_holm,vs_standard_n,searches,search_std,"
                         "method_diff,method_ci_low,method_ci_high,method_p,method_p_holm,method_n",
        "table_6_2_paired.csv": "budget_epochs,method,search,versus,diff,ci_low,ci_high,p,p_holm,n",
        "table_B_1.csv": "budget_epochs,method,search,seed 0,seed 1,seed 2,seed 3,seed 4,test_top1_mean,test_top1_var,"
                         "test_top1_std",
        "table_B_2.csv": "budget_epochs,method,search,seed 0,seed 1,seed 2,seed 3,seed 4,val_top1_mean,val_top1_var,"
                         "val_top1_std",
    }
    bo = read_csv(tmp_path / "table_6_2.csv")[0]
    assert float(bo["test_top1_var"]) == pytest.approx(0.51803, abs=1e-12)  # not rounded to 4 decimals
    assert float(bo["test_top1_std"]) == pytest.approx(math.sqrt(0.51803), abs=1e-12)
    assert read_csv(tmp_path / "table_B_1.csv")[0]["seed 4"] == "93.72"


def test_markdown_formatting(tmp_path: Path, trials: Path) -> None:
    write_tables(trials, tmp_path)
    text = (tmp_path / "table_6_2.md").read_text()
    header = [cell.strip() for cell in text.splitlines()[0].strip("|").split("|")]
    assert header == ["Budget", "Method", "W_1", "W_2", "B_1", "B_2", "Mode", "Top-1", "Std", "Var", "n",
                      "Candidates", "Epochs", "Δ vs Standard", "95 % CI", "p", "p (Holm)"]
    rows = markdown_rows(text)
    assert rows[0] == ["100 epochs", "PBLF-BO", "0.0365", "0.0000", "0.5816", "0.3750", "0010", "95.00", "0.7197",
                       "0.5180", "5", "", "", "-0.47", "[-1.56, 0.61]", "0.2912", "0.2912"]
    # Holm over the budget's two comparisons: PBLF-RS's p 0.1243 is the smaller, x 2 = 0.2486; PBLF-BO's 0.2912 x 1
    assert rows[1][4] == "-0.7650" and rows[1][-2:] == ["0.1243", "0.2486"]
    assert rows[2][-6:] == ["", "", "", "", "", ""]  # Standard against itself
    assert [row[:2] for row in rows][3] == ["20 epochs", "PBLF-BO"]
    b1 = markdown_rows((tmp_path / "table_B_1.md").read_text())
    assert b1[0] == ["100 epochs", "PBLF-BO", "95.42", "95.38", "95.29", "95.17", "93.72", "95.00 ± 0.52", "0.7197"]
    assert "Top-1 Avg. ± var" in (tmp_path / "table_B_1.md").read_text()
    b2 = markdown_rows((tmp_path / "table_B_2.md").read_text())
    assert b2[0] == ["100 epochs", "PBLF-BO", "96.12", "96.14", "96.10", "96.02", "94.82", "95.84 ± 0.33", "0.5720"]


def test_latex_is_a_booktabs_tabular_with_budget_blocks(tmp_path: Path, trials: Path) -> None:
    write_tables(trials, tmp_path)
    for name in ("table_6_2.tex", "table_6_2_paired.tex", "table_B_1.tex", "table_B_2.tex"):
        lines = (tmp_path / name).read_text().splitlines()
        assert lines[0].startswith("\\begin{tabular}{l") and lines[-1] == "\\end{tabular}"
        assert lines[1] == "\\toprule" and lines[-2] == "\\bottomrule"
        assert lines.count("\\midrule") == 4  # under the header, and around each of the two budget rows
        hundred = next(i for i, line in enumerate(lines) if "{100 epochs}" in line)
        twenty = next(i for i, line in enumerate(lines) if "{20 epochs}" in line)
        assert hundred < twenty and lines[twenty - 1] == "\\midrule" and lines[twenty + 1] == "\\midrule"
        assert "\\caption" not in "\n".join(lines) and "\\begin{table}" not in "\n".join(lines)
    text = (tmp_path / "table_6_2.tex").read_text()
    assert "\\multicolumn{16}{l}{\\textbf{100 epochs}} \\\\" in text
    assert ("PBLF-BO & 0.0365 & 0.0000 & 0.5816 & 0.3750 & 0010 & 95.00 & 0.7197 & 0.5180 & 5 &  &  & $-$0.47 & "
            "$[-1.56,\\ 0.61]$ & 0.2912 & 0.2912 \\\\") in text
    assert "PBLF-RS & 0.2282 & 0.2304 & $-$0.7650 & 0.8942 & 1110 & 95.28 & 0.1710 & 0.0292 & 5 &" in text
    b1 = (tmp_path / "table_B_1.tex").read_text()
    assert "PBLF-BO & 95.42 & 95.38 & 95.29 & 95.17 & 93.72 & $95.00\\ \\pm\\ 0.52$ & 0.7197 \\\\" in b1


def test_html_is_a_table_with_budget_rows_the_thesis_headers_and_escaped_cells(tmp_path: Path, trials: Path) -> None:
    write_tables(trials, tmp_path)
    text = (tmp_path / "table_6_2.html").read_text()
    assert text.startswith("<style>\n") and text.endswith("</table>\n") and "<html" not in text
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", text)
    header = re.findall(r"<th[^>]*>(.*?)</th>", rows[0])
    assert header[:7] == ["Method", "W_1", "W_2", "B_1", "B_2", "Mode", "Top-1"] and "Δ vs Standard" in header
    assert rows[1] == '<th colspan="16">100 epochs</th>' and '<th colspan="16">20 epochs</th>' in rows
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[2])
    assert cells[:9] == ["PBLF-BO", "0.0365", "0.0000", "0.5816", "0.3750", "0010", "95.00", "0.7197", "0.5180"]
    assert "[-1.56, 0.61]" in cells and "<td class=text>PBLF-BO</td>" in rows[2] and "<td>95.00</td>" in rows[2]
    table = [{"budget_epochs": 20, "method": "<b>&", "x": "a<b"}]
    escaped = render_html(table, [Column("x", "x<y", "x", "text")])
    assert "<td class=text>&lt;b&gt;&amp;</td><td class=text>a&lt;b</td>" in escaped and "x&lt;y" in escaped


def test_mode_0010_survives_in_every_output(tmp_path: Path, trials: Path) -> None:
    write_tables(trials, tmp_path)
    assert read_csv(tmp_path / "table_6_2.csv")[0]["mode"] == "0010"
    assert "0010," in (tmp_path / "table_6_2.csv").read_text()
    assert markdown_rows((tmp_path / "table_6_2.md").read_text())[0][6] == "0010"
    assert "& 0010 &" in (tmp_path / "table_6_2.tex").read_text()
    assert table_6_2(read_trials(trials))[0]["mode"] == "0010"


# --- n = 1 and errors ----------------------------------------------------------------------------------------------


def test_a_single_seed_has_undefined_spread_and_does_not_crash(tmp_path: Path) -> None:
    trials = write_trials(tmp_path / "trials.csv", ["20,PBLF-BO,7,92.5,93.5,0.0002,0,0.4306,0,1000"])
    (row,) = table_6_2(read_trials(trials))
    assert row["n"] == 1 and row["test_top1_mean"] == 92.5
    assert row["test_top1_std"] is None and row["test_top1_var"] is None
    write_tables(trials, tmp_path / "out")
    csv_row = read_csv(tmp_path / "out" / "table_6_2.csv")[0]
    assert (csv_row["test_top1_std"], csv_row["test_top1_var"], csv_row["n"]) == ("", "", "1")
    assert markdown_rows((tmp_path / "out" / "table_6_2.md").read_text())[0][-9:-6] == ["n/a", "n/a", "1"]
    assert "& 92.50 & n/a & n/a & 1 &" in (tmp_path / "out" / "table_6_2.tex").read_text()
    assert list(read_csv(tmp_path / "out" / "table_B_1.csv")[0]) == ["budget_epochs", "method", "search", "seed 7",
                                                                     "test_top1_mean", "test_top1_var", "test_top1_std"]
    assert (tmp_path / "out" / "table_6_2_paired.csv").read_text() == "budget_epochs,method,search,versus,diff,ci_low,ci_high,p,p_holm,n\n"


def test_a_group_with_two_candidates_is_an_error(tmp_path: Path) -> None:
    lines = thesis_lines()
    index = lines.index("100,PBLF-BO,1,95.38,96.139,0.0365,0,0.5816,0.375,0010")
    lines[index] = lines[index].replace(",0010", ",0011")
    trials = write_trials(tmp_path / "trials.csv", lines)
    with pytest.raises(ValueError, match=r"budget 100, method PBLF-BO: .*different candidates"):
        table_6_2(read_trials(trials))


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("100,PBLF-XX,5,95.0,96.0,0,0,0,1,1111", r"line 3, column method: 'PBLF-XX' is not one of"),
        ("100,Standard,5,abc,96.0,0,0,0,1,1111", r"line 3, column test_top1: 'abc' is not an accuracy in percent"),
        ("100,Standard,5,95.0,,0,0,0,1,1111", r"line 3, column val_top1: '' is not an accuracy in percent"),
        ("100,Standard,5,nan,96.0,0,0,0,1,1111", r"line 3, column test_top1: 'nan' is not an accuracy in percent"),
        ("0,Standard,5,95.0,96.0,0,0,0,1,1111", r"line 3, column budget_epochs: '0' is not a positive number"),
        ("100,Standard,5,0.95e3,96.0,0,0,0,1,1111", r"line 3, column test_top1: .* not an accuracy in percent"),
        ("100,Standard,five,95.0,96.0,0,0,0,1,1111", r"line 3, column seed: 'five' is not a non-negative integer"),
        ("100,Standard,-5,95.0,96.0,0,0,0,1,1111", r"line 3, column seed: '-5' is not a non-negative integer"),
        ("100,Standard,5,95.0,96.0,x,0,0,1,1111", r"line 3: candidate w1='x' is not a number"),
        ("100,Standard,5,95.0,96.0,0,0,0,1,0120", r"line 3: candidate mode '0120' must be four bits"),
        ("100,Standard,5,95.0,96.0,0,0,0,1", r"line 3: the row has 9 fields, the header 10"),
        ("100,Standard,0,95.0,96.0,0,0,0,1,1111", r"line 3: budget 100, method Standard, search 0, seed 0 repeats line 2"),
    ],
)
def test_a_bad_row_names_file_line_and_column(tmp_path: Path, bad_line: str, message: str) -> None:
    trials = write_trials(tmp_path / "trials.csv", ["100,Standard,0,95.0,96.0,0,0,0,1,1111", bad_line])
    with pytest.raises(ValueError, match=message) as error:
        read_trials(trials)
    assert str(trials) in str(error.value)


def test_a_header_only_file_has_no_trials(tmp_path: Path) -> None:
    trials = write_trials(tmp_path / "trials.csv", [])
    with pytest.raises(ValueError, match="no trials"):
        read_trials(trials)
    with pytest.raises(ValueError, match="no trials"):
        write_tables(trials, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "trials.csv"
    path.write_text("budget_epochs,method,seed,test_top1,w1,w2,b1,b2,mode\n100,Standard,0,95.0,0,0,0,1,1111\n")
    with pytest.raises(ValueError, match="lacks column.* val_top1"):
        read_trials(path)


# --- paired statistics and the searches' cost ----------------------------------------------------------------------


def test_paired_difference_to_standard_worked_out_by_hand(table: dict) -> None:
    """PBLF-BO - Standard at 100 epochs, seed by seed: 0.04, 0.08, -0.19, -0.29, -2.01."""
    from scipy import stats

    bo = table[100, "PBLF-BO"]
    diffs = [0.04, 0.08, -0.19, -0.29, -2.01]
    mean = sum(diffs) / 5
    assert bo["vs_standard_diff"] == pytest.approx(mean) == pytest.approx(-0.474)
    # deviations from -0.474: 0.514, 0.554, 0.284, 0.184, -1.536
    sd = math.sqrt((0.514**2 + 0.554**2 + 0.284**2 + 0.184**2 + 1.536**2) / 4)
    half = 2.776445105 * sd / math.sqrt(5)  # t(0.975, 4 degrees of freedom)
    assert (bo["vs_standard_ci_low"], bo["vs_standard_ci_high"]) == (pytest.approx(mean - half),
                                                                     pytest.approx(mean + half))
    t = mean / (sd / math.sqrt(5))
    assert bo["vs_standard_p"] == pytest.approx(2 * stats.t.sf(abs(t), 4)) == pytest.approx(0.2912, abs=1e-4)
    assert bo["vs_standard_n"] == 5
    assert table[100, "Standard"]["vs_standard_diff"] is None


def test_bo_against_rs_is_paired_by_seed(trials: Path) -> None:
    rows = {row["budget_epochs"]: row for row in table_6_2_paired(read_trials(trials))}
    # 20 epochs: 92.78-92.87, 92.89-92.74, 92.94-92.65, 92.45-92.71, 92.78-91.97
    assert rows[20]["diff"] == pytest.approx((-0.09 + 0.15 + 0.29 - 0.26 + 0.81) / 5)
    assert (rows[20]["method"], rows[20]["versus"], rows[20]["n"]) == ("PBLF-BO", "PBLF-RS", 5)
    assert rows[20]["ci_low"] < rows[20]["diff"] < rows[20]["ci_high"] and 0 < rows[20]["p"] < 1


def test_paired_edges() -> None:
    assert paired({1: 2.0}, {2: 1.0})["n"] == 0 and paired({1: 2.0}, {2: 1.0})["diff"] is None
    same = paired({1: 2.0, 2: 3.0}, {1: 1.0, 2: 2.0})  # the same difference twice: no spread, no t-test
    assert (same["diff"], same["ci_low"], same["ci_high"], same["p"], same["all_equal"]) == (1.0, None, None, None, True)


def test_holms_adjustment_by_hand() -> None:
    """Sorted, the i-th smallest of m p-values times m - i + 1, kept monotone, capped at 1; None is no test."""
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 0.01 x 3; 0.03 x 2; max(0.04 x 1, 0.06)
    assert holm([0.02, None, 0.5]) == [pytest.approx(0.04), None, pytest.approx(0.5)]
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0]) and holm([]) == []


def test_an_interval_of_equal_differences_says_so(tmp_path: Path) -> None:
    lines = [f"20,{m},{s},{90 + s + (1 if m == 'PBLF-BO' else 0)},95,0,0,0,1,1111" for m in ("PBLF-BO", "Standard")
             for s in (1, 2, 3)]
    write_tables(write_trials(tmp_path / "trials.csv", lines), tmp_path / "out")
    row = markdown_rows((tmp_path / "out" / "table_6_2.md").read_text())[0]
    assert row[-4:] == ["1.00", "n/a (all differences equal)", "n/a", "n/a"]


def test_search_cost_and_the_meta_network_come_from_optional_columns(tmp_path: Path) -> None:
    header = HEADER + ",activation,places,search_candidates,search_epochs"
    extra = {"PBLF-BO": ",relu,stem/group 1/group 2/group 3,120,2400", "Standard": ",relu,stem/group 1/group 2/group 3,0,0"}
    lines = [f"20,{m},{s},9{s}.0,9{s}.5,0,0,0,1,1111{extra[m]}" for m in ("PBLF-BO", "Standard") for s in (1, 2)]
    path = tmp_path / "trials.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    rows = {row["method"]: row for row in table_6_2(read_trials(path))}
    assert (rows["PBLF-BO"]["search_candidates"], rows["PBLF-BO"]["search_epochs"]) == (120, 2400)
    assert (rows["Standard"]["search_candidates"], rows["Standard"]["search_epochs"]) == (0, 0)
    assert rows["PBLF-BO"]["vs_standard_diff"] == 0.0 and rows["PBLF-BO"]["vs_standard_p"] is None
    write_tables(path, tmp_path / "out")
    assert markdown_rows((tmp_path / "out" / "table_6_2.md").read_text())[0][11:13] == ["120", "2400"]
    path.write_text(path.read_text().replace(",120,2400", ",120,abc", 1))
    with pytest.raises(ValueError, match="column search_epochs: 'abc' is not a non-negative integer"):
        read_trials(path)



@pytest.mark.parametrize("bad", ["nan", "inf", "-3", "abc", "1.5"])
def test_a_search_cost_is_a_non_negative_integer(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "trials.csv"
    path.write_text(HEADER + ",search_epochs\n" + f"20,Standard,1,90.0,91.0,0,0,0,1,1111,{bad}\n")
    with pytest.raises(ValueError, match=f"line 2, column search_epochs: '{bad}' is not a non-negative integer"):
        read_trials(path)


def test_timings_are_each_searchs_seconds_on_its_machines(tmp_path: Path) -> None:
    """The timings table: per search, candidates, epochs and seconds of each candidate's furthest run (a promoted
    run continues another: counted once, at its furthest), and the machines they were measured on."""
    from pblf.core.files import write_csv
    from pblf.core.names import EVALUATION_COLUMNS
    from pblf.results.timings import stage_timings, timings

    def row(budget, method, iteration, index, w1, status, epochs, seconds, machine):
        return {"budget_epochs": budget, "method": method, "iteration": iteration, "index": index, "source": "random",
                "replaced": "", "w1": w1, "w2": 0, "b1": 0, "b2": 0, "mode": "0001", "status": status,
                "epochs": epochs, "val_top1": 50, "test_top1": 40, "seconds": seconds, "measured_on": machine,
                "run": "r"}
    rs = write_csv([row(2, "PBLF-RS", 0, 0, 0.1, "promoted", 1, 1.5, "GPU A"),
                    row(2, "PBLF-RS", 0, 1, 0.2, "stopped", 1, 1.25, "GPU B"),
                    row(2, "PBLF-RS", 1, 0, 0.1, "ok", 2, 3.5, "GPU A")], EVALUATION_COLUMNS, tmp_path / "rs.csv")
    bo = write_csv([row(1, "PBLF-BO", 0, 0, 0.3, "ok", 1, 2.0, "GPU A")], EVALUATION_COLUMNS, tmp_path / "bo.csv")
    made = timings([bo, rs])
    assert [(r["budget_epochs"], r["method"], r["candidates"], r["epochs"], r["seconds"], r["measured_on"])
            for r in made] == [(2, "PBLF-RS", 2, 3, 4.75, "GPU A; GPU B"), (1, "PBLF-BO", 1, 1, 2.0, "GPU A")]
    stage_timings([bo, rs], tmp_path / "out")
    assert "| 2 epochs | PBLF-RS  |            2 |        3 |        4.8 | GPU A; GPU B  |" in \
        (tmp_path / "out" / "timings.md").read_text()


# --- several searches per method (search.repeats) ------------------------------------------------------------------


def test_several_searches_give_a_method_level_row_and_show_their_columns(tmp_path: Path) -> None:
    """The hand-worked case of tests/test_stats.py (three PBLF-BO searches, Standard, seeds 1 and 2) as trials: each
    search has its row and its own paired difference; the first carries the method-level comparison, whose family
    for Holm's adjustment is one comparison here (so p_holm = p)."""
    tops = {("PBLF-BO", 0): (91.0, 93.0), ("PBLF-BO", 1): (90.0, 90.0), ("PBLF-BO", 2): (92.0, 94.0),
            ("Standard", 0): (90.0, 91.0)}
    lines = [f"2,{method},{search},{seed},{top},{top},0.1,0.2,0.3,0.4,0010"
             for (method, search), values in tops.items() for seed, top in zip((1, 2), values)]
    path = tmp_path / "trials.csv"
    path.write_text("\n".join(["budget_epochs,method,search,seed,test_top1,val_top1,w1,w2,b1,b2,mode", *lines]) + "\n")
    rows = {(row["method"], row["search"]): row for row in table_6_2(read_trials(path))}
    first, second = rows["PBLF-BO", 0], rows["PBLF-BO", 1]
    assert first["vs_standard_diff"] == pytest.approx(1.5) and second["vs_standard_diff"] == pytest.approx(-0.5)
    assert first["searches"] == 3 and first["search_std"] == pytest.approx(math.sqrt(7 / 3))
    assert first["method_diff"] == pytest.approx(7 / 6) and first["method_n"] == 3
    assert first["method_p"] == pytest.approx(1 - math.sqrt(7 / 15)) and first["method_p_holm"] == first["method_p"]
    assert second["searches"] is None and second["method_n"] is None and second["method_diff"] is None
    assert rows["Standard", 0]["searches"] is None and rows["Standard", 0]["search_std"] is None
    write_tables(path, tmp_path / "out")
    header = (tmp_path / "out" / "table_6_2.md").read_text().splitlines()[0]
    assert "Search" in header and "Searches" in header and "Δ vs Standard (method)" in header
    paired_rows = read_csv(tmp_path / "out" / "table_6_2_paired.csv")
    assert paired_rows == []  # one searched method: no pair of searched methods to compare


def test_one_search_per_method_hides_the_search_columns_from_people(trials: Path, tmp_path: Path) -> None:
    write_tables(trials, tmp_path)
    header = (tmp_path / "table_6_2.md").read_text().splitlines()[0]
    assert "Search" not in header and "(method)" not in header
    assert "search" in (tmp_path / "table_6_2.csv").read_text().splitlines()[0].split(",")
