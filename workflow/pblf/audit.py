"""``pblf audit``: walk from every table and figure back to the data set, verifying every checksum on the way.

The walk follows provenance records (:mod:`pblf.core.provenance`): a file's record names the inputs it was made from,
each with the sha256 it had then; each input that the pipeline made has a record of its own, down to the split
record, whose data-set checksums are recomputed from the data set itself. Anything that does not match (a changed
byte in a metrics file, a checkpoint or the split, a deleted record, a missing input, a file or record that is not
valid JSON) is a problem that names the file; the audit passes only when there is none.

Results folders are what people send each other to audit, so nothing in one is trusted to act on, and trust ends at
the results folder and the data set: a record is checked to have the shape of a record before any field of it is
used; every path it names must be relative to the results folder and stay inside it (no absolute path, no ``..``,
no symbolic link on the way, none into the provenance store), or the audit fails naming the record, so no file
outside the results folder is ever opened; a file without a record fails too, so every chain ends at the split,
whose data set is located by the user's ``--data-root`` (never by a path or setting read from the folder) and
verified by hashing its files, without opening (let alone unpickling) them. Since records name files relative to
the results folder, a folder copied anywhere audits the same.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pblf.core.errors import InputError, UserError
from pblf.core.files import file_digest, read_csv, read_json
from pblf.core.layout import GENERALISATION, METRICS, Layout, RunId, find_run
from pblf.core.names import FIGURE_FORMATS, FIGURES, REPRODUCTION_TABLES, TABLE_FORMATS, TABLES, TIMINGS
from pblf.core.provenance import (
    RECORD_VERSION, STACK_KEYS, STORE, Outcome, code_fingerprint, environment, read_record, record_path, stack,
)
from pblf.search.registry import methods

#: Exit status of an audit that found a problem (a user error, such as a bad --cell, exits 2).
EXIT_AUDIT_FAILED = 1


@dataclass
class Audit:
    """The outcome of a walk: the chain as printable lines, and the problems found."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: facts worth knowing that are not failures (e.g. runs trained by other training code than this checkout's)
    notes: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def default_targets(results: Path) -> list[Path]:
    """Every table and figure of a results folder (those of :mod:`pblf.core.names` that exist), and the summary."""
    layout = Layout(str(results))
    files = [layout.table(name, fmt) for name in (*TABLES, *REPRODUCTION_TABLES, TIMINGS, GENERALISATION)
             for fmt in TABLE_FORMATS]
    files += [layout.figure(figure, fmt) for figure in FIGURES for fmt in FIGURE_FORMATS] + [layout.summary()]
    return [Path(p) for p in files if Path(p).is_file()]


def parse_cell(cell: str) -> tuple[str, int, str]:
    """``TABLE:BUDGET:METHOD`` such as ``table_6_2:20:PBLF-BO``."""
    pattern = f"({'|'.join(TABLES)}):(\\d+):({'|'.join(map(re.escape, methods()))})"
    match = re.fullmatch(pattern, cell)
    if not match:
        raise InputError(f"--cell {cell!r}: expected TABLE:BUDGET:METHOD with TABLE one of {', '.join(TABLES)} and "
                         f"METHOD one of {', '.join(methods())}, e.g. table_6_2:20:PBLF-BO")
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


def _verify_dataset(split_path: Path, data_root: Path) -> Iterator[str]:
    """Recompute, under ``data_root``, the checksums of the data set the split was made from, and compare."""
    from pblf.training.data import DATASETS, dataset_checksums

    try:
        split = read_json(split_path)
        name, recorded = split["dataset"], split["checksums"]
    except (InputError, KeyError, TypeError) as err:
        yield f"{split_path}: not a split record ({err})"
        return
    if name not in DATASETS:
        yield f"{split_path}: names data set {name!r}, not one of {', '.join(DATASETS)}"
        return
    try:
        actual = dataset_checksums(name, data_root)
    except UserError as err:
        yield f"{split_path}: cannot verify the data set it was made from: {err} (give its folder with --data-root)"
        return
    if actual != recorded:
        yield f"{split_path}: the data set's checksums {actual} differ from the recorded {recorded}"


