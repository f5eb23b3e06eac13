"""The whole workflow on the smoke preset, end to end on CPU: search DAG, repeats, convergence, tables, figures,
report, provenance and audit; reruns, determinism across directories, and recovery from a killed Snakemake."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from pblf import plan
from pblf.core.candidate import read_proposal
from pblf.core.config import load_config
from pblf.core.files import read_csv
from pblf.core.layout import Layout, RunId
from pblf.core.names import TABLE_FORMATS, TIMINGS, TRIALS_COLUMNS
from pblf.results.thesis import load as load_thesis
from pblf.search.registry import methods
from conftest import write_cifar10
from workflow_helpers import BIN, copy_workflow, env, snakemake, without_timing

pytestmark = pytest.mark.slow
SMOKE = ("--cores", "2", "--configfile", "presets/smoke.yaml")


def pblf(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "pblf"), *args], cwd=cwd, env=env(), capture_output=True, text=True)


def kill_when(work: Path, args: tuple[str, ...], appears: str) -> None:
    """Run Snakemake with ``args`` in ``work`` and SIGKILL it, with every job it started, once ``appears`` exists."""
    proc = subprocess.Popen([str(BIN / "snakemake"), *args], cwd=work, env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (work / appears).exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """One complete smoke run from clean; the tests below read it and must not change it."""
    work = copy_workflow(tmp_path_factory.mktemp("smoke") / "wf")
    snakemake(*SMOKE, cwd=work)
    return work


def test_every_output_exists(smoke_run):
    results = smoke_run / "results/smoke"
    config = load_config([smoke_run / "config.yaml", smoke_run / "presets/smoke.yaml"])
    planned = plan.final_outputs(config, Layout(str(results), str(smoke_run / "logs/smoke")))
    assert [path for path in planned if not Path(path).is_file()] == []
    for name in ("table_6_2", "table_B_1", "table_B_2", "reproduction", "reproduction_cells"):
        for ext in ("csv", "md", "tex", "html"):
            assert (results / "tables" / f"{name}.{ext}").is_file()
    summary = (results / "summary.html").read_text()  # the report's front page: Table 6.2 and Figures 6.1-6.3
    assert (results / "tables/table_6_2.html").read_text() in summary and summary.count("<img ") == 3
    for name in ("6_1", "6_2", "6_3", "6_4", "C_1", "C_2", "C_3", "C_4"):
        for ext in ("png", "pdf"):
            assert (results / "figures" / f"figure_{name}.{ext}").is_file()
    trials = (results / "tables" / "trials.csv").read_text().splitlines()
    assert trials[0] == ",".join(TRIALS_COLUMNS)
    assert len(trials) == 1 + 2 * 4 * 2  # budgets x methods x repeat seeds
    # the search: 2 initial + 2 iterations x 1 acquisition for BO, 2 random for RS, at both budgets
    for budget in (1, 2):
        bo = read_csv(results / "search" / f"b{budget}" / "PBLF-BO" / "r0" / "evaluations.csv")
        rs = read_csv(results / "search" / f"b{budget}" / "PBLF-RS" / "r0" / "evaluations.csv")
        assert len(bo) == 2 + 2 * 1 and len(rs) == 2
        assert {row["source"] for row in bo} == {"random", "ucb"}
        assert {(row["budget_epochs"], row["method"]) for row in bo} == {(str(budget), "PBLF-BO")}
        (hg,) = read_csv(results / "search" / f"b{budget}" / "PBLF-HG" / "r0" / "evaluations.csv")  # one learning run
        assert hg["source"] == "hypergradient" and float(hg["seconds"]) > 0
    for method in methods():
        assert (results / "runs" / "convergence" / method / "s1" / "metrics.json").is_file()
    assert (results / "figures" / "figure_hypergradient.png").is_file()


def test_the_reproduction_table_sets_the_thesis_beside_the_run(smoke_run):
    """Its thesis column is the transcription's, its pipeline column this run's Table 6.2 and convergence reruns;
    the smoke budgets 1 and 2 stand for the thesis's 20 and 100."""
    tables = smoke_run / "results/smoke/tables"
    thesis = load_thesis()
    made = {(row["budget_epochs"], row["method"]): row for row in read_csv(tables / "table_6_2.csv")}
    rows = read_csv(tables / "reproduction.csv")
    assert [(row["source"], row["thesis_budget"], row["budget_epochs"]) for row in rows] == \
        [("Table 6.2", "100", "2")] * 3 + [("Table 6.2", "20", "1")] * 3 + [("Figure 6.4", "600", "3")] * 3
    for row in rows[:6]:
        reported = thesis.reported[int(row["thesis_budget"]), row["method"]]
        assert float(row["thesis_top1"]) == statistics.mean(reported.test_runs)
        assert row["top1"] == made[row["budget_epochs"], row["method"]]["test_top1_mean"]
        assert row["in_thesis_range"] in ("yes", "no")
    for row in rows[6:]:
        metrics = json.loads((smoke_run / f"results/smoke/runs/convergence/{row['method']}/s1/metrics.json").read_text())
        assert float(row["top1"]) == metrics["test_top1"]
        assert float(row["thesis_top1"]) == thesis.convergence_top1[row["method"]]
    cells = read_csv(tables / "reproduction_cells.csv")
    assert len(cells) == 2 * 3 * 21 + 3
    assert {row["pipeline"] for row in cells if row["cell"] in ("run 3", "run 4", "run 5")} == {""}  # 2 seeds


