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
