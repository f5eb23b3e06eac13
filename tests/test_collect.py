"""Collection and selection: runs are matched to their proposals by the identity in their metrics, the choice is
the highest Top-1 validation with ties to the earliest, and every inconsistency is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pblf.core.candidate import read_candidate, write_proposal
from pblf.core.errors import InputError
from pblf.core.files import read_csv
from pblf.core.layout import Layout, RunId
from pblf.core.names import EVALUATION_COLUMNS, HISTORY_COLUMNS, TRIALS_COLUMNS
from pblf.results.trials import collect_trials, stage_trials
from pblf.search.collect import collect_search, stage_evaluations, stage_history
from pblf.search.select import read_evaluations, select_best, stage_select

L = Layout("results")


def candidate(k: int, mode: str = "0010") -> dict:
    return {"w1": round(0.1 * k, 6), "w2": -0.2, "b1": 0.3, "b2": 0.4, "mode": mode}


def write_metrics(root: Path, run: RunId, cand: dict, val: float, test: float, status: str = "ok") -> Path:
    path = root / L.metrics(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": run.to_dict(), "candidate": cand, "activation": "relu", "status": status,
                                "val_top1": val, "test_top1": test,
                                "epochs": [{"epoch": 1, "val_top1": val - 10}, {"epoch": 2, "val_top1": val}]}))
    return path


@pytest.fixture
def search(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    """Two iterations of PBLF-BO at budget 2: two random candidates, then one UCB candidate."""
    proposals, metrics = [], []
    entries = [[{**candidate(0), "source": "random"}, {**candidate(1), "source": "random"}],
               [{**candidate(2, "1111"), "source": "ucb"}]]
    vals = [[50.0, 70.0], [70.0]]
    for iteration, batch in enumerate(entries):
        proposals.append(write_proposal(tmp_path / L.proposal(2, "PBLF-BO", 0, iteration), batch))
        for index, entry in enumerate(batch):
            run = RunId("search", 2, 0, "PBLF-BO", iteration, index)
            metrics.append(write_metrics(tmp_path, run, {k: entry[k] for k in entry if k != "source"},
                                         vals[iteration][index], 40.0 + index))
    return proposals, metrics


def test_rows_follow_the_proposals_and_carry_the_runs_identity(search):
    proposals, metrics = search
    rows = collect_search(proposals, list(reversed(metrics)))  # the order of the metrics does not matter
    assert [(r["iteration"], r["index"], r["source"]) for r in rows] == [(0, 0, "random"), (0, 1, "random"),
                                                                         (1, 0, "ucb")]
    assert {(r["budget_epochs"], r["method"]) for r in rows} == {(2, "PBLF-BO")}
    assert rows[2]["mode"] == "1111" and rows[1]["val_top1"] == 70.0
    assert rows[0]["run"] == str(metrics[0].parent)


def test_a_missing_run_is_named(search):
    proposals, metrics = search
    with pytest.raises(InputError, match=r"candidate 0 of .*i001/proposal.json \(iteration 1\) has no finished run"):
        collect_search(proposals, metrics[:2])


def test_a_run_of_another_candidate_is_refused(search, tmp_path):
    proposals, metrics = search
    data = json.loads(metrics[1].read_text())
    data["candidate"]["w1"] = 0.9
    metrics[1].write_text(json.dumps(data))
    with pytest.raises(InputError, match="trained .* but .* proposed"):
        collect_search(proposals, metrics)


def test_runs_nobody_proposed_and_runs_of_another_search_are_refused(search, tmp_path):
    proposals, metrics = search
    with pytest.raises(InputError, match="that no proposal given proposed"):
        collect_search(proposals[:1], metrics)
    other = write_metrics(tmp_path / "other", RunId("search", 2, 0, "PBLF-RS", 5, 0), candidate(0), 1.0, 1.0)
    with pytest.raises(InputError, match="several searches"):
        collect_search(proposals, [*metrics, other])
    second = write_metrics(tmp_path / "second", RunId("search", 2, 1000, "PBLF-BO", 5, 0, 1), candidate(0), 1.0, 1.0)
    with pytest.raises(InputError, match=r"several searches \(budget, method, search\)"):
        collect_search(proposals, [*metrics, second])
    repeat = write_metrics(tmp_path / "r", RunId("repeat", 2, 1, "PBLF-BO"), candidate(0), 1.0, 1.0)
    with pytest.raises(InputError, match="is a repeat run, not a search run"):
        collect_search(proposals, [*metrics, repeat])


def test_metrics_without_an_identity_are_named(search, tmp_path):
    proposals, metrics = search
    data = json.loads(metrics[0].read_text())
    del data["run"]
    metrics[0].write_text(json.dumps(data))
    with pytest.raises(InputError, match=rf"{metrics[0]} has no valid run identity"):
        collect_search(proposals, metrics)


def test_history_and_evaluations_files(search, tmp_path):
    proposals, metrics = search
    stage_history(proposals, metrics, tmp_path / "h")
    stage_evaluations(proposals, metrics, tmp_path / "e")
    history = (tmp_path / "h" / "history.csv").read_text().splitlines()
    assert history[0] == ",".join(HISTORY_COLUMNS) and history[1] == "0,0,0.0,-0.2,0.3,0.4,0010,50.0,ok,40.0 50.0"
    assert list(read_csv(tmp_path / "e" / "evaluations.csv")[0]) == list(EVALUATION_COLUMNS)
    stage_history([], [], tmp_path / "empty")
    assert (tmp_path / "empty" / "history.csv").read_text() == ",".join(HISTORY_COLUMNS) + "\n"


def test_selection_is_the_highest_validation_earliest_on_ties(search, tmp_path):
    proposals, metrics = search
    stage_evaluations(proposals, metrics, tmp_path / "e")
    rows = read_evaluations(tmp_path / "e" / "evaluations.csv")
    best = select_best(rows)
    assert (best["iteration"], best["index"]) == (0, 1)  # 70.0 twice: the earlier one
    stage_select(tmp_path / "e" / "evaluations.csv", tmp_path / "s")
    record = json.loads((tmp_path / "s" / "PBLF-BO.json").read_text())
    assert record["budget"] == 2 and record["method"] == "PBLF-BO" and record["val_top1"] == 70.0
    assert read_candidate(tmp_path / "s" / "PBLF-BO.json").to_dict() == candidate(1)


def test_selection_refuses_an_empty_or_mixed_file(tmp_path):
    path = tmp_path / "evaluations.csv"
    path.write_text(",".join(EVALUATION_COLUMNS) + "\n")
    with pytest.raises(InputError, match="no evaluated candidates"):
        read_evaluations(path)
    with pytest.raises(InputError, match="no evaluated candidate trained its full budget"):
        select_best([{"status": "stopped", "val_top1": 50.0}])
    row = "{b},PBLF-BO,0,0,0,random,,0.1,0.2,0.3,0.4,0010,ok,1,50,40,1.5,a CPU,run"
    path.write_text(",".join(EVALUATION_COLUMNS) + "\n" + row.format(b=2) + "\n" + row.format(b=3) + "\n")
    with pytest.raises(InputError, match="mixes several searches"):
        read_evaluations(path)


def test_trials_are_one_row_per_repeat_with_what_the_search_cost(search, tmp_path):
    proposals, search_metrics = search
    stage_evaluations(proposals, search_metrics, tmp_path / "e")
    evaluations = [tmp_path / "e" / "evaluations.csv"]
    metrics = [write_metrics(tmp_path, RunId("repeat", 2, s, m), candidate(s), 60.0 + s, 50.0 + s)
               for m in ("PBLF-BO", "Standard") for s in (1, 2)]
    rows = collect_trials(metrics, evaluations)
    assert [(r["budget_epochs"], r["method"], r["seed"]) for r in rows][:3] == [(2, "PBLF-BO", 1),
                                                                                  (2, "PBLF-BO", 2),
                                                                                  (2, "Standard", 1)]
    # the search trained 3 candidates for 2 epochs each; Standard searched nothing
    assert (rows[0]["search_candidates"], rows[0]["search_epochs"]) == (3, 6)
    assert (rows[2]["search_candidates"], rows[2]["search_epochs"]) == (0, 0)
    assert rows[0]["activation"] == "relu" and rows[0]["places"] == "stem/group 1/group 2/group 3"
    stage_trials(metrics, evaluations, tmp_path / "t")
    assert (tmp_path / "t" / "trials.csv").read_text().splitlines()[0] == ",".join(TRIALS_COLUMNS)
    with pytest.raises(InputError, match="no evaluations.csv of the PBLF-BO search 0 at 2 epochs"):
        collect_trials(metrics)
    assert {row["search"] for row in rows} == {0}
    second = write_metrics(tmp_path / "y", RunId("repeat", 2, 1, "PBLF-BO", search=1), candidate(1), 1.0, 1.0)
    with pytest.raises(InputError, match="no evaluations.csv of the PBLF-BO search 1 at 2 epochs"):
        collect_trials([*metrics, second], evaluations)
    searched = write_metrics(tmp_path / "x", RunId("search", 1, 0, "PBLF-BO", 0, 0), candidate(0), 1.0, 1.0)
    with pytest.raises(InputError, match="not a repeat"):
        collect_trials([searched])
