"""``pblf audit`` on a small results folder made by the real commands (no training: the runs' metrics are written
with provenance records by hand), and every kind of tampering it must catch."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pblf.cli import main
from pblf.core.files import file_digest, read_json, track, write_csv, write_json
from pblf.core.layout import Layout, RunId
from pblf.core.names import EVALUATION_COLUMNS
from pblf.core.provenance import Outcome, now, record_path, write_records
from pblf.training.data import read_arrays
from conftest import stage_config_in

METHODS_SEEDS = [(m, s) for m in ("PBLF-BO", "PBLF-RS", "Standard") for s in (1, 2)]
CANDIDATE = {"w1": 0.0, "w2": 0.0, "b1": 0.0, "b2": 1.0, "mode": "1111"}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A working folder whose results/ holds a stage config, a split, two budgets of repeat runs (metrics recorded as made from
    the split), trials and tables; every command ran inside it with relative paths, as Snakemake runs them."""
    import torch  # noqa: F401  (imported, as in a training job, so the records note the stack it ran on)

    work = tmp_path_factory.mktemp("audit")
    before = os.getcwd()
    os.chdir(work)
    try:
        layout = Layout("results")
        Path("config.yaml").write_text("data: {dataset: digits, subset: 100}\n")
        config = stage_config_in(Path("results"), Path("config.yaml"), "data")
        assert main(["split", "--config", str(config), "--out", "results/data"]) == 0
        metrics = []
        for budget in (1, 2):
            for method, seed in METHODS_SEEDS:
                run = RunId("repeat", budget, seed, method)
                with track() as io:  # as training reads them: the split and the arrays it names
                    read_arrays(read_json(layout.split()), Path(layout.split()).parent)
                    path = write_json({"run": run.to_dict(), "candidate": CANDIDATE, "activation": "relu",
                                       "status": "ok", "val_top1": 50.0 + seed, "test_top1": 40.0 + seed,
                                       "epochs": []}, layout.metrics(run))
                write_records(io, Outcome(), "train", ["train"], now(), layout.results)
                metrics.append(str(path))
        evaluations = []
        for budget in (1, 2):
            for method in ("PBLF-BO", "PBLF-RS"):
                row = {**CANDIDATE, "budget_epochs": budget, "method": method, "iteration": 0, "index": 0,
                       "source": "random", "status": "ok", "epochs": budget, "val_top1": 60.0, "test_top1": 50.0,
                       "seconds": 1.0}
                with track() as io:
                    read_json(layout.split())
                    path = write_csv([row], EVALUATION_COLUMNS, layout.evaluations(budget, method, 0))
                write_records(io, Outcome(), "evaluations", ["evaluations"], now(), layout.results)
                evaluations.append(str(path))
        assert main(["trials", "--metrics", *metrics, "--evaluations", *evaluations, "--out", "results/tables"]) == 0
        assert main(["tables", "--trials", layout.trials(), "--out", "results/tables"]) == 0
    finally:
        os.chdir(before)
    return work


