"""The reproduction tables: budgets paired, Welch's interval, and every column of both tables on a small run whose
numbers are worked out by hand; the command writes them with their records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pblf.cli import main
from pblf.core.files import file_digest, read_csv, write_csv
from pblf.core.names import REPRODUCTION_TABLES, TABLE_FORMATS, TRIALS_REQUIRED
from pblf.results.reproduction import cells, pair_budgets, read_convergence, summary, welch, write_reproduction
from pblf.results.tables import read_trials
from pblf.results.thesis import SOURCE, load

STANDARD = {"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"}
CHOSEN = {"w1": 0.5, "w2": -0.25, "b1": 0.125, "b2": 0.75, "mode": "0110"}


@pytest.mark.parametrize("ours, expected", [
    ([20, 100], {20: 20, 100: 100}),
    ([3, 6], {20: 3, 100: 6}),
    ([6], {20: 6}),
    ([100], {100: 100}),
    ([20, 50, 100], {20: 20, 100: 100}),
    ([1, 2, 3], {20: 1, 100: 2}),
])
def test_budgets_pair_equal_ones_then_in_increasing_order(ours, expected):
    assert pair_budgets(ours, (20, 100)) == expected


def test_welchs_interval_by_hand():
    """(1, 2, 3) - (2, 3, 4): difference -1, standard error sqrt(1/3 + 1/3) = 0.8165 on 4 degrees of freedom
    (equal variances and sizes), t(0.975, 4) = 2.7764: [-3.2670, 1.2670]."""
    result = welch([1, 2, 3], [2, 3, 4])
    assert result["diff"] == pytest.approx(-1)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((-3.2670, 1.2670), abs=1e-4)


@pytest.fixture
def small_run(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A run with one budget (3 epochs, standing for the thesis's 20) and two seeds, and its convergence reruns."""
    rows = [
        {"budget_epochs": 3, "method": "PBLF-BO", "seed": 1, "test_top1": 90.0, "val_top1": 93.0, **CHOSEN},
        {"budget_epochs": 3, "method": "PBLF-BO", "seed": 2, "test_top1": 92.0, "val_top1": 94.0, **CHOSEN},
        {"budget_epochs": 3, "method": "Standard", "seed": 1, "test_top1": 91.0, "val_top1": 93.5, **STANDARD},
        {"budget_epochs": 3, "method": "Standard", "seed": 2, "test_top1": 95.0, "val_top1": 94.5, **STANDARD},
    ]
    trials = write_csv(rows, TRIALS_REQUIRED, tmp_path / "trials.csv")
    metrics = []
    for method, top1 in (("PBLF-BO", 95.5), ("Standard", 96.5), ("PBLF-HG", 90.0)):
        path = tmp_path / "convergence" / method / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"run": {"kind": "convergence", "budget": 12, "seed": 0, "method": method},
                                    "test_top1": top1, "val_top1": top1, "status": "ok"}))
        metrics.append(path)
    return trials, metrics


def test_the_summary_by_hand(small_run):
    trials, metrics = small_run
    table = summary(read_trials(trials), read_convergence(metrics), load())
    rows = {(row["source"], row["thesis_budget"], row["method"]): row for row in table}
    assert len(table) == 2 * 3 + 3  # the thesis's two budgets x three methods, then Figure 6.4's three end points
    bo = rows["Table 6.2", 20, "PBLF-BO"]
    assert bo["budget_epochs"] == 3 and bo["n"] == 2
    # thesis: mean of 92.78, 92.89, 92.94, 92.45, 92.78 = 92.768; ours: mean of 90 and 92 = 91
    assert (bo["thesis_top1"], bo["top1"], bo["difference"]) == pytest.approx((92.768, 91.0, -1.768))
    assert bo["in_thesis_range"] == "no"  # 91 is below the thesis's lowest run, 92.45
    # paired: (90 - 91, 92 - 95) = (-1, -3): mean -2, std sqrt(2), standard error 1, t(0.975, 1) = 12.7062
    assert (bo["vs_standard"], bo["vs_standard_ci_low"], bo["vs_standard_ci_high"]) == \
        pytest.approx((-2, -14.7062, 10.7062), abs=1e-4)
    # the thesis's difference of means, 92.768 - 92.856 = -0.088, lies in that interval
    assert bo["thesis_vs_standard"] == pytest.approx(-0.088) and bo["thesis_delta_in_ci"] == "yes"
    standard = rows["Table 6.2", 20, "Standard"]
    assert standard["top1"] == 93.0 and standard["vs_standard"] is None
    assert standard["in_thesis_range"] == "yes"  # 93 lies within the thesis's 92.63 to 93.08
    missing = rows["Table 6.2", 20, "PBLF-RS"]  # the run has no PBLF-RS
    assert (missing["top1"], missing["n"], missing["in_thesis_range"], missing["thesis_delta_in_ci"]) == \
        (None, 0, "", "")
    hundred = rows["Table 6.2", 100, "PBLF-BO"]  # no budget of the run stands for 100 epochs
    assert hundred["budget_epochs"] is None and hundred["thesis_top1"] == pytest.approx(94.996)
    end = rows["Figure 6.4", 600, "PBLF-BO"]
    assert (end["budget_epochs"], end["top1"], end["difference"]) == pytest.approx((12, 95.5, 95.5 - 95.93))
    assert (end["vs_standard"], end["thesis_vs_standard"]) == pytest.approx((-1.0, 95.93 - 96.23))
    assert rows["Figure 6.4", 600, "PBLF-RS"]["top1"] is None  # PBLF-HG's rerun is not the thesis's


