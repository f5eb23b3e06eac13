"""Table 6.2, Table B.1 and Table B.2 of the thesis, and paired comparisons of the methods that choose a candidate, made from the flat
trials file (SPEC section 3).

Every table is a pure function of ``trials.csv`` (one row per trained seed), so that a researcher can rebuild them
with ``pblf tables --trials TRIALS.csv --out DIR`` from any run, partial or complete (or from the thesis's own
numbers), and so that the same trials always give the same bytes. Each table is written three times, under names
that are a contract:

* ``.csv``: for programs; a ``budget_epochs`` column, numbers unrounded in Python's shortest round-trip form, an
  undefined or missing number as an empty cell;
* ``.md``: for people (and the Snakemake report); accuracies at 2 decimals, phi, std and variance at 4;
* ``.tex``: a caption-free booktabs ``tabular`` with one block per budget under a "100 epochs" row, as in the
  thesis, for the report or a thesis to wrap in its own ``table`` environment;
* ``.html``: the same blocks as an HTML table with its own small style sheet, a fragment that the Snakemake report
  shows as a table (not raw CSV) and that its front page embeds as it is.

Budgets are listed largest first (the thesis lists 100 epochs, then 20) and methods in the order PBLF-BO, PBLF-RS,
Standard, then PBLF-HG (beyond the thesis).

Spread: the thesis writes "Top-1 95 +- 0.52" for PBLF-BO at 100 epochs, but the sample standard deviation of its five
Top-1 values (Table B.1) is 0.72; 0.52 is their sample *variance* (so are the other "+-" values of Tables 6.2, B.1
and B.2), while "+-" usually announces a standard deviation. Table 6.2 therefore reports the sample standard
deviation and the sample variance (both ddof = 1) as separate columns, with n; Tables B.1 and B.2 repeat the
thesis's "Avg. +- variance" (in Markdown and LaTeX; the CSV has the mean and the variance as numbers) and add the
std. With n = 1 both are undefined: the CSV leaves them empty and Markdown and LaTeX write "n/a" (not 0, which
would claim a spread was measured). A seed that a (budget, method) group lacks (a partial run) is an empty cell in
Table B.1 / B.2 in every format, and the group's statistics are over the seeds it has.

Paired statistics, beyond the thesis: with common random numbers, seed s of every method starts from the same
weights and sees the same batches, so methods are compared seed by seed. Table 6.2 gives, for each search, the mean
over the seeds it shares with Standard of (its Top-1 - Standard's Top-1), with the 95 % confidence interval and
the two-sided p-value of the paired t-test (``scipy.stats.ttest_rel``); ``table_6_2_paired`` gives the same for
every pair of the methods that choose a candidate (PBLF-BO - PBLF-RS, and each against PBLF-HG). Table 6.2 also
reports what each method's choice cost: the candidates it trained and the epochs they spent (0 for Standard), when
the trials file says so. Every number of these tables reproduces on a rerun; the seconds the searches took are a
measurement and have a table of their own (:mod:`pblf.results.timings`).
"""

from __future__ import annotations

import html
import logging
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tabulate import tabulate

from pblf.core.candidate import Candidate
from pblf.core.errors import InputError
from pblf.core.files import ACCURACY, COUNT, EPOCHS, Field, read_typed_csv, write_csv, write_text
from pblf.core.names import (
    PHI_NAMES, STANDARD, TABLES, epochs_label,
)
from pblf.core.provenance import Outcome
from pblf.results.stats import holm, method_level, paired
from pblf.search.registry import methods, search_methods

log = logging.getLogger(__name__)

