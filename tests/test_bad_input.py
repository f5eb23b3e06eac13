"""A corpus of bad input, one test per case: each gives a clear message naming the file or key, loses no finished
result, and runs no code from data or results.

Cases handled elsewhere and kept that way: a bad config key names the key, value and range (test_config), a
tampered CIFAR-10 batch is refused on its md5 before it is opened (test_data), a changed byte, a swapped or deleted
file fails the audit naming it (test_audit), a killed Snakemake resumes to the same tables (test_pipeline), every
subcommand's missing input is one line (test_cli), and a ragged CSV row or an undecodable file is named by file and
line (test_files).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import write_cifar10
from pblf.cli import main
from pblf.core.candidate import Candidate
from pblf.core.errors import EXIT_USER_ERROR, InputError
from pblf.core.files import write_csv
from pblf.core.names import HISTORY_COLUMNS
from pblf.core.provenance import environment, record_path
from pblf.search.gp import read_history
from tiny import tiny_config

TINY = yaml.safe_dump(tiny_config(subset=120, batch_size=32))
STANDARD = '{"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"}'


class Payload:
    """A pickle that runs a shell command when it is loaded, as a hostile collaborator would plant it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(Payload(marker), protocol=2))


def run(*argv: str, capsys) -> tuple[int, str]:
    code = main(["-q", *argv])
    return code, capsys.readouterr().err


# ------------------------------------------------------------------------------------- 1. no code runs from data


def test_a_planted_pickle_in_the_data_set_never_runs(tmp_path, capsys):
    """With data.verify_checksums false (a re-encoded copy), the batches are still read by the restricted
    unpickler: the payload's os.system is refused before it is looked up."""
    root, marker = tmp_path / "data", tmp_path / "PWNED"
    write_cifar10(root)
    plant(root / "cifar-10-batches-py" / "batches.meta", marker)
    config = tmp_path / "config.yaml"
    config.write_text(f"data: {{dataset: cifar10, root: {root}, verify_checksums: false}}\n")
    code, err = run("split", "--config", str(config), "--out", str(tmp_path / "out"), capsys=capsys)
    assert not marker.exists()
    assert code == EXIT_USER_ERROR and "batches.meta is not a CIFAR-10 batch" in err and "posix.system" in err


def test_the_audit_takes_nothing_from_the_results_folder_to_act_on(tmp_path, capsys, monkeypatch):
    """A results folder whose split record points the data root inside the folder, with a planted batches.meta:
    the audit locates the data set by --data-root and only hashes files, so the payload never runs."""
    monkeypatch.chdir(tmp_path)
    write_cifar10(tmp_path / "data")
    Path("config.yaml").write_text("data: {dataset: cifar10, root: data, verify_checksums: false}\n")
    assert main(["-q", "split", "--config", "config.yaml", "--out", "results/data"]) == 0
    evil, marker = tmp_path / "results" / "evil", tmp_path / "PWNED"
    shutil.copytree(tmp_path / "data", evil)
    plant(evil / "cifar-10-batches-py" / "batches.meta", marker)
    record = record_path("results/data/split.json", "results")
    data = json.loads(record.read_text())
    data["config"]["data"]["root"] = str(evil)
    record.write_text(json.dumps(data))
    code = main(["audit", "results", "--file", "results/data/split.json"])
    assert not marker.exists()
    assert code == 0, capsys.readouterr()  # the data set under data/ is the one the split was made from
    code = main(["audit", "results", "--file", "results/data/split.json", "--data-root", str(evil)])
    out = capsys.readouterr()
    assert not marker.exists()
    assert code == 1 and "the data set's checksums" in out.err and "differ" in out.err


# ------------------------------------------------------------------------------ 2, 3. no bad number reaches a job


@pytest.mark.parametrize("key, yaml", [
    ("train.lr", "train: {lr: .nan}"), ("train.lr", "train: {lr: .inf}"), ("search.bo.beta", "search: {bo: {beta: .nan}}"),
    ("data.val_fraction", "data: {val_fraction: .nan}"), ("search.phi_bound", "search: {phi_bound: .nan}"),
    ("resources.minutes_per_epoch", "resources: {minutes_per_epoch: .inf}"),
])  # fmt: skip
def test_nan_and_infinity_are_refused_naming_the_key(tmp_path, capsys, key, yaml):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml + "\n")
    code, err = run("check-config", "--config", str(config), capsys=capsys)
    assert code == EXIT_USER_ERROR and err.count("\n") == 1
    assert f"config key {key}: " in err and "is not a finite number" in err


