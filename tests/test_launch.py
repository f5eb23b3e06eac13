"""pblf run: presets by name, one line for a wrong name or a bad value before Snakemake starts, Snakemake's own
arguments after --, and a Ctrl-C that ends in one line instead of a page of tracebacks."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pblf.cli import main
from pblf.core.errors import INTERRUPTED, ConfigError
from pblf.launch import resolve, snakemake_command
from workflow_helpers import BIN, ROOT, copy_workflow, env


def test_presets_are_named_and_a_wrong_name_gets_the_nearest(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert resolve(["demo", "presets/pruned.yaml"]) == [Path("presets/demo.yaml"), Path("presets/pruned.yaml")]
    with pytest.raises(ConfigError, match=r"'dem' is neither a config file nor a preset \(presets: .*demo.*\); "
                                          r"did you mean demo\?"):
        resolve(["dem"])
    with pytest.raises(ConfigError, match="did you mean smoke"):
        resolve(["presets/smoek.yaml"])


def test_snakemake_gets_all_cores_unless_told_otherwise():
    command = snakemake_command([Path("presets/demo.yaml")], ["-n"])
    assert command[1:] == ["--cores", "all", "--configfile", "presets/demo.yaml", "-n"]
    assert "all" not in snakemake_command([], ["--cores", "2"]) and "all" not in snakemake_command([], ["-j=4"])


def test_a_wrong_preset_or_value_is_one_line_before_snakemake_starts(tmp_path, monkeypatch, capsys):
    work = copy_workflow(tmp_path / "wf")
    monkeypatch.chdir(work)
    assert main(["run", "dem"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pblf run: error: 'dem' is neither")
    Path("bad.yaml").write_text("train: {lr: -1}\n")
    assert main(["run", "smoke", "bad.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pblf run: error:") and "train.lr" in err
    assert not (work / "results").exists() and not (work / ".snakemake").exists()


def test_arguments_after_the_separator_belong_to_pblf_run_only(capsys):
    with pytest.raises(SystemExit):
        main(["plan", "--config", "config.yaml", "--", "-n"])
    assert "arguments after -- (-n) are for pblf run only" in capsys.readouterr().err


def test_ctrl_c_stops_the_run_with_one_line_and_it_continues(tmp_path):
    """A Ctrl-C (SIGINT to the terminal's process group) in the middle of the smoke run: Snakemake stops its jobs,
    pblf run shows none of their tracebacks, says in one line how to continue, and a dry run afterwards plans the
    rest (no stale lock)."""
    work = copy_workflow(tmp_path / "wf")
    # a test runner started in the background by a shell without job control inherits SIGINT ignored, and so would
    # pblf and Snakemake: give them the terminal's default, as a person typing the command has
    process = subprocess.Popen([str(BIN / "pblf"), "run", "smoke", "--", "--cores", "2"], cwd=work, env=env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not list((work / "results" / "smoke" / "runs").rglob("metrics.json")):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be interrupted"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, out + err
    assert err.strip().splitlines()[-1] == f"pblf run: {INTERRUPTED}"
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err
    proc = subprocess.run([str(BIN / "pblf"), "run", "smoke", "--", "-n"], cwd=work, env=env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "LockException" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
