"""benchmarks/bench_pruning.py on tiny pools: the replays are independent (disjoint pools), every replay's choice
and epochs are saved, and each pruned setting carries its paired loss with an interval and a TOST verdict against
the margin given before the run."""

from __future__ import annotations

import json

import pytest
from conftest import benchmark

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bench():
    return benchmark("bench_pruning")


def test_tiny_replays_save_every_choice_and_test_equivalence(bench, tmp_path):
    out = tmp_path / "pruning.json"
    assert bench.main(["--out", str(out), "--replays", "3", "--pool-per-replay", "6", "--candidates", "5",
                       "--budget", "3", "--initial", "2", "--margin", "0.75", "--workers", "1",
                       "--cache", str(tmp_path / "pools.json")]) == 0
    result = json.loads(out.read_text())
    assert result["margin_top1_test"] == 0.75 and result["environment"]["processor"]
    replays = result["per_replay"]
    assert [r["pool"] for r in replays] == [[0, 6], [6, 12], [12, 18]]  # disjoint pools: independent replays
    for replay in replays:
        low, high = replay["pool"]
        assert len(replay["searches"]) == 8
        assert all(low <= s["chosen"] < high for s in replay["searches"].values())
    pruned = result["summary"]["PBLF-RS pruned 1/3,2/3"]
    # successive halving at 1 and 2 of 3 epochs over 5 candidates (eta 3): 3 stop at 1 epoch, 1 at 2, 1 trains all
    # 3: 3 + 2 + 3 = 8 of 15 in every replay, fixed by the rungs
    assert pruned["epochs_min"] == pruned["epochs_max"] == 8 and pruned["epochs_ratio_to_full"] == pytest.approx(0.533)
    loss = pruned["test_loss"]
    full = [r["searches"]["PBLF-RS full"]["test"] - r["searches"]["PBLF-RS pruned 1/3,2/3"]["test"] for r in replays]
    assert loss["n"] == 3 and loss["margin"] == 0.75 and loss["mean"] == pytest.approx(sum(full) / 3, abs=1e-4)
    assert pruned["as_good_as_full"] == loss["equivalent"]