#: The fields of a trials row that Table B.1 and Table B.2 report, with the header of their average column.
AVERAGE_HEADERS: dict[str, str] = {"test_top1": "Top-1 Avg.", "val_top1": "Top-1 Val Avg."}
#: Decimal places in Markdown and LaTeX, per kind of number (CSV keeps every digit).
DECIMALS: dict[str, int] = {"accuracy": 2, "phi": 4, "spread": 4, "p": 4, "share": 2, "seconds": 1}
#: What Markdown and LaTeX write for a statistic that too few seeds leave undefined, and for the interval of a
#: difference that is the same on every seed (a t interval needs a spread; "[0.00, 0.00]" would claim one measured).
UNDEFINED = "n/a"
ALL_EQUAL = "n/a (all differences equal)"
#: The header of a table's budget column, and what it shows for a budget that was not run.
BUDGET, NOT_RUN = "Budget", "not run"
#: How a trials file's columns are read (SPEC section 3): the required ones, then what the pipeline's own adds (a
#: file without them gives empty cells). The candidate's columns are read as one candidate.
TRIALS_FIELDS: dict[str, Field] = {
    "method": Field(str, "a method"),
    "budget_epochs": EPOCHS,
    "seed": COUNT,
    "test_top1": ACCURACY,
    "val_top1": ACCURACY,
    **{name: Field(str, "text") for name in (*PHI_NAMES, "mode")},
    "activation": Field(str, "text").optional(),
    "places": Field(str, "text").optional(),
    "search_candidates": COUNT.optional(),
    "search_epochs": COUNT.optional(),
    "search": COUNT.optional(0),  # a file without the column: one search per method
}
#: The columns about several searches of a method (``search.repeats``): Markdown and LaTeX show them only when a
#: method in the table has more than one search (the CSV always has them).
SEARCH_KEYS: frozenset[str] = frozenset({"search", "searches", "search_std", "method_diff", "method_ci_low",
                                          "method_p", "method_p_holm"})


@dataclass(frozen=True)
class Column:
    """How one column of a table is labelled and formatted.

    ``kind`` is ``text``, ``int`` or a key of :data:`DECIMALS`, or, for a cell that shows two numbers to people,
    ``pm`` ("mean +- pair") or ``interval`` ("[key, pair]"); such a cell is not in the CSV, which has both numbers
    in columns of their own. ``missing`` is what a ``None`` shows."""

    key: str
    header: str
    latex: str
    kind: str
    missing: str = ""
    pair: str | None = None
    in_csv: bool = True
    for_people: bool = True
    #: the key that must be non-zero for the cell to apply (empty otherwise: e.g. Standard against itself)
    when: str | None = None
    #: the key that says every paired difference was the same: then an undefined interval shows :data:`ALL_EQUAL`
    equal: str | None = None


def csv_only(key: str, kind: str) -> Column:
    """A column only the CSV has (its people's form is in another column, or nowhere)."""
    return Column(key, key, key, kind, for_people=False)


def interval_columns(prefix: str, header: str) -> tuple[Column, ...]:
    """The paired difference of one method to another and its 95 % interval, as columns (``prefix`` + diff,
    ci_low, ci_high, n; :func:`paired`'s keys)."""
    n = f"{prefix}n"
    return (
        Column(f"{prefix}diff", header, header.replace("Δ", "$\\Delta$"), "accuracy", when=n),
        Column(f"{prefix}ci_low", "95 % CI", "95\\,\\% CI", "interval", UNDEFINED, pair=f"{prefix}ci_high",
               in_csv=False, when=n, equal=f"{prefix}all_equal"),
        csv_only(f"{prefix}ci_low", "accuracy"),
        csv_only(f"{prefix}ci_high", "accuracy"),
        csv_only(n, "int"),
    )


def _paired_columns(prefix: str, header: str) -> tuple[Column, ...]:
    """:func:`interval_columns` and the paired t-test's p-value, as the test gives it and adjusted by Holm's method
    over the comparisons of its budget in its table (``prefix`` + p, p_holm)."""
    n = f"{prefix}n"
    *interval, count = interval_columns(prefix, header)
    return (*interval,
            Column(f"{prefix}p", "p", "$p$", "p", UNDEFINED, when=n),
            Column(f"{prefix}p_holm", "p (Holm)", "$p$ (Holm)", "p", UNDEFINED, when=n),
            count)


#: The method-level comparison with Standard over a method's searches (:func:`pblf.results.stats.method_level`),
#: shown on the row of its first search.
METHOD_COLUMNS: tuple[Column, ...] = (
    Column("searches", "Searches", "Searches", "int", when="first_search"),
    Column("search_std", "Std (searches)", "Std (searches)", "spread", UNDEFINED, when="first_search"),
    *_paired_columns("method_", "Δ vs Standard (method)"),
)
TABLE_6_2_COLUMNS: tuple[Column, ...] = (
    Column("search", "Search", "Search", "int"),
    *(Column(name, f"{name[0].upper()}_{name[1]}", f"${name[0].upper()}_{name[1]}$", "phi") for name in PHI_NAMES),
    Column("mode", "Mode", "Mode", "text"),
    Column("test_top1_mean", "Top-1", "Top-1", "accuracy"),
    Column("test_top1_std", "Std", "Std", "spread", UNDEFINED),
    Column("test_top1_var", "Var", "Var", "spread", UNDEFINED),
    Column("n", "n", "$n$", "int"),
    Column("search_candidates", "Candidates", "Candidates", "int"),
    Column("search_epochs", "Epochs", "Epochs", "int"),
    *_paired_columns("vs_standard_", "Δ vs Standard"),
    *METHOD_COLUMNS,
)
PAIRED_COLUMNS: tuple[Column, ...] = (
    Column("search", "Search", "Search", "int"),
    Column("versus", "vs", "vs", "text"),
    *_paired_columns("", "Δ Top-1"),
)


