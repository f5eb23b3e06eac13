"""Provenance records: where they live, what they hold, and that the audit catches a changed input."""

from __future__ import annotations

import json
from pathlib import Path

from pblf.audit import walk
from pblf.cli import main
from pblf.core.provenance import read_record, record_path
from conftest import stage_config_in


def test_record_path_mirrors_the_results_layout(tmp_path):
    results = tmp_path / "results"
    assert record_path(results / "tables" / "t.csv", results) == results / "provenance" / "tables" / "t.csv.json"
    outside = tmp_path / "elsewhere" / "x.json"
    assert record_path(outside, results) == outside.with_name("x.json.prov.json")


def select_standard(results: Path, budget: int = 3) -> Path:
    """Standard's selection, from a stage config inside ``results`` with its record (as the workflow makes them)."""
    given = results.parent / "config.yaml"
    given.write_text("standard: {b2: 1}\n")
    config = stage_config_in(results, given, "select")
    out = results / "select" / f"b{budget}"
    code = main(["--results", str(results), "select-standard", "--config", str(config), "--budget", str(budget),
                 "--out", str(out)])
    assert code == 0
    return out / "Standard.json"


def test_a_command_writes_a_complete_record(tmp_path):
    results = tmp_path / "results"
    out = select_standard(results)
    record = read_record(out, results)
    assert record["outputs"][0]["path"] == "select/b3/Standard.json"  # relative to the results folder
    assert record["inputs"] == [{"path": "config/select.json", "sha256": record["inputs"][0]["sha256"]}]
    assert len(record["outputs"][0]["sha256"]) == 64
    assert record["command"][:2] == ["pblf", "--results"] and record["stage"] == "select-standard"
    for key in ("git_commit", "git_dirty"):
        assert key in record["code"]
    env = record["environment"]
    assert env["python"] and env["host"] and "packages" in env and "slurm_job_id" in env
    assert record["started"] <= record["ended"]


def test_audit_follows_inputs_and_catches_a_change(tmp_path):
    results = tmp_path / "results"
    selection = select_standard(results)
    # a table made from the selection, through a record that lists it as input
    from pblf.core.files import read_json, track, write_text
    from pblf.core.provenance import Outcome, now, write_records

    table = results / "tables" / "table.csv"
    with track() as io:
        read_json(selection)
        write_text("x\n", table)
    write_records(io, Outcome(), "test", ["test"], now(), results)
    audit = walk(results, [table])
    assert audit.ok, audit.problems
    assert any(str(selection) in line for line in audit.lines)

    data = json.loads(selection.read_text())
    data["budget"] = 4
    selection.write_text(json.dumps(data))
    audit = walk(results, [table])
    assert not audit.ok
    assert any(str(selection) in problem for problem in audit.problems)