def test_every_run_records_who_it_is(smoke_run):
    """Each metrics.json names its run's kind, method, budget and seed (and a search run's iteration and index),
    and that identity is the one its folder stands for."""
    config = load_config([smoke_run / "config.yaml", smoke_run / "presets/smoke.yaml"])
    runs = sorted((smoke_run / "results/smoke/runs").rglob("metrics.json"))
    # search runs (BO, RS, HG's learning run), repeats, convergence runs, generalisation runs (methods x (batch sizes
    # x lr scalings, less the linear one at train.batch_size: the fixed run) x seeds)
    assert len(runs) == 2 * (2 + 2 * 1 + 2 + 1) + 2 * 4 * 2 + 4 + 4 * (2 * 2 - 1) * 1
    kinds = set()
    for path in runs:
        recorded = json.loads(path.read_text())["run"]
        folder = path.parent.relative_to(smoke_run / "results/smoke/runs").as_posix()
        assert RunId.from_dict(recorded) == plan.run_id(config, folder), path
        assert {"kind", "method", "budget", "seed"} <= set(recorded)
        kinds.add(recorded["kind"])
    assert kinds == {"search", "repeat", "convergence", "generalisation"}


def test_second_run_does_nothing(smoke_run):
    proc = snakemake(*SMOKE, "--dry-run", cwd=smoke_run)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_second_directory_gives_byte_identical_tables_and_figures(smoke_run, tmp_path):
    other = copy_workflow(tmp_path / "wf")
    snakemake(*SMOKE, cwd=other)
    figures = sorted(p.name for p in (smoke_run / "results/smoke/figures").iterdir())
    assert figures == sorted(p.name for p in (other / "results/smoke/figures").iterdir())
    match, mismatch, errors = filecmp.cmpfiles(smoke_run / "results/smoke/figures", other / "results/smoke/figures", figures,
                                               shallow=False)
    assert mismatch == [] and errors == [], f"results/smoke/figures differ: {mismatch + errors}"
    tables = sorted(p.name for p in (smoke_run / "results/smoke/tables").iterdir())
    assert tables == sorted(p.name for p in (other / "results/smoke/tables").iterdir())
    results = [name for name in tables if not name.startswith(f"{TIMINGS}.")]  # the one table that is a measurement
    match, mismatch, errors = filecmp.cmpfiles(smoke_run / "results/smoke/tables", other / "results/smoke/tables", results,
                                               shallow=False)
    assert len(results) == len(tables) - len(TABLE_FORMATS) and mismatch == [] and errors == [], \
        f"tables differ: {mismatch + errors}"
    timings = read_csv(smoke_run / "results/smoke/tables/timings.csv")
    assert all(float(row["seconds"]) > 0 and row["measured_on"] for row in timings)