def test_every_thesis_cell_is_listed_with_ours_beside_it(small_run):
    trials, metrics = small_run
    table = cells(read_trials(trials), read_convergence(metrics), load())
    # per budget and method: 4 phi + mode + Top-1 + its variance, then 5 runs + average + variance in B.1 and B.2
    assert len(table) == 2 * 3 * (7 + 2 * 7) + 3
    by = {(row["source"], row["thesis_budget"], row["method"], row["cell"]): row for row in table}
    mode = by["Table 6.2", 20, "PBLF-BO", "Mode"]
    assert (mode["thesis"], mode["pipeline"], mode["difference"], mode["text"]) == ("1000", "0110", None, "0110")
    assert by["Table 6.2", 20, "PBLF-BO", "W_1"]["difference"] == pytest.approx(0.5 - 0.0002)
    assert by["Table 6.2", 20, "PBLF-BO", "± (variance)"]["pipeline"] == pytest.approx(2.0)  # var(90, 92)
    seed_2 = by["Table B.1", 20, "PBLF-BO", "run 2 / seed 2"]
    assert (seed_2["thesis"], seed_2["pipeline"], seed_2["in_thesis_range"]) == (92.89, 92.0, "no")
    assert by["Table B.2", 20, "Standard", "run 1 / seed 1"]["in_thesis_range"] == "yes"  # 93.5 in [93.399, 93.89]
    assert by["Table B.1", 20, "PBLF-BO", "run 3"]["pipeline"] is None  # the run has two seeds
    assert by["Table B.2", 20, "PBLF-BO", "Avg."]["pipeline"] == 93.5
    assert by["Table B.1", 100, "Standard", "run 5"]["budget_epochs"] is None
    assert by["Figure 6.4", 600, "Standard", "Top-1 at the end"]["pipeline"] == 96.5


def test_the_command_writes_both_tables_with_their_records(small_run, tmp_path):
    trials, metrics = small_run
    out, results = tmp_path / "tables", tmp_path / "results"
    assert main(["--results", str(results), "reproduction", "--trials", str(trials), "--convergence",
                 *map(str, metrics), "--out", str(out)]) == 0
    tables = sorted(f"{name}.{fmt}" for name in REPRODUCTION_TABLES for fmt in TABLE_FORMATS)
    assert sorted(p.name for p in out.iterdir()) == sorted([*tables, *(f"{name}.prov.json" for name in tables)])
    summary_md = (out / "reproduction.md").read_text()
    assert "| Pipeline budget" in summary_md and "not run" in summary_md and "[-14.71, 10.71]" in summary_md
    assert "$\\pm$ (variance)" in (out / "reproduction_cells.tex").read_text()
    assert read_csv(out / "reproduction.csv")[0]["thesis_budget"] == "100"
    record = json.loads((out / "reproduction.csv.prov.json").read_text())
    assert record["thesis_numbers"] == {"file": "pblf/results/thesis.yaml", "sha256": file_digest(SOURCE)}


def test_a_repeat_run_is_not_a_convergence_rerun(small_run, tmp_path):
    _, metrics = small_run
    data = json.loads(metrics[0].read_text())
    data["run"] = {"kind": "repeat", "budget": 3, "seed": 1, "method": "PBLF-BO"}
    metrics[0].write_text(json.dumps(data))
    assert main(["--results", str(tmp_path / "results"), "reproduction", "--trials", str(small_run[0]),
                 "--convergence", str(metrics[0]), "--out", str(tmp_path / "out")]) == 2


def test_same_inputs_same_bytes(small_run, tmp_path):
    trials, metrics = small_run
    first = write_reproduction(trials, metrics, tmp_path / "a")
    second = write_reproduction(trials, metrics, tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
