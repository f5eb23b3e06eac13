"""Benchmarks of the Snakemake side of the pipeline: DAG construction and per-iteration scheduling overhead.

    python benchmarks/bench_dag.py --out FILE.json [--iterations 100] [--parts ab]

(a) dry-run -- wall time of ``snakemake -n`` on the thesis config (config.yaml: budgets 20 and 100, PBLF-BO with
    20 + 100 iterations, each a checkpoint) in a temporary copy of the workflow, 3 times, median; the job counts of
    the dry-run too. Because every BO iteration is a checkpoint, the dry-run only holds the first wave (up to the
    first proposals and their training runs); the rest of the DAG appears as checkpoints finish. Target <= 15 s.

(b) overhead per BO iteration -- a real ``snakemake --cores 2`` run of one search (target
    ``results/smoke+bench/search/b1/PBLF-BO/r0/evaluations.csv``) with N iterations, in a temporary copy of the workflow, with a config
    derived from presets/smoke.yaml (budgets [1], BO initial 2 + N iterations of n_acq 1 + n_random 1, RS 1 sample,
    repeat seeds [1], convergence disabled, data.subset 20).

    THE TRAINING JOBS ARE FAKE. To measure Snakemake rather than training, a small script named ``pblf`` is put first
    on PATH for that run. For ``pblf train`` it writes, at once, a valid metrics.json (the candidate read from
    ``--candidate-file FILE --index I``, the run identity of its flags, status ok, one epoch row per epoch, a
    deterministic pseudo-random val_top1 and test_top1); every other subcommand (split, history, propose, ...) is
    handed to the real ``pblf`` of
    the venv. The wrapper appends each command's start and end time to a log, so the iteration time can be split
    into the time the pblf commands on the critical path ran (train, history, propose) and the rest: Snakemake's own
    scheduling, DAG re-evaluation after each checkpoint, job start-up and file checks.

    The time of iteration i is mtime(i<i>/proposal.json) - mtime(i<i-1>/proposal.json): it holds the training jobs
    of iteration i-1, then history.csv and proposal.json of iteration i. Reported: mean seconds per iteration over
    the first 10 and the last 10, and the slope of a least-squares line through (i, seconds) -- a positive slope means
    the overhead grows with the number of iterations already done.

Absolute seconds depend on the machine and its load; the growth (slope, last-10 / first-10) is the finding.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests"))
from workflow_helpers import copy_workflow  # noqa: E402 - the tests' way of making a scratch copy of the workflow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import finish, table  # noqa: E402

FAKE_PBLF = '''#!{python}
"""Benchmark stand-in for `pblf` (benchmarks/bench_dag.py): `pblf train` writes a metrics.json at once, with no
training; every other subcommand runs the real pblf. Each command's start and end go to $PBLF_BENCH_LOG."""
import hashlib, json, os, subprocess, sys, time

REAL = {real!r}
started = time.time()
argv = sys.argv[1:]


def option(name, default=None):
    return argv[argv.index(name) + 1] if name in argv else default


def record(status):
    line = json.dumps({{"cmd": argv[0] if argv else "", "out": option("--out", ""), "start": started,
                       "end": time.time(), "rc": status}})
    with open(os.environ["PBLF_BENCH_LOG"], "a") as handle:
        handle.write(line + "\\n")


if argv and argv[0] == "train":
    data = json.load(open(option("--candidate-file")))
    index = option("--index")
    data = data["candidates"][int(index)] if index is not None else data["candidate"]
    candidate = {{k: data[k] for k in ("w1", "w2", "b1", "b2", "mode")}}
    digest = hashlib.sha256(json.dumps(candidate, sort_keys=True).encode()).digest()
    noise = int.from_bytes(digest[:4], "big") / 2**32
    # a smooth function of the candidate plus deterministic noise, so the GP has something to model
    val = round(60 + 20 * (1 - (candidate["w1"] - 0.3) ** 2) * (1 - (candidate["b2"] - 0.7) ** 2) + 5 * noise, 4)
    test = round(val - 1 + noise, 4)
    run = {{key: option("--" + key) for key in ("kind", "method", "budget", "seed", "iteration", "index")}}
    run = {{key: value if key in ("kind", "method") else int(value) for key, value in run.items() if value is not None}}
    budget = run["budget"]
    out = option("--out")
    os.makedirs(out, exist_ok=True)
    rows = [{{"epoch": e + 1, "lr": 0.1, "train_loss": 1.0, "train_top1": val, "val_top1": val, "test_top1": test,
             "seconds": 0.0, "images_per_second": 0.0}} for e in range(budget)]
    metrics = {{"run": run, "candidate": candidate, "activation": "relu", "status": "ok",
               "epochs": rows, "val_top1": val, "test_top1": test, "fake": "bench_dag.py: no training was done"}}
    with open(os.path.join(out, "metrics.json.tmp"), "w") as handle:
        json.dump(metrics, handle, indent=1, sort_keys=True)
    os.replace(os.path.join(out, "metrics.json.tmp"), os.path.join(out, "metrics.json"))
    record(0)
    sys.exit(0)

