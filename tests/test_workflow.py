"""The Snakemake workflow parses, validates its config before any job, and passes the linter."""

from __future__ import annotations

import pytest

from workflow_helpers import copy_workflow, snakemake


@pytest.mark.parametrize("preset", [None, "presets/demo.yaml", "presets/smoke.yaml"])
def test_dry_run(preset, tmp_path):
    work = copy_workflow(tmp_path / "wf")
    args = ["-n", "--quiet", "rules"] + (["--configfile", preset] if preset else [])
    snakemake(*args, cwd=work)


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