def read_trials(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a trials file, typed and checked, in file order.

    A bad row stops everything with the file, line and column in the message: a table silently built from a
    half-broken trials file would look like a result. ``mode`` stays a string ("0010" is not the number 10)."""
    path = Path(path)
    numbered = read_typed_csv(path, TRIALS_FIELDS, "trials file", _with_candidate)
    if not numbered:
        raise InputError(f"{path}: no trials (the file has no rows below its header)")
    seen: dict[tuple[int, str, int, int], int] = {}
    for line, row in numbered:
        where = f"{path}, line {line}"
        if row["method"] not in methods():
            raise InputError(f"{where}, column method: {row['method']!r} is not one of {', '.join(methods())}")
        key = (row["budget_epochs"], row["method"], row["search"], row["seed"])
        if key in seen:
            raise InputError(f"{where}: budget {key[0]}, method {key[1]}, search {key[2]}, seed {key[3]} repeats line "
                             f"{seen[key]}")
        seen[key] = line
    return [row for _, row in numbered]


def _with_candidate(raw: dict[str, str], row: dict[str, Any]) -> dict[str, Any]:
    return {**row, **Candidate.from_dict(raw).to_dict()}


def groups_by_search(rows: Iterable[dict[str, Any]]) -> list[tuple[tuple[int, str, int], list[dict[str, Any]]]]:
    """Rows grouped by (budget, method, search), budgets largest first, methods in thesis order, then searches;
    each group by seed. A group is one chosen candidate and its retrains."""
    groups: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["budget_epochs"], row["method"], row["search"]), []).append(row)
    order = sorted(groups, key=lambda key: (-key[0], methods().index(key[1]), key[2]))
    return [(key, sorted(groups[key], key=lambda row: row["seed"])) for key in order]


def _one(group: Sequence[dict[str, Any]], column: str, where: str) -> Any:
    """The value every row of a group has in ``column`` (None when the trials file lacks it)."""
    values = sorted({row[column] for row in group}, key=str)
    if len(values) > 1:
        raise InputError(f"{where}: its seeds disagree on {column}: {values}")
    return values[0]


def _with_holm(table: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """``table`` with ``key``'s p-values adjusted by Holm's method per budget (the family: one budget's comparisons
    in one table) as ``key_holm``."""
    for budget in sorted({row["budget_epochs"] for row in table}):
        rows = [row for row in table if row["budget_epochs"] == budget]
        for row, adjusted in zip(rows, holm([row[key] for row in rows])):
            row[f"{key}_holm"] = adjusted
    return table


def _by_seed(group: Sequence[dict[str, Any]], field: str = "test_top1") -> dict[int, float]:
    return {row["seed"]: row[field] for row in group}


def _group_name(budget: int, method: str, search: int) -> str:
    return f"budget {budget}, method {method}" + (f", search {search}" if search else "")


def table_6_2(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (budget, method, search): the chosen candidate, the Top-1 mean, sample std, sample variance and n, what
    its search cost, and (for a search) its paired difference to Standard; on each method's first row, the
    method-level statistics over its searches (their number, the std of their mean Top-1, and the difference to
    Standard of :func:`pblf.results.stats.method_level`).

    Every seed of a group retrains the same chosen candidate, so a group with two candidates means the trials
    file mixes runs; that is an error rather than a row that would show only one of them."""
    groups = groups_by_search(rows)
    by_key = dict(groups)
    table = []
    for (budget, method, search), group in groups:
        where = _group_name(budget, method, search)
        candidates = sorted({Candidate.from_dict(row) for row in group}, key=lambda candidate: candidate.to_json())
        if len(candidates) != 1:
            listed = "; ".join(candidate.to_json() for candidate in candidates)
            raise InputError(f"{where}: its seeds trained different candidates: {listed}")
        top1 = [row["test_top1"] for row in group]
        several = len(top1) > 1
        standard = by_key.get((budget, STANDARD, 0))
        versus = paired(_by_seed(group), _by_seed(standard), "vs_standard_") if standard and method != STANDARD \
            else _no_comparison("vs_standard_")
        table.append(
            {
                "budget_epochs": budget,
                "method": method,
                "search": search,
                **candidates[0].to_dict(),
                "test_top1_mean": statistics.mean(top1),
                "test_top1_std": statistics.stdev(top1) if several else None,
                "test_top1_var": statistics.variance(top1) if several else None,
                "n": len(top1),
                "search_candidates": _one(group, "search_candidates", where),
                "search_epochs": _one(group, "search_epochs", where),
                **versus,
                **_method_level(by_key, budget, method, search),
            }
        )
    return _with_holm(_with_holm(table, "vs_standard_p"), "method_p")


def _no_comparison(prefix: str) -> dict[str, Any]:
    """The cells of a comparison that does not apply (Standard against itself, or no Standard in the trials)."""
    return {f"{prefix}{key}": None for key in ("diff", "ci_low", "ci_high", "p", "n")} | {f"{prefix}all_equal": False}


def _method_level(groups: dict[tuple[int, str, int], list[dict[str, Any]]], budget: int, method: str,
                  search: int) -> dict[str, Any]:
    """The method-level cells of the row of (``budget``, ``method``, ``search``): filled on the method's first
    search, empty (``first_search`` false, no ``method_n``) on the others and on Standard's, so that the family of
    Holm's adjustment counts each searched method once."""
    own = {r: _by_seed(group) for (b, m, r), group in groups.items() if (b, m) == (budget, method)}
    # the method's first search; Standard is searched by nobody: no searches to count, spread or compare
    searched = search == min(own) and method != STANDARD
    standard = groups.get((budget, STANDARD, 0))
    comparison = method_level(own, _by_seed(standard)) if searched and standard else None
    cells = _no_comparison("method_") if comparison is None else \
        {f"method_{key}": comparison[key] for key in ("diff", "ci_low", "ci_high", "p", "n", "all_equal")}
    means = [statistics.mean(by_seed.values()) for _, by_seed in sorted(own.items())]
    return {"first_search": searched, "searches": len(own) if searched else None,
            "search_std": statistics.stdev(means) if searched and len(means) > 1 else None, **cells}


def table_6_2_paired(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per budget and search, every pair of the methods that choose a candidate (PBLF-BO - PBLF-RS, PBLF-BO -
    PBLF-HG, PBLF-RS - PBLF-HG) that the trials have, paired by seed (see :func:`paired`): search r of one method
    against search r of the other."""
    groups = dict(groups_by_search(rows))
    keys = sorted({(budget, search) for budget, _, search in groups}, key=lambda key: (-key[0], key[1]))
    searches = search_methods()
    pairs = [(first, second) for i, first in enumerate(searches) for second in searches[i + 1:]]
    return _with_holm([
        {"budget_epochs": budget, "method": first, "search": search, "versus": second,
         **paired(_by_seed(groups[budget, first, search]), _by_seed(groups[budget, second, search]))}
        for budget, search in keys for first, second in pairs
        if (budget, first, search) in groups and (budget, second, search) in groups
    ], "p")


def table_b(rows: Sequence[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """Table B.1 (``field="test_top1"``) or B.2 (``field="val_top1"``): ``field`` of every seed, its mean, and the
    sample variance (the thesis's "+-") and standard deviation over the seeds, per (budget, method, search).

    The seed columns are the union over all groups, so a group that lacks a seed (a partial run) has ``None``
    there and its statistics are over the seeds it has."""
    if field not in AVERAGE_HEADERS:
        raise ValueError(f"table_b field {field!r} must be one of {', '.join(AVERAGE_HEADERS)}")
    seeds = sorted({row["seed"] for row in rows})
    table = []
    for (budget, method, search), group in groups_by_search(rows):
        values = _by_seed(group, field)
        several = len(values) > 1
        table.append(
            {
                "budget_epochs": budget,
                "method": method,
                "search": search,
                **{f"seed {seed}": values.get(seed) for seed in seeds},
                f"{field}_mean": statistics.mean(values.values()),
                f"{field}_var": statistics.variance(values.values()) if several else None,
                f"{field}_std": statistics.stdev(values.values()) if several else None,
            }
        )
    return table


def _b_columns(table: Sequence[dict[str, Any]], field: str) -> tuple[Column, ...]:
    """The columns of a Table B.1 / B.2 as :func:`table_b` made it (its seed columns depend on the trials)."""
    seed_keys = [key for key in table[0] if key.startswith("seed ")]
    average = AVERAGE_HEADERS[field]
    return (
        Column("search", "Search", "Search", "int"),
        *(Column(key, key, key, "accuracy") for key in seed_keys),
        Column(f"{field}_mean", average, average, "accuracy", for_people=False),
        Column(f"{field}_mean", f"{average} ± var", f"{average} $\\pm$ var", "pm", UNDEFINED, pair=f"{field}_var",
               in_csv=False),
        Column(f"{field}_var", "Var", "Var", "spread", UNDEFINED, for_people=False),
        Column(f"{field}_std", "Std", "Std", "spread", UNDEFINED),
    )


def format_number(value: Any, kind: str) -> str:
    """A number as people read it: fixed decimals per kind, never "-0.00"; a budget as "20 epochs"."""
    if kind == "int":
        return str(int(value))
    if kind == "epochs":
        return epochs_label(value)
    text = f"{value:.{DECIMALS[kind]}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _cell(row: dict[str, Any], column: Column) -> str:
    """A cell as Markdown and LaTeX show it."""
    if column.when and not row[column.when]:
        return ""
    value = row[column.key]
    if column.kind == "pm":
        return column.missing if row[column.pair] is None else \
            f"{format_number(value, 'accuracy')} ± {format_number(row[column.pair], 'accuracy')}"
    if column.kind == "interval":
        if value is None:
            return ALL_EQUAL if column.equal and row.get(column.equal) else column.missing
        return f"[{format_number(value, 'accuracy')}, {format_number(row[column.pair], 'accuracy')}]"
    if value is None:
        return column.missing
    return str(value) if column.kind == "text" else format_number(value, column.kind)


def _latex_cell(row: dict[str, Any], column: Column) -> str:
    """:func:`_cell` with typeset minus and plus-minus signs (a bare hyphen is too short in text mode)."""
    text = _cell(row, column)
    if column.kind == "text" or text in (column.missing, ""):
        return text.replace("±", "$\\pm$")
    return "$" + text.replace("±", "\\pm").replace(" ", "\\ ") + "$" if column.kind in ("pm", "interval") \
        else (f"$-${text[1:]}" if text.startswith("-") else text)


def _budget(budget: int | None, header: str = BUDGET) -> str:
    """A row's budget as a table shows it; None (a thesis budget a run did not cover) is "not run"."""
    label = NOT_RUN if budget is None else epochs_label(budget)
    return label if header == BUDGET else f"{header}: {label}"


def render_markdown(table: Sequence[dict[str, Any]], columns: Sequence[Column], budget_header: str = BUDGET) -> str:
    """A pipe table with a Budget column; every cell is a preformatted string (numparse off, so "0010" stays)."""
    columns = [column for column in columns if column.for_people]
    headers = [budget_header, "Method", *(column.header for column in columns)]
    body = [[_budget(row["budget_epochs"]), row["method"], *(_cell(row, column) for column in columns)]
            for row in table]
    align = ["left", "left", *("left" if column.kind == "text" else "right" for column in columns)]
    # (tabulate cannot align the columns of a table without rows: a partial run may have no paired table yet)
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True,
                    colalign=align if body else None) + "\n"


def render_latex(table: Sequence[dict[str, Any]], columns: Sequence[Column], budget_header: str = BUDGET) -> str:
    """A booktabs ``tabular``: one header row, then per budget a "100 epochs" row and its methods."""
    columns = [column for column in columns if column.for_people]
    width = len(columns) + 1
    spec = "l" + "".join("l" if column.kind == "text" else "r" for column in columns)
    lines = [
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(["Method", *(column.latex for column in columns)]) + " \\\\",
    ]
    budget: object = object()
    for row in table:
        if row["budget_epochs"] != budget:
            budget = row["budget_epochs"]
            lines += ["\\midrule",
                      f"\\multicolumn{{{width}}}{{l}}{{\\textbf{{{_budget(budget, budget_header)}}}}} \\\\",
                      "\\midrule"]
        cells = [row["method"], *(_latex_cell(row, column) for column in columns)]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


#: The style of every HTML table: numbers right-aligned in one font width, a shaded row per budget. Scoped to the
#: ``pblf`` class, so that the report's front page, which embeds the fragment, keeps its own look.
HTML_STYLE = (
    "<style>\n"
    "table.pblf{border-collapse:collapse;font:13px/1.5 system-ui,sans-serif;margin:0.5em 0}\n"
    "table.pblf th,table.pblf td{padding:2px 8px;text-align:right;white-space:nowrap;"
    "font-variant-numeric:tabular-nums;border-bottom:1px solid #e2e2e2}\n"
    "table.pblf .text{text-align:left}\n"
    "table.pblf thead th{border-bottom:2px solid #888}\n"
    "table.pblf tr.budget th{text-align:left;background:#f2f2f2}\n"
    "</style>\n"
)


def _html_row(cells: Sequence[tuple[str, bool]], tag: str = "td") -> str:
    """One ``<tr>`` of (text, is it text) cells: text left-aligned, numbers right-aligned by the style sheet."""
    return "<tr>" + "".join(f"<{tag}{' class=text' if text else ''}>{html.escape(cell)}</{tag}>"
                            for cell, text in cells) + "</tr>"


def render_html(table: Sequence[dict[str, Any]], columns: Sequence[Column], budget_header: str = BUDGET) -> str:
    """An HTML ``<table>`` laid out as :func:`render_latex` (a header row, then per budget a "100 epochs" row and its
    methods), every cell escaped; a fragment with its style sheet, no page around it."""
    columns = [column for column in columns if column.for_people]
    lines = [HTML_STYLE + '<table class="pblf">', "<thead>",
             _html_row([("Method", True), *((column.header, column.kind == "text") for column in columns)], "th"),
             "</thead>", "<tbody>"]
    budget: object = object()
    for row in table:
        if row["budget_epochs"] != budget:
            budget = row["budget_epochs"]
            lines.append(f'<tr class="budget"><th colspan="{len(columns) + 1}">'
                         f"{html.escape(_budget(budget, budget_header))}</th></tr>")
        lines.append(_html_row([(row["method"], True),
                               *((_cell(row, column), column.kind == "text") for column in columns)]))
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines) + "\n"


def write_table(table: Sequence[dict[str, Any]], columns: Sequence[Column], out_dir: Path, name: str,
                budget_header: str = BUDGET) -> list[Path]:
    """``name``.csv, .md, .tex and .html in ``out_dir``."""
    keys = ["budget_epochs", "method", *(column.key for column in columns if column.in_csv)]
    return [
        write_csv(table, keys, out_dir / f"{name}.csv"),
        write_text(render_markdown(table, columns, budget_header), out_dir / f"{name}.md"),
        write_text(render_latex(table, columns, budget_header), out_dir / f"{name}.tex"),
        write_text(render_html(table, columns, budget_header), out_dir / f"{name}.html"),
    ]


def write_tables(trials_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write every table of :data:`pblf.core.names.TABLES` (each .csv, .md, .tex, .html) into ``out_dir``; their paths, sorted."""
    rows = read_trials(trials_path)
    out_dir = Path(out_dir)
    made = {"table_6_2": (table_6_2(rows), TABLE_6_2_COLUMNS),
            "table_6_2_paired": (table_6_2_paired(rows), PAIRED_COLUMNS)}
    for name, field in (("table_B_1", "test_top1"), ("table_B_2", "val_top1")):
        table = table_b(rows, field)
        made[name] = (table, _b_columns(table, field))
    several = len({row["search"] for row in rows}) > 1
    return sorted(path for name in TABLES
                  for path in write_table(made[name][0], for_searches(made[name][1], several), out_dir, name))


def for_searches(columns: Sequence[Column], several: bool) -> tuple[Column, ...]:
    """``columns`` as people see them: the columns about several searches (:data:`SEARCH_KEYS`) only when a method
    had several (the CSV keeps them either way)."""
    return tuple(column if several or column.key not in SEARCH_KEYS else replace(column, for_people=False)
                 for column in columns)


def stage_tables(trials: Path, out: Path) -> Outcome:
    """``pblf tables``: Tables 6.2, B.1 and B.2 (CSV, Markdown, LaTeX) from a trials file, into the folder ``out``."""
    paths = write_tables(trials, out)
    log.info("tables from %s: %s", trials, ", ".join(p.name for p in paths))
    return Outcome()
