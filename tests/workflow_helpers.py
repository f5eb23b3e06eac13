"""Running Snakemake from tests: the venv's snakemake and pblf on PATH, a working copy of the repository."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: What a run of the workflow needs from the repository (results/, logs/ and .snakemake/ are per copy).
WORKFLOW_FILES = ("Snakefile", "config.yaml", "workflow", "presets", "report", "envs", "profiles")


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def snakemake(*args: str, cwd: Path = ROOT, check: bool = True, timeout: float = 1800,
              extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / "snakemake"), *args], cwd=cwd, env=env(**(extra_env or {})), capture_output=True, text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def copy_workflow(dest: Path) -> Path:
    """A fresh working directory with the workflow, so a test run does not touch the checkout's results/."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    return dest


#: The columns of a search's evaluations.csv that measure the machine (an evaluation's ``seconds`` and where they were
#: measured): the only cells of a search CSV that differ between two runs of the same config.
TIMING_COLUMNS = frozenset({"seconds", "measured_on"})


def without_timing(path: Path) -> str:
    """A search CSV's text with its measured cells blanked, for comparing two runs."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    blank = {i for i, name in enumerate(rows[0]) if name in TIMING_COLUMNS} if rows else set()
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[("" if i in blank else c) for i, c in enumerate(row)]
                                                    for row in rows])
    return out.getvalue()
