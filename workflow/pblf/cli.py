"""The ``pblf`` command: every stage of the pipeline, callable by hand or from a Snakemake rule.

Each subcommand reads its inputs from files, writes its outputs to files and does nothing else, so that a
researcher can rerun any single step outside Snakemake. Expected failures (a bad config, a missing or corrupt data
set) end with one clear line and exit status 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pblf.config import ConfigError, load_config

log = logging.getLogger("pblf")

#: Errors a user can fix; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, FileNotFoundError)


def _config(paths: Sequence[str]) -> dict:
    return load_config(paths)


def cmd_split(args: argparse.Namespace) -> int:
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
    return 0


def _candidate(text: str):
    from pblf.candidate import Candidate

    source = Path(text[1:]).read_text() if text.startswith("@") else text
    try:
        return Candidate.from_json(source)
    except ValueError as err:
        raise ConfigError(f"--candidate: {err}") from err


def cmd_train(args: argparse.Namespace) -> int:
    from pblf.data import read_split
    from pblf.train import EXIT_PREEMPTED, Preempted, train_candidate

    cfg = _config(args.config)
    if args.budget < 1:
        raise ConfigError(f"--budget {args.budget}: the budget must be a positive number of epochs")
    split = read_split(args.split) if args.split else None
    try:
        result = train_candidate(cfg, _candidate(args.candidate), args.budget, args.seed, args.out, split)
    except Preempted as err:
        log.warning("preempted (%s); the checkpoint in %s holds the progress, rerun the same command to resume",
                    err, args.out)
        return EXIT_PREEMPTED
    log.info("%s: val %.2f%%, test %.2f%% -> %s", result["status"], result["val_top1"], result["test_top1"],
             Path(args.out) / "metrics.json")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    _config(args.config)
    log.info("configuration is valid: %s", ", ".join(args.config))
    return 0


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", action="append", required=True, metavar="FILE",
        help="config file (YAML or JSON); repeat to merge presets over it, later files win",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pblf", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    from pblf.data import DataError

    try:
        return args.func(args)
    except (*USER_ERRORS, DataError) as err:
        print(f"pblf {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