status = subprocess.call([REAL, *argv])
record(status)
sys.exit(status)
'''


def env(extra_path: Path | None = None, **more: str) -> dict[str, str]:
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    if extra_path is not None:
        path = f"{extra_path}{os.pathsep}{path}"
    return {**os.environ, "PATH": path, **more}


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def parse_job_stats(text: str) -> dict[str, int]:
    """The 'Job stats' table of Snakemake's dry-run output."""
    counts: dict[str, int] = {}
    block = text.split("Job stats:")[-1]
    for line in block.splitlines()[3:]:
        match = re.fullmatch(r"\s*(\S+)\s+(\d+)\s*", line)
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    return counts


# ------------------------------------------------------------------------------------------------- (a) dry-run


def bench_dry_run(workdir: Path, repeats: int) -> dict[str, Any]:
    copy_workflow(workdir)
    times, counts = [], {}
    for _ in range(repeats):
        started = time.perf_counter()
        proc = subprocess.run([str(BIN / "snakemake"), "-n", "--cores", "2"], cwd=workdir, env=env(),
                              capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise RuntimeError(f"snakemake -n failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        counts = parse_job_stats(proc.stdout + proc.stderr)
    return {
        "config": "config.yaml (thesis: budgets 20 and 100, BO 20 + 100 iterations, RS 100, 5 seeds, 600-epoch reruns)",
        "command": "snakemake -n --cores 2",
        "repeats": repeats,
        "seconds": [round(t, 3) for t in times],
        "median_seconds": round(median(times), 3),
        "target_seconds": 15,
        "job_counts": counts,
        "note": "each BO iteration is a checkpoint, so the dry-run holds only the first wave of jobs",
    }


# ------------------------------------------------------------------------------------------------- (b) overhead


def bench_iterations(workdir: Path, iterations: int, n_random: int, cores: int, timeout: float) -> dict[str, Any]:
    copy_workflow(workdir)
    fake_bin = workdir / "fake-bin"
    fake_bin.mkdir()
    fake = fake_bin / "pblf"
    fake.write_text(FAKE_PBLF.format(python=sys.executable, real=str(BIN / "pblf")))
    fake.chmod(0o755)
    overrides = {
        "data": {"subset": 20},
        "budgets": [1],
        "search": {"bo": {"initial": 2, "iterations": iterations, "n_acq": 1, "n_random": n_random},
                   "rs": {"samples": 1}},
        "repeats": {"seeds": [1]},  # disjoint from search.train_seed (0), as the config requires
        "convergence": {"enabled": False, "from_budget": 1},
    }
    (workdir / "bench.yaml").write_text(json.dumps(overrides, indent=1) + "\n")  # JSON is YAML
    log = workdir / "pblf-commands.jsonl"
    target = "results/smoke+bench/search/b1/PBLF-BO/r0/evaluations.csv"
    command = [str(BIN / "snakemake"), "--cores", str(cores), "--configfile", "presets/smoke.yaml", "bench.yaml",
               "--", target]
    started = time.time()
    with (workdir / "snakemake.log").open("w") as out:
        proc = subprocess.run(command, cwd=workdir, env=env(fake_bin, PBLF_BENCH_LOG=str(log)), stdout=out,
                              stderr=subprocess.STDOUT, timeout=timeout)
    ended = time.time()
    if proc.returncode != 0:
        tail = (workdir / "snakemake.log").read_text()[-4000:]
        raise RuntimeError(f"snakemake failed ({proc.returncode}):\n{tail}")

    return {
        "config": {"preset": "presets/smoke.yaml", "overrides": overrides},
        "command": " ".join(["snakemake", *command[1:]]),
        "cores": cores,
        **analyse(workdir, iterations, started, ended),
    }


def analyse(workdir: Path, iterations: int, started: float, ended: float) -> dict[str, Any]:
    """Seconds per iteration from the proposals' mtimes, split with the wrapper's log of pblf commands."""
    search = workdir / "results/smoke+bench/search/b1/PBLF-BO"
    proposals = [search / f"i{i:03d}/proposal.json" for i in range(iterations + 1)]
    stamps = [p.stat().st_mtime for p in proposals]
    per_iter = [stamps[i] - stamps[i - 1] for i in range(1, len(stamps))]

    # the pblf commands on the critical path of each iteration, from the wrapper's log: the fake training runs of
    # the previous proposal (in parallel: the longest), then `history` and `propose`; plus any
    # command of no iteration (e.g. `split`, which the first training runs wait for) that ran inside the interval
    commands = [json.loads(line) for line in (workdir / "pblf-commands.jsonl").read_text().splitlines()]
    fakes = [c for c in commands if c["cmd"] == "train"]
    duration: dict[tuple[str, int], float] = {}
    others = []
    for c in commands:
        match = re.search(r"/i(\d{3})/", c["out"] + "/")
        if not match:
            others.append(c)
            continue
        key = (c["cmd"], int(match.group(1)))
        duration[key] = max(duration.get(key, 0.0), c["end"] - c["start"])

    def other_in(lo: float, hi: float) -> float:
        return sum(c["end"] - c["start"] for c in others if c["start"] >= lo and c["end"] <= hi)

    on_path = [duration.get(("train", i - 1), 0.0) + duration.get(("history", i), 0.0)
               + duration.get(("propose", i), 0.0) + other_in(stamps[i - 1], stamps[i])
               for i in range(1, iterations + 1)]
    rest = [t - c for t, c in zip(per_iter, on_path)]
    propose_s = [duration.get(("propose", i), 0.0) for i in range(1, iterations + 1)]
    history_s = [duration.get(("history", i), 0.0) for i in range(1, iterations + 1)]

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 3) if values else float("nan")

    def slope(values: list[float]) -> float:
        n = len(values)
        if n < 2:
            return float("nan")
        xs = list(range(1, n + 1))
        mx, my = sum(xs) / n, sum(values) / n
        return round(sum((x - mx) * (y - my) for x, y in zip(xs, values)) / sum((x - mx) ** 2 for x in xs), 5)

    k = min(10, len(per_iter))
    summary = {
        name: {"first10_mean_s": mean(v[:k]), "last10_mean_s": mean(v[-k:]),
               "first10_median_s": round(median(v[:k]), 3), "last10_median_s": round(median(v[-k:]), 3),
               "slope_s_per_iteration": slope(v)}
        for name, v in (("iteration", per_iter), ("pblf_commands_on_critical_path", on_path),
                        ("snakemake_rest", rest), ("propose_command", propose_s), ("history_command", history_s))
    }
    return {
        "iterations": iterations,
        "training": "FAKE: `pblf train` replaced by a script that writes metrics.json at once (see docstring)",
        "fake_train_jobs": len(fakes),
        "fake_train_mean_s": mean([c["end"] - c["start"] for c in fakes]),
        "total_wall_s": round(ended - started, 1),
        "start_to_first_proposal_s": round(stamps[0] - started, 2),
        "last_proposal_to_end_s": round(ended - stamps[-1], 2),
        "summary": summary,
        "seconds_per_iteration": [round(t, 3) for t in per_iter],
        "snakemake_rest_per_iteration": [round(t, 3) for t in rest],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--iterations", type=int, default=100, help="(b) BO iterations after the initial batch")
    parser.add_argument("--n-random", type=int, default=1, choices=[0, 1], help="(b) random candidates per iteration")
    parser.add_argument("--cores", type=int, default=2, help="(b) snakemake --cores")
    parser.add_argument("--repeats", type=int, default=3, help="(a) dry-runs")
    parser.add_argument("--parts", default="ab")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workflow copies")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="(b) seconds before snakemake is stopped")
    args = parser.parse_args(argv)

    result: dict[str, Any] = {
        "benchmark": "bench_dag",
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "snakemake": subprocess.run([str(BIN / "snakemake"), "--version"], capture_output=True, text=True).stdout.strip(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    printed = []
    tmp = Path(tempfile.mkdtemp(prefix="pblf-bench-dag-"))
    try:
        if "a" in args.parts:
            dry = bench_dry_run(tmp / "thesis", args.repeats)
            result["a_dry_run"] = dry
            printed.append(table("(a) snakemake -n on config.yaml (thesis)", ["runs (s)", "median s", "target s", "jobs"],
                                 [[", ".join(map(str, dry["seconds"])), dry["median_seconds"], dry["target_seconds"],
                                   dry["job_counts"].get("total", "?")]]))
        if "b" in args.parts:
            it = bench_iterations(tmp / "search", args.iterations, args.n_random, args.cores, args.timeout)
            result["b_iterations"] = it
            printed.append(table(
                f"(b) seconds per BO iteration, {args.iterations} iterations, fake training, --cores {args.cores} "
                f"(total {it['total_wall_s']} s)",
                ["part", "first 10 mean s", "last 10 mean s", "first 10 median s", "last 10 median s",
                 "slope s/iteration"],
                [[name, s["first10_mean_s"], s["last10_mean_s"], s["first10_median_s"], s["last10_median_s"],
                  s["slope_s_per_iteration"]] for name, s in it["summary"].items()]))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return finish(result, printed, args.out)


if __name__ == "__main__":
    sys.exit(main())
