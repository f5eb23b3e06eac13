"""The Snakemake workflow parses, validates its config before any job, and passes the linter."""

from __future__ import annotations

import pytest

from workflow_helpers import copy_workflow, snakemake


#: Rules every config plans in its first wave (before any search checkpoint has run): the data, the first proposal
#: of each search, the tables, figures and Appendix C that wait for them.
FIRST_WAVE = {"split", "stage_config", "history", "propose", "select_standard", "trajectories", "figure_c", "trials",
              "tables", "reproduction", "timings", "figure_curves", "figure_scatter", "all"}


@pytest.mark.parametrize("preset", [None, "presets/demo.yaml", "presets/smoke.yaml"])
def test_dry_run_plans_every_stage(preset, tmp_path):
    work = copy_workflow(tmp_path / "wf")
    args = ["-n", "--quiet", "rules"] + (["--configfile", preset] if preset else [])
    text = snakemake(*args, cwd=work).stdout
    stats = text[text.index("Job stats:"):]
    planned = {line.split()[0] for line in stats.splitlines()[3:] if line.strip() and line.split()[-1].isdigit()}
    assert FIRST_WAVE <= planned, FIRST_WAVE - planned
    assert any(rule == "train" or rule.startswith("train_") for rule in planned)


def test_lint_reports_nothing(tmp_path):
    proc = snakemake("--lint", cwd=copy_workflow(tmp_path / "wf"))
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


def test_a_failing_jobs_own_error_reaches_the_console(tmp_path):
    """Snakemake prints the failed job's log (profiles/default: show-failed-logs), so the pblf line that names the
    missing data set and the command that fetches it is on the console, not only in logs/."""
    work = copy_workflow(tmp_path / "wf")
    (work / "nodata.yaml").write_text(f"data: {{root: {tmp_path / 'nowhere'}}}\n")
    proc = snakemake("--cores", "1", "results/data/split.json", "--configfile", "nodata.yaml", cwd=work, check=False)
    assert proc.returncode != 0
    assert "pblf split: error: CIFAR-10 not found" in proc.stdout + proc.stderr
    assert "torchvision.datasets.CIFAR10" in proc.stdout + proc.stderr