def test_a_fresh_checkout_with_finished_results_plans_nothing(smoke_run, tmp_path):
    """Finished results copied into a fresh checkout (mtimes kept), without and then with Snakemake's metadata, and
    a rule whose shell command a `git pull` rewrote: nothing is planned again (profiles/default: rerun-triggers)."""
    work = copy_workflow(tmp_path / "wf")
    shutil.copytree(smoke_run / "results", work / "results")
    assert "Nothing to be done" in snakemake(*SMOKE, "--dry-run", cwd=work).stdout
    shutil.copytree(smoke_run / ".snakemake", work / ".snakemake", dirs_exist_ok=True)
    rules = work / "workflow/rules/tables.smk"
    rules.write_text(rules.read_text().replace('"pblf tables ', '"pblf -q tables '))
    assert "Nothing to be done" in snakemake(*SMOKE, "--dry-run", cwd=work).stdout


def test_runs_of_other_configs_live_beside_it_and_leave_it_intact(smoke_run, tmp_path):
    """Each config's run has its own folder: after the smoke run, a run of another config (its data stage, with
    another subset) and a dry run of config.yaml leave every file of results/smoke as it was, and its audit passes;
    a run of other config files into the smoke folder is refused naming both."""
    work = tmp_path / "wf"
    shutil.copytree(smoke_run, work, symlinks=True)
    before = {path: path.read_bytes() for path in (work / "results/smoke").rglob("*") if path.is_file()}
    (work / "other.yaml").write_text("data: {subset: 150}\n")
    snakemake("--cores", "1", "results/smoke+other/data/split.json", "--configfile", "presets/smoke.yaml", "other.yaml",
              cwd=work)
    assert (work / "results/smoke+other/data/split.json").is_file()
    write_cifar10(tmp_path / "cifar")
    (work / "fixture.yaml").write_text(f"run_name: thesis\ndata: {{root: {tmp_path / 'cifar'}, verify_checksums: false}}\n")
    assert "train" in snakemake("-n", "--configfile", "fixture.yaml", cwd=work).stdout
    assert {path: path.read_bytes() for path in (work / "results/smoke").rglob("*") if path.is_file()} == before
    proc = pblf("audit", "results/smoke", cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (work / "clash.yaml").write_text("run_name: smoke\n")
    proc = snakemake("-n", "--configfile", "presets/smoke.yaml", "clash.yaml", cwd=work, check=False)
    assert proc.returncode == 1 and "results/smoke holds the run of presets/smoke.yaml config.yaml, not of" in proc.stderr


def test_a_change_to_what_the_training_code_does_reruns_training(smoke_run, tmp_path):
    """The training code's fingerprint is a param of rule train: a docstring edit changes nothing, a code change
    plans every training job again (and each run's checkpoint, whose fingerprint includes it, is then stale)."""
    work = tmp_path / "wf"
    shutil.copytree(smoke_run, work, symlinks=True)
    package = tmp_path / "package"
    shutil.copytree(Path(plan.__file__).parent, package / "pblf", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(Path(plan.__file__).parents[1] / "schemas", package / "schemas")  # beside the package, as in workflow/
    model = package / "pblf" / "training" / "model.py"
    model.write_text(model.read_text().replace('"""The target network:', '"""Edited docstring. The target network:'))
    proc = snakemake(*SMOKE, "--dry-run", cwd=work, extra_env={"PYTHONPATH": str(package)})
    assert "Nothing to be done" in proc.stdout
    model.write_text(model.read_text() + "\nWIDTH_CHANGE = True\n")
    proc = snakemake(*SMOKE, "--dry-run", cwd=work, extra_env={"PYTHONPATH": str(package)})
    assert "Params have changed" in proc.stdout
    planned = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("train ")]
    # every run but a search's later iterations, which wait for the proposals the rerun of iteration 0 remakes
    config = load_config([work / "config.yaml", work / "presets/smoke.yaml"])
    first = [path for path in (work / "results/smoke/runs").rglob("metrics.json")
             if not plan.run_id(config, path.parent.relative_to(work / "results/smoke/runs").as_posix()).iteration]
    assert planned and int(planned[0]) == len(first) < len(list((work / "results/smoke/runs").rglob("metrics.json")))


def test_report_leads_with_table_6_2_and_holds_every_table_and_figure(smoke_run):
    snakemake(*SMOKE, "--report", "results/smoke/report.html", cwd=smoke_run)
    text = (smoke_run / "results/smoke/report.html").read_text()
    for name in ("table_6_2.html", "table_B_1.html", "table_B_2.html", "figure_6_1.png", "figure_6_2.png",
                 "figure_6_3.png", "figure_6_4.png", "figure_C_1.png", "figure_C_4.png", "summary.html"):
        assert name in text, f"{name} is not in the report"
    # the front page (report/workflow.rst) embeds the summary page, Table 6.2's full caption, then the workflow
    front = text.index("pblf-summary")
    assert front < text.index("Table 6.2 in full") < text.index("The workflow</h")
    assert text.index('<th colspan=\\"16\\">2 epochs', front) < text.index("Table 6.2 in full")
    assert "System Message" not in text  # no caption or front page that docutils could not read


def test_audit_passes_on_a_fresh_run(smoke_run):
    proc = pblf("audit", "results/smoke", cwd=smoke_run)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "audit passed" in proc.stdout
    assert "results/smoke/data/split.json" in proc.stdout and "checkpoint" not in proc.stderr


def test_a_mailed_results_folder_audits_the_same_and_no_forgery_passes(smoke_run, tmp_path):
    """Copied without the checkout, the smoke run audits clean from another folder; a symbolic link to a forged
    trials.csv outside it, a record that names that file, and a record that names ../../../../etc/passwd each fail
    the audit, naming the link or the record."""
    mailed = tmp_path / "mailed"
    shutil.copytree(smoke_run / "results/smoke", mailed / "smoke", symlinks=True)
    proc = pblf("audit", "smoke", cwd=mailed)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    original = pblf("audit", "results/smoke", cwd=smoke_run)
    assert proc.stdout.splitlines()[-1] == original.stdout.splitlines()[-1].replace("results/smoke", "smoke")
    trials = mailed / "smoke/tables/trials.csv"
    forged = tmp_path / "forged.csv"
    forged.write_text(trials.read_text())
    record = mailed / "smoke/provenance/tables/table_6_2.csv.json"
    honest = record.read_text()
    trials.rename(tmp_path / "trials.csv")
    trials.symlink_to(forged)
    proc = pblf("audit", "smoke", cwd=mailed)
    assert proc.returncode == 1 and "smoke/tables/trials.csv is a symbolic link" in proc.stderr
    trials.unlink()
    (tmp_path / "trials.csv").rename(trials)
    for named in (str(forged), "../../../../etc/passwd"):
        data = json.loads(honest)
        data["inputs"] = [{"path": named, "sha256": data["inputs"][0]["sha256"]}]
        record.write_text(json.dumps(data))
        proc = pblf("audit", "smoke", cwd=mailed)
        assert proc.returncode == 1 and f"{record.relative_to(mailed)}: names {named}, outside smoke" in proc.stderr


def test_batch_bo_proposes_and_trains_its_candidates_in_packs(tmp_path):
    """PBLF-BO in batches (presets/batch-bo.yaml's settings over the smoke preset, one budget's search): the
    iteration proposes two candidates by the Kriging believer, they train as one pack, and the search chooses among
    all four."""
    work = copy_workflow(tmp_path / "wf")
    (work / "batch.yaml").write_text("run_name: batch\nsearch: {bo: {n_acq: 2, iterations: 1}}\n"
                                     "resources: {runs_per_job: 2}\n")
    proc = snakemake("results/batch/select/b1/r0/PBLF-BO.json", "--cores", "2", "--configfile", "presets/smoke.yaml",
                     "batch.yaml", cwd=work)
    results = work / "results/batch"
    batch = read_proposal(results / "search/b1/PBLF-BO/r0/i001/proposal.json")
    assert len(batch) == 2 and not (results / "search/b1/PBLF-BO/r0/i002").exists()
    assert len(read_csv(results / "search/b1/PBLF-BO/r0/evaluations.csv")) == 2 + 2
    log = proc.stdout + proc.stderr
    assert "train-pack" in log and '"iteration":1,"index":1' in log  # the iteration's two runs in one job


def test_audit_of_one_cell(smoke_run):
    proc = pblf("audit", "results/smoke", "--cell", "table_6_2:2:PBLF-BO", cwd=smoke_run)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "runs/repeats/b2/PBLF-BO/r0/s1/metrics.json" in proc.stdout
    assert "runs/repeats/b1/" not in proc.stdout


@pytest.mark.parametrize(
    "target",
    ["results/smoke/runs/repeats/b2/PBLF-RS/r0/s1/metrics.json", "results/smoke/runs/repeats/b1/Standard/r0/s2/checkpoint.pt",
     "results/smoke/data/split.json", "results/smoke/runs/search/b1/PBLF-BO/r0/i001/c00/metrics.json"],
)
def test_audit_fails_naming_a_changed_file(smoke_run, tmp_path, target):
    copy = tmp_path / "wf"
    shutil.copytree(smoke_run, copy, symlinks=True)
    path = copy / target
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    proc = pblf("audit", "results/smoke", cwd=copy)
    assert proc.returncode == 1
    assert target in proc.stderr


def test_audit_fails_when_a_record_is_deleted(smoke_run, tmp_path):
    copy = tmp_path / "wf"
    shutil.copytree(smoke_run, copy, symlinks=True)
    record = copy / "results/smoke/provenance/select/b2/r0/PBLF-BO.json.json"
    record.unlink()
    proc = pblf("audit", "results/smoke", cwd=copy)
    assert proc.returncode == 1
    assert "no provenance record for results/smoke/select/b2/r0/PBLF-BO.json" in proc.stderr


def test_killed_snakemake_resumes_without_retraining(smoke_run, tmp_path):
    work = copy_workflow(tmp_path / "wf")
    kill_when(work, SMOKE, "results/smoke/search/b2/PBLF-BO/r0/i001/proposal.json")  # mid-search
    # A retrained run would have new per-epoch timings; a job that Snakemake reruns only because the kill came
    # between pblf writing metrics.json and Snakemake recording the job as done rewrites the same bytes from its
    # checkpoint (the history, timings included, lives there).
    finished = {p: p.read_bytes() for p in (work / "results/smoke/runs").rglob("metrics.json")}
    assert finished, "nothing had finished before the kill"
    snakemake("--unlock", "--configfile", "presets/smoke.yaml", cwd=work)
    snakemake(*SMOKE, cwd=work)
    assert {p: p.read_bytes() for p in finished} == finished, "a finished candidate was retrained"
    assert (work / "results/smoke/tables/trials.csv").read_bytes() == (smoke_run / "results/smoke/tables/trials.csv").read_bytes()


PRUNED_SEARCHES = ("results/smoke/search/b2/PBLF-BO/r0/evaluations.csv", "results/smoke/search/b2/PBLF-RS/r0/evaluations.csv")


def test_a_pruned_search_killed_mid_search_gives_the_same_evaluations(tmp_path):
    """Low-fidelity search decides from finished runs only: a smoke search with pruning on (the median rule for
    PBLF-BO, successive halving for PBLF-RS), killed after its first promotion and rerun, evaluates exactly what an
    uninterrupted one does."""
    pruned = ("--cores", "2", *PRUNED_SEARCHES, "--configfile", "presets/smoke.yaml", "pruned.yaml")
    runs = {}
    for name in ("uninterrupted", "killed"):
        work = copy_workflow(tmp_path / name)
        (work / "pruned.yaml").write_text("run_name: smoke\nsearch: {pruning: {enabled: true}}\n")
        runs[name] = work
    snakemake(*pruned, cwd=runs["uninterrupted"])
    work = runs["killed"]
    kill_when(work, pruned, "results/smoke/search/b2/PBLF-RS/r0/i001/proposal.json")  # after the first promotion
    snakemake("--unlock", "--configfile", "presets/smoke.yaml", "pruned.yaml", cwd=work)
    snakemake(*pruned, cwd=work)
    for target in PRUNED_SEARCHES:
        assert without_timing(work / target) == without_timing(runs["uninterrupted"] / target), target
    rs = read_csv(work / PRUNED_SEARCHES[1])
    assert {row["source"] for row in rs} == {"random", "promoted"}
    assert {row["status"] for row in rs} >= {"promoted"}
    assert all(int(row["epochs"]) < 2 for row in rs if row["status"] in ("stopped", "promoted"))


def test_two_searches_per_method_give_a_method_level_comparison(tmp_path):
    """search.repeats: 2 on the smoke preset (one budget; the convergence and generalisation stages, which rerun
    search 0's choice, left out for time): every method searches twice, search 1 with its own training seed and
    proposals, each choice is retrained with the repeat seeds, and Table 6.2 has a row per search with the
    method-level spread and comparison on the first. The audit follows every run."""
    work = copy_workflow(tmp_path / "wf")
    (work / "two.yaml").write_text("run_name: smoke\nbudgets: [1]\nsearch: {repeats: 2}\nconvergence: {enabled: false}\n"
                                   "generalisation: {enabled: false}\n")
    tables = [f"results/smoke/tables/{name}.{ext}" for name in ("table_6_2", TIMINGS) for ext in ("csv", "md")]
    proc = snakemake("--cores", "2", *tables, "--configfile", "presets/smoke.yaml", "two.yaml", cwd=work)
    assert "Table 6.2: results/smoke/tables/table_6_2.md" in proc.stdout  # a finished run says where the answer is
    results = work / "results/smoke"
    trials = read_csv(results / "tables" / "trials.csv")
    assert sorted({(row["method"], row["search"]) for row in trials}) == \
        [(m, str(r)) for m in sorted(methods()) for r in ((0,) if m == "Standard" else (0, 1))]
    first, second = (read_csv(results / f"search/b1/PBLF-BO/r{r}/evaluations.csv") for r in (0, 1))
    assert [row["search"] for row in second] == ["1"] * len(first)
    assert [row["w1"] for row in first] != [row["w1"] for row in second]  # its own proposals
    seeds = {json.loads(path.read_text())["run"]["seed"] for path in (results / "runs/search/b1/PBLF-RS/r1").rglob("metrics.json")}
    assert seeds == {1000}
    rows = {(row["method"], row["search"]): row for row in read_csv(results / "tables/table_6_2.csv")}
    for method in ("PBLF-BO", "PBLF-RS", "PBLF-HG"):
        assert rows[method, "0"]["searches"] == "2" and rows[method, "0"]["method_n"] == "2"
        assert rows[method, "0"]["search_std"] != "" and rows[method, "0"]["method_diff"] != ""
        assert rows[method, "1"]["searches"] == "" and rows[method, "1"]["method_n"] == ""
    assert "Δ vs Standard (method)" in (results / "tables/table_6_2.md").read_text().splitlines()[0]
    timings = read_csv(results / f"tables/{TIMINGS}.csv")
    assert len(timings) == 3 * 2 and {row["search"] for row in timings} == {"0", "1"}
    proc = pblf("audit", "results/smoke", cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
