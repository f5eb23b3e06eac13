"""pblf status: totals from the plan (they never grow), done from the run folders, time left from this run's own
epoch times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pblf.cli import main
from pblf.core.config import load_config
from pblf.core.layout import Layout, RunId
from pblf.status import progress, report, where_the_answer_is

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def smoke() -> dict:
    return load_config([ROOT / "config.yaml", ROOT / "presets" / "smoke.yaml"])


def finished(layout: Layout, run: RunId, seconds: float) -> None:
    folder = Path(layout.run(run))
    folder.mkdir(parents=True)
    (folder / "checkpoint.pt").write_bytes(b"")
    epochs = [{"epoch": e, "seconds": seconds} for e in range(1, run.budget + 1)]
    (folder / "metrics.json").write_text(json.dumps({"run": run.to_dict(), "epochs": epochs}))


def test_done_is_read_from_the_run_folders_and_the_time_left_from_their_epochs(smoke, tmp_path):
    layout = Layout(str(tmp_path / "results"), str(tmp_path / "logs"))
    finished(layout, RunId("search", 2, 0, "PBLF-BO", 0, 0), 3.0)  # 2 epochs of 3 s
    finished(layout, RunId("repeat", 1, 1, "Standard"), 1.0)  # 1 epoch of 1 s
    running = RunId("convergence", 3, 1, "PBLF-RS")  # the third run: 2 of its 3 epochs so far, by its log
    Path(layout.run(running)).mkdir(parents=True)
    (Path(layout.run(running)) / "checkpoint.pt").write_bytes(b"")
    log = Path(layout.run_log(running.folder))
    log.parent.mkdir(parents=True)
    log.write_text("10:00:00 INFO pblf.training.train: epoch 1/3 lr 0.1 | ...\n"
                   "10:00:01 INFO pblf.training.train: epoch 2/3 lr 0.1 | ...\n")
    done = progress(smoke, layout)
    assert (done["search", 2, "PBLF-BO"].runs, done["search", 2, "PBLF-BO"].epochs) == (1, 2)
    assert (done["repeats",].runs, done["convergence",].running, done["convergence",].epochs) == (1, 1, 2)
    text = report(smoke, layout, jobs=2)
    lines = text.splitlines()
    assert [line.split()[-3:] for line in lines if line.startswith("convergence")] == [["0/4", "1", "2/12"]]
    total = next(line for line in lines if line.startswith("total")).split()
    assert total[1:] == ["2/46", "1", "5/69"]  # the plan's totals, whatever has run
    # 69 planned epochs less 5 done at (3 + 3 + 1) / 3 s per epoch, 2 at a time: 64 * 7/3 / 2 s = 75 s
    assert lines[-1].startswith("64 epochs left at 2.33 s per epoch (measured over 3 epochs of this run), 2 at a "
                                "time: about 1 min of training left")


def test_the_command_prints_the_table_and_refuses_no_jobs(smoke, tmp_path, capsys):
    config = [str(ROOT / "config.yaml"), str(ROOT / "presets" / "smoke.yaml")]
    assert main(["status", str(tmp_path / "results"), "--config", *config]) == 0
    assert "no run has finished yet" in capsys.readouterr().out
    assert main(["status", str(tmp_path / "results"), "--jobs", "0", "--config", *config]) == 2
    assert "--jobs 0 must be >= 1" in capsys.readouterr().err


def test_a_finished_run_ends_with_where_the_answer_is(tmp_path):
    layout = Layout(str(tmp_path / "results"), str(tmp_path / "logs"))
    assert where_the_answer_is(layout) == ""  # no Table 6.2 yet: nothing to point at
    tables = tmp_path / "results" / "tables"
    tables.mkdir(parents=True)
    (tables / "table_6_2.md").write_text("| Budget | Method |\n|---|---|\n| 2 epochs | Standard |\n")
    (tables / "timings.md").write_text("| x |\n")
    text = where_the_answer_is(layout)
    assert f"Table 6.2: {tables / 'table_6_2.md'}" in text and f"timings: {tables / 'timings.md'}" in text
    assert "reproduction" not in text and f"--report {tmp_path / 'results'}/report.html" in text
    assert text.endswith("| 2 epochs | Standard |")
