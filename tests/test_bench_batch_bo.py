"""benchmarks/bench_batch_bo.py on a synthetic pool of 30 candidates whose scores are known: each q's search trains
distinct pool candidates from one shared initial batch, the same ones on a rerun, in a chain of 1 + (N - initial) / q
proposals; the choice is the highest Top-1 validation trained (the earliest among equals); the JSON holds every
seed's choices and the paired differences with their TOST verdicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import benchmark

POOL = 30
TRAININGS = 12
INITIAL = 4


@pytest.fixture(scope="module")
def bench():
    return benchmark("bench_batch_bo")


@pytest.fixture(scope="module")
def pool() -> list[dict]:
    """30 random candidates whose Top-1 validation is a smooth function of phi on a 0.5-point grid and whose test is
    the validation minus a known offset: a pool in bench_pruning's format, one epoch each."""
    from pblf.search.gp import random_candidates

    runs = []
    for n, candidate in enumerate(random_candidates(POOL, np.random.default_rng(7), 1.0)):
        val = round(2 * (95 + 2 * candidate.phi[0] - candidate.phi[1] ** 2)) / 2
        test = round(val - 0.1 * (n % 3), 4)
        runs.append({"candidate": candidate.to_dict(), "status": "ok", "val": [val], "test": [test],
                     "final_val": val, "final_test": test})
    return runs


@pytest.fixture(scope="module")
def written(bench, pool, tmp_path_factory):
    """The benchmark run on the synthetic pool (given as bench_pruning's cache, so nothing trains)."""
    folder = tmp_path_factory.mktemp("batch_bo")
    cache = folder / "pools.json"
    cache.write_text(json.dumps(pool))
    out = folder / "batch_bo.json"
    assert bench.main(["--out", str(out), "--seeds", "3", "--batch-sizes", "4,1", "--trainings", str(TRAININGS),
                       "--initial", str(INITIAL), "--margin", "0.75", "--workers", "1", "--pool-size", str(POOL),
                       "--budget", "1", "--cache", str(cache)]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("q", [1, 4])
def test_a_search_trains_distinct_pool_candidates_deterministically(bench, pool, q):
    cfg = bench.batch_config(1, q, TRAININGS, INITIAL)
    evaluated, iterations = bench.replay(pool, cfg, 0)
    assert len(evaluated) == TRAININGS == len(set(evaluated)) and all(0 <= i < POOL for i in evaluated)
    assert iterations == (TRAININGS - INITIAL) // q  # the chain: 1 + iterations proposals
    assert evaluated[:INITIAL] == bench.initial_batch(POOL, cfg, 0)
    assert bench.replay(pool, cfg, 0) == (evaluated, iterations)


def test_every_q_starts_from_the_same_initial_batch_and_seeds_differ(bench, pool):
    batches = {q: bench.initial_batch(POOL, bench.batch_config(1, q, TRAININGS, INITIAL), 0) for q in (1, 4)}
    assert batches[1] == batches[4]
    assert bench.initial_batch(POOL, bench.batch_config(1, 1, TRAININGS, INITIAL), 1) != batches[1]


def test_the_choice_is_the_highest_validation_trained_earliest_among_equals(bench):
    runs = [(90.0, 89.0), (97.5, 96.0), (99.0, 97.0), (99.0, 98.5), (99.5, 95.0)]
    pool = [{"final_val": val, "final_test": test, "status": "ok"} for val, test in runs]
    # pool 4 has the best validation but was not trained; 3 and 2 tie, 3 trained first
    assert bench.choose(pool, [0, 3, 1, 2]) == {"chosen": 3, "val": 99.0, "test": 98.5, "found_at": 2}


def test_the_json_holds_every_choice_chain_and_verdict(bench, written, pool):
    assert written["environment"]["processor"] and written["margin_top1_test"] == 0.75
    assert written["batch_sizes"] == [1, 4] and written["pool_top1"]["val_max"] == max(p["final_val"] for p in pool)
    replays = written["per_replay"]
    assert [r["seed"] for r in replays] == [0, 1, 2]
    assert all(list(r["searches"]) == ["1", "4"] and len(r["initial"]) == INITIAL for r in replays)
    for replay in replays[:1]:  # one seed's searches again, for the order they trained in
        for q, search in replay["searches"].items():
            evaluated, _ = bench.replay(pool, bench.batch_config(1, int(q), TRAININGS, INITIAL), replay["seed"])
            best = max(pool[i]["final_val"] for i in evaluated)
            assert search["chosen"] == next(i for i in evaluated if pool[i]["final_val"] == best)
            assert (search["val"], search["test"]) == (best, pool[search["chosen"]]["final_test"])
            assert evaluated[search["found_at"] - 1] == search["chosen"]
    summary = written["summary"]
    assert (summary["1"]["chain"], summary["4"]["chain"]) == (1 + 8, 1 + 2)
    diff = summary["4"]["test_diff"]
    expected = [r["searches"]["4"]["test"] - r["searches"]["1"]["test"] for r in replays]
    assert diff["n"] == 3 and diff["margin"] == 0.75 and diff["mean"] == pytest.approx(sum(expected) / 3, abs=1e-4)
    assert summary["4"]["as_good_as_sequential"] == diff["equivalent"]
    assert summary["4"]["sequential_same_chain"]["trainings"] == INITIAL + 2


def test_batch_sizes_that_do_not_divide_the_trainings_are_refused(bench, tmp_path):
    with pytest.raises(SystemExit):
        bench.main(["--out", str(tmp_path / "x.json"), "--batch-sizes", "1,5", "--trainings", "12", "--initial", "4"])