def _record_problem(record: Any) -> str | None:
    """What makes ``record`` not a provenance record (None when it is one): checked before any field is used."""
    if not isinstance(record, dict):
        return "it is not a JSON object"
    if record.get("version") != RECORD_VERSION:
        return (f"its version {record.get('version')!r} is not {RECORD_VERSION} (older records name files relative "
                "to the folder the pipeline ran in, which this audit does not follow): rerun the pipeline into a "
                "new results folder")
    for key in ("inputs", "outputs"):
        entries = record.get(key)
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str)
                and re.fullmatch(r"[0-9a-f]{64}", e["sha256"]) for e in entries):
            return f"its {key!r} are not a list of {{path, sha256}}"
    for key, kind in (("code", dict), ("environment", dict), ("ended", str)):
        if not isinstance(record.get(key), kind):
            return f"its {key!r} is missing or not a {kind.__name__}"
    return None


def walk(results: str | Path, targets: list[Path] | None = None,
         keep: Callable[[Path], bool] = lambda _: True, data_root: Path = Path("data")) -> Audit:
    """Verify ``targets`` (default: every table and figure) and everything they were made from, down to the data set
    under ``data_root``."""
    walker = _Walker(Path(results), keep, data_root)
    targets = targets if targets is not None else default_targets(walker.results)
    if not targets:
        walker.audit.problems.append(f"{results}: no tables or figures to audit")
    for target in targets:
        path = walker.inside(Path(target), f"{target} (a file to audit)")
        if path is not None:
            walker.visit(path, 0, None)
    if walker.other_code:
        walker.audit.notes.append(
            f"{len(walker.other_code)} run(s) were trained by other training code than this checkout's "
            f"(pblf.core.provenance.code_fingerprint), e.g. {walker.other_code[0]}: their numbers come from that "
            "code, as its record's git commit says")
    if walker.other_stack:
        path, differences = walker.other_stack[0]
        walker.audit.notes.append(
            f"{len(walker.other_stack)} run(s) were trained on another processor or software stack than this "
            f"machine's (pblf.core.provenance.stack; marked OTHER STACK above), e.g. {path}: {differences}. Their "
            "files verify; retrained here, they would give other bits (the same code and inputs give bit-equal "
            "results only on the same processor and stack)")
    return walker.audit