@pytest.fixture
def results(made, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the folder for each test (which may tamper with it), as the working directory."""
    work = tmp_path / "work"
    shutil.copytree(made, work)
    monkeypatch.chdir(work)
    return Path("results")


def audit(results: Path, *args: str, capsys) -> tuple[int, str, str]:
    code = main(["audit", str(results), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_fresh_folder_passes_and_reaches_the_data_set(results, capsys):
    code, out, err = audit(results, capsys=capsys)
    assert code == 0, err
    assert "audit passed" in out and "data/split.json" in out and "<- pblf split" in out
    assert "data/arrays/train_images.npy" in out  # the arrays share the split's record; only the split is verified
    assert "OTHER STACK" not in out  # trained here


def test_a_run_trained_on_another_processor_or_stack_is_noted_per_run(results, capsys):
    """Its files verify (the audit passes), but it is marked, with what differs: its bits are this machine's only
    if processor and stack are."""
    path = record_path(results / "runs/repeats/b1/PBLF-RS/r0/s2/metrics.json", results)
    record = json.loads(path.read_text())
    record["environment"].update(processor="Imaginary CPU 9000", torch="1.0.0",
                                 cpu_flags=[*record["environment"]["cpu_flags"], "avx1024"])
    path.write_text(json.dumps(record))
    code, out, err = audit(results, capsys=capsys)
    assert code == 0, err
    marked = [line for line in out.splitlines() if "OTHER STACK (" in line]
    assert len(marked) == 1 and "runs/repeats/b1/PBLF-RS/r0/s2/metrics.json" in marked[0]
    assert "processor: Imaginary CPU 9000, here " in marked[0] and "cpu_flags: avx1024 only then, none only here" \
        in marked[0] and "torch: 1.0.0, here " in marked[0]
    assert "NOTE: 1 run(s) were trained on another processor or software stack" in out


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("target", ["runs/repeats/b2/PBLF-RS/r0/s1/metrics.json", "data/split.json",
                                    "tables/trials.csv", "tables/table_6_2.csv"])
def test_a_changed_byte_is_named(results, capsys, target):
    flip_a_byte(results / target)
    code, _, err = audit(results, capsys=capsys)
    assert code == 1
    assert target in err


def test_a_deleted_record_is_named(results, capsys):
    record_path(results / "tables/trials.csv", results).unlink()
    code, _, err = audit(results, capsys=capsys)
    assert code == 1 and "no provenance record for results/tables/trials.csv" in err


def test_a_deleted_input_is_named(results, capsys):
    (results / "runs/repeats/b1/Standard/r0/s2/metrics.json").unlink()
    code, _, err = audit(results, capsys=capsys)
    assert code == 1 and "runs/repeats/b1/Standard/r0/s2/metrics.json: missing" in err


def test_a_changed_sibling_output_is_named(results, capsys):
    flip_a_byte(results / "tables/table_B_2.tex")
    code, _, err = audit(results, "--file", str(results / "tables/table_6_2.csv"), capsys=capsys)
    assert code == 1 and "table_B_2.tex: missing or changed since it was recorded" in err


def test_a_cell_follows_only_its_runs_by_their_recorded_identity(results, capsys):
    code, out, err = audit(results, "--cell", "table_6_2:2:PBLF-RS", capsys=capsys)
    assert code == 0, err
    assert "table_6_2 [2 epochs, PBLF-RS]: " in out
    walked = {line.split()[0] for line in out.splitlines() if "/runs/" in line}
    assert walked == {str(results / f"runs/repeats/b2/PBLF-RS/r0/s{s}/metrics.json") for s in (1, 2)}


@pytest.mark.parametrize("cell", ["table_6_2:2", "table_9_9:2:PBLF-BO", "table_6_2:2:PBLF-XX"])
def test_a_malformed_cell_is_a_one_line_user_error(results, capsys, cell):
    code, _, err = audit(results, "--cell", cell, capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1 and "expected TABLE:BUDGET:METHOD" in err


def test_records_list_what_the_stage_read_and_wrote_relative_to_the_results_folder(results):
    record = json.loads(record_path(results / "tables/trials.csv", results).read_text())
    inputs = {entry["path"] for entry in record["inputs"]}
    assert inputs == ({f"runs/repeats/b{b}/{m}/r0/s{s}/metrics.json" for b in (1, 2) for m, s in METHODS_SEEDS}
                      | {f"search/b{b}/{m}/r0/evaluations.csv" for b in (1, 2) for m in ("PBLF-BO", "PBLF-RS")})
    table_record = json.loads(record_path(results / "tables/table_B_1.md", results).read_text())
    assert len(table_record["outputs"]) == 16 and table_record["inputs"][0]["path"].endswith("trials.csv")


# --- trust ends at the results folder and the data set -----------------------------------------------------------


def forge_trials_outside(results: Path, outside: Path) -> Path:
    """A forged trials.csv outside the results folder (PBLF-BO at 99.90 %): what the attacks below point to."""
    outside.mkdir(parents=True, exist_ok=True)
    forged = outside / "trials.csv"
    forged.write_text((results / "tables/trials.csv").read_text().replace("41.0", "99.9"))
    return forged


def rewrite_record(results: Path, output: str, change) -> Path:
    path = record_path(results / output, results)
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))
    return path


def test_a_symlink_to_a_file_outside_fails_naming_it(results, tmp_path, capsys):
    forged = forge_trials_outside(results, tmp_path / "outside")
    (results / "tables/trials.csv").unlink()
    (results / "tables/trials.csv").symlink_to(forged)
    code, out, err = audit(results, capsys=capsys)
    assert code == 1 and "results/tables/trials.csv is a symbolic link" in err
    assert "provenance/tables/table_6_2.csv.json" in err and "checksum only" not in out


def test_a_symlinked_table_or_record_fails(results, tmp_path, capsys):
    shutil.copy(results / "tables/table_B_1.md", tmp_path / "copy.md")
    (results / "tables/table_B_1.md").unlink()
    (results / "tables/table_B_1.md").symlink_to(tmp_path / "copy.md")
    record = record_path(results / "tables/table_B_2.md", results)
    shutil.copy(record, tmp_path / "record.json")
    record.unlink()
    record.symlink_to(tmp_path / "record.json")
    code, _, err = audit(results, capsys=capsys)
    assert code == 1 and "results/tables/table_B_1.md is a symbolic link" in err
    assert f"{record}: {record} is a symbolic link; a record must be a file of the results folder" in err


def test_a_record_naming_a_forged_file_outside_fails_naming_the_record(results, tmp_path, capsys):
    """The forger rewrote the table's record to name an absolute trials.csv with its true sha256: the audit does not
    follow it, and says which record named it."""
    forged = forge_trials_outside(results, tmp_path / "outside")
    sha = file_digest(forged)

    def point_outside(record):
        record["inputs"] = [{"path": str(forged), "sha256": sha}]

    named_by = rewrite_record(results, "tables/table_6_2.csv", point_outside)
    code, out, err = audit(results, capsys=capsys)
    assert code == 1 and f"{named_by}: names {forged}, outside results" in err and "audit FAILED" in out


@pytest.mark.parametrize("path", ["../../../../etc/passwd", "/etc/passwd", "/proc/self/mem", "../outside/x.csv"])
def test_a_record_naming_a_path_out_of_the_folder_fails_and_nothing_there_is_opened(results, tmp_path, capsys,
                                                                                    monkeypatch, path):
    (tmp_path / "outside").mkdir(exist_ok=True)
    (tmp_path / "outside/x.csv").write_text("secret\n")
    (tmp_path / "outside/x.csv.prov.json").write_text('{"inputs": [{"path": "/etc/shadow", "sha256": "' + "0" * 64
                                                      + '"}]}')
    opened = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: opened.append(self) or real_open(self, *a, **k))
    named_by = rewrite_record(results, "tables/trials.csv",
                              lambda record: record["inputs"].append({"path": path, "sha256": "0" * 64}))
    code, _, err = audit(results, capsys=capsys)
    assert code == 1 and f"{named_by}: names {path}, outside results" in err and "Traceback" not in err
    forbidden = (tmp_path / "outside", Path("/etc"), Path("/proc/self"))  # what the record names, and beside it
    assert opened and not [p for p in opened if any(p.resolve().is_relative_to(root) for root in forbidden)]


def test_a_record_that_does_not_name_its_file_or_is_of_an_older_version_fails(results, capsys):
    rewrite_record(results, "tables/table_B_1.csv", lambda record: record["outputs"].clear())
    rewrite_record(results, "tables/table_B_2.csv", lambda record: record.update(version=1))
    code, _, err = audit(results, capsys=capsys)
    assert code == 1 and "table_B_1.csv.json: does not name results/tables/table_B_1.csv among its outputs" in err
    assert "table_B_2.csv.json: the record of results/tables/table_B_2.csv is damaged: its version 1 is not 2" in err


def test_a_results_folder_copied_elsewhere_audits_the_same(results, tmp_path, monkeypatch, capsys):
    """People send results folders to each other to audit: a copy under another name, read from another working
    folder with no config.yaml or checkout in sight, verifies every checksum the original does."""
    code, out, _ = audit(results, capsys=capsys)
    checked = out.splitlines()[-1].split(" checksums")[0].rsplit(" ", 1)[-1]
    shutil.copytree(results, tmp_path / "mailed" / "their-run", symlinks=True)
    monkeypatch.chdir(tmp_path / "mailed")
    code, out, err = audit(Path("their-run"), capsys=capsys)
    assert code == 0, err
    assert out.splitlines()[-1] == f"audit passed: {checked} checksums verified under their-run"
