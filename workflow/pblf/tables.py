"""Table 6.2, Table B.1 and Table B.2 of the thesis, made from the flat trials file (SPEC section 3).

Every table is a pure function of ``trials.csv`` (one row per trained seed), so that a researcher can rebuild them
with ``pblf tables --trials TRIALS.csv --out DIR`` from any run, partial or complete, and so that the same trials
always give the same bytes. Each table is written three times, under names that are a contract:

* ``.csv``: for programs; a ``budget_epochs`` column, numbers unrounded in Python's shortest round-trip form, an
  undefined or missing number as an empty cell;
* ``.md``: for people (and the Snakemake report); accuracies at 2 decimals, phi, std and variance at 4;
* ``.tex``: a caption-free booktabs ``tabular`` with one block per budget under a "100 epochs" row, as in the
  thesis, for the report or a thesis to wrap in its own ``table`` environment.

Budgets are listed largest first (the thesis lists 100 epochs, then 20) and methods in the order PBLF-BO, PBLF-RS,
Standard.

Spread: the thesis writes "Top-1 95 +- 0.52" for PBLF-BO at 100 epochs, but the sample standard deviation of its five
Top-1 values (Table B.1) is 0.72; 0.52 is their sample *variance* (so are the other five "+-" values of Table 6.2),
while "+-" usually announces a standard deviation. Because the thesis's "+-" is ambiguous we never write "+-":
Table 6.2 reports the sample standard deviation and the sample variance (both ddof = 1) as separate columns, with n.
With n = 1 both are undefined: the CSV leaves them empty and Markdown and LaTeX write "n/a" (not 0, which would claim
a spread was measured). A seed that a (budget, method) group lacks (a partial run) is an empty cell in Table B.1 /
B.2 in every format, and the group's average is over the seeds it has.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from pblf.candidate import Candidate
from pblf.errors import InputError
from pblf.files import read_csv, write_csv, write_text
from pblf.names import METHODS, PHI_NAMES, TABLES, TRIALS_COLUMNS
from pblf.provenance import Outcome

log = logging.getLogger(__name__)

#: The fields of a trials row that Table B.1 and Table B.2 report, with the header of their average column.
AVERAGE_HEADERS: dict[str, str] = {"test_top1": "Top-1 Avg.", "val_top1": "Top-1 Val Avg."}
#: Decimal places in Markdown and LaTeX, per kind of number (CSV keeps every digit).
DECIMALS: dict[str, int] = {"accuracy": 2, "phi": 4, "spread": 4}
#: What Markdown and LaTeX write for a standard deviation or variance that n = 1 leaves undefined.
UNDEFINED = "n/a"


@dataclass(frozen=True)
class Column:
    """How one column of a table is labelled and formatted for people.

    ``kind`` is ``text``, ``int`` or a key of :data:`DECIMALS`; ``missing`` is what a ``None`` cell shows."""

    key: str
    header: str
    latex: str
    kind: str
    missing: str = ""


TABLE_6_2_COLUMNS: tuple[Column, ...] = (
    *(Column(name, f"{name[0].upper()}_{name[1]}", f"${name[0].upper()}_{name[1]}$", "phi") for name in PHI_NAMES),
    Column("mode", "Mode", "Mode", "text"),
    Column("test_top1_mean", "Top-1", "Top-1", "accuracy"),
    Column("test_top1_std", "Std", "Std", "spread", UNDEFINED),
    Column("test_top1_var", "Var", "Var", "spread", UNDEFINED),
    Column("n", "n", "$n$", "int"),
)


def read_trials(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a trials file, typed and checked, in file order.

    A bad row stops everything with the file, line and column in the message: a table silently built from a
    half-broken trials file would look like a result. ``mode`` stays a string ("0010" is not the number 10)."""
    path = Path(path)
    raw_rows = read_csv(path)
    if not raw_rows:
        raise InputError(f"{path}: no trials (the file has no rows below its header)")
    missing = [column for column in TRIALS_COLUMNS if column not in raw_rows[0]]
    if missing:
        raise InputError(f"{path}: trials file lacks column(s) {', '.join(missing)} (has {', '.join(raw_rows[0])})")
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[int, str, int], int] = {}
    for line, raw in enumerate(raw_rows, start=2):
        where = f"{path}, line {line}"
        row = _parse_row(raw, where)
        group_seed = (row["budget_epochs"], row["method"], row["seed"])
        if group_seed in seen:
            raise InputError(
                f"{where}: budget {group_seed[0]}, method {group_seed[1]}, seed {group_seed[2]} "
                f"repeats line {seen[group_seed]}"
            )
        seen[group_seed] = line
        rows.append(row)
    return rows


