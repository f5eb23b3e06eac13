"""The ``pblf`` command: every stage of the pipeline, callable by hand or from a Snakemake rule.

Each subcommand reads its inputs from files, writes its outputs to files (plus their provenance records, see
:mod:`pblf.provenance`) and does nothing else, so that a researcher can rerun any single step outside Snakemake.
Expected failures (a bad config, a missing or corrupt data set, a missing or malformed input) end with one clear
line and exit status 2; set PBLF_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pblf.config import load_config, stage_config
from pblf.errors import ConfigError, DataError
from pblf.provenance import Produced, now, write_records

log = logging.getLogger("pblf")

#: Errors a user can fix (each message names the file or value); anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, FileNotFoundError, ValueError)


def _config(paths: Sequence[str]) -> dict:
    return load_config(paths)


def _candidate(text: str, index: int = 0):
    """A candidate from JSON, or from @FILE: a candidate, a selection record ("candidate") or a proposal
    ("candidates", the one at ``index``)."""
    from pblf.candidate import Candidate

    try:
        data = json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
        if isinstance(data, dict) and "candidates" in data:
            data = data["candidates"][index]
        elif isinstance(data, dict) and "candidate" in data:
            data = data["candidate"]
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {data!r}")
        return Candidate.from_dict(data)
    except (ValueError, IndexError) as err:
        raise ConfigError(f"--candidate {text}: {err}") from err


def _candidate_inputs(text: str) -> list[Path]:
    return [Path(text[1:])] if text.startswith("@") else []


# ------------------------------------------------------------------------------------------------------ commands


def cmd_check_config(args: argparse.Namespace) -> Produced:
    _config(args.config)
    log.info("configuration is valid: %s", ", ".join(args.config))
    return Produced()


def cmd_split(args: argparse.Namespace) -> Produced:
    from pblf.data import make_split, write_split

    cfg = _config(args.config)
    record = make_split(cfg["data"], cfg["seed"])
    write_split(record, args.out)
    sizes = record["sizes"]
    log.info(
        "%s split (seed %d): %d train / %d validation / %d test, normalisation %s -> %s",
        record["dataset"], cfg["seed"], sizes["train"], sizes["validation"], sizes["test"],
        record["normalisation"]["mode"], args.out,
    )
    return Produced([Path(p) for p in args.config], [args.out], stage_config(cfg, "data"),
                    {"split_of": record["dataset"]})


def cmd_train(args: argparse.Namespace) -> Produced:
    from pblf.data import read_split
    from pblf.train import CHECKPOINT, EXIT_PREEMPTED, METRICS, Preempted, resolve_device, train_candidate

    cfg = _config(args.config)
    if args.budget < 1:
        raise ConfigError(f"--budget {args.budget}: the budget must be a positive number of epochs")
    split = read_split(args.split) if args.split else None
    candidate = _candidate(args.candidate, args.index)
    try:
        result = train_candidate(cfg, candidate, args.budget, args.seed, args.out, split)
    except Preempted as err:
        log.warning("preempted (%s); the checkpoint in %s holds the progress, rerun the same command to resume",
                    err, args.out)
        return Produced(exit_code=EXIT_PREEMPTED)
    log.info("%s: val %.2f%%, test %.2f%% -> %s", result["status"], result["val_top1"], result["test_top1"],
             args.out / METRICS)
    inputs = [Path(p) for p in args.config] + _candidate_inputs(args.candidate) + ([args.split] if args.split else [])
    outputs = [args.out / METRICS] + ([args.out / CHECKPOINT] if (args.out / CHECKPOINT).is_file() else [])
    device = resolve_device(cfg["device"]).type
    return Produced(inputs, outputs, stage_config(cfg, "train"),
                    {"run": {"candidate": candidate.to_dict(), "budget": args.budget, "seed": args.seed,
                             "index": args.index, "status": result["status"]}, "device": device})


def cmd_propose(args: argparse.Namespace) -> Produced:
    from pblf.propose import propose, read_history, write_proposal

    history = read_history(args.history)
    candidates = propose(args.method, history, args.n_acq, args.n_random, args.seed, beta=args.beta,
                         acquisition=args.acquisition, xi=args.xi, phi_bound=args.phi_bound)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_proposal(args.out, candidates)
    sources = ", ".join(sorted({c["source"] for c in candidates})) or "nothing"
    log.info("%s: %d candidates (%s) from %d evaluated -> %s", args.method, len(candidates), sources,
             len(history), args.out)
    settings = {k: getattr(args, k) for k in ("method", "n_acq", "n_random", "seed", "beta", "acquisition", "xi",
                                              "phi_bound")}
    return Produced([args.history], [args.out], settings)


def cmd_collect(args: argparse.Namespace) -> Produced:
    from pblf.select import HISTORY_COLUMNS, SEARCH_COLUMNS, collect_search, write_csv

    rows = collect_search(args.proposals, args.runs_dir)
    write_csv(rows, HISTORY_COLUMNS if args.history else SEARCH_COLUMNS, args.out)
    log.info("%d evaluated candidates from %d proposals -> %s", len(rows), len(args.proposals), args.out)
    metrics = [Path(row["run"]) / "metrics.json" for row in rows]
    return Produced(list(args.proposals) + metrics, [args.out])


def cmd_select(args: argparse.Namespace) -> Produced:
    from pblf.files import write_json
    from pblf.select import read_csv, select_best, selection_record

    if args.trials:
        row = select_best(read_csv(args.trials))
        row = {**row, "iteration": int(row["iteration"]), "index": int(row["index"]),
               "val_top1": float(row["val_top1"]), "test_top1": float(row["test_top1"])}
    else:
        row = _candidate(args.candidate).to_dict()
    record = selection_record(row, args.budget, args.method)
    write_json(record, args.out)
    log.info("%s at %d epochs: %s -> %s", args.method, args.budget, record["candidate"], args.out)
    return Produced([args.trials] if args.trials else [], [args.out])


def cmd_trials(args: argparse.Namespace) -> Produced:
    from pblf.select import TRIALS_COLUMNS, collect_trials, write_csv
    from pblf.workflow import parse_run

    entries = []
    for run in args.runs:
        spec = parse_run(run)
        entries.append((spec["budget"], spec["method"], spec["seed"], run))
    rows = collect_trials(entries)
    write_csv(rows, TRIALS_COLUMNS, args.out)
    log.info("%d trained seeds -> %s", len(rows), args.out)
    return Produced([Path(run) / "metrics.json" for run in args.runs], [args.out])


def cmd_tables(args: argparse.Namespace) -> Produced:
    from pblf.tables import write_tables

    paths = write_tables(args.trials, args.out)
    log.info("tables from %s: %s", args.trials, ", ".join(p.name for p in paths))
    return Produced([args.trials], paths)


def cmd_figure(args: argparse.Namespace) -> Produced:
    from pblf import figures
    from pblf.select import read_csv
    from pblf.workflow import parse_run, parse_search_trials

    name = Path(args.out).name
    figure_id = name.removeprefix("figure_").replace("_", ".") if name.startswith("figure_") else None
    if args.kind == "curves":
        runs: dict[str, list[dict]] = {}
        for run in args.inputs:
            runs.setdefault(parse_run(run)["method"], []).extend(figures.load_metrics([Path(run) / "metrics.json"]))
        paths = figures.draw_curves(runs, args.budget, args.out, figure_id=figure_id)
        inputs = [Path(run) / "metrics.json" for run in args.inputs]
    elif args.kind == "convergence":
        runs_one = {parse_run(run)["method"]: figures.load_metrics([Path(run) / "metrics.json"])[0]
                    for run in args.inputs}
        paths = figures.draw_convergence(runs_one, args.out, figure_id=figure_id)
        inputs = [Path(run) / "metrics.json" for run in args.inputs]
    else:
        searches = {parse_search_trials(path): read_csv(path) for path in args.inputs}
        paths = figures.draw_search_scatter(searches, args.out, figure_id=figure_id)
        inputs = [Path(path) for path in args.inputs]
    log.info("drew %s", ", ".join(str(p) for p in paths))
    return Produced(inputs, paths)


def cmd_trajectories(args: argparse.Namespace) -> Produced:
    from pblf.trajectories import write_trajectories, write_velocity

    cfg = _config(args.config)
    c = cfg["appendix_c"]
    paths = write_trajectories(args.out_dir, c["epochs"], c["trials"], c["n_samples"], cfg["seed"])
    paths.append(write_velocity(args.out_dir / "velocity.csv", c["epochs"], c["velocity_trials"], c["n_samples"],
                                cfg["seed"]))
    log.info("Appendix C: %s", ", ".join(str(p) for p in paths))
    return Produced([Path(p) for p in args.config], paths, stage_config(cfg, "appendix_c"))


def cmd_figure_c(args: argparse.Namespace) -> Produced:
    from pblf.figures_c import draw_figure_c, draw_velocity

    cfg = _config(args.config)
    if args.velocity:
        paths = draw_velocity(args.csv, args.out)
    else:
        paths = draw_figure_c(args.csv, args.out, seed=cfg["seed"], n_samples=cfg["appendix_c"]["n_samples"])
    log.info("drew %s", ", ".join(str(p) for p in paths))
    return Produced([args.csv, *[Path(p) for p in args.config]], paths, stage_config(cfg, "appendix_c"))


def cmd_audit(args: argparse.Namespace) -> Produced:
    from pblf.audit import cell_filter, cell_rows, parse_cell, walk

    keep = None
    targets = [Path(p) for p in args.file] or None
    if args.cell:
        table, budget, method = parse_cell(args.cell)
        for row in cell_rows(args.results_dir, table, budget, method):
            print(f"{table} [{budget} epochs, {method}]: " + ", ".join(f"{k}={v}" for k, v in row.items()))
        targets = [args.results_dir / "tables" / f"{table}.csv"]
        keep = cell_filter(budget, method)
    audit = walk(args.results_dir, targets, keep) if keep else walk(args.results_dir, targets)
    if not args.quiet:
        print("\n".join(audit.lines))
    for problem in audit.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    verdict = "passed" if audit.ok else f"FAILED with {len(audit.problems)} problem(s)"
    print(f"audit {verdict}: {audit.checked} checksums verified under {args.results_dir}")
    return Produced(exit_code=0 if audit.ok else 1)


# -------------------------------------------------------------------------------------------------------- parser


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", action="append", required=True, metavar="FILE",
        help="config file (YAML or JSON); repeat to merge presets over it, later files win",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pblf", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--results", default="results", type=Path,
                        help="results folder whose provenance/ store holds the records (default: results)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], Produced], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = add("check-config", cmd_check_config, "validate config files against the schema")
    _add_config(p)

    p = add("split", cmd_split, "read the data set and write the train/validation split record")
    _add_config(p)
    p.add_argument("--out", required=True, type=Path, help="split record to write (JSON)")

    p = add("train", cmd_train, "train the target network with one candidate for one budget and one seed")
    _add_config(p)
    p.add_argument("--candidate", required=True,
                   help='JSON such as \'{"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"}\', or @FILE')
    p.add_argument("--budget", required=True, type=int, help="epochs")
    p.add_argument("--seed", required=True, type=int, help="repeat seed (combined with the config's base seed)")
    p.add_argument("--out", required=True, type=Path, help="run folder: metrics.json, checkpoint.pt")
    p.add_argument("--split", type=Path, help="split record from `pblf split` (default: made from the config)")
    p.add_argument("--index", type=int, default=0, help="which candidate of a proposal file given as @FILE")

    p = add("propose", cmd_propose, "propose the next candidates of a search (GP-UCB/EI or random)")
    p.add_argument("--method", required=True, choices=["bo", "rs"])
    p.add_argument("--history", required=True, type=Path, help="CSV with w1,w2,b1,b2,mode,val_top1 (may be empty)")
    p.add_argument("--n-acq", type=int, default=1, help="acquisition candidates (bo only)")
    p.add_argument("--n-random", type=int, default=1, help="random candidates beside them")
    p.add_argument("--seed", required=True, type=int)
    p.add_argument("--beta", type=float, default=0.1, help="UCB trade-off (thesis 0.1)")
    p.add_argument("--acquisition", choices=["ucb", "ei"], default="ucb")
    p.add_argument("--xi", type=float, default=0.01, help="EI margin")
    p.add_argument("--phi-bound", type=float, default=1.0, help="candidates lie in |phi| < bound")
    p.add_argument("--out", required=True, type=Path)

    p = add("collect", cmd_collect, "list every evaluated candidate of a search")
    p.add_argument("--proposals", nargs="*", default=[], type=Path, help="proposal files, in iteration order")
    p.add_argument("--runs-dir", required=True, type=Path, help="the search's folder under results/runs")
    p.add_argument("--history", action="store_true", help="only the columns the proposer reads")
    p.add_argument("--out", required=True, type=Path)

    p = add("select", cmd_select, "choose the candidate with the highest Top-1 validation")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--trials", type=Path, help="a search's trials.csv from `pblf collect`")
    source.add_argument("--candidate", help="a fixed candidate (Standard)")
    p.add_argument("--budget", required=True, type=int)
    p.add_argument("--method", required=True)
    p.add_argument("--out", required=True, type=Path)

    p = add("trials", cmd_trials, "gather repeat runs (.../repeats/b<B>/<method>/s<S>) into trials.csv")
    p.add_argument("--runs", nargs="+", required=True, help="repeat run folders")
    p.add_argument("--out", required=True, type=Path)

    p = add("tables", cmd_tables, "Tables 6.2, B.1 and B.2 (CSV, Markdown, LaTeX) from a trials file")
    p.add_argument("--trials", required=True, type=Path,
                   help="CSV: budget_epochs, method, seed, test_top1, val_top1, w1, w2, b1, b2, mode")
    p.add_argument("--out", required=True, type=Path, help="output folder")

    p = add("figure", cmd_figure, "Figures 6.1/6.2 (curves), 6.3 (scatter) and 6.4 (convergence)")
    p.add_argument("kind", choices=["curves", "scatter", "convergence"])
    p.add_argument("--inputs", nargs="+", required=True,
                   help="run folders (curves, convergence) or search trials.csv files (scatter)")
    p.add_argument("--budget", type=int, help="the budget of the curves")
    p.add_argument("--out", required=True, type=Path, help="output stem: writes STEM.png and STEM.pdf")

    p = add("trajectories", cmd_trajectories, "Appendix C: gradient trajectories and velocities under beta")
    _add_config(p)
    p.add_argument("--out-dir", required=True, type=Path, help="writes figure_C_{1,2,3}.csv and velocity.csv")

    p = add("figure-c", cmd_figure_c, "draw Figure C.1-C.3 from a trajectory CSV, or C.4 from velocity.csv")
    _add_config(p)
    p.add_argument("--csv", required=True, type=Path)
    p.add_argument("--velocity", action="store_true", help="the CSV is velocity.csv (Figure C.4)")
    p.add_argument("--out", required=True, type=Path, help="output stem: writes STEM.png and STEM.pdf")

    p = add("audit", cmd_audit, "verify every table and figure back to the data set through provenance records")
    p.add_argument("results_dir", nargs="?", default=Path("results"), type=Path)
    p.add_argument("--cell", help="only the chain of one table cell group: TABLE:BUDGET:METHOD")
    p.add_argument("--file", action="append", default=[], help="only the chain of this file (repeatable)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    started = now()
    try:
        produced = args.func(args)
        if produced.outputs:
            write_records(produced, argv, started, args.results, produced.extra.get("device"))
    except (*USER_ERRORS, DataError) as err:
        if os.environ.get("PBLF_DEBUG"):
            raise
        print(f"pblf {args.command}: error: {err}", file=sys.stderr)
        return 2
    return produced.exit_code


if __name__ == "__main__":
    sys.exit(main())
