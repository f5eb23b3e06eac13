"""The reproduction study: Standard trained by the pipeline's own `pblf split` and `pblf train` over a grid of data
copy x target network x learning-rate schedule x seed, several runs at once as concurrent processes, into one JSON.

Why it exists: the pipeline's Standard WRN-16-2 lands ~7.5 points below the thesis's 20-epoch 92.86 % on the lossy
CIFAR-10 copy, and three causes are mixed (docs/protocol.md, "How close to the thesis, and why"): the data (JPEG q75
against the exact copy), the recipe (the WRN paper's step schedule against one made for short budgets) and the
network (WRN-16-2 against WRN-28-10). Each axis of the grid isolates one of them, and the runs are paired by seed: under
common random numbers seed s starts every setting of one network from the same weights and shows it the same
batches, so "exact - lossy" and "warmup_cosine - step" are measured seed by seed.

Grids (``--grid``):

* ``gpu``: one H200-class GPU, one call of at most ~9 minutes (``--minutes`` stops what has not finished, keeping
  its epochs so far): 20 epochs, batch 128; WRN-16-2 in float32 on lossy and exact x step and warmup_cosine, seeds 1
  and 2; WRN-28-10 in bf16 (deterministic off, as the measurement of the lossy copy) on exact x both schedules,
  seed 1. Ten processes share the GPU.
* ``cpu``: the cut-down study of ``presets/cifar-cpu.yaml``'s sizes (5,000 images: 4,500 / 500, and 1,000 test
  images; WRN-10-1 with 8 stem channels, batch 64, 6 epochs) on lossy and exact x both schedules, seeds 1-10, two
  processes of one thread each. About 8 minutes on 2 cores.
* ``cpu-full``: the data's share at a higher accuracy: the whole CIFAR-10 (45,000 / 5,000 / 10,000), the same
  small network, batch 128, 10 epochs, the step schedule, lossy and exact, seeds 1-3. About 45 minutes on 2 cores.
* ``tiny``: the code path in seconds, for the tests.

The data copies are folders that hold ``cifar-10-batches-py`` (``--data NAME=ROOT``; defaults: ``lossy`` =
data/cifar10-lossy, ``exact`` = data/cifar10-exact). The copies named by ``--verified`` (default: ``exact``) are read
with ``data.verify_checksums: true`` (the canonical md5s must match, as with ``config.yaml``), the others without.

    python benchmarks/reproduce.py --grid cpu --out benchmarks/results/reproduce_cpu.json
    python benchmarks/reproduce.py --grid gpu --out benchmarks/results/reproduce_gpu.json --data exact=data
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from pblf.core.config import deep_merge, read_yaml, validate
from pblf.results.stats import paired

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import finish, record, table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STANDARD = json.dumps({"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"})
#: What a network's name sets in the config (WRN-28-10 as the measurement on the lossy copy ran it).
NETWORKS: dict[str, dict[str, Any]] = {
    "wrn-16-2": {"model": {"depth": 16, "widen_factor": 2, "base_width": 16}},
    "wrn-28-10": {"model": {"depth": 28, "widen_factor": 10, "base_width": 16}, "deterministic": False,
                  "train": {"bf16": True, "eval_batch_size": 500}},
    "wrn-10-1-8": {"model": {"depth": 10, "widen_factor": 1, "base_width": 8}},
    "wrn-10-1-2": {"model": {"depth": 10, "widen_factor": 1, "base_width": 2}},
}
SCHEDULES = ("step", "warmup_cosine")
#: The statuses of a run whose process is still going.
ACTIVE = ("running", "stopping")


@dataclass(frozen=True)
class Block:
    """The settings of one block of a grid: every combination of its networks, data copies, schedules and seeds."""

    networks: tuple[str, ...]
    data: tuple[str, ...]
    seeds: tuple[int, ...]
    schedules: tuple[str, ...] = SCHEDULES


@dataclass(frozen=True)
class Grid:
    budget: int
    base: dict[str, Any]
    blocks: tuple[Block, ...]
    jobs: int
    threads: int | None = None
    minutes: float | None = None


GRIDS: dict[str, Grid] = {
    "gpu": Grid(20, {"device": "cuda"}, (Block(("wrn-16-2",), ("lossy", "exact"), (1, 2)),
                                         Block(("wrn-28-10",), ("exact",), (1,))), jobs=10, minutes=7.5),
    "cpu": Grid(6, {"device": "cpu", "data": {"subset": 5000}, "train": {"batch_size": 64, "eval_batch_size": 500}},
                (Block(("wrn-10-1-8",), ("lossy", "exact"), tuple(range(1, 11))),), jobs=2, threads=1),
    "cpu-full": Grid(10, {"device": "cpu"}, (Block(("wrn-10-1-8",), ("lossy", "exact"), (1, 2, 3), ("step",)),),
                     jobs=2, threads=1),
    "tiny": Grid(2, {"device": "cpu", "data": {"subset": 100}, "train": {"batch_size": 16, "eval_batch_size": 100}},
                 (Block(("wrn-10-1-2",), ("lossy", "exact"), (1, 2)),), jobs=2, threads=1),
}


@dataclass(frozen=True)
class Setting:
    network: str
    data: str
    schedule: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.network}_{self.data}_{self.schedule}_s{self.seed}"


@dataclass
class Run:
    setting: Setting
    folder: Path
    process: subprocess.Popen | None = None
    status: str = "waiting"
    epochs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def settings(grid: Grid) -> list[Setting]:
    """Every setting of the grid, seeds innermost so that one setting's seeds start together."""
    return [Setting(network, data, schedule, seed) for block in grid.blocks
            for network, data, schedule, seed in itertools.product(block.networks, block.data, block.schedules,
                                                                    block.seeds)]


