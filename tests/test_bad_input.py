"""A corpus of bad input, one test per case: each gives a clear message naming the file or key, loses no finished
result, and runs no code from data or results.

Cases handled elsewhere and kept that way: a bad config key names the key, value and range, every list and count
of the schema has a bound and a plan above plan_ceiling is refused unless it is raised (test_config), a
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

from conftest import stage_config_in, write_cifar10
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
    config = stage_config_in(Path("results"), Path("config.yaml"), "data")
    assert main(["-q", "split", "--config", str(config), "--out", "results/data"]) == 0
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


# ------------------------------------------------------------------------- 8. a config's cost is bounded


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs": ``levels`` lines of ``width`` aliases of the line before, width**levels values in all."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * width)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, line, what", [
    (alias_bomb(), 1, "anchor &a0"),  # refused at its first anchor, so never expanded: it would take minutes
    ("train: {lr: 0.1}\nsearch:\n  bo: &bo {iterations: 3}\n  rs: {samples: 4}\n", 3, "anchor &bo"),
    ("search:\n  bo: {iterations: 3}\ntrain: {lr: *lr}\n", 3, "alias *lr"),
])  # fmt: skip
def test_yaml_anchors_and_aliases_are_refused_naming_the_line(tmp_path, capsys, text, line, what):
    config = tmp_path / "aliases.yaml"
    config.write_text(text)
    code, err = run("check-config", "--config", str(config), capsys=capsys)
    assert code == EXIT_USER_ERROR and err.count("\n") == 1
    assert f"config file {config}, line {line}: YAML {what} is refused: a config says each value once" in err


def test_a_hundred_thousand_repeat_seeds_are_refused_by_check_config(tmp_path, capsys):
    config = tmp_path / "seeds.yaml"
    config.write_text(yaml.safe_dump({"repeats": {"seeds": list(range(1, 100_001))}}))
    code, err = run("check-config", "--config", str(config), capsys=capsys)
    assert code == EXIT_USER_ERROR and err.count("\n") == 1
    assert "config key repeats.seeds: 100000 items; allowed: at most 100" in err


def test_a_plan_above_the_ceiling_is_refused_by_check_config_and_the_override_passes(tmp_path, capsys):
    config = tmp_path / "many.yaml"
    config.write_text("search: {repeats: 11}\n")
    code, err = run("check-config", "--no-device-check", "--config", str(config), capsys=capsys)
    assert code == EXIT_USER_ERROR and err.count("\n") == 1
    assert "config key plan_ceiling.runs: the config plans 5,290 training runs, above the ceiling of 5,000" in err
    config.write_text("search: {repeats: 11}\nplan_ceiling: {runs: 5290}\n")
    assert run("check-config", "--no-device-check", "--config", str(config), capsys=capsys)[0] == 0


# ---------------------------------------------------------------- 9. search files are checked like configs

ENTRY = {"w1": 0.1, "w2": -0.2, "b1": 0.3, "b2": -0.4, "mode": "0010", "source": "random"}
LEARN = {"hyper_lr": 0.001, "interval": 10, "gate_init": 2.0, "val_batch_size": 128, "phi_bound": 1}


@pytest.mark.parametrize("change, message", [
    ({"b1": 1e308}, "candidate b1=1e+308 lies outside Table 6.1's box: |b1| <= 1"),
    ({"w2": -1.5}, "candidate w2=-1.5 lies outside Table 6.1's box"),
    ({"w1": float("nan")}, "candidate w1=nan must be a finite number"),
    ({"mode": "10"}, "candidate mode '10' must be written as four bits, such as '0010'"),
    ({"mode": 10}, "candidate mode 10 must be a string"),
    ({"until": -1}, "until -1 must be a whole number of epochs, at least 1"),
    ({"until": "3"}, "until \"3\" must be a whole number of epochs"),
    ({"until": 2.5}, "until 2.5 must be a whole number of epochs"),
    ({"stop_below": {"2": "x"}}, "stop_below {\"2\": \"x\"} must map rung epochs"),
    ({"stop_below": {"two": 50}}, "stop_below {\"two\": 50} must map rung epochs"),
    ({"stop_below": {"2": 250}}, "stop_below {\"2\": 250} must map rung epochs"),
    ({"stop_below": [50]}, "stop_below [50] must map rung epochs"),
    ({"resume": {"iteration": -1, "index": 0}}, "resume {\"iteration\": -1, \"index\": 0} must name the run"),
    ({"learn": {**LEARN, "interval": 0}}, ("is not PBLF-HG's settings (search.hg's keys and phi_bound): "
                                           "learn.interval: 0 is less than the minimum of 1")),
    ({"learn": {**LEARN, "phi_bound": 5}}, "learn.phi_bound: 5 is greater than the maximum of 1"),
    ({"learn": {"hyper_lr": 0.001}}, "learn: 'gate_init' is a required property"),
    ({"learn": {**LEARN, "spare": 1}}, "learn: Additional properties are not allowed ('spare' was unexpected)"),
    ({"learn": {**LEARN, "hyper_lr": float("nan")}}, "learn.hyper_lr: nan is not a finite number"),
    ({"learn": [1]}, ("learn [1] is not PBLF-HG's settings (search.hg's keys and phi_bound): learn: [1] is not of "
                      "type 'object'")),
    ({"source": 3}, "source 3 must be text"),
    ({"untill": 3}, "unknown field untill; an entry holds w1, w2, b1, b2, mode and may hold source"),
])  # fmt: skip
def test_a_bad_proposal_entry_stops_its_training_run_naming_the_field(tmp_path, capsys, monkeypatch, change, message):
    monkeypatch.chdir(tmp_path)
    config, proposal = tmp_path / "config.yaml", tmp_path / "proposal.json"
    config.write_text(TINY)
    proposal.write_text(json.dumps({"candidates": [ENTRY, {**ENTRY, **change}]}))
    code, err = run("train", "--config", str(config), "--candidate-file", str(proposal), "--budget", "2", "--seed",
                    "1", "--kind", "search", "--method", "PBLF-RS", "--iteration", "0", "--index", "0", "--out",
                    str(tmp_path / "run"), capsys=capsys)
    assert code == EXIT_USER_ERROR and err.count("\n") == 1
    assert f"{proposal}, candidate 1: " in err and message in err
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize("change, message", [
    ({"w2": 5}, "candidate w2=5 lies outside Table 6.1's box: |w2| <= 1"),
    ({"b2": 1.000001}, "candidate b2=1.000001 lies outside Table 6.1's box"),
    ({"mode": "1"}, "candidate mode '1' must be written as four bits, such as '0001'"),
])
def test_a_bad_selection_stops_its_training_run(tmp_path, capsys, monkeypatch, change, message):
    monkeypatch.chdir(tmp_path)
    config, selection = tmp_path / "config.yaml", tmp_path / "PBLF-RS.json"
    config.write_text(TINY)
    selection.write_text(json.dumps({"candidate": {**json.loads(STANDARD), **change}}))
    code, err = run("train", "--config", str(config), "--candidate-file", str(selection), "--budget", "2", "--seed",
                    "1", "--kind", "repeat", "--method", "PBLF-RS", "--out", str(tmp_path / "run"), capsys=capsys)
    assert code == EXIT_USER_ERROR and err.count("\n") == 1
    assert f"{selection} is not a selection record with a valid \"candidate\": {message}" in err


def test_standard_on_the_edge_of_the_box_and_what_the_searches_write_are_accepted(tmp_path):
    """b2 = 1 (Standard's sigma' == 1) sits on the bound of phi_bound 1 and is allowed, in a config, a proposal and
    a selection; so is every field a search writes into a proposal."""
    from pblf.core.candidate import read_candidate, read_proposal, standard_candidate, write_proposal
    from pblf.core.config import validate
    from pblf.search.hg import Hypergradient
    from pblf.search.rs import RandomSearch

    config = validate({"search": {"phi_bound": 1, "pruning": {"enabled": True}}, "standard": {"b2": 1}})
    standard = standard_candidate(config)
    assert standard.b2 == 1.0
    selection = tmp_path / "Standard.json"
    selection.write_text(json.dumps({"candidate": standard.to_dict()}))
    assert read_candidate(selection) == standard
    written = [*Hypergradient().propose(config, [], 20, 0, 0), *RandomSearch().propose(config, [], 20, 0, 0)[:2],
               {**ENTRY, "stop_below": {"7": 51.5}, "resume": {"iteration": 0, "index": 1}, "replaced": "random"}]
    assert {"learn", "until"} <= {key for entry in written for key in entry}
    proposal = write_proposal(tmp_path / "proposal.json", written)
    assert read_proposal(proposal) == written and read_candidate(proposal, 0) == standard


@pytest.mark.parametrize("column, value", [
    ("search_candidates", "nan"), ("search_candidates", "-3"), ("search_epochs", "inf"),
    ("search_epochs", "-1e300"), ("search_epochs", "2.5"), ("seed", "-1"),
])  # fmt: skip
def test_a_trials_cost_or_seed_that_is_not_a_count_is_named(tmp_path, capsys, column, value):
    row = {"budget_epochs": "2", "method": "Standard", "seed": "1", "test_top1": "50", "val_top1": "60", "w1": "0",
           "w2": "0", "b1": "0", "b2": "1", "mode": "1111", "search_candidates": "0", "search_epochs": "0"}
    trials = tmp_path / "trials.csv"
    trials.write_text(",".join(row) + "\n" + ",".join({**row, column: value}.values()) + "\n")
    code, err = run("--results", str(tmp_path / "results"), "tables", "--trials", str(trials), "--out",
                    str(tmp_path / "tables"), capsys=capsys)
    assert code == EXIT_USER_ERROR and err.count("\n") == 1
    assert f"{trials}, line 2, column {column}: '{value}' is not a non-negative integer" in err


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-3", "-1e300"])
def test_an_evaluations_seconds_that_is_not_an_amount_is_named_as_a_number(tmp_path, value):
    from pblf.search.select import read_evaluations

    path = tmp_path / "evaluations.csv"
    row = {"budget_epochs": 2, "method": "PBLF-RS", "search": 0, "iteration": 0, "index": 0, **ENTRY,
           "status": "ok", "epochs": 2, "val_top1": 50, "test_top1": 40, "seconds": value}
    write_csv([row], list(row), path)
    with pytest.raises(InputError, match=rf"evaluations\.csv, line 2, column seconds: '{value}' is not a finite "
                                         "non-negative number"):
        read_evaluations(path)


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