@dataclass
class _Walker:
    """One walk down the chains of records: :meth:`visit` checks a file and follows its record's inputs, each step
    a method of its own; :meth:`flag` is the one place a problem and its mark on the printed chain are noted."""

    results: Path
    keep: Callable[[Path], bool]
    data_root: Path
    audit: Audit = field(default_factory=Audit)
    seen: set[str] = field(default_factory=set)
    other_code: list[Path] = field(default_factory=list)
    current_code: str = field(default_factory=code_fingerprint)
    #: runs trained on another processor or stack, with what differs
    other_stack: list[tuple[Path, str]] = field(default_factory=list)
    #: this machine's stack, per device (computed when first needed: it imports torch)
    current_stacks: dict[str | None, dict[str, Any]] = field(default_factory=dict)

    def inside(self, path: Path, named_by: str) -> Path | None:
        """``path`` as a path under the results folder, if it stays inside it: no symbolic link from the folder down
        to it, and not in the provenance store; otherwise a problem naming who named it, and None (nothing is
        opened)."""
        relative = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(self.results)))
        if relative.parts[:1] in ((), ("..",), (".",)):
            self.audit.problems.append(f"{named_by}: {path} is outside {self.results}, where the audit's trust ends")
            return None
        link = self.link_on_the_way(relative)
        if link is not None:
            self.audit.problems.append(f"{named_by}: {link} is a symbolic link; a results folder holds files, and a "
                                       "link could make it vouch for any file")
            return None
        if relative.parts[0] == STORE:
            self.audit.problems.append(f"{named_by}: {path} is a provenance record, not a result")
            return None
        return self.results / relative

    def link_on_the_way(self, relative: Path) -> Path | None:
        """The first symbolic link on the way from the results folder down to ``relative`` under it, if any."""
        for depth in range(1, len(relative.parts) + 1):
            step = self.results.joinpath(*relative.parts[:depth])
            if step.is_symlink():
                return step
        return None

    def locate(self, recorded: str, record: Path) -> Path | None:
        """A path a record names, which must be relative to the results folder and stay in it (:meth:`inside`)."""
        named = Path(recorded)
        if named.is_absolute() or ".." in named.parts:
            self.audit.problems.append(f"{record}: names {recorded}, outside {self.results}, where the audit's trust "
                                       "ends (the records of a run name files relative to its results folder)")
            return None
        return self.inside(self.results / named, str(record))

    def flag(self, path: Path, depth: int, mark: str, problem: str | None) -> None:
        if problem is not None:
            self.audit.problems.append(problem)
        self.audit.lines.append(f"{'  ' * depth}{path}  {mark}")

    def visit(self, path: Path, depth: int, expected_sha: str | None) -> None:
        if not path.is_file():
            return self.flag(path, depth, "MISSING", f"{path}: missing (it is an input of the file above it in the "
                                                      "chain)")
        actual = self.checksum(path, depth, expected_sha)
        if str(path) in self.seen:
            return None
        self.seen.add(str(path))
        self.read_content(path, depth)
        own = record_path(path, self.results)
        record = self.record(path, own, depth)
        if record is None:
            return None
        self.check_outputs(path, own, depth, record, actual)
        code = record.get("code", {})
        differences = self.stack_differences(record["environment"]) if path.name == METRICS else None
        self.audit.lines.append(
            f"{'  ' * depth}{path}  <- pblf {record.get('stage', '?')}"
            f" [{(code.get('git_commit') or 'no git')[:10]}{'+dirty' if code.get('git_dirty') else ''},"
            f" {record['environment'].get('device_name')}, {record['ended']}]"
            + (f"  OTHER STACK ({differences})" if differences else "")
        )
        if differences:
            self.other_stack.append((path, differences))
        if "split_of" in record and path.suffix == ".json":  # the split itself, not the arrays it shares a record with
            self.audit.problems.extend(_verify_dataset(path, self.data_root))
        for entry in record["inputs"]:
            found = self.locate(entry["path"], own)
            if found is not None and self.keep(found):
                self.visit(found, depth + 1, entry["sha256"])
        return None

    def stack_differences(self, recorded: dict[str, Any]) -> str:
        """How a run's recorded stack differs from this machine's ("" when it does not), as "key: then, here"."""
        device = recorded.get("device")
        if device not in self.current_stacks:
            import torch  # noqa: F401  (environment() reads torch's versions and threads only once it is imported)

            self.current_stacks[device] = stack(environment(device))
        here, then = self.current_stacks[device], stack(recorded)
        return "; ".join(_difference(key, then[key], here[key]) for key in STACK_KEYS if then[key] != here[key])

    def checksum(self, path: Path, depth: int, expected_sha: str | None) -> str:
        """The file's sha256, compared with what the record above it says."""
        actual = file_digest(path)
        self.audit.checked += 1
        if expected_sha is not None and actual != expected_sha:
            self.flag(path, depth, "CHANGED", f"{path}: sha256 {actual[:12]}… differs from the recorded "
                                              f"{expected_sha[:12]}…")
        return actual

    def read_content(self, path: Path, depth: int) -> None:
        """A JSON file of the results must parse; a run's metrics note the training code it was trained with."""
        if path.suffix != ".json":
            return
        try:
            content = read_json(path)
        except InputError as err:
            return self.flag(path, depth, "NOT JSON", f"{path}: {err}")
        if path.name == METRICS and isinstance(content, dict) \
                and content.get("training_code") not in (None, self.current_code):
            self.other_code.append(path)

    def record(self, path: Path, own: Path, depth: int) -> dict[str, Any] | None:
        """The file's provenance record (at ``own``), checked in shape before any field is used (None: nothing to
        follow)."""
        link = self.link_on_the_way(own.relative_to(self.results))
        if link is not None:
            self.flag(path, depth, "BAD RECORD", f"{own}: {link} is a symbolic link; a record must be a file of the "
                                                 "results folder")
            return None
        try:
            record = read_record(path, self.results)
        except FileNotFoundError as err:
            self.flag(path, depth, "NO RECORD", str(err))
            return None
        except InputError as err:
            self.flag(path, depth, "BAD RECORD", f"{own}: the record of {path} is unreadable: {err}")
            return None
        problem = _record_problem(record)
        if problem:
            self.flag(path, depth, "BAD RECORD", f"{own}: the record of {path} is damaged: {problem}")
            return None
        return record

    def check_outputs(self, path: Path, own: Path, depth: int, record: dict[str, Any], actual: str) -> None:
        """The file equals what its own record (at ``own``) says, and so do the other outputs of the same record."""
        located = [(self.locate(entry["path"], own), entry["sha256"]) for entry in record["outputs"]]
        recorded = {str(found): sha for found, sha in located if found is not None}
        if str(path) not in recorded:
            self.flag(path, depth, "NOT ITS RECORD", f"{own}: does not name {path} among its outputs")
        elif recorded[str(path)] != actual:
            self.flag(path, depth, "CHANGED SINCE RECORDED", f"{path}: sha256 differs from its own provenance record")
        for other, sha in sorted(recorded.items()):
            if other != str(path) and (not Path(other).is_file() or file_digest(other) != sha):
                self.audit.problems.append(f"{other}: missing or changed since it was recorded (a sibling output of "
                                           f"{path})")


