"""What batch BO costs in quality: PBLF-BO proposing q candidates an iteration, replayed on real learning curves
(issue 23, item 3).

    python benchmarks/bench_batch_bo.py --out benchmarks/results/batch_bo.json [--seeds 30] [--batch-sizes 1,4,8]
        [--trainings 120] [--initial 8] [--margin 0.5] [--workers 2]

With ``search.bo.n_acq: q`` every BO iteration proposes q candidates (the Kriging believer) that train as one pack,
so the search's chain of checkpoints shrinks from 1 + N to 1 + N / q. The price is that the q - 1 later candidates
of an iteration are chosen without the results of the earlier ones. Measured here, like a tabular benchmark:

(a) pool   -- benchmarks/bench_pruning.py's pools, reused by its own code (``build_pool``: read from its cache,
              benchmarks/out/pruning-pools.json, or trained the same way where the cache is absent): 1,440 random
              demo candidates, each trained once for 9 epochs with the search's training seed, with their Top-1
              validation and test. Their union is the search space: a search of 120 trainings needs a space much
              larger than 120, which one 36-candidate pool is not. The replays are therefore searches over one
              problem, differing in their initial batch and their GP seeds; the intervals are conditional on this
              pool (bench_pruning's disjoint pools answer the other question, how a choice varies between problems).
(b) replay -- for each search seed s (the pipeline's ``search.repeats`` index) and each q: an initial batch of
              ``--initial`` pool candidates drawn from the seed of the pipeline's iteration 0 (the same batch for
              every q: the comparison is paired), then the pipeline's own PBLF-BO (pblf.search.bo's
              BayesianOptimisation.propose with the demo config, n_acq q, n_random 0, pruning off, the pipeline's
              proposal seeds) until ``--trainings`` candidates are trained. Its GP fit, UCB, Kriging believer and
              min_distance replacement decide; one piece is replaced, the acquisition's maximiser
              (pblf.search.gp.rank_acquisition, which searches the continuous box), by a ranking of the pool by
              acquisition value, because only pool candidates have curves. The choice is pblf.search.select's:
              the highest Top-1 validation, the earliest among equals.

Reported per q: the chain (proposals one after another), the chosen candidate's Top-1 validation (the best found)
and Top-1 (test); against q = 1, seed by seed, the difference (q minus 1) with its 95 % interval and an equivalence
test (TOST, pblf.results.stats.equivalence) against a margin stated before the run (--margin, 0.5 points of Top-1
test as in bench_pruning): "as good as sequential" is claimed only where TOST shows it. Beside it, the sequential
search stopped after as many iterations as the batch search makes (a prefix of its own replay): what the same chain
buys without batches.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
from pblf.core.candidate import Candidate
from pblf.results.stats import equivalence, paired
from pblf.search import gp
from pblf.search.bo import BayesianOptimisation
from pblf.search.method import proposal_seed
from pblf.search.select import select_best

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pruning import _config, _loss_text, _rounded, build_pool  # noqa: E402
from common import finish, record, table  # noqa: E402

#: The reference batch size: the sequential search every other q is paired with.
SEQUENTIAL = 1


# ---------------------------------------------------------------------------------------------------------- search


def batch_config(budget: int, q: int, trainings: int, initial: int) -> dict[str, Any]:
    """The demo config whose PBLF-BO makes ``trainings`` trainings in batches of ``q``: ``initial`` random ones, then
    (trainings - initial) / q iterations of q acquisition candidates. Pruning is off: its cost is bench_pruning's
    question, and a batch's quality is this one's."""
    cfg = _config(budget)
    cfg["search"]["bo"].update(initial=initial, n_acq=q, n_random=0, iterations=(trainings - initial) // q)
    cfg["search"]["pruning"]["enabled"] = False
    return cfg


def _pool_ranking(candidates: Sequence[Candidate]) -> Callable[..., list[tuple[float, Candidate]]]:
    """A stand-in for pblf.search.gp.rank_acquisition with its signature: every pool candidate, best acquisition
    first (pool order among equals). The pipeline maximises over the continuous box; a replay can train only what
    the pool holds, so this is the one decision it does not leave to the pipeline's code."""

    def rank(score: Callable[[np.ndarray], np.ndarray], _rng: Any, phi_bound: float,
             *_: Any) -> list[tuple[float, Candidate]]:
        values = score(gp.encode(candidates, phi_bound))
        return [(float(values[i]), candidates[i]) for i in np.argsort(-values, kind="stable")]

    return rank


