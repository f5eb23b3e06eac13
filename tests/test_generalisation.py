"""The generalisation stage: runs at other batch sizes, their table (diverged runs counted as such) and figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


@pytest.fixture
def metrics(tmp_path) -> list[Path]:
    """Standard and PBLF-BO at batch 16 and 64, lr fixed and linear, seeds 1 and 2; PBLF-BO at 64 with the linear
    lr diverges once."""
    paths = []
    for method, base in (("PBLF-BO", 60.0), ("Standard", 70.0)):
        for batch in (16, 64):
            for scaling in ("fixed", "linear"):
                for seed in (1, 2):
                    diverged = method == "PBLF-BO" and batch == 64 and scaling == "linear" and seed == 2
                    run = RunId("generalisation", 3, seed, method, batch_size=batch, lr_scaling=scaling)
                    paths.append(write_metrics(tmp_path, run, 10.0 if diverged else base + seed + batch / 16,
                                               "diverged" if diverged else "ok"))
    return paths


def test_the_table_counts_diverged_runs_with_their_accuracy(metrics):
    table = {(r["method"], r["batch_size"], r["lr_scaling"]): r for r in summary(collect_runs(metrics))}
    assert list(table)[:4] == [("PBLF-BO", 16, "fixed"), ("PBLF-BO", 16, "linear"), ("PBLF-BO", 64, "fixed"),
                               ("PBLF-BO", 64, "linear")]
    bo = table["PBLF-BO", 64, "linear"]
    # seed 1: 60 + 1 + 4 = 65; seed 2 diverged at 10 % -> mean 37.5, std |65 - 10| / sqrt(2)
    assert bo["test_top1_mean"] == pytest.approx(37.5) and bo["test_top1_std"] == pytest.approx(55 / 2**0.5)
    assert (bo["n"], bo["diverged"], bo["diverged_fraction"]) == (2, 1, 0.5)
    assert table["Standard", 16, "fixed"]["test_top1_mean"] == pytest.approx(72.5)  # 70 + (1, 2) + 1


def test_the_stage_writes_runs_and_table(metrics, tmp_path):
    stage_generalisation(metrics, tmp_path / "out")
    stage_generalisation_table(tmp_path / "out" / "runs.csv", tmp_path / "out")
    runs = read_runs(tmp_path / "out" / "runs.csv")
    assert len(runs) == 16 and {r["status"] for r in runs} == {"ok", "diverged"}
    rows = read_csv(tmp_path / "out" / "generalisation.csv")
    assert list(rows[0]) == ["budget_epochs", "method", "batch_size", "lr_scaling", "test_top1_mean", "test_top1_std",
                             "n", "diverged", "diverged_fraction"]
    markdown = (tmp_path / "out" / "generalisation.md").read_text()
    assert "| 3 epochs | PBLF-BO  |      64 | linear |   37.50 | 38.8909 |   2 |       0.50 |" in markdown


def test_the_figure_is_drawn_and_byte_stable(metrics, tmp_path):
    from pblf.results.generalisation import draw_generalisation, read_generalisation

    stage_generalisation(metrics, tmp_path / "out")
    data = read_generalisation([tmp_path / "out" / "runs.csv"])
    first = draw_generalisation(data, tmp_path / "a" / "figure_generalisation", "generalisation")
    second = draw_generalisation(data, tmp_path / "b" / "figure_generalisation", "generalisation")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_only_generalisation_runs_are_gathered(tmp_path):
    repeat = write_metrics(tmp_path, RunId("repeat", 3, 1, "Standard"), 50.0)
    with pytest.raises(InputError, match="not a generalisation run"):
        collect_runs([repeat])


def test_a_run_trains_with_its_batch_size_and_scaled_lr():
    cfg = validate({"train": {"batch_size": 128, "lr": 0.1}})
    fixed = run_config(cfg, RunId("generalisation", 20, 1, "Standard", batch_size=512, lr_scaling="fixed"))
    linear = run_config(cfg, RunId("generalisation", 20, 1, "Standard", batch_size=512, lr_scaling="linear"))
    assert (fixed["train"]["batch_size"], fixed["train"]["lr"]) == (512, 0.1)
    assert (linear["train"]["batch_size"], linear["train"]["lr"]) == (512, pytest.approx(0.4))
    assert run_config(cfg, RunId("repeat", 20, 1, "Standard")) is cfg