def config_for(grid: Grid, network: str, data: str, schedule: str, roots: dict[str, Path],
               verified: set[str]) -> dict[str, Any]:
    """config.yaml with the grid's sizes and one setting's data copy, network and schedule (validated)."""
    override = deep_merge(grid.base, NETWORKS[network])
    override = deep_merge(override, {"data": {"root": str(roots[data]), "verify_checksums": data in verified},
                                     "train": {"lr_schedule": schedule}})
    return validate(deep_merge(read_yaml(ROOT / "config.yaml"), override))


def write_config(cfg: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=True))
    return path


def pblf(work: Path, *args: str) -> list[str]:
    """A pblf command whose records go under ``work`` (each run's log keeps its per-epoch lines: the progress)."""
    return [sys.executable, "-m", "pblf.cli", "--results", str(work / "results"), *args]


def split_for(work: Path, data: str, config: Path) -> Path:
    """One split per data copy (its arrays are what every run of the copy reads)."""
    out = work / "splits" / data
    if not (out / "split.json").is_file() and \
            subprocess.run(pblf(work, "split", "--config", str(config), "--out", str(out))).returncode:
        sys.exit(f"reproduce: pblf split failed for data copy {data!r} (its message is above)")
    return out / "split.json"


def start(run: Run, work: Path, config: Path, split: Path, budget: int, threads: int | None) -> None:
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {})}
    command = pblf(work, "train", "--config", str(config), "--split", str(split), "--candidate", STANDARD,
                   "--budget", str(budget), "--seed", str(run.setting.seed), "--out", str(run.folder))
    log = (work / "logs" / f"{run.setting.name}.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    run.process = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    run.status = "running"


def collect(run: Run) -> None:
    """A finished run's epochs from its metrics.json; a run stopped by the deadline's from its checkpoint."""
    metrics = run.folder / "metrics.json"
    if metrics.is_file():
        data = json.loads(metrics.read_text())
        run.status, run.epochs = data["status"], data["epochs"]
    elif (run.folder / "checkpoint.pt").is_file():
        run.status = "cut"
        run.epochs = torch.load(run.folder / "checkpoint.pt", weights_only=True, map_location="cpu")["history"]
    else:
        run.status = "failed"
    run.seconds = round(sum(row.get("seconds", 0.0) for row in run.epochs), 1)


def run_grid(grid: Grid, roots: dict[str, Path], verified: set[str], work: Path, jobs: int,
             minutes: float | None) -> list[Run]:
    """Train every setting, at most ``jobs`` at a time; at the deadline, SIGTERM what still runs (each run then
    checkpoints and exits) and leave the rest unstarted."""
    deadline = time.monotonic() + 60 * minutes if minutes else None
    runs = [Run(setting, work / "runs" / setting.name) for setting in settings(grid)]
    configs: dict[tuple[str, str, str], tuple[Path, Path]] = {}
    for run in runs:
        key = (run.setting.network, run.setting.data, run.setting.schedule)
        if key not in configs:
            config = write_config(config_for(grid, *key, roots, verified), work / "configs" / ("_".join(key) + ".yaml"))
            configs[key] = (config, split_for(work, run.setting.data, config))
    waiting = list(runs)
    while waiting or any(run.status in ACTIVE for run in runs):
        late = deadline is not None and time.monotonic() > deadline
        for run in runs:
            if run.status in ACTIVE and run.process.poll() is not None:
                collect(run)
                print(f"{run.setting.name}: {run.status}, test {run.epochs[-1]['test_top1'] if run.epochs else '-'}",
                      flush=True)
            elif run.status == "running" and late:
                run.process.send_signal(signal.SIGTERM)  # the run checkpoints its epochs so far and exits
                run.status = "stopping"
        if late:
            waiting = []
        while waiting and sum(run.status in ACTIVE for run in runs) < jobs:
            run = waiting.pop(0)
            start(run, work, *configs[run.setting.network, run.setting.data, run.setting.schedule], grid.budget,
                  grid.threads)
        time.sleep(0.5)
    for run in runs:
        if run.process is None:
            run.status = "not started"
    return runs


def final(run: Run, key: str) -> float | None:
    return run.epochs[-1][key] if run.epochs and run.status == "ok" else None


#: The paired contrasts: (axis, first, second) gives first - second with everything else fixed.
CONTRASTS = (("data", "exact", "lossy"), ("schedule", "warmup_cosine", "step"))


def summarise(runs: Iterable[Run]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per (network, data, schedule): the finished runs' test and validation Top-1 (mean, std, n); and the paired
    effects seed by seed (:data:`CONTRASTS`): exact - lossy per network and schedule, warmup_cosine - step per
    network and data."""
    by: dict[tuple[str, str, str], dict[int, Run]] = {}
    for run in runs:
        by.setdefault((run.setting.network, run.setting.data, run.setting.schedule), {})[run.setting.seed] = run
    groups = []
    for (network, data, schedule), seeds in sorted(by.items()):
        row: dict[str, Any] = {"network": network, "data": data, "schedule": schedule}
        for key in ("test_top1", "val_top1"):
            values = [v for v in (final(run, key) for run in seeds.values()) if v is not None]
            row.update({f"{key}_mean": round(statistics.mean(values), 4) if values else None,
                        f"{key}_std": round(statistics.stdev(values), 4) if len(values) > 1 else None,
                        "n": len(values)})
        groups.append(row)
    effects = []
    for (network, data, schedule), seeds in sorted(by.items()):
        setting = {"data": data, "schedule": schedule}
        for axis, first, second in CONTRASTS:
            other = {**setting, axis: second}
            versus = by.get((network, other["data"], other["schedule"]))
            if setting[axis] != first or not versus:
                continue
            fixed = {key: value for key, value in setting.items() if key != axis}
            for key in ("test_top1", "val_top1"):
                stats = paired(_finished(seeds, key), _finished(versus, key))
                effects.append({"effect": f"{first} - {second}", "network": network, **fixed, "metric": key,
                                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in stats.items()}})
    return groups, effects


def _finished(seeds: dict[int, Run], key: str) -> dict[int, float]:
    return {seed: final(run, key) for seed, run in seeds.items() if final(run, key) is not None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=sorted(GRIDS), required=True)
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--data", action="append", default=[], metavar="NAME=ROOT",
                        help="a data copy: ROOT holds cifar-10-batches-py (defaults: lossy=data/cifar10-lossy, "
                             "exact=data/cifar10-exact)")
    parser.add_argument("--verified", nargs="*", default=["exact"], metavar="NAME",
                        help="data copies read with checksums on (default: exact; none when given no name)")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "out" / "reproduce",
                        help="where runs, configs and logs go (default benchmarks/out/reproduce; a rerun reuses "
                             "finished runs)")
    parser.add_argument("--jobs", type=int, help="processes at once (default: the grid's)")
    parser.add_argument("--minutes", type=float, help="stop runs still going after this long (default: the grid's)")
    args = parser.parse_args(argv)
    grid = GRIDS[args.grid]
    roots = {"lossy": ROOT / "data" / "cifar10-lossy", "exact": ROOT / "data" / "cifar10-exact"}
    roots.update({name: Path(root) for name, root in (entry.split("=", 1) for entry in args.data)})
    missing = sorted({s.data for s in settings(grid)} - {n for n, r in roots.items() if (r / "cifar-10-batches-py").is_dir()})
    if missing:
        parser.error(f"no cifar-10-batches-py under the root of data cop{'ies' if len(missing) > 1 else 'y'} "
                     f"{', '.join(missing)} ({', '.join(str(roots[m]) for m in missing)}); see benchmarks/README.md")
    device = torch.device("cuda" if grid.base["device"] == "cuda" else "cpu")
    head = record("reproduce", argv, device)
    started = time.perf_counter()
    runs = run_grid(grid, roots, set(args.verified), args.work, args.jobs or grid.jobs, args.minutes or grid.minutes)
    groups, effects = summarise(runs)
    result = {
        **head,
        "grid": args.grid,
        "budget_epochs": grid.budget,
        "grid_definition": asdict(grid),
        "networks": {name: NETWORKS[name] for name in sorted({s.network for s in settings(grid)})},
        "data": {name: {"root": str(roots[name]), "verify_checksums": name in args.verified}
                 for name in sorted({s.data for s in settings(grid)})},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "runs": [{**asdict(run.setting), "status": run.status, "test_top1": final(run, "test_top1"),
                  "val_top1": final(run, "val_top1"), "epochs_done": len(run.epochs), "train_seconds": run.seconds,
                  "curve": [{k: row[k] for k in ("epoch", "lr", "train_loss", "val_top1", "test_top1")}
                            for row in run.epochs]} for run in runs],
        "groups": groups,
        "paired_effects": effects,
    }
    printed = [
        table("Standard, final epoch (mean over seeds)", ["network", "data", "schedule", "test", "val", "n"],
              [[g["network"], g["data"], g["schedule"], g["test_top1_mean"], g["val_top1_mean"], g["n"]]
               for g in groups]),
        table("Paired effects (seed by seed)", ["effect", "network", "fixed", "metric", "diff", "95 % CI", "n"],
              [[e["effect"], e["network"], e.get("schedule", e.get("data")), e["metric"], e["diff"],
                f"[{e['ci_low']}, {e['ci_high']}]", e["n"]] for e in effects]),
    ]
    return finish(result, printed, args.out)


if __name__ == "__main__":
    sys.exit(main())
