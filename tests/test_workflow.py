"""The Snakemake workflow parses, validates its config before any job, and passes the linter."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_cifar10
from workflow_helpers import copy_workflow, snakemake


#: Rules every config plans in its first wave (before any search checkpoint has run): the data, the first proposal
#: of each search, the tables, figures and Appendix C that wait for them.
FIRST_WAVE = {"split", "stage_config", "history", "propose", "select_standard", "trajectories", "figure_c", "trials",
              "tables", "reproduction", "timings", "figure_curves", "figure_scatter", "all"}


def with_cifar10(work: Path, tmp_path: Path) -> tuple[str, ...]:
    """Config arguments that point config.yaml's data set at a small CIFAR-10-shaped fixture: the workflow checks
    the data set before planning, and a test machine has no CIFAR-10."""
    write_cifar10(tmp_path / "cifar")
    (work / "fixture.yaml").write_text(f"data: {{root: {tmp_path / 'cifar'}, verify_checksums: false}}\n")
    return ("--configfile", "fixture.yaml")


@pytest.mark.parametrize("preset", [None, "presets/demo.yaml", "presets/smoke.yaml"])
def test_dry_run_plans_every_stage(preset, tmp_path):
    work = copy_workflow(tmp_path / "wf")
    args = ["-n", "--quiet", "rules", *(("--configfile", preset) if preset else with_cifar10(work, tmp_path))]
    text = snakemake(*args, cwd=work).stdout
    stats = text[text.index("Job stats:"):]
    planned = {line.split()[0] for line in stats.splitlines()[3:] if line.strip() and line.split()[-1].isdigit()}
    assert FIRST_WAVE <= planned, FIRST_WAVE - planned
    assert any(rule == "train" or rule.startswith("train_") for rule in planned)


def test_lint_reports_nothing(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    proc = snakemake("--lint", *with_cifar10(work, tmp_path), cwd=work)
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_invalid_config_stops_before_any_job(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    (work / "bad.yaml").write_text("data:\n  normalisation: imagenet\n")
    proc = snakemake("--cores", "1", "--configfile", "bad.yaml", cwd=work, check=False)
    assert proc.returncode != 0
    assert "config key data.normalisation" in proc.stderr
    assert not (work / "results").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_stops_before_any_job(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    (work / "cuda.yaml").write_text("device: cuda\n")
    proc = snakemake("--cores", "1", "--configfile", "presets/smoke.yaml", "cuda.yaml", cwd=work, check=False)
    assert proc.returncode != 0
    assert 'device: "cuda" but torch sees no GPU' in proc.stderr and "Traceback" not in proc.stderr
    assert not (work / "results").exists()
    # a dry run plans the jobs anyway: on a login node they would run elsewhere
    snakemake("-n", "--quiet", "rules", "--configfile", "presets/smoke.yaml", "cuda.yaml", cwd=work)


def test_a_duplicated_key_in_a_config_file_stops_before_any_job(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    (work / "dup.yaml").write_text("search:\n  bo: {iterations: 3}\nsearch:\n  rs: {samples: 5}\n")
    proc = snakemake("-n", "--configfile", "presets/smoke.yaml", "dup.yaml", cwd=work, check=False)
    assert proc.returncode != 0
    assert "dup.yaml: key 'search' appears twice, on lines 1 and 3" in proc.stdout + proc.stderr


def test_a_missing_data_set_stops_before_any_job_even_in_a_dry_run(tmp_path):
    """config.yaml's data set (CIFAR-10) absent: the dry run and the real run both stop while Snakemake parses the
    workflow, with pblf's one message that names the folder and the command that fetches it, and no traceback."""
    work = copy_workflow(tmp_path / "wf")
    (work / "nodata.yaml").write_text(f"data: {{root: {tmp_path / 'nowhere'}}}\n")
    for mode in ("-n", "--cores"):
        args = ("-n",) if mode == "-n" else ("--cores", "2")
        proc = snakemake(*args, "--configfile", "nodata.yaml", cwd=work, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 1 and "pblf: error: CIFAR-10 not found" in output, output
        assert "torchvision.datasets.CIFAR10" in output and "Traceback" not in output and "WorkflowError" not in output
        assert not (work / "results").exists() and not (work / "logs").exists()


def test_a_failing_jobs_own_error_reaches_the_console(tmp_path):
    """Snakemake prints the failed job's log (profiles/default: show-failed-logs), so the pblf line that says what is
    wrong with the data set is on the console, not only in logs/: here files that are there and readable (so the
    check before the first job lets them through, checksums off) but are not CIFAR-10 batches."""
    work = copy_workflow(tmp_path / "wf")
    folder = tmp_path / "garbled" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta"):
        (folder / name).write_bytes(b"not a pickle")
    (work / "garbled.yaml").write_text(f"data: {{root: {tmp_path / 'garbled'}, verify_checksums: false}}\n")
    proc = snakemake("--cores", "1", "results/garbled/data/split.json", "--configfile", "garbled.yaml", cwd=work,
                     check=False)
    assert proc.returncode != 0
    assert "pblf split: error: CIFAR-10 file" in proc.stdout + proc.stderr
    assert "is not a CIFAR-10 batch" in proc.stdout + proc.stderr
