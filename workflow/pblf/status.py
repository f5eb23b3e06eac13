"""``pblf status``: how far a run of the pipeline has got, and how long the rest should take.

Snakemake's own "N of M steps" grows as its checkpoints resolve (a search's later iterations are unknown until its
proposals exist), so its percentage can go backwards. Here the totals are :func:`pblf.plan.stage_costs`', fixed by
the config, and what is done is read from the run folders: a finished run's ``metrics.json`` (its epochs and their
seconds), and for a run still training the last ``epoch N/B`` line of its log. The time left is the epochs left
(with pruning, the epochs to expect) at the seconds per epoch this run has measured so far, over ``jobs`` runs
training side by side: an estimate of training time only, without job start-up, queueing or the chain of a
search's iterations that cannot run side by side (``pblf plan`` gives that bound).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pblf.core.config import load_config
from pblf.core.errors import ConfigError
from pblf.core.layout import LOGS_ROOT, METRICS, RUN_RECORD, Layout, find_run, read_run, working_folder
from pblf.plan import cost_group, run_id, stage_costs

#: A training log's epoch line (pblf.training.train): "epoch 3/20 lr ...".
EPOCH_LINE = re.compile(r"\bepoch (\d+)/(\d+)\b")


@dataclass
class Progress:
    """What is done of one row of the plan: finished runs, epochs trained (finished runs and ones in progress) and
    the training seconds the finished runs measured."""

    runs: int = 0
    epochs: int = 0
    running: int = 0
    seconds: float = 0.0
    timed_epochs: int = 0


def _last_epoch(log: Path) -> int:
    """The last epoch a training log reports (0 when it reports none yet)."""
    if not log.is_file():
        return 0
    matches = EPOCH_LINE.findall(log.read_text(errors="replace"))
    return int(matches[-1][0]) if matches else 0


def progress(config: dict[str, Any], layout: Layout) -> dict[tuple[Any, ...], Progress]:
    """Per row of the plan (:func:`pblf.plan.cost_group`), what the run folders under ``layout`` say is done."""
    done: dict[tuple[Any, ...], Progress] = {}
    runs = Path(layout.results) / "runs"
    for folder in sorted(path.parent for path in runs.rglob("checkpoint.pt")) if runs.is_dir() else []:
        relative = folder.relative_to(runs).as_posix()
        metrics = folder / METRICS
        if metrics.is_file():
            run, result = read_run(metrics)
            row = done.setdefault(cost_group(run), Progress())
            row.runs += 1
            row.epochs += len(result["epochs"])
            row.seconds += sum(epoch["seconds"] for epoch in result["epochs"])
            row.timed_epochs += len(result["epochs"])
        else:
            try:
                run = run_id(config, relative)
            except ValueError:
                continue  # not a run of this layout (a damaged checkpoint moved aside keeps no folder of its own)
            row = done.setdefault(cost_group(run), Progress())
            row.running += 1
            row.epochs += _last_epoch(Path(layout.run_log(relative)))
    return done


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h" if minutes < 48 * 60 else f"{minutes / 1440:.1f} days"


def report(config: dict[str, Any], layout: Layout, jobs: int = 1) -> str:
    """The status table: per row of the plan, runs done / planned (and in progress), epochs done / planned, then
    the seconds per epoch measured so far and the training time left at ``jobs`` runs side by side."""
    costs = stage_costs(config)
    done = progress(config, layout)
    width = max(24, *(len(cost.detail) for cost in costs))
    lines = [f"{'stage':<15} {'what':<{width}} {'runs done':>11} {'running':>8} {'epochs done':>15}"]
    left = 0.0
    for cost in costs:
        row = done.get(cost.group, Progress())
        lines.append(f"{cost.stage:<15} {cost.detail:<{width}} {f'{row.runs:,}/{cost.runs:,}':>11} {row.running:>8} "
                     f"{f'{row.epochs:,}/{cost.epochs:,}':>15}")
        left += max(cost.expected - row.epochs, 0.0)
    totals = Progress(*(sum(getattr(row, name.name) for row in done.values()) for name in fields(Progress)))
    lines.append(f"{'total':<15} {'':<{width}} {f'{totals.runs:,}/{sum(c.runs for c in costs):,}':>11} "
                 f"{totals.running:>8} {f'{totals.epochs:,}/{sum(c.epochs for c in costs):,}':>15}")
    if left == 0:
        lines.append("every planned epoch is trained")
    elif totals.timed_epochs == 0:
        lines.append(f"{left:,.0f} epochs left; no run has finished yet to time them")
    else:
        per_epoch = totals.seconds / totals.timed_epochs
        lines.append(f"{left:,.0f} epochs left at {per_epoch:.2f} s per epoch (measured over {totals.timed_epochs:,} "
                     f"epochs of this run), {jobs} at a time: about {_duration(left * per_epoch / jobs)} of training "
                     "left (without job start-up and waits)")
    return "\n".join(lines)


def where_the_answer_is(layout: Layout) -> str:
    """What a finished run prints last: where Table 6.2, the reproduction table, the timings and the summary page
    are, how to make the report, and Table 6.2 itself (Snakemake's own last words are a job count). Nothing before Table 6.2 exists
    (a run of a single target)."""
    table = Path(layout.table("table_6_2", "md"))
    if not table.is_file():
        return ""
    lines = ["", "Done. The answer:"]
    for name, path in (("Table 6.2", table), ("reproduction", Path(layout.table("reproduction", "md"))),
                       ("timings", Path(layout.table("timings", "md"))),
                       ("Table 6.2 and the key figures on one page", Path(layout.summary()))):
        if path.is_file():
            lines.append(f"  {name}: {path}")
    lines.append(f"  the report, every table and figure with its caption: add -- --report {layout.results}/report.html "
                 "to the same pblf run (or snakemake) command")
    return "\n".join([*lines, "", table.read_text().rstrip()])


def stage_status(config: list[Path], results_dir: Path, jobs: int = 1) -> None:
    """``pblf status``: print how far the run of ``config`` in ``results_dir`` has got."""
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs} must be >= 1")
    results = find_run(Path(results_dir))
    logs = working_folder(results) / LOGS_ROOT / results.name if (results / RUN_RECORD).is_file() else \
        results.parent / LOGS_ROOT
    print(report(load_config(config), Layout(str(results), str(logs)), jobs))
