"""A newcomer's first hour, in the order the README gives it: the demo, then the smoke preset, then a look at what
the thesis run would do. Each run lives in its own results folder, so the later ones leave the demo's results byte
for byte as they were, and both audits pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import write_cifar10
from workflow_helpers import BIN, copy_workflow, env, snakemake

pytestmark = pytest.mark.slow


def pblf(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "pblf"), *args], cwd=cwd, env=env(), capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, f"pblf {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def files(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_demo_then_smoke_then_a_dry_run_of_the_thesis_leave_the_demo_intact(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    demo = pblf("run", "demo", "--", "--cores", "2", cwd=work)  # what `make demo` runs after the install
    assert "Done. The answer:" in demo.stdout and "results/demo/summary.html" in demo.stdout
    before = files(work / "results/demo")
    pblf("run", "smoke", "--", "--cores", "2", cwd=work)
    write_cifar10(tmp_path / "cifar")
    (work / "cifar.yaml").write_text(f"run_name: thesis\ndata: {{root: {tmp_path / 'cifar'}, verify_checksums: false}}\n")
    assert "train" in snakemake("-n", "--configfile", "cifar.yaml", cwd=work).stdout
    assert files(work / "results/demo") == before
    assert sorted(path.name for path in (work / "results").iterdir()) == ["demo", "smoke"]  # a dry run writes none
    for name in ("demo", "smoke"):
        assert "audit passed" in pblf("audit", f"results/{name}", cwd=work).stdout
