"""The generalisation stage: runs at other batch sizes, their table (diverged runs counted as such) and figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pblf import plan
from pblf.core.config import validate
from pblf.core.errors import InputError
from pblf.core.files import read_csv
from pblf.core.layout import Layout, RunId
from pblf.results.generalisation import (
    collect_runs, read_runs, stage_generalisation, stage_generalisation_table, summary,
)
from pblf.training.train import run_config

L = Layout("results")


def write_metrics(root: Path, run: RunId, test: float, status: str = "ok") -> Path:
    path = root / L.metrics(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": run.to_dict(), "status": status, "test_top1": test, "val_top1": test + 1}))
    return path


#: the runs' config: trained at batch 64, so a linear rate at 64 is the fixed one
CFG = validate({"train": {"batch_size": 64}, "generalisation": {"batch_sizes": [16, 64], "seeds": [1, 2]}})


@pytest.fixture
def metrics(tmp_path) -> list[Path]:
    """Standard and PBLF-BO at batch 16 and 64 (train.batch_size: one run for both scalings there), seeds 1 and 2;
    PBLF-BO at 16 with the linear lr diverges once."""
    paths = []
    for method, base in (("PBLF-BO", 60.0), ("Standard", 70.0)):
        for batch, scalings in ((16, ("fixed", "linear")), (64, ("fixed",))):
            for scaling in scalings:
                for seed in (1, 2):
                    diverged = method == "PBLF-BO" and batch == 16 and scaling == "linear" and seed == 2
                    run = RunId("generalisation", 3, seed, method, batch_size=batch, lr_scaling=scaling)
                    top1 = 10.0 if diverged else base + seed * (1 + (method == "Standard")) + batch / 16
                    paths.append(write_metrics(tmp_path, run, top1, "diverged" if diverged else "ok"))
    return paths


def test_the_plan_trains_the_shared_run_once():
    runs = plan.generalisation_runs(CFG)
    assert {(run.batch_size, run.lr_scaling) for run in runs} == {(16, "fixed"), (16, "linear"), (64, "fixed")}
    only_linear = validate({**CFG, "generalisation": {**CFG["generalisation"], "lr_scaling": ["linear"]}})
    assert (64, "linear") in {(run.batch_size, run.lr_scaling) for run in plan.generalisation_runs(only_linear)}


def test_the_table_counts_diverged_runs_and_pairs_each_cell_with_standard(metrics):
    rows = collect_runs(CFG, metrics)
    assert len(rows) == 16  # 12 runs, the 4 at batch 64 under both scalings
    table = {(r["method"], r["batch_size"], r["lr_scaling"]): r for r in summary(rows)}
    assert list(table)[:4] == [("PBLF-BO", 16, "fixed"), ("PBLF-BO", 16, "linear"), ("PBLF-BO", 64, "fixed"),
                               ("PBLF-BO", 64, "linear")]
    bo = table["PBLF-BO", 16, "linear"]
    # seed 1: 60 + 1 + 1 = 62; seed 2 diverged at 10 % -> mean 36, std |62 - 10| / sqrt(2)
    assert bo["test_top1_mean"] == pytest.approx(36) and bo["test_top1_std"] == pytest.approx(52 / 2**0.5)
    assert (bo["n"], bo["diverged"], bo["diverged_fraction"], bo["diverged_label"]) == (2, 1, 0.5, "0.50 (1 of 2)")
    # Standard: 70 + 2 + 1 = 73 and 70 + 4 + 1 = 75; differences 62 - 73 = -11 and 10 - 75 = -65: mean -38, and
    # the interval -38 +- t(0.975, 1) * sd / sqrt(2), sd = 54 / sqrt(2), so the half-width is 12.7062 * 27 = 343.07
    assert bo["vs_standard_diff"] == pytest.approx(-38) and bo["vs_standard_n"] == 2
    assert (bo["vs_standard_ci_low"], bo["vs_standard_ci_high"]) == pytest.approx((-38 - 343.07, -38 + 343.07), abs=0.01)
    fixed, linear = table["PBLF-BO", 64, "fixed"], table["PBLF-BO", 64, "linear"]
    assert fixed["test_top1_mean"] == linear["test_top1_mean"] == pytest.approx(65.5)  # the same runs: 60 + s + 4
    # seed s: (60 + s + 4) - (70 + 2s + 4) = -10 - s: -11 and -12
    assert fixed["vs_standard_diff"] == pytest.approx(-11.5)
    assert table["Standard", 16, "fixed"]["vs_standard_n"] == 0  # not compared with itself


def test_every_difference_equal_shows_no_interval(tmp_path):
    paths = [write_metrics(tmp_path, RunId("generalisation", 3, seed, method, batch_size=16, lr_scaling="fixed"),
                           base + seed) for method, base in (("PBLF-BO", 60.0), ("Standard", 70.0)) for seed in (1, 2)]
    stage_generalisation_table(stage_runs(paths, tmp_path), tmp_path / "out")
    assert "n/a (all differences equal)" in (tmp_path / "out" / "generalisation.md").read_text()


def stage_runs(metrics: list[Path], tmp_path: Path) -> Path:
    """``pblf generalisation`` on ``metrics`` with :data:`CFG`: the path of its runs.csv."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CFG))
    stage_generalisation([config], metrics, tmp_path / "out")
    return tmp_path / "out" / "runs.csv"


