"""The ``pblf`` command: every stage of the pipeline, callable by hand or from a Snakemake rule.

This layer only parses arguments and calls the stage's function (``stage_*`` in the stage's module), which reads
its inputs, writes its outputs and returns an :class:`~pblf.core.provenance.Outcome`. Every stage runs inside
:func:`pblf.core.files.track`, and the provenance record of each output is written from what the stage actually read and
wrote, so no command lists its files twice. Stage modules are imported only when their command runs, so commands
that do not train start without importing torch.

Conventions: ``--config`` takes one or more config files (later ones win), ``--out`` is always a folder into which
the command writes files whose names it decides (the layout's, see :mod:`pblf.core.layout`).

A :class:`~pblf.core.errors.UserError` (a bad config, a bad or missing input file, a missing data set, a device that is
not there) ends with one line naming the value and the fix, and exit status 2; any other exception is a bug and
keeps its traceback (exit status 1). ``PBLF_DEBUG=1`` shows the traceback of user errors too. A Ctrl-C is one line
too (exit status 130): it reaches every job of the terminal's process group, and Snakemake shows each failed job's
log.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pblf.core.errors import (
    EXIT_INTERRUPTED, EXIT_PREEMPTED, EXIT_USER_ERROR, INTERRUPTED, PREEMPTION_SIGNALS, ConfigError, OutputError,
    Preempted, UserError,
)
from pblf.core.files import IOLog, ensure_writable, track
from pblf.core.layout import LR_SCALINGS, RunId
from pblf.core.names import FIGURES, RUN_KINDS
from pblf.core.provenance import STORE, Outcome, now, write_records
from pblf.search.registry import methods, search_methods


def _add_config(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--config", nargs="+", action="extend", required=required, type=Path, metavar="FILE",
                        help="config file(s), YAML or JSON; later files are merged over earlier ones")


def _add_out(parser: argparse.ArgumentParser, writes: str) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help=f"folder to write {writes} into")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pblf", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--results", default=os.environ.get("PBLF_RESULTS", "results"), type=Path,
                        help="results folder whose provenance/ store holds the records (default: $PBLF_RESULTS, which "
                             "the workflow's rules set to their run's folder, else results)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, stage: str, help_text: str, writes: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(stage=stage, writes=writes)
        return p

    p = add("run", "pblf.launch:stage_run",
            "run the pipeline with Snakemake on config.yaml and the presets given (demo: presets/demo.yaml); "
            "arguments after -- go to Snakemake", writes=False)
    p.add_argument("configs", nargs="*", metavar="PRESET",
                   help="presets by name (demo, smoke, ...) or config files, merged over config.yaml in order")

    p = add("check-config", "pblf.plan:stage_check_config",
            "validate config files against the schema (and that a requested GPU is there)", writes=False)
    _add_config(p)
    p.add_argument("--no-device-check", dest="device_check", action="store_false",
                   help="skip the check that device: cuda has a GPU (on a login node that submits to GPU nodes)")

    p = add("plan", "pblf.plan:stage_plan",
            "what a config trains (runs, epochs, with pruning what to expect) and how long it takes on G GPUs",
            writes=False)
    _add_config(p)
    p.add_argument("--gpus", type=int, default=1, help="GPUs working in parallel (default 1)")
    p.add_argument("--seconds-per-epoch", type=float,
                   help="seconds of one training epoch on one GPU (default: measured by benchmarks/bench_train.py "
                        "--device cuda, for the network it measures)")

    p = add("status", "pblf.status:stage_status",
            "how far a run has got: runs and epochs done per stage of the plan, and the training time left",
            writes=False)
    _add_config(p)
    p.add_argument("results_dir", nargs="?", default=Path("results"), type=Path,
                   help="the run's results folder, results/<name> (default: the one run under results)")
    p.add_argument("--jobs", type=int, default=1, help="runs training side by side, for the time left (default 1)")

    p = add("split", "pblf.training.data:stage_split", "read the data set and write the train/validation split record")
    _add_config(p)
    _add_out(p, "split.json")

    p = add("train", "pblf.training.train:stage_train",
            "train the target network with one candidate for one budget and one seed")
    _add_config(p)
    _add_out(p, "metrics.json and checkpoint.pt (the run folder)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--candidate", help='JSON such as \'{"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"}\'')
    source.add_argument("--candidate-file", type=Path,
                        help="a proposal (a search run trains its candidate --index) or a selection record")
    p.add_argument("--budget", required=True, type=int, help="epochs")
    p.add_argument("--seed", required=True, type=int, help="the run's seed (combined with the config's base seed)")
    p.add_argument("--kind", choices=RUN_KINDS, default="manual", help="what the run is for (default: manual)")
    p.add_argument("--method", choices=methods(), help="the method the run belongs to")
    p.add_argument("--iteration", type=int, help="a search run's iteration")
    p.add_argument("--index", type=int, help="a search run's candidate in its proposal")
    p.add_argument("--search", type=int, help="a search or repeat run's search (0 to search.repeats - 1)")
    p.add_argument("--batch-size", type=int, help="a generalisation run's batch size")
    p.add_argument("--lr-scaling", choices=LR_SCALINGS, help="a generalisation run's learning rate: fixed or linear")
    p.add_argument("--split", type=Path, help="split record from `pblf split` (default: made from the config)")
    p.add_argument("--resume-from", type=Path, metavar="DIR",
                   help="the run folder this run continues (successive halving's promotion of a stopped run)")

    p = add("train-pack", "pblf.training.train:stage_train_pack",
            "train several runs of one seed and budget together, each into its own folder")
    _add_config(p)
    p.add_argument("--runs", required=True,
                   help='JSON list of {"run": {kind, budget, seed, method, ...}, "candidate_file": FILE, '
                        '"out": DIR, "resume_from": DIR or null}')
    p.add_argument("--kind", choices=("exact", "fused"), help="how the pack trains (default: the config's "
                                                               "resources.pack)")
    p.add_argument("--split", type=Path, help="split record from `pblf split` (default: made from the config)")

    p = add("propose", "pblf.search.propose:stage_propose",
            "propose the candidates of one search iteration (random, GP-UCB or EI, as the config says)")
    _add_config(p)
    p.add_argument("--history", required=True, type=Path, help="what the search evaluated so far (pblf history)")
    p.add_argument("--budget", required=True, type=int)
    p.add_argument("--method", required=True, choices=search_methods())
    p.add_argument("--iteration", required=True, type=int, help="0 is the random initial batch")
    p.add_argument("--search", type=int, default=0, help="which of the method's searches (default 0; search.repeats)")
    _add_out(p, "proposal.json")

    for name, stage, writes in (("history", "pblf.search.collect:stage_history", "history.csv"),
                                ("evaluations", "pblf.search.collect:stage_evaluations", "evaluations.csv")):
        p = add(name, stage, f"every candidate a search evaluated, with its results ({writes})")
        p.add_argument("--proposals", nargs="*", default=[], type=Path, help="proposal files, in iteration order")
        p.add_argument("--metrics", nargs="*", default=[], type=Path, help="the metrics.json of their runs")
        _add_out(p, writes)

    p = add("select", "pblf.search.select:stage_select", "choose a search's candidate: the highest Top-1 validation")
    p.add_argument("--evaluations", required=True, type=Path, help="the search's evaluations.csv")
    _add_out(p, "<method>.json")

    p = add("select-standard", "pblf.search.select:stage_select_standard",
            "record Standard backpropagation (the config's standard candidate) like a search's choice")
    _add_config(p)
    p.add_argument("--budget", required=True, type=int)
    _add_out(p, "Standard.json")

    p = add("trials", "pblf.results.trials:stage_trials", "gather the repeat runs into trials.csv")
    p.add_argument("--metrics", nargs="+", required=True, type=Path, help="the repeat runs' metrics.json")
    p.add_argument("--evaluations", nargs="*", default=[], type=Path,
                   help="the searches' evaluations.csv, for what each search cost")
    _add_out(p, "trials.csv")

    p = add("generalisation", "pblf.results.generalisation:stage_generalisation",
            "gather the generalisation runs into runs.csv")
    _add_config(p)
    p.add_argument("--metrics", nargs="+", required=True, type=Path, help="the generalisation runs' metrics.json")
    _add_out(p, "runs.csv")

    p = add("generalisation-table", "pblf.results.generalisation:stage_generalisation_table",
            "the generalisation table (Top-1 and divergences per method, batch size and lr scaling) from runs.csv")
    p.add_argument("--runs", required=True, type=Path, help="generalisation/runs.csv")
    _add_out(p, "generalisation.{csv,md,tex,html}")

    p = add("timings", "pblf.results.timings:stage_timings",
            "what each search's training took, and on what machine: timings.{csv,md,tex,html}")
    p.add_argument("--evaluations", nargs="+", required=True, type=Path, help="the searches' evaluations.csv")
    _add_out(p, "timings.{csv,md,tex,html}")

    p = add("tables", "pblf.results.tables:stage_tables", "Tables 6.2, B.1 and B.2 (CSV, Markdown, LaTeX, HTML) from a trials file")
    p.add_argument("--trials", required=True, type=Path,
                   help="CSV: budget_epochs, method, seed, test_top1, val_top1, w1, w2, b1, b2, mode")
    _add_out(p, "table_{6_2,B_1,B_2}.{csv,md,tex,html}")

    p = add("reproduction", "pblf.results.reproduction:stage_reproduction",
            "the thesis's numbers beside the pipeline's: reproduction.{csv,md,tex,html} and reproduction_cells.{...}")
    p.add_argument("--trials", required=True, type=Path, help="the pipeline's trials.csv")
    p.add_argument("--convergence", nargs="*", default=[], type=Path,
                   help="the convergence reruns' metrics.json (Figure 6.4's end points)")
    _add_out(p, "reproduction{,_cells}.{csv,md,tex,html}")

    p = add("summary", "pblf.results.summary:stage_summary",
            "the answer on one page: Table 6.2 and the key figures (summary.html, the report's front page)")
    p.add_argument("--table", required=True, type=Path, help="Table 6.2 as HTML (table_6_2.html)")
    p.add_argument("--figures", nargs="*", default=[], type=Path, help="the PNGs of Figures 6.1-6.3 that the run drew")
    _add_out(p, "summary.html")

    p = add("figure", "pblf.results.figures:stage_figure", "draw one figure of the thesis")
    p.add_argument("figure", choices=FIGURES, help="the figure's id")
    p.add_argument("--inputs", nargs="+", required=True, type=Path,
                   help="6.1/6.2/6.4: metrics.json of the runs; 6.3: evaluations.csv of the searches; "
                        "C.1-C.3: the trajectory CSV; C.4: velocity.csv; generalisation: its runs.csv")
    _add_config(p, required=False)
    _add_out(p, "figure_<id>.png and .pdf")

    p = add("trajectories", "pblf.results.trajectories:stage_trajectories",
            "Appendix C: gradient trajectories and velocities under beta")
    _add_config(p)
    _add_out(p, "figure_C_{1,2,3}.csv and velocity.csv")

    p = add("audit", "pblf.audit:stage_audit",
            "verify every table and figure back to the data set through provenance records", writes=False)
    p.add_argument("results_dir", nargs="?", default=Path("results"), type=Path,
                   help="the run's results folder, results/<name> (default: the one run under results)")
    p.add_argument("--cell", help="only the chain of one table cell group: TABLE:BUDGET:METHOD")
    p.add_argument("--file", action="append", type=Path, help="only the chain of this file (repeatable)")
    p.add_argument("--data-root", type=Path, default=Path("data"),
                   help="the folder that holds the data set (cifar-10-batches-py/) the split was made from; never "
                        "taken from the results folder (default: data)")
    return parser


def _stage(spec: str):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def _arguments(stage, args: argparse.Namespace) -> dict[str, Any]:
    """The stage's keyword arguments from the parsed command line (a run's identity from its flags)."""
    values = vars(args)
    kwargs = {}
    for name in inspect.signature(stage).parameters:
        if name == "run":
            try:
                kwargs[name] = RunId(args.kind, args.budget, args.seed, args.method, args.iteration, args.index,
                                     args.search, args.batch_size, args.lr_scaling)
            except ValueError as err:
                raise ConfigError(f"--kind {args.kind}: {err}") from None
        elif name in values:
            kwargs[name] = values[name]
    return kwargs


#: Seconds to wait before each new try of a failed record write (a full disk may be freed by another job's end, a
#: network file system may come back).
RECORD_RETRIES = (0.5, 2.0)


def _write_records(io: IOLog, outcome: Outcome, args: argparse.Namespace, argv: list[str], started: str) -> None:
    """Write the records of a stage's outputs, trying again after :data:`RECORD_RETRIES`; if they still cannot be
    written, keep the outputs (a training run's checkpoint and metrics took hours) and say how to finish: a rerun
    writes the records, and a training run resumes from its finished checkpoint without training again. An output
    without a record is no result to the audit meanwhile."""
    for delay in (*RECORD_RETRIES, None):
        try:
            write_records(io, outcome, args.command, argv, started, args.results)
            return
        except OutputError as err:
            if delay is None:
                raise OutputError(f"{err}; kept the outputs ({', '.join(map(str, io.outputs))}): fix that, then rerun "
                                  "the same command, which writes the missing records (a training run resumes from "
                                  "its finished checkpoint, without training again)") from None
            time.sleep(delay)


@contextmanager
def preemption_stops() -> Iterator[None]:
    """A preemption signal stops the command with :class:`Preempted` (exit status 75, which a scheduler retries)
    wherever it arrives: the training loop takes the signals over while it runs, saves and raises it itself; outside
    it, between the last epoch and the records say, the default would end the process with 143."""
    def stop(signum: int, _frame: Any) -> None:
        raise Preempted(f"signal {signal.Signals(signum).name}")

    previous = {signum: signal.signal(signum, stop) for signum in PREEMPTION_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # everything after the first "--" is for Snakemake (pblf run ... -- -n); no other command takes such arguments
    split = argv.index("--") if "--" in argv else len(argv)
    passthrough = argv[split + 1:]
    parser = build_parser()
    args = parser.parse_args(argv[:split])
    if passthrough and args.command != "run":
        parser.error(f"arguments after -- ({' '.join(passthrough)}) are for pblf run only")
    args.snakemake_args = passthrough
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,  # main() may run more than once in a process (tests, notebooks): log to today's stderr
    )
    started = now()
    try:
        stage = _stage(args.stage)
        if not args.writes:  # pblf run, audit, plan, ...: signals as usual (pblf run's Snakemake handles its own)
            return (stage(**_arguments(stage, args)) or Outcome()).exit_code
        ensure_writable(args.results / STORE)  # outputs and their records are written together: check that first
        with preemption_stops():
            with track() as io:
                outcome = stage(**_arguments(stage, args)) or Outcome()
            if outcome.exit_code == 0 and io.outputs:
                _write_records(io, outcome, args, argv, started)
    except Preempted as err:
        print(f"pblf {args.command}: preempted ({err}); rerun the same command to continue (what it finished, and "
              "a training run's checkpoint, is kept)", file=sys.stderr)
        return EXIT_PREEMPTED
    except UserError as err:
        if os.environ.get("PBLF_DEBUG"):
            raise
        print(f"pblf {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"pblf {args.command}: {INTERRUPTED}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
