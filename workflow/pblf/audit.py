"""``pblf audit``: walk from every table and figure back to the data set, verifying every checksum on the way.

The walk follows provenance records (:mod:`pblf.provenance`): a file's record names the inputs it was made from,
each with the sha256 it had then; each input that the pipeline made has a record of its own, down to the split
record, whose data-set checksums are recomputed from the data set itself. Anything that does not match (a changed
byte in a metrics file, a checkpoint or the split, a deleted record, a missing input) is a problem that names the
file; the audit passes only when there is none.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pblf.errors import InputError
from pblf.files import file_digest, read_csv, read_json
from pblf.layout import METRICS, Layout, RunId
from pblf.names import FIGURE_FORMATS, FIGURES, METHODS, TABLE_FORMATS, TABLES
from pblf.provenance import STORE, Outcome, read_record

#: Exit status of an audit that found a problem (a user error, such as a bad --cell, exits 2).
EXIT_AUDIT_FAILED = 1


@dataclass
class Audit:
    """The outcome of a walk: the chain as printable lines, and the problems found."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def default_targets(results: Path) -> list[Path]:
    """Every table and figure of a results folder (those of :mod:`pblf.names` that exist)."""
    layout = Layout(str(results))
    files = [layout.table(name, fmt) for name in TABLES for fmt in TABLE_FORMATS]
    files += [layout.figure(figure, fmt) for figure in FIGURES for fmt in FIGURE_FORMATS]
    return [Path(p) for p in files if Path(p).is_file()]


def parse_cell(cell: str) -> tuple[str, int, str]:
    """``TABLE:BUDGET:METHOD`` such as ``table_6_2:20:PBLF-BO``."""
    pattern = f"({'|'.join(TABLES)}):(\\d+):({'|'.join(map(re.escape, METHODS))})"
    match = re.fullmatch(pattern, cell)
    if not match:
        raise InputError(f"--cell {cell!r}: expected TABLE:BUDGET:METHOD with TABLE one of {', '.join(TABLES)} and "
                         f"METHOD one of {', '.join(METHODS)}, e.g. table_6_2:20:PBLF-BO")
    return match.group(1), int(match.group(2)), match.group(3)


def cell_filter(budget: int, method: str) -> Callable[[Path], bool]:
    """Keep, when walking down from trials.csv, only the repeat runs of one (budget, method): a run is known by the
    identity its ``metrics.json`` records, not by its folder. A file that cannot be read is kept, so the walk
    reports it."""

    def keep(path: Path) -> bool:
        if path.name != METRICS or not path.is_file():
            return True
        try:
            run = RunId.from_dict(read_json(path)["run"])
        except (InputError, KeyError, TypeError, ValueError):
            return True
        return run.kind != "repeat" or (run.budget, run.method) == (budget, method)

    return keep


def cell_rows(results: Path, table: str, budget: int, method: str) -> list[dict[str, str]]:
    return [r for r in read_csv(Layout(str(results)).table(table, "csv"))
            if int(float(r["budget_epochs"])) == budget and r["method"] == method]


def _verify_dataset(split_path: Path, record: dict[str, Any]) -> Iterator[str]:
    """Recompute the data-set checksums the split was made from."""
    from pblf.data import DataError, read_dataset

    split = read_json(split_path)
    try:
        raw = read_dataset(record["config"]["data"])
    except (DataError, KeyError) as err:
        yield f"{split_path}: cannot re-read the data set to verify it: {err}"
        return
    if raw.checksums != split["checksums"]:
        yield f"{split_path}: the data set's checksums {raw.checksums} differ from the recorded {split['checksums']}"


def walk(results: str | Path, targets: list[Path] | None = None,
         keep: Callable[[Path], bool] = lambda _: True) -> Audit:
    """Verify ``targets`` (default: every table and figure) and everything they were made from."""
    results = Path(results)
    audit = Audit()

    def locate(recorded: str) -> Path:
        """Recorded paths are relative to the folder the pipeline ran in, the one that holds ``results``."""
        path = Path(recorded)
        return path if path.is_absolute() else results.parent / path

    seen: set[str] = set()
    targets = targets if targets is not None else default_targets(results)
    if not targets:
        audit.problems.append(f"{results}: no tables or figures to audit")

    def visit(path: Path, depth: int, expected_sha: str | None) -> None:
        key = str(path)
        indent = "  " * depth
        if not path.is_file():
            audit.problems.append(f"{path}: missing (it is an input of the file above it in the chain)")
            audit.lines.append(f"{indent}{path}  MISSING")
            return
        actual = file_digest(path)
        audit.checked += 1
        if expected_sha is not None and actual != expected_sha:
            audit.problems.append(f"{path}: sha256 {actual[:12]}… differs from the recorded {expected_sha[:12]}…")
            audit.lines.append(f"{indent}{path}  CHANGED")
        if key in seen:
            return
        seen.add(key)
        try:
            record = read_record(path, results)
        except FileNotFoundError as err:
            if _inside(path, results):
                audit.problems.append(str(err))
                audit.lines.append(f"{indent}{path}  NO RECORD")
            else:
                audit.lines.append(f"{indent}{path}  (outside {results}, checksum only)")
            return
        own = {str(locate(entry["path"])): entry["sha256"] for entry in record["outputs"]}
        if own.get(key) not in (None, actual):
            audit.problems.append(f"{path}: sha256 differs from its own provenance record")
            audit.lines.append(f"{indent}{path}  CHANGED SINCE RECORDED")
        for other, sha in sorted(own.items()):
            if other != key and (not Path(other).is_file() or file_digest(other) != sha):
                audit.problems.append(f"{other}: missing or changed since it was recorded (a sibling output of {path})")
        code = record.get("code", {})
        audit.lines.append(
            f"{indent}{path}  <- pblf {record.get('stage', '?')}"
            f" [{(code.get('git_commit') or 'no git')[:10]}{'+dirty' if code.get('git_dirty') else ''},"
            f" {record['environment'].get('device_name')}, {record['ended']}]"
        )
        if "split_of" in record:
            for problem in _verify_dataset(path, record):
                audit.problems.append(problem)
        for entry in record["inputs"]:
            if keep(locate(entry["path"])):
                visit(locate(entry["path"]), depth + 1, entry["sha256"])

    for target in targets:
        visit(Path(target), 0, None)
    return audit


def _inside(path: Path, results: Path) -> bool:
    try:
        path.resolve().relative_to(results.resolve())
    except ValueError:
        return False
    return STORE not in path.parts


def stage_audit(results_dir: Path, cell: str | None = None, file: list[Path] | None = None,
                quiet: bool = False) -> Outcome:
    """``pblf audit``: print the chain of every table and figure (or of one cell group, or of the given files),
    its problems on stderr, and a verdict; exit 1 when anything does not verify."""
    keep = None
    targets = list(file) if file else None
    if cell:
        table, budget, method = parse_cell(cell)
        for row in cell_rows(results_dir, table, budget, method):
            print(f"{table} [{budget} epochs, {method}]: " + ", ".join(f"{k}={v}" for k, v in row.items()))
        targets = [Path(Layout(str(results_dir)).table(table, "csv"))]
        keep = cell_filter(budget, method)
    audit = walk(results_dir, targets, keep) if keep else walk(results_dir, targets)
    if not quiet:
        print("\n".join(audit.lines))
    for problem in audit.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    verdict = "passed" if audit.ok else f"FAILED with {len(audit.problems)} problem(s)"
    print(f"audit {verdict}: {audit.checked} checksums verified under {results_dir}")
    return Outcome(exit_code=0 if audit.ok else EXIT_AUDIT_FAILED)
