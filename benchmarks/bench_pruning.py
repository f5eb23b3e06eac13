"""How much low-fidelity search saves, and whether it chooses as well: measured on real learning curves (issues 13, 20).

    python benchmarks/bench_pruning.py --out benchmarks/results/pruning.json [--replays 40] [--pool-per-replay 36]
        [--candidates 27] [--budget 9] [--margin 0.5] [--workers 2]

(a) pools  -- train ``replays`` disjoint pools of random candidates (phi uniform in |x| < 1, mode uniform), each
              candidate once to the full budget, on the demo preset's data and network (scikit-learn's digits,
              WRN-10-1 with the WRN's 16 stem channels), all with the search's training seed (common random
              numbers, as the pipeline trains them), with pblf.training.train itself; keep every run's Top-1
              validation and test curves (cached in benchmarks/out/, reused when present; a killed run resumes).
(b) replay -- like a tabular benchmark (NAS-Bench-201, LCBench), replay each search once per pool, with and without
              pruning, using the pipeline's own code for every decision: PBLF-RS draws its candidates from the pool,
              successive halving promotes with pblf.search.prune.promotions at pblf.search.prune.rung_epochs;
              PBLF-BO fits pblf.search.gp's GP (Matern 5/2 + white noise) and takes the pool candidate of highest
              UCB (beta 0.1) not yet evaluated, the median rule stops with pblf.search.prune.median_thresholds /
              pblf.training.fidelity.should_stop and tells the GP a stopped run's Top-1 validation at its last
              epoch, as the pipeline does. The chosen candidate (the highest Top-1 validation among the runs that
              trained the full budget) is scored by its full-budget Top-1 validation and Top-1 (test).

The pools are disjoint, so the replays are independent draws of a search problem (an earlier version replayed 100
searches over one pool of 81: overlapping resamples of one pool, whose spread said little). Every replay's choice and
epochs are saved. Reported per search method and pruning: the epochs spent (for successive halving they are fixed
by the rungs, the same in every replay: an arithmetic fact, not a finding); the chosen candidate's quality; and, per
pruned setting, the paired quality loss (full search's choice minus the pruned search's, replay by replay) with its
95 % interval and an equivalence test (TOST, pblf.results.stats.equivalence) against a margin stated before the run
(--margin, 0.5 points of Top-1 test by default): "as good as" is claimed only where TOST shows it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import finish, record, table  # noqa: E402

#: The rungs compared (fractions of the budget): successive halving's classic ladder with eta 3 (1/9 and 1/3), the
#: schema's default chosen from this benchmark (1/3 and 2/3), and one rung at half the budget.
RUNG_SETTINGS: dict[str, tuple[float, ...]] = {"1/9,1/3": (0.1111, 0.3333), "1/3,2/3": (0.3333, 0.6667),
                                               "1/2": (0.5,)}
ETA = 3
MIN_COMPLETED = 3
BETA = 0.1


# ---------------------------------------------------------------------------------------------------------- pool


def _config(budget: int) -> dict[str, Any]:
    from pblf.core.config import load_config

    cfg = load_config([ROOT / "config.yaml", ROOT / "presets" / "demo.yaml"])
    cfg["budgets"] = [budget]
    return cfg


def _train_one(job: tuple[int, dict[str, Any], int]) -> dict[str, Any]:
    """One pool candidate trained to the full budget in a scratch folder; its curves."""
    import torch
    from pblf.core.candidate import Candidate
    from pblf.core.layout import RunId
    from pblf.training.train import train_candidate

    torch.set_num_threads(1)
    index, candidate, budget = job
    cfg = _config(budget)
    with tempfile.TemporaryDirectory() as scratch:
        run = RunId("search", budget, cfg["search"]["train_seed"], "PBLF-RS", 0, index)
        result = train_candidate(cfg, Candidate.from_dict(candidate), run, Path(scratch))
    return {"candidate": candidate, "status": result["status"],
            "val": [row["val_top1"] for row in result["epochs"]], "test": [row["test_top1"] for row in result["epochs"]],
            "final_val": result["val_top1"], "final_test": result["test_top1"]}


def build_pool(size: int, budget: int, workers: int, cache: Path) -> list[dict[str, Any]]:
    """``size`` random candidates, each trained once to ``budget`` epochs (from ``cache`` when it holds them).

    Each finished run is appended to ``cache``'s ``.partial.jsonl`` twin as it ends, so a killed benchmark resumes
    where it stopped instead of retraining hours of pool.
    """
    if cache.is_file():
        pool = json.loads(cache.read_text())
        if len(pool) == size and all(len(p["val"]) in (budget, 0) or p["status"] != "ok" for p in pool):
            return pool
    from pblf.search.gp import random_candidates

    rng = np.random.default_rng([2026, size, budget])
    candidates = [c.to_dict() for c in random_candidates(size, rng, 1.0)]
    partial = cache.with_suffix(".partial.jsonl")
    cache.parent.mkdir(parents=True, exist_ok=True)
    done: dict[int, dict[str, Any]] = {}
    if partial.is_file():
        for line in partial.read_text().splitlines():
            entry = json.loads(line)
            if entry["run"]["candidate"] == candidates[entry["index"]]:
                done[entry["index"]] = entry["run"]
    todo = [(i, c, budget) for i, c in enumerate(candidates) if i not in done]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool, partial.open("a") as log:
        for count, (index, run) in enumerate(pool.imap_unordered(_indexed_train, todo), start=1):
            done[index] = run
            log.write(json.dumps({"index": index, "run": run}) + "\n")
            log.flush()
            if count % 36 == 0 or count == len(todo):
                print(f"pool: {len(done)}/{size} candidates trained ({time.perf_counter() - started:.0f} s)",
                      flush=True)
    runs = [done[i] for i in range(size)]
    cache.write_text(json.dumps(runs))
    partial.unlink()
    return runs


def _indexed_train(job: tuple[int, dict[str, Any], int]) -> tuple[int, dict[str, Any]]:
    return job[0], _train_one(job)


# -------------------------------------------------------------------------------------------------------- replay


def _reached_curve(run: dict[str, Any], epoch: int) -> list[float]:
    return run["val"][:epoch]


def replay_rs(pool: list[dict], picks: list[int], budget: int, prune: tuple[float, ...] | None) -> dict[str, Any]:
    """PBLF-RS over ``picks``: every candidate to the full budget, or successive halving at rungs ``prune``."""
    from pblf.search.prune import promotions, rung_epochs

    if not prune:
        spent = [(budget, i) for i in picks]
        survivors = picks
    else:
        rungs = rung_epochs(budget, prune)
        alive, spent = list(picks), []
        for k, rung in enumerate(rungs):
            rows = [{"iteration": k, "index": n, "val_top1": (_reached_curve(pool[i], rung) or [0.0])[-1], "pool": i}
                    for n, i in enumerate(alive)]
            kept = {row["pool"] for row in promotions(rows, ETA)}
            spent += [(rung, i) for i in alive if i not in kept]
            alive = [i for i in alive if i in kept]
        spent += [(budget, i) for i in alive]
        survivors = alive
    return _outcome(pool, spent, survivors)


def replay_bo(pool: list[dict], rng: np.random.Generator, n: int, initial: int, budget: int,
              prune: tuple[float, ...] | None, seed: int) -> dict[str, Any]:
    """PBLF-BO over the pool: ``initial`` random candidates, then the pool candidate of highest UCB each iteration;
    with the median rule stopping runs below the median of the completed ones at the rungs ``prune``."""
    from pblf.core.candidate import Candidate
    from pblf.search.gp import Observation, acquisition_function, encode, fit_surrogate
    from pblf.search.prune import median_thresholds, rung_epochs
    from pblf.training.fidelity import should_stop

    rungs = rung_epochs(budget, prune or ())
    order = list(rng.permutation(len(pool)))
    evaluated: list[int] = []
    observed: list[Observation] = []
    spent: list[tuple[int, int]] = []
    completed: list[int] = []
    encoded = encode([Candidate.from_dict(p["candidate"]) for p in pool], 1.0)
    for step in range(n):
        if step < initial:
            pick = order[step]
        else:
            history = [o for o in observed if np.isfinite(o.val_top1)]
            surrogate = fit_surrogate(history, seed * 1000 + step, 1.0, n_restarts=1)
            score = acquisition_function(surrogate, np.array([o.val_top1 for o in history]), "ucb", BETA, 0.0)
            left = [i for i in range(len(pool)) if i not in evaluated]
            pick = left[int(np.argmax(score(encoded[left])))]
        run = pool[pick]
        finished = [pool[i]["val"] for i in completed if pool[i]["status"] == "ok"]
        thresholds = median_thresholds(finished, rungs, MIN_COMPLETED) if prune and step >= initial else {}
        reached = len(run["val"])
        for epoch in range(1, len(run["val"]) + 1):
            if should_stop(run["val"][:epoch], thresholds):
                reached = epoch
                break
        stopped = reached < budget and run["status"] == "ok"
        value = run["val"][reached - 1] if stopped else run["final_val"]
        observed.append(Observation(Candidate.from_dict(run["candidate"]), value))
        evaluated.append(pick)
        spent.append((reached if stopped else budget, pick))
        if not stopped:
            completed.append(pick)
    return _outcome(pool, spent, completed)


def _outcome(pool: list[dict], spent: list[tuple[int, int]], full_budget: list[int]) -> dict[str, Any]:
    """Epochs spent, the chosen candidate (its index in ``pool``) and its full-budget quality, and the best-found
    curve (epochs, Top-1)."""
    complete, best, curve, total = set(full_budget), None, [], 0
    for epochs, index in spent:
        total += epochs
        if index in complete and (best is None or pool[index]["final_val"] > pool[best]["final_val"]):
            best = index
        if best is not None:
            curve.append((total, pool[best]["final_test"]))
    return {"chosen": int(best), "epochs": total, "val": pool[best]["final_val"], "test": pool[best]["final_test"],
            "curve": curve}


def _replay(job: tuple[list[dict], int, int, int, int]) -> dict[str, dict[str, Any]]:
    """Every search over one pool (replay ``number``), with and without pruning (one job of the process pool);
    the chosen candidates as indices into the whole pool."""
    from threadpoolctl import threadpool_limits

    pool, number, candidates, budget, initial = job
    first = number * len(pool)
    picks = [int(i) for i in np.random.default_rng([number, 1]).choice(len(pool), candidates, replace=False)]
    out = {}
    with threadpool_limits(limits=1):
        for label, rungs in (("full", None), *RUNG_SETTINGS.items()):
            name = "full" if rungs is None else f"pruned {label}"
            out[f"PBLF-RS {name}"] = replay_rs(pool, picks, budget, rungs)
            out[f"PBLF-BO {name}"] = replay_bo(pool, np.random.default_rng([number, 2]), candidates, initial, budget,
                                               rungs, number)
    for result in out.values():
        result["chosen"] += first
    return out


def _mean_curve(curves: list[list[tuple[int, float]]], grid: np.ndarray) -> list[float | None]:
    values = []
    for epochs in grid:
        at = [next((t for e, t in reversed(c) if e <= epochs), None) for c in curves]
        known = [v for v in at if v is not None]
        values.append(round(statistics.mean(known), 3) if len(known) == len(at) else None)
    return values


def summarise(per_replay: list[dict[str, dict[str, Any]]], grid: np.ndarray, margin: float) -> dict[str, Any]:
    """Per search: epochs and the chosen candidate's quality over the replays; per pruned setting, against its
    full search replay by replay: the ratio of epochs and the quality loss (full - pruned) with its interval and
    TOST against ``margin`` (Top-1 test; Top-1 validation reported beside it)."""
    from pblf.results.stats import equivalence

    summary: dict[str, Any] = {}
    for name in per_replay[0]:
        outcomes = [replay[name] for replay in per_replay]
        epochs, val, test = ([o[k] for o in outcomes] for k in ("epochs", "val", "test"))
        summary[name] = {"epochs_mean": round(statistics.mean(epochs), 1), "epochs_min": min(epochs),
                         "epochs_max": max(epochs),
                         "val_mean": round(statistics.mean(val), 3), "val_std": round(statistics.stdev(val), 3),
                         "test_mean": round(statistics.mean(test), 3), "test_std": round(statistics.stdev(test), 3),
                         "best_found_test_vs_epochs": _mean_curve([o["curve"] for o in outcomes], grid)}
    for name, pruned in summary.items():
        if "pruned" not in name:
            continue
        full_name = name.split(" pruned")[0] + " full"
        pruned["epochs_ratio_to_full"] = round(pruned["epochs_mean"] / summary[full_name]["epochs_mean"], 3)
        for field in ("test", "val"):
            loss = [replay[full_name][field] - replay[name][field] for replay in per_replay]
            pruned[f"{field}_loss"] = _rounded(equivalence(loss, margin))
        pruned["as_good_as_full"] = pruned["test_loss"]["equivalent"]
    return summary


def _rounded(value: Any) -> Any:
    """Floats at 4 decimals, in lists and dicts too (the JSON stays readable; the verdicts use the full values)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--replays", type=int, default=40, help="independent pools, one replay each (default 40)")
    parser.add_argument("--pool-per-replay", type=int, default=36,
                        help="candidates in each replay's pool (default 36)")
    parser.add_argument("--budget", type=int, default=9, help="epochs of every pool run (default 9)")
    parser.add_argument("--candidates", type=int, default=27, help="candidates per search (default 27)")
    parser.add_argument("--initial", type=int, default=6, help="PBLF-BO's random initial candidates (default 6)")
    parser.add_argument("--margin", type=float, default=0.5,
                        help="the equivalence margin, points of Top-1 test, stated before the run (default 0.5)")
    parser.add_argument("--workers", type=int, default=2, help="processes training the pool and replaying (default 2)")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "out" / "pruning-pools.json")
    args = parser.parse_args(argv)
    if args.candidates > args.pool_per_replay:
        parser.error(f"--candidates {args.candidates} exceeds --pool-per-replay {args.pool_per_replay}: a search "
                     "draws its candidates from its own pool")

    size = args.pool_per_replay
    pool = build_pool(args.replays * size, args.budget, args.workers, args.cache)
    started = time.perf_counter()
    jobs = [(pool[r * size:(r + 1) * size], r, args.candidates, args.budget, args.initial)
            for r in range(args.replays)]
    with multiprocessing.get_context("spawn").Pool(args.workers) as workers:
        per_replay = workers.map(_replay, jobs)
    grid = np.linspace(0, args.candidates * args.budget, 28).round().astype(int)
    summary = summarise(per_replay, grid, args.margin)
    pool_final = [p["final_test"] for p in pool]
    result = {
        **record("bench_pruning", argv, torch.device("cpu")),
        "budget": args.budget, "replays": args.replays, "pool_per_replay": size,
        "candidates_per_search": args.candidates, "bo_initial": args.initial, "margin_top1_test": args.margin,
        "rung_settings": {name: list(rungs) for name, rungs in RUNG_SETTINGS.items()}, "eta": ETA,
        "min_completed": MIN_COMPLETED, "pool_test_top1": {"max": max(pool_final), "median": statistics.median(pool_final),
                                                           "diverged": sum(p["status"] != "ok" for p in pool)},
        "replay_seconds": round(time.perf_counter() - started, 1), "epochs_grid": grid.tolist(), "summary": summary,
        "per_replay": [{"replay": r, "pool": [r * size, (r + 1) * size],
                        "searches": {name: {k: o[k] for k in ("chosen", "epochs", "val", "test")}
                                     for name, o in sorted(replay.items())}}
                       for r, replay in enumerate(per_replay)],
    }
    rows = []
    for name, s in sorted(summary.items()):
        loss = s.get("test_loss")
        rows.append([name, s["epochs_mean"], s.get("epochs_ratio_to_full", ""),
                     f"{s['val_mean']:.2f} ± {s['val_std']:.2f}", f"{s['test_mean']:.2f} ± {s['test_std']:.2f}",
                     "" if loss is None else _loss_text(loss), "" if loss is None else f"{loss['p']:.4f}",
                     "" if loss is None else ("yes" if loss["equivalent"] else "no")])
    printed = [table(f"Low-fidelity search over {args.replays} disjoint pools of {size} demo candidates x "
                     f"{args.budget} epochs, searches of {args.candidates}; margin {args.margin} points",
                     ["search", "epochs", "epochs / full", "chosen val", "chosen test", "test loss [95 % CI]",
                      "TOST p", "as good as full"], rows)]
    return finish(result, printed, args.out)


def _loss_text(loss: dict[str, Any]) -> str:
    if loss["ci95"] is None:
        return f"{loss['mean']:+.2f} (all equal)"
    return f"{loss['mean']:+.2f} [{loss['ci95'][0]:+.2f}, {loss['ci95'][1]:+.2f}]"


if __name__ == "__main__":
    sys.exit(main())