def test_a_duplicated_yaml_key_is_refused_naming_both_lines(tmp_path, capsys):
    config = tmp_path / "dup.yaml"
    config.write_text("search:\n  bo: {iterations: 3}\ntrain: {lr: 0.1}\nsearch:\n  rs: {samples: 5}\n")
    code, err = run("check-config", "--config", str(config), capsys=capsys)
    assert code == EXIT_USER_ERROR and err.count("\n") == 1
    assert f"config file {config}: key 'search' appears twice, on lines 1 and 4" in err


def test_a_yaml_error_names_the_file_and_line(tmp_path, capsys):
    config = tmp_path / "broken.yaml"
    config.write_text("train:\n  lr: [0.1\n  momentum: 0.9\n")
    code, err = run("check-config", "--config", str(config), capsys=capsys)
    assert code == EXIT_USER_ERROR and f"config file {config}, line 3, column " in err


# ------------------------------------------------------------------------------ 4. damaged files do not block


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A finished two-epoch run: its config, its folder and its metrics."""
    tmp = tmp_path_factory.mktemp("finished")
    config = tmp / "config.yaml"
    config.write_text(TINY)
    out = tmp / "run"
    assert main(["-q", "train", "--config", str(config), "--candidate", STANDARD, "--budget", "2", "--seed", "1",
                 "--out", str(out)]) == 0
    return config, out, json.loads((out / "metrics.json").read_text())


def without_timing(metrics: dict) -> dict:
    from pblf.training.train import without_timing as strip

    return strip(metrics)


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "empty"])
def test_a_damaged_checkpoint_is_set_aside_and_the_run_completes(finished_run, tmp_path, damage):
    config, finished, reference = finished_run
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    (out / "metrics.json").unlink()  # as if the job died after its last checkpoint
    checkpoint = out / "checkpoint.pt"
    data = checkpoint.read_bytes()
    checkpoint.write_bytes({"random bytes": os.urandom(4096), "truncated": data[: len(data) // 2],
                            "empty": b""}[damage])
    damaged = checkpoint.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "pblf.cli", "train", "--config", str(config), "--candidate", STANDARD,
                           "--budget", "2", "--seed", "1", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    aside = out / "checkpoint.damaged-1.pt"
    assert aside.read_bytes() == damaged, "the damaged file is kept"
    assert f"moved it to {aside}" in proc.stderr and "starting the run from epoch 0" in proc.stderr
    assert without_timing(json.loads((out / "metrics.json").read_text())) == without_timing(reference)


# --------------------------------------------------------------------------------------------- 5. audit edges


@pytest.fixture
def audited(tmp_path, monkeypatch) -> Path:
    """A tiny results folder: a digits split and the Standard selection, as the pipeline makes them."""
    monkeypatch.chdir(tmp_path)
    Path("config.yaml").write_text("data: {dataset: digits, subset: 100}\n")
    assert main(["-q", "split", "--config", "config.yaml", "--out", "results/data"]) == 0
    assert main(["-q", "select-standard", "--config", "config.yaml", "--budget", "2", "--out", "results/select/b2"]) == 0
    return Path("results")


def test_a_split_that_is_not_json_fails_the_audit_naming_it(audited, capsys):
    with (audited / "data/split.json").open("a") as handle:
        handle.write("{}\n")
    code = main(["audit", "results", "--file", "results/data/split.json"])
    err = capsys.readouterr().err
    assert code == 1 and "results/data/split.json: input file results/data/split.json is not valid JSON" in err


@pytest.mark.parametrize("damage", ["not json", "not a record"])
def test_a_damaged_record_fails_the_audit_naming_it(audited, capsys, damage):
    record = record_path(audited / "select/b2/Standard.json", audited)
    record.write_text("{oops" if damage == "not json" else json.dumps({"inputs": "all of them"}))
    code = main(["audit", "results", "--file", "results/select/b2/Standard.json"])
    err = capsys.readouterr().err
    assert code == 1 and str(record) in err and "Traceback" not in err


@pytest.mark.parametrize("cell", ["table_6_2:999:PBLF-BO", ""])
def test_a_cell_that_does_not_exist_is_refused(tmp_path, monkeypatch, capsys, cell):
    monkeypatch.chdir(tmp_path)
    trials = tmp_path / "trials.csv"
    trials.write_text("budget_epochs,method,seed,test_top1,val_top1,w1,w2,b1,b2,mode\n"
                      "2,PBLF-BO,1,50,60,0.1,0.2,0.3,0.4,0010\n")
    assert main(["-q", "tables", "--trials", str(trials), "--out", "results/tables"]) == 0
    code = main(["audit", "results", "--cell", cell])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and err.startswith("pblf audit: error: --cell")


# ---------------------------------------------------------------------------------- 6. inputs at the boundary


@pytest.mark.parametrize("value", ["250", "1e200", "-3"])
def test_a_history_accuracy_outside_0_100_is_named(tmp_path, value):
    path = tmp_path / "history.csv"
    path.write_text(f"w1,w2,b1,b2,mode,val_top1\n0.1,0.2,0.3,0.4,0010,50\n0.1,0.2,0.3,0.5,0010,{value}\n")
    with pytest.raises(InputError, match=rf"history\.csv, line 3, column val_top1: '{value}' is not an accuracy"):
        read_history(path)


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    trials = tmp_path / "trials.csv"
    trials.write_text("budget_epochs,method,seed,test_top1,val_top1,w1,w2,b1,b2,mode\n"
                      "2,Standard,1,50,60,0,0,0,1,1111\n")
    code, err = run("--results", str(tmp_path / "results"), "tables", "--trials", str(trials), "--out",
                    str(blocker / "tables"), capsys=capsys)
    assert code == EXIT_USER_ERROR and err.count("\n") == 1 and f"cannot write {blocker / 'tables'}" in err


def test_without_a_writable_record_store_nothing_is_written(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "provenance").write_text("not a folder")  # as unwritable as a read-only folder, even for root
    trials = tmp_path / "trials.csv"
    trials.write_text("budget_epochs,method,seed,test_top1,val_top1,w1,w2,b1,b2,mode\n"
                      "2,Standard,1,50,60,0,0,0,1,1111\n")
    code, err = run("--results", str(results), "tables", "--trials", str(trials), "--out", str(results / "tables"),
                    capsys=capsys)
    assert code == EXIT_USER_ERROR and f"cannot write into {results / 'provenance'}" in err
    assert not (results / "tables").exists()


# ------------------------------------------------------------------------------- 7. errors where the user looks


def test_device_auto_without_a_gpu_warns_with_the_time_per_epoch():
    from pblf.core.config import load_config
    from pblf.training.train import cpu_fallback_warning

    root = Path(__file__).resolve().parents[1]
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    warning = cpu_fallback_warning(load_config([root / "config.yaml"]))
    assert warning and "device: auto found no GPU" in warning and "per epoch of 45,000 images" in warning
    assert cpu_fallback_warning(load_config([root / "config.yaml", root / "presets/demo.yaml"])) is None


def test_records_tell_the_cuda_build_from_the_device_and_name_untracked_inputs(tmp_path):
    env = environment("cpu")
    assert env["torch_cuda_build"] == torch.version.cuda and env["cuda_available"] == torch.cuda.is_available()
    assert "cuda" not in env  # the old, ambiguous field
    from pblf.core.provenance import REPO, code_version

    untracked = REPO / "presets" / f"untracked-{os.getpid()}.yaml"
    untracked.write_text("seed: 1\n")
    try:
        code = code_version([untracked, REPO / "config.yaml", tmp_path / "outside.yaml"])
    finally:
        untracked.unlink()
    if code["git_commit"] is None:
        pytest.skip("not a git checkout")
    assert code["untracked_inputs"] == [f"presets/{untracked.name}"]


# ------------------------------------------------------------------------- property tests of the parsers


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("0123456789.,-+eE nai\n\"w1b2mode_vltop")), max_size=200))
def test_read_history_on_any_text_returns_observations_or_one_named_error(tmp_path_factory, text):
    """Whatever a history file holds, reading it either works or raises InputError, never anything else."""
    path = tmp_path_factory.mktemp("h") / "history.csv"
    path.write_text("w1,w2,b1,b2,mode,val_top1\n" + text)
    try:
        observations = read_history(path)
    except InputError as err:
        assert str(path) in str(err)
    else:
        assert all(0 <= o.val_top1 <= 100 or o.val_top1 != o.val_top1 for o in observations)


phi = st.floats(min_value=-0.999999, max_value=0.999999, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(w1=phi, w2=phi, b1=phi, b2=phi, mode=st.text(alphabet="01", min_size=4, max_size=4),
       val=st.floats(min_value=0, max_value=100))
def test_a_candidate_survives_a_history_file(tmp_path_factory, w1, w2, b1, b2, mode, val):
    candidate = Candidate(w1, w2, b1, b2, mode)
    path = write_csv([{**candidate.to_dict(), "val_top1": val}], HISTORY_COLUMNS,
                     tmp_path_factory.mktemp("c") / "history.csv")
    (observation,) = read_history(path)
    assert observation.candidate == candidate and observation.val_top1 == val