def initial_batch(pool_size: int, cfg: dict[str, Any], search: int) -> list[int]:
    """The random initial batch (pool indices) of search ``search``, from the seed the pipeline gives its iteration
    0: the same for every q, which pairs the searches."""
    seed = proposal_seed(cfg, cfg["budgets"][0], BayesianOptimisation.name, search, 0)
    chosen = np.random.default_rng(seed).choice(pool_size, cfg["search"]["bo"]["initial"], replace=False)
    return [int(i) for i in chosen]


def replay(pool: list[dict[str, Any]], cfg: dict[str, Any], search: int) -> tuple[list[int], int]:
    """One PBLF-BO search over ``pool`` as ``cfg`` sets it (:func:`batch_config`): the pool indices in the order
    they were trained, and the number of proposals after the initial batch (the chain is one longer)."""
    method, budget = BayesianOptimisation(), cfg["budgets"][0]
    candidates = [Candidate.from_dict(run["candidate"]) for run in pool]
    where = {candidate: index for index, candidate in enumerate(candidates)}
    evaluated = initial_batch(len(pool), cfg, search)
    iterations = method.iterations(cfg, budget)
    with mock.patch.object(gp, "rank_acquisition", _pool_ranking(candidates)):
        for iteration in range(1, iterations):
            history = [gp.Observation(candidates[i], pool[i]["final_val"]) for i in evaluated]
            seed = proposal_seed(cfg, budget, method.name, search, iteration)
            evaluated += [_pool_index(where, entry) for entry in method.propose(cfg, history, budget, iteration, seed)]
    return evaluated, iterations - 1


def _pool_index(where: dict[Candidate, int], entry: dict[str, Any]) -> int:
    """The pool index of a proposal entry; a proposal outside the pool (the pipeline's random fill when no ranked
    candidate is distinct, in a pool nearly used up) would have no curve, so it stops the replay."""
    candidate = Candidate.from_dict(entry)
    if candidate not in where:
        raise RuntimeError(f"the proposer left the pool ({entry.get('source')}, replaced: {entry.get('replaced')}): "
                           "too many trainings for the pool")
    return where[candidate]


def choose(pool: list[dict[str, Any]], evaluated: Sequence[int]) -> dict[str, Any]:
    """The search's choice among the trained ``evaluated`` (pool indices, in training order), made by
    pblf.search.select.select_best (highest Top-1 validation, earliest among equals): its pool index, Top-1
    validation (the best found) and test, and after how many trainings it was found."""
    rows = [{"val_top1": pool[i]["final_val"], "status": pool[i]["status"], "position": n}
            for n, i in enumerate(evaluated)]
    best = select_best(rows)
    index = evaluated[best["position"]]
    return {"chosen": index, "val": pool[index]["final_val"], "test": pool[index]["final_test"],
            "found_at": best["position"] + 1}