def _parse_row(raw: dict[str, str], where: str) -> dict[str, Any]:
    """One typed trials row; ``where`` (file and line) starts every error message."""
    method = raw["method"]
    if method not in METHODS:
        raise InputError(f"{where}, column method: {method!r} is not one of {', '.join(METHODS)}")
    row: dict[str, Any] = {"method": method}
    for column in ("budget_epochs", "seed"):
        try:
            row[column] = int(raw[column])
        except ValueError:
            raise InputError(f"{where}, column {column}: {raw[column]!r} is not an integer") from None
    if row["budget_epochs"] <= 0:
        raise InputError(f"{where}, column budget_epochs: {row['budget_epochs']} is not a positive number of epochs")
    for column in ("test_top1", "val_top1"):
        try:
            value = float(raw[column])
        except ValueError:
            raise InputError(f"{where}, column {column}: {raw[column]!r} is not a number") from None
        if not 0.0 <= value <= 100.0:
            raise InputError(f"{where}, column {column}: {raw[column]!r} is not an accuracy in percent (0 to 100)")
        row[column] = value
    try:
        candidate = Candidate.from_dict(raw)
    except ValueError as err:
        raise InputError(f"{where}: {err}") from None
    row.update(candidate.to_dict())
    return row


def _groups(rows: Iterable[dict[str, Any]]) -> list[tuple[tuple[int, str], list[dict[str, Any]]]]:
    """Rows grouped by (budget, method), budgets largest first and methods in thesis order; each group by seed."""
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["budget_epochs"], row["method"]), []).append(row)
    order = sorted(groups, key=lambda key: (-key[0], METHODS.index(key[1])))
    return [(key, sorted(groups[key], key=lambda row: row["seed"])) for key in order]


