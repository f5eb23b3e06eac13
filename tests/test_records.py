"""No finished run lost to its records: a record that cannot be written, or a preemption between the last epoch
and the records, keeps the checkpoint and the metrics, and a rerun writes the records without training again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from pblf.core.errors import EXIT_PREEMPTED, EXIT_USER_ERROR
from tiny import tiny_config

CANDIDATE = {"w1": 0.5, "w2": -0.3, "b1": 0.1, "b2": 0.8, "mode": "1111"}


def train(config: Path, out: Path, results: Path, before: str = "") -> subprocess.CompletedProcess:
    """``pblf train`` of 2 epochs in a fresh interpreter, after the Python statements ``before``."""
    argv = ["--results", str(results), "train", "--config", str(config), "--candidate", json.dumps(CANDIDATE),
            "--budget", "2", "--seed", "1", "--out", str(out)]
    script = f"import sys\n{before}\nfrom pblf.cli import main\nsys.exit(main({argv!r}))\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)


def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_config(100, 32)))
    results = tmp_path / "results"
    return config, results / "runs" / "r", results


def finished_without_records(out: Path, results: Path) -> tuple[bytes, int]:
    """The run's metrics and its checkpoint's mtime, asserting both are there and no record is."""
    assert (out / "checkpoint.pt").is_file() and (out / "metrics.json").is_file()
    assert not list((results / "provenance").rglob("*.json"))
    return (out / "metrics.json").read_bytes(), (out / "checkpoint.pt").stat().st_mtime_ns


def rerun_writes_the_records_only(config: Path, out: Path, results: Path, before: tuple[bytes, int]) -> None:
    proc = train(config, out, results)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/2" not in proc.stderr and "epoch 2/2" not in proc.stderr  # no epoch trained again
    assert ((out / "metrics.json").read_bytes(), (out / "checkpoint.pt").stat().st_mtime_ns) == before
    assert (results / "provenance/runs/r/metrics.json.json").is_file()
    assert (results / "provenance/runs/r/checkpoint.pt.json").is_file()


def test_a_record_that_cannot_be_written_keeps_the_run_and_says_how_to_finish(tmp_path):
    config, out, results = setup(tmp_path)
    blocked = results / "provenance/runs/r/metrics.json.json"
    blocked.mkdir(parents=True)  # a directory where the record must go: every try fails
    proc = train(config, out, results, "import pblf.cli; pblf.cli.RECORD_RETRIES = (0.0, 0.0)")
    assert proc.returncode == EXIT_USER_ERROR and "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"pblf train: error: cannot write {blocked}")
    assert "kept the outputs" in line and "rerun the same command, which writes the missing records" in line
    shutil.rmtree(results / "provenance")
    rerun_writes_the_records_only(config, out, results, finished_without_records(out, results))


def test_a_preemption_between_the_last_epoch_and_the_records_exits_75_and_loses_nothing(tmp_path):
    config, out, results = setup(tmp_path)
    preempt = ("import os, signal, time, pblf.cli\n"
               "def preempted(*args, **kwargs):\n"
               "    os.kill(os.getpid(), signal.SIGTERM)\n"
               "    time.sleep(60)\n"
               "pblf.cli.write_records = preempted")
    proc = train(config, out, results, preempt)
    assert proc.returncode == EXIT_PREEMPTED, proc.stderr
    assert "pblf train: preempted (signal SIGTERM); rerun the same command" in proc.stderr
    rerun_writes_the_records_only(config, out, results, finished_without_records(out, results))