def test_the_stage_writes_runs_and_table(metrics, tmp_path):
    stage_generalisation_table(stage_runs(metrics, tmp_path), tmp_path / "out")
    runs = read_runs(tmp_path / "out" / "runs.csv")
    assert len(runs) == 16 and {r["status"] for r in runs} == {"ok", "diverged"}
    rows = read_csv(tmp_path / "out" / "generalisation.csv")
    assert list(rows[0]) == ["budget_epochs", "method", "batch_size", "lr_scaling", "test_top1_mean", "test_top1_std",
                             "n", "diverged", "diverged_fraction", "vs_standard_diff", "vs_standard_ci_low",
                             "vs_standard_ci_high", "vs_standard_n"]
    markdown = (tmp_path / "out" / "generalisation.md").read_text()
    print(markdown)
    assert "| 3 epochs | PBLF-BO  |      16 | linear |   36.00 | 36.7696 |   2 | 0.50 (1 of 2) |" in markdown


def test_the_figure_is_drawn_and_byte_stable(metrics, tmp_path):
    from pblf.results.generalisation import draw_generalisation, read_generalisation

    data = read_generalisation([stage_runs(metrics, tmp_path)])
    first = draw_generalisation(data, tmp_path / "a" / "figure_generalisation", "generalisation")
    second = draw_generalisation(data, tmp_path / "b" / "figure_generalisation", "generalisation")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_only_generalisation_runs_are_gathered(tmp_path):
    repeat = write_metrics(tmp_path, RunId("repeat", 3, 1, "Standard"), 50.0)
    with pytest.raises(InputError, match="not a generalisation run"):
        collect_runs(CFG, [repeat])


def test_a_run_trains_with_its_batch_size_and_scaled_lr():
    cfg = validate({"train": {"batch_size": 128, "lr": 0.1}})
    fixed = run_config(cfg, RunId("generalisation", 20, 1, "Standard", batch_size=512, lr_scaling="fixed"))
    linear = run_config(cfg, RunId("generalisation", 20, 1, "Standard", batch_size=512, lr_scaling="linear"))
    assert (fixed["train"]["batch_size"], fixed["train"]["lr"]) == (512, 0.1)
    assert (linear["train"]["batch_size"], linear["train"]["lr"]) == (512, pytest.approx(0.4))
    # Goyal et al.'s gradual warm-up: from 0.1 (a quarter of 0.4) to 0.4 over the first quarter of the budget
    assert linear["train"]["gradual_warmup"] == {"fraction": 0.25, "start_factor": 0.25}
    assert fixed["train"]["gradual_warmup"]["fraction"] == 0  # the configured rate needs none
    smaller = run_config(cfg, RunId("generalisation", 20, 1, "Standard", batch_size=64, lr_scaling="linear"))
    assert smaller["train"]["lr"] == pytest.approx(0.05) and smaller["train"]["gradual_warmup"]["fraction"] == 0
    assert run_config(cfg, RunId("repeat", 20, 1, "Standard")) is cfg