def table_6_2(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (budget, method): the chosen candidate and the Top-1 mean, sample std, sample variance and n.

    Every seed of a group retrains the same chosen candidate, so a group with two candidates means the trials
    file mixes runs; that is an error rather than a row that would show only one of them."""
    table = []
    for (budget, method), group in _groups(rows):
        candidates = sorted({Candidate.from_dict(row) for row in group}, key=lambda candidate: candidate.to_json())
        if len(candidates) != 1:
            listed = "; ".join(candidate.to_json() for candidate in candidates)
            raise InputError(f"budget {budget}, method {method}: its seeds trained different candidates: {listed}")
        top1 = [row["test_top1"] for row in group]
        several = len(top1) > 1
        table.append(
            {
                "budget_epochs": budget,
                "method": method,
                **candidates[0].to_dict(),
                "test_top1_mean": statistics.mean(top1),
                "test_top1_std": statistics.stdev(top1) if several else None,
                "test_top1_var": statistics.variance(top1) if several else None,
                "n": len(top1),
            }
        )
    return table


def table_b(rows: Sequence[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """Table B.1 (``field="test_top1"``) or B.2 (``field="val_top1"``): ``field`` of every seed, and its mean.

    The seed columns are the union over all groups, so a group that lacks a seed (a partial run) has ``None``
    there and its mean is over the seeds it has."""
    if field not in AVERAGE_HEADERS:
        raise ValueError(f"table_b field {field!r} must be one of {', '.join(AVERAGE_HEADERS)}")
    seeds = sorted({row["seed"] for row in rows})
    table = []
    for (budget, method), group in _groups(rows):
        values = {row["seed"]: row[field] for row in group}
        table.append(
            {
                "budget_epochs": budget,
                "method": method,
                **{f"seed {seed}": values.get(seed) for seed in seeds},
                f"{field}_mean": statistics.mean(values.values()),
            }
        )
    return table


def _b_columns(table: Sequence[dict[str, Any]], field: str) -> tuple[Column, ...]:
    """The columns of a Table B.1 / B.2 as :func:`table_b` made it (its seed columns depend on the trials)."""
    seed_keys = [key for key in table[0] if key.startswith("seed ")]
    return (
        *(Column(key, key, key, "accuracy") for key in seed_keys),
        Column(f"{field}_mean", AVERAGE_HEADERS[field], AVERAGE_HEADERS[field], "accuracy"),
    )


def _cell(value: Any, column: Column) -> str:
    """A value as Markdown and LaTeX show it: fixed decimals per kind, never "-0.00"."""
    if value is None:
        return column.missing
    if column.kind == "text":
        return str(value)
    if column.kind == "int":
        return str(int(value))
    text = f"{value:.{DECIMALS[column.kind]}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _latex_cell(value: Any, column: Column) -> str:
    """:func:`_cell` with a typeset minus sign (a bare hyphen is too short in text mode)."""
    text = _cell(value, column)
    return f"$-${text[1:]}" if column.kind in DECIMALS and text.startswith("-") else text


def render_markdown(table: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """A pipe table with a Budget column; every cell is a preformatted string (numparse off, so "0010" stays)."""
    headers = ["Budget", "Method", *(column.header for column in columns)]
    body = [
        [f"{row['budget_epochs']} epochs", row["method"], *(_cell(row[column.key], column) for column in columns)]
        for row in table
    ]
    align = ["left", "left", *("left" if column.kind == "text" else "right" for column in columns)]
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True, colalign=align) + "\n"


def render_latex(table: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """A booktabs ``tabular``: one header row, then per budget a "100 epochs" row and its methods."""
    width = len(columns) + 1
    spec = "l" + "".join("l" if column.kind == "text" else "r" for column in columns)
    lines = [
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(["Method", *(column.latex for column in columns)]) + " \\\\",
    ]
    budget = None
    for row in table:
        if row["budget_epochs"] != budget:
            budget = row["budget_epochs"]
            lines += ["\\midrule", f"\\multicolumn{{{width}}}{{l}}{{\\textbf{{{budget} epochs}}}} \\\\", "\\midrule"]
        cells = [row["method"], *(_latex_cell(row[column.key], column) for column in columns)]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def _write_table(table: Sequence[dict[str, Any]], columns: Sequence[Column], out_dir: Path, name: str) -> list[Path]:
    """``name``.csv, .md and .tex in ``out_dir``."""
    return [
        write_csv(table, ["budget_epochs", "method", *(column.key for column in columns)], out_dir / f"{name}.csv"),
        write_text(render_markdown(table, columns), out_dir / f"{name}.md"),
        write_text(render_latex(table, columns), out_dir / f"{name}.tex"),
    ]


def write_tables(trials_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write every table of :data:`pblf.names.TABLES` (each .csv, .md, .tex) into ``out_dir``; their paths, sorted."""
    rows = read_trials(trials_path)
    out_dir = Path(out_dir)
    table_6_2_name, *b_names = TABLES
    paths = _write_table(table_6_2(rows), TABLE_6_2_COLUMNS, out_dir, table_6_2_name)
    for name, field in zip(b_names, AVERAGE_HEADERS):
        table = table_b(rows, field)
        paths += _write_table(table, _b_columns(table, field), out_dir, name)
    return sorted(paths)


def stage_tables(trials: Path, out: Path) -> Outcome:
    """``pblf tables``: Tables 6.2, B.1 and B.2 (CSV, Markdown, LaTeX) from a trials file, into the folder ``out``."""
    paths = write_tables(trials, out)
    log.info("tables from %s: %s", trials, ", ".join(p.name for p in paths))
    return Outcome()
