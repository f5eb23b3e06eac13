"""The command line: every subcommand's error path is one line naming the bad value (exit 2), while a bug keeps its
traceback (exit 1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pblf.cli import build_parser, main
from pblf.core.errors import EXIT_USER_ERROR, INTERRUPTED


def run(*argv: str, capsys) -> tuple[int, str]:
    code = main(["-q", *argv])
    return code, capsys.readouterr().err


def one_line_error(code: int, err: str, command: str, *fragments: str) -> None:
    assert code == EXIT_USER_ERROR, err
    assert err.count("\n") == 1 and err.startswith(f"pblf {command}: error: "), err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture
def missing(tmp_path: Path) -> str:
    return str(tmp_path / "nowhere" / "file.csv")


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text("device: cpu\ndata: {dataset: digits, subset: 100}\nmodel: {depth: 10, widen_factor: 1, base_width: 2}\n")
    return str(path)


def test_every_subcommand_is_covered_here():
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse has no API
    assert commands == {"check-config", "plan", "split", "train", "propose", "history", "evaluations", "select",
                        "select-standard", "trials", "generalisation", "tables", "figure", "trajectories", "audit",
                        "train-pack", "reproduction", "generalisation-table", "timings", "run", "status", "summary"}


def test_check_config_names_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {lr: -1}\n")
    code, err = run("check-config", "--config", str(bad), capsys=capsys)
    assert code == EXIT_USER_ERROR and "config key train.lr: -1 is out of range" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused_by_check_config(tmp_path, capsys):
    cuda = tmp_path / "cuda.yaml"
    cuda.write_text("device: cuda\n")
    one_line_error(*run("check-config", "--config", str(cuda), capsys=capsys), "check-config",
                   'device: "cuda" but torch sees no GPU')
    code, _ = run("check-config", "--config", str(cuda), "--no-device-check", capsys=capsys)
    assert code == 0


def test_plan_refuses_a_bad_config_and_bad_numbers(tmp_path, config, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("budgets: [0]\n")
    one_line_error(*run("plan", "--config", str(bad), capsys=capsys), "plan", "config key budgets.0")
    one_line_error(*run("plan", "--config", config, "--gpus", "0", capsys=capsys), "plan", "--gpus 0")


def test_split_names_the_missing_data_set(tmp_path, capsys):
    cifar = tmp_path / "cifar.yaml"
    cifar.write_text(f"data: {{dataset: cifar10, root: {tmp_path / 'data'}}}\n")
    code, err = run("split", "--config", str(cifar), "--out", str(tmp_path), capsys=capsys)
    assert code == EXIT_USER_ERROR and err.startswith("pblf split: error: CIFAR-10 not found: ")
    assert f"{tmp_path / 'data' / 'cifar-10-batches-py'} does not exist" in err.splitlines()[0]
    assert "torchvision.datasets.CIFAR10" in err and "Traceback" not in err  # the fix, on the lines below


def test_train_errors(config, missing, tmp_path, capsys):
    base = ["train", "--config", config, "--budget", "1", "--seed", "0", "--out", str(tmp_path / "run")]
    one_line_error(*run(*base, "--candidate-file", missing, capsys=capsys), "train", missing, "does not exist")
    one_line_error(*run(*base, "--candidate", '{"w1": 0}', capsys=capsys), "train", "lacks w2, b1, b2, mode")
    one_line_error(*run(*base, "--candidate", "{", capsys=capsys), "train", "not valid JSON")
    one_line_error(*run(*base, "--candidate", '{"w1":0,"w2":0,"b1":0,"b2":1,"mode":"1111"}', "--kind", "search",
                        "--method", "PBLF-BO", capsys=capsys), "train", "--kind search", "iteration and an index")
    assert not (tmp_path / "run").exists()


def test_train_pack_names_a_malformed_run_list(config, tmp_path, capsys):
    base = ["train-pack", "--config", config, "--runs"]
    one_line_error(*run(*base, "{", capsys=capsys), "train-pack", "--runs: not a list of runs")
    one_line_error(*run(*base, '[{"run": {"kind": "repeat"}}]', capsys=capsys), "train-pack",
                   "--runs: not a list of runs")
    one_line_error(*run(*base, "[]", capsys=capsys), "train-pack", "--runs: no runs to train")


def test_propose_history_evaluations_select_trials_name_their_missing_input(config, missing, tmp_path, capsys):
    out = str(tmp_path / "out")
    one_line_error(*run("propose", "--config", config, "--history", missing, "--budget", "1", "--method", "PBLF-BO",
                        "--iteration", "0", "--out", out, capsys=capsys), "propose", missing)
    for command in ("history", "evaluations"):
        one_line_error(*run(command, "--proposals", missing, "--out", out, capsys=capsys), command, missing)
    one_line_error(*run("select", "--evaluations", missing, "--out", out, capsys=capsys), "select", missing)
    one_line_error(*run("select-standard", "--config", missing, "--budget", "1", "--out", out, capsys=capsys),
                   "select-standard", "config file", "does not exist")
    one_line_error(*run("trials", "--metrics", missing, "--out", out, capsys=capsys), "trials", missing)
    one_line_error(*run("generalisation", "--config", config, "--metrics", missing, "--out", out, capsys=capsys),
                   "generalisation", missing)
    assert not Path(out).exists()


def test_tables_name_an_undecodable_file(tmp_path, capsys):
    binary = tmp_path / "trials.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    one_line_error(*run("tables", "--trials", str(binary), "--out", str(tmp_path), capsys=capsys), "tables",
                   str(binary), "is not UTF-8 text")


def test_reproduction_names_its_missing_inputs(missing, tmp_path, capsys):
    one_line_error(*run("reproduction", "--trials", missing, "--out", str(tmp_path / "out"), capsys=capsys),
                   "reproduction", missing, "does not exist")
    trials = tmp_path / "trials.csv"
    trials.write_text("budget_epochs,method,seed,test_top1,val_top1,w1,w2,b1,b2,mode\n"
                      "20,Standard,1,90,91,0,0,0,1,1111\n")
    one_line_error(*run("reproduction", "--trials", str(trials), "--convergence", missing, "--out",
                        str(tmp_path / "out"), capsys=capsys), "reproduction", missing)
    assert not (tmp_path / "out").exists()


def test_timings_and_the_generalisation_table_name_their_missing_input(missing, tmp_path, capsys):
    one_line_error(*run("timings", "--evaluations", missing, "--out", str(tmp_path / "out"), capsys=capsys),
                   "timings", missing, "does not exist")
    one_line_error(*run("generalisation-table", "--runs", missing, "--out", str(tmp_path / "out"), capsys=capsys),
                   "generalisation-table", missing, "does not exist")
    assert not (tmp_path / "out").exists()


def test_figure_errors(config, missing, tmp_path, capsys):
    one_line_error(*run("figure", "6.1", "--inputs", missing, "--out", str(tmp_path), capsys=capsys), "figure",
                   missing, "is missing")
    csv = tmp_path / "figure_C_1.csv"
    csv.write_text("figure,optimizer,beta,start,step,w1,w2\n")
    one_line_error(*run("figure", "C.1", "--inputs", str(csv), "--out", str(tmp_path), capsys=capsys), "figure",
                   "needs --config")


def test_trajectories_refuse_a_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("appendix_c: {starts: 0}\n")
    one_line_error(*run("trajectories", "--config", str(bad), "--out", str(tmp_path), capsys=capsys),
                   "trajectories", "appendix_c.starts")


def test_audit_of_an_empty_folder_fails(tmp_path, capsys):
    code = main(["audit", str(tmp_path)])
    assert code == 1 and "no tables or figures to audit" in capsys.readouterr().err


def tables_raising(exception: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """``pblf tables`` in a fresh interpreter, with the table writer replaced by one that raises ``exception``."""
    trials = tmp_path / "trials.csv"
    trials.write_text("x\n")
    script = ("import sys, pblf.results.tables as tables\n"
              f"def broken(*args): raise {exception}\n"
              "tables.write_tables = broken\n"
              "from pblf.cli import main\n"
              f"sys.exit(main(['tables', '--trials', {str(trials)!r}, '--out', {str(tmp_path)!r}]))\n")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_a_bug_keeps_its_traceback(tmp_path):
    """Any exception that is not a UserError is a bug: Python's traceback and exit status 1, not a tidy line."""
    proc = tables_raising("RuntimeError('an internal error')", tmp_path)
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr and "RuntimeError: an internal error" in proc.stderr
    assert "pblf tables: error" not in proc.stderr


def test_a_ctrl_c_is_one_line_and_exit_130(tmp_path):
    """A Ctrl-C reaches every job of a terminal's process group, and Snakemake shows each failed job's log: one line
    there, not a KeyboardInterrupt traceback."""
    proc = tables_raising("KeyboardInterrupt", tmp_path)
    assert proc.returncode == 130 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"pblf tables: {INTERRUPTED}"
