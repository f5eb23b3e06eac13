"""Low-fidelity search: the rules' numbers worked out by hand, and a stopped run that, continued, equals the run
trained without pruning."""

from __future__ import annotations


import pytest

from pblf.core.candidate import Candidate
from pblf.core.config import validate
from pblf.core.layout import RunId
from pblf.search.gp import Observation
from pblf.search.prune import (
    median_stops, median_thresholds, promote, promotions, rs_batch_sizes, rung_epochs, rung_limits,
)
from pblf.training.fidelity import Fidelity, should_stop
from pblf.training.train import train_candidate, without_timing
from tiny import tiny_config

PRUNING = {"enabled": True, "rungs": [0.1111, 0.3333], "eta": 3, "min_completed": 3}
TINY = tiny_config(subset=120, batch_size=32)
CANDIDATE = Candidate(0.3, -0.5, 0.1, 0.7, "0110")


def test_rungs_are_fractions_of_the_budget_in_whole_epochs():
    assert rung_epochs(100, PRUNING["rungs"]) == [11, 33]
    assert rung_epochs(20, PRUNING["rungs"]) == [2, 7]
    assert rung_epochs(6, PRUNING["rungs"]) == [1, 2]
    assert rung_epochs(2, PRUNING["rungs"]) == [1]  # 0.22 and 0.67 both round to epoch 1
    assert rung_epochs(1, PRUNING["rungs"]) == []


def test_the_median_rule_compares_with_the_running_averages_of_completed_runs():
    curves = [[10, 20, 30, 40], [20, 30, 40, 50], [0, 10, 50, 60]]
    # running averages at epoch 2: 15, 25, 5 -> median 15; at epoch 3: 20, 30, 20 -> median 20
    assert median_thresholds(curves, [2, 3], min_completed=3) == {2: 15.0, 3: 20.0}
    assert median_thresholds(curves, [2], min_completed=4) == {}  # too few completed runs to judge
    assert should_stop([12, 14], {2: 15.0})  # best so far 14 < 15
    assert not should_stop([12, 15], {2: 15.0})  # not strictly below
    assert not should_stop([1], {2: 15.0})  # no rung at epoch 1


def test_successive_halving_keeps_the_best_third_earliest_on_ties():
    rows = [{"iteration": 0, "index": i, "val_top1": v} for i, v in enumerate([50, 70, 60, 70, 10, 65, 20])]
    assert [r["index"] for r in promotions(rows, 3)] == [1, 3, 5]  # ceil(7 / 3) = 3; 70 twice: index 1 first
    assert rs_batch_sizes(100, 3, 2) == [100, 34, 12]


def test_proposals_carry_their_fidelity():
    history = [Observation(Candidate(0.1 * i, 0, 0, 0, "0001"), 50.0 + i, 0, i, "stopped", (50.0 + i,))
               for i in range(4)]
    promoted = promote(history, 1, 3)
    assert [e["resume"] for e in promoted] == [{"iteration": 0, "index": 3}, {"iteration": 0, "index": 2}]
    assert rung_limits(promoted, 1, 20, PRUNING)[0]["until"] == 7
    assert "until" not in rung_limits(promoted, 2, 20, PRUNING)[0]  # the last: full budget
    completed = [Observation(CANDIDATE, 60.0, 0, i, "ok", tuple(float(10 * e + i) for e in range(1, 21)))
                 for i in range(3)]
    entry = median_stops([{"w1": 0}], 20, PRUNING, completed)[0]
    # running averages at epoch 2: (10 + 20) / 2 + i = 15, 16, 17 -> 16; at epoch 7: 40 + i -> 41
    assert entry["stop_below"] == {"2": 16.0, "7": 41.0}
    assert "stop_below" not in median_stops([{}], 20, PRUNING, completed[:2])[0]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> dict:
    return train_candidate(validate(TINY), CANDIDATE, RunId("search", 4, 0, "PBLF-RS", 2, 0),
                           tmp_path_factory.mktemp("full") / "run")


def test_a_run_stopped_at_a_rung_and_continued_equals_the_unpruned_run(full_run, tmp_path):
    """Successive halving: the rung run trains 2 of 4 epochs under the 4-epoch schedule and stops; the promoted
    run continues from its checkpoint in a folder of its own and ends exactly where the unpruned run ends."""
    cfg = validate(TINY)
    rung = train_candidate(cfg, CANDIDATE, RunId("search", 4, 0, "PBLF-RS", 0, 3), tmp_path / "rung",
                           fidelity=Fidelity(until=2))
    assert rung["status"] == "stopped" and rung["stopped_at"] == 2 and len(rung["epochs"]) == 2
    assert (tmp_path / "rung" / "checkpoint.pt").is_file()
    continued = train_candidate(cfg, CANDIDATE, RunId("search", 4, 0, "PBLF-RS", 1, 0), tmp_path / "on",
                                resume_from=tmp_path / "rung")
    assert continued["resumed_from"] == {"run": str(tmp_path / "rung"), "epoch": 2}
    same = {key for key in without_timing(full_run) if key not in ("run", "resumed_from")}
    assert {k: without_timing(continued)[k] for k in same} == {k: without_timing(full_run)[k] for k in same}


def test_the_median_rule_stops_inside_the_job_and_stays_stopped_on_rerun(full_run, tmp_path):
    cfg = validate(TINY)
    threshold = {2: max(row["val_top1"] for row in full_run["epochs"][:2]) + 0.01}
    first = train_candidate(cfg, CANDIDATE, RunId("search", 4, 0, "PBLF-BO", 5, 0), tmp_path / "run",
                            fidelity=Fidelity(stop_below=threshold))
    assert first["status"] == "stopped" and first["stopped_at"] == 2
    (tmp_path / "run" / "metrics.json").unlink()  # killed after the last checkpoint: the rerun must stop again
    again = train_candidate(cfg, CANDIDATE, RunId("search", 4, 0, "PBLF-BO", 5, 0), tmp_path / "run",
                            fidelity=Fidelity(stop_below=threshold))
    assert without_timing(again) == without_timing(first)
    below = {2: min(row["val_top1"] for row in full_run["epochs"][:2])}
    kept = train_candidate(cfg, CANDIDATE, RunId("search", 4, 0, "PBLF-BO", 6, 0), tmp_path / "kept",
                           fidelity=Fidelity(stop_below=below))
    assert kept["status"] == "ok" and without_timing(kept)["epochs"] == without_timing(full_run)["epochs"]