def _replay_seed(job: tuple[list[dict[str, Any]], int, int, tuple[int, ...], int, int]) -> dict[str, Any]:
    """Every q's search for one seed (one job of the process pool), and the sequential search's choice when it is
    stopped after each batch search's chain."""
    pool, search, budget, batch_sizes, trainings, initial = job
    searches, orders = {}, {}
    for q in batch_sizes:
        orders[q], iterations = replay(pool, batch_config(budget, q, trainings, initial), search)
        searches[str(q)] = {**choose(pool, orders[q]), "iterations": iterations}
    same_chain = {str(q): choose(pool, orders[SEQUENTIAL][: initial + (trainings - initial) // q])
                  for q in batch_sizes if q != SEQUENTIAL}
    return {"seed": search, "initial": orders[SEQUENTIAL][:initial], "searches": searches,
            "sequential_same_chain": same_chain}


def _map(function: Callable[[Any], Any], jobs: list[Any], workers: int) -> list[Any]:
    """``function`` over ``jobs`` in this process for one worker (no spawn start-up: the tests), else in
    ``workers`` processes; in order either way."""
    if workers == 1:
        return [function(job) for job in jobs]
    with multiprocessing.get_context("spawn").Pool(workers) as processes:
        return processes.map(function, jobs)


# ------------------------------------------------------------------------------------------------------- summary


def _spread(values: list[float]) -> dict[str, float]:
    """Mean and standard deviation over the seeds: the spread of the searches' choices, not an interval."""
    return {"mean": round(statistics.mean(values), 3), "std": round(statistics.stdev(values), 3)}


def _quality(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    return {field: _spread([o[field] for o in outcomes]) for field in ("val", "test")}


def _against_sequential(per_replay: list[dict[str, Any]], key: str, margin: float) -> dict[str, Any]:
    """Batch size ``key`` against the sequential search, seed by seed: the difference (batch minus sequential) of
    the chosen Top-1 test and validation with TOST against ``margin``; and the sequential search stopped after the
    batch search's chain (a prefix of its own replay), with the batch's paired gain over it (a difference, not an
    equivalence: the batch search trained more candidates)."""
    batch = {r["seed"]: r["searches"][key] for r in per_replay}
    sequential = {r["seed"]: r["searches"][str(SEQUENTIAL)] for r in per_replay}
    stopped = {r["seed"]: r["sequential_same_chain"][key] for r in per_replay}
    seeds = sorted(batch)
    entry = {f"{field}_diff": _rounded(equivalence([batch[s][field] - sequential[s][field] for s in seeds], margin))
             for field in ("test", "val")}
    gains = {f"{field}_gain": _rounded(paired({s: batch[s][field] for s in seeds},
                                              {s: stopped[s][field] for s in seeds}))
             for field in ("test", "val")}
    return {**entry, "as_good_as_sequential": entry["test_diff"]["equivalent"],
            "sequential_same_chain": {"trainings": len(per_replay[0]["initial"]) + batch[seeds[0]]["iterations"],
                                      **_quality(list(stopped.values())), **gains}}


def summarise(per_replay: list[dict[str, Any]], margin: float) -> dict[str, Any]:
    """Per q: the chain (proposals one after another, the initial batch's included), the chosen candidate's quality
    over the seeds and after how many trainings it was found on average; for q > 1 its comparison with the
    sequential search (:func:`_against_sequential`)."""
    summary: dict[str, Any] = {}
    for key in per_replay[0]["searches"]:
        outcomes = [replay["searches"][key] for replay in per_replay]
        summary[key] = {"iterations": outcomes[0]["iterations"], "chain": 1 + outcomes[0]["iterations"],
                        **_quality(outcomes),
                        "found_at_mean": round(statistics.mean(o["found_at"] for o in outcomes), 1),
                        **(_against_sequential(per_replay, key, margin) if key != str(SEQUENTIAL) else {})}
    return summary


def _rows(summary: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for key, s in summary.items():
        diff, same = s.get("test_diff"), s.get("sequential_same_chain")
        rows.append([key, s["chain"], f"{s['val']['mean']:.2f} ± {s['val']['std']:.2f}",
                     f"{s['test']['mean']:.2f} ± {s['test']['std']:.2f}", "" if diff is None else _loss_text(diff),
                     "" if diff is None else f"{diff['p']:.4f}",
                     "" if diff is None else ("yes" if diff["equivalent"] else "no"),
                     "" if same is None else f"{same['val']['mean']:.2f}, {same['test']['mean']:.2f}"])
    return rows


# ---------------------------------------------------------------------------------------------------------- main


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seeds", type=int, default=30, help="searches per q, paired by seed (default 30)")
    parser.add_argument("--batch-sizes", default="1,4,8", help="the q compared, 1 among them (default 1,4,8)")
    parser.add_argument("--trainings", type=int, default=120, help="trainings per search (default 120)")
    parser.add_argument("--initial", type=int, default=8, help="random initial candidates (default 8)")
    parser.add_argument("--margin", type=float, default=0.5,
                        help="the equivalence margin, points of Top-1 test, stated before the run (default 0.5)")
    parser.add_argument("--workers", type=int, default=2, help="processes replaying (and training a pool) (default 2)")
    parser.add_argument("--pool-size", type=int, default=40 * 36,
                        help="pool candidates: bench_pruning's 40 pools of 36 (default 1440)")
    parser.add_argument("--budget", type=int, default=9, help="epochs of every pool run (default 9)")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "out" / "pruning-pools.json")
    args = parser.parse_args(argv)
    args.batch_sizes = tuple(sorted({int(q) for q in args.batch_sizes.split(",")}))
    later = args.trainings - args.initial
    if SEQUENTIAL not in args.batch_sizes or args.batch_sizes[0] < 1:
        parser.error(f"--batch-sizes {args.batch_sizes}: positive, with {SEQUENTIAL} (the sequential reference)")
    if args.initial < 2 or later < 1 or any(later % q for q in args.batch_sizes):
        parser.error(f"--trainings {args.trainings} - --initial {args.initial} must be divisible by every q "
                     f"{args.batch_sizes}, with at least 2 initial (the GP needs two observations)")
    if args.trainings > args.pool_size or args.seeds < 2:
        parser.error("--trainings must not exceed --pool-size, and TOST needs --seeds >= 2")
    return args


def _pool_top1(pool: list[dict[str, Any]]) -> dict[str, Any]:
    """What the pool offers: its best and median Top-1 (test), its best Top-1 validation and how many candidates
    share it (ties the choice cannot break by validation), and how many runs diverged."""
    val_max = max(run["final_val"] for run in pool)
    return {"test_max": max(run["final_test"] for run in pool),
            "test_median": statistics.median(run["final_test"] for run in pool), "val_max": val_max,
            "val_max_count": sum(run["final_val"] == val_max for run in pool),
            "diverged": sum(run["status"] != "ok" for run in pool)}


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    head = record("bench_batch_bo", argv, torch.device("cpu"))
    pool = build_pool(args.pool_size, args.budget, args.workers, args.cache)
    started = time.perf_counter()
    jobs = [(pool, seed, args.budget, args.batch_sizes, args.trainings, args.initial) for seed in range(args.seeds)]
    per_replay = _map(_replay_seed, jobs, args.workers)
    seconds = round(time.perf_counter() - started, 1)
    summary = summarise(per_replay, args.margin)
    bo = batch_config(args.budget, SEQUENTIAL, args.trainings, args.initial)["search"]["bo"]
    result = {
        **head, "budget": args.budget, "pool_size": len(pool), "seeds": args.seeds,
        "batch_sizes": list(args.batch_sizes), "trainings": args.trainings, "bo_initial": args.initial,
        "margin_top1_test": args.margin, "proposer": {key: bo[key] for key in ("acquisition", "beta", "xi",
                                                                               "min_distance")},
        "pool_top1": _pool_top1(pool), "replay_seconds": seconds, "summary": summary, "per_replay": per_replay,
    }
    printed = [table(f"Batch BO over {len(pool)} demo candidates x {args.budget} epochs, {args.seeds} seeds, "
                     f"{args.trainings} trainings ({args.initial} initial); margin {args.margin} points",
                     ["q", "chain", "chosen val", "chosen test", "test: q - 1 [95 % CI]", "TOST p",
                      "as good as q = 1", "q = 1 at this chain: val, test"], _rows(summary))]
    return finish(result, printed, args.out)

if __name__ == "__main__":
    sys.exit(main())