def _difference(key: str, then: Any, here: Any) -> str:
    """One stack key that differs, as the audit prints it: for the processor's features, the ones only one side
    has (the full lists are in the records)."""
    if isinstance(then, list) and isinstance(here, list):
        only_then, only_here = sorted(set(then) - set(here)), sorted(set(here) - set(then))
        return f"{key}: {' '.join(only_then) or 'none'} only then, {' '.join(only_here) or 'none'} only here"
    return f"{key}: {'not recorded' if then is None else then}, here {here}"


def stage_audit(results_dir: Path, cell: str | None = None, file: list[Path] | None = None,
                data_root: Path = Path("data"), quiet: bool = False) -> Outcome:
    """``pblf audit``: print the chain of every table and figure (or of one cell group, or of the given files),
    its problems on stderr, and a verdict; exit 1 when anything does not verify."""
    results_dir = find_run(Path(results_dir))
    keep: Callable[[Path], bool] = lambda _: True
    targets = list(file) if file else None
    if cell is not None:
        table, budget, method = parse_cell(cell)
        rows = cell_rows(results_dir, table, budget, method)
        if not rows:
            raise InputError(f"--cell {cell}: {table} has no row for {method} at {budget} epochs")
        for row in rows:
            print(f"{table} [{budget} epochs, {method}]: " + ", ".join(f"{k}={v}" for k, v in row.items()))
        targets = [Path(Layout(str(results_dir)).table(table, "csv"))]
        keep = cell_filter(budget, method)
    audit = walk(results_dir, targets, keep, data_root)
    if not quiet:
        print("\n".join(audit.lines))
    for note in audit.notes:
        print(f"NOTE: {note}")
    for problem in audit.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    verdict = "passed" if audit.ok else f"FAILED with {len(audit.problems)} problem(s)"
    print(f"audit {verdict}: {audit.checked} checksums verified under {results_dir}")
    return Outcome(exit_code=0 if audit.ok else EXIT_AUDIT_FAILED)
