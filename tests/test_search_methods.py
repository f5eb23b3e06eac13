"""Every registered search method against one shared suite (as optuna runs one suite against every sampler), and a
fifth method registered in this test process only, which the plan, the proposer, the tables and the figures accept
without an edit anywhere else."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from pblf import plan
from pblf.core.candidate import Candidate, read_proposal
from pblf.core.config import load_config, validate
from pblf.core.errors import ConfigError
from pblf.core.files import write_csv
from pblf.core.names import HISTORY_COLUMNS, STANDARD, TRIALS_REQUIRED
from pblf.results import curves, scatter
from pblf.results.tables import read_trials, table_6_2, table_6_2_paired
from pblf.search.gp import Observation
from pblf.search.method import PackClass, SearchCost, SearchMethod, proposal_seed
from pblf.search.propose import stage_propose
from pblf.search.registry import methods, registered, sampling_methods, search_method, search_methods

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "thesis": [ROOT / "config.yaml"],
    "smoke": [ROOT / "config.yaml", ROOT / "presets/smoke.yaml"],
    "demo, pruned": [ROOT / "config.yaml", ROOT / "presets/demo.yaml"],
}


def synthetic_val(candidate: Candidate) -> float:
    """A stand-in for Top-1 validation: smooth in phi, so that a GP has something to fit."""
    return 50.0 + 10.0 * candidate.w1 - 5.0 * (candidate.b2 - 0.5) ** 2 + 2.0 * candidate.mode.count("1")


def run_search(config: dict[str, Any], method: str, budget: int) -> list[list[dict[str, Any]]]:
    """Every proposal of one search, each fed the history of the ones before (every run finishing its budget)."""
    searcher, proposals, history = search_method(method), [], []
    for iteration in range(searcher.iterations(config, budget)):
        entries = searcher.propose(config, history, budget, iteration, proposal_seed(config, budget, method, 0, iteration))
        proposals.append(entries)
        for index, entry in enumerate(entries):
            candidate = Candidate.from_dict(entry)
            curve = tuple(synthetic_val(candidate) for _ in range(entry.get("until") or budget))
            history.append(Observation(candidate, curve[-1], iteration, index, "ok", curve))
    return proposals


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("method", search_methods())
def test_every_method_proposes_what_its_plan_says_it_costs(method, name):
    config = load_config(CONFIGS[name])
    budget = min(config["budgets"])
    searcher = search_method(method)
    proposals = run_search(config, method, budget)
    cost = searcher.cost(config, budget)
    assert len(proposals) == searcher.iterations(config, budget) >= 1
    assert sum(map(len, proposals)) == cost.runs  # successive halving's promotions count as runs, as planned
    trained = {}
    for entries in proposals:
        for entry in entries:
            trained[Candidate.from_dict(entry)] = max(trained.get(Candidate.from_dict(entry), 0),
                                                      entry.get("until") or budget)
            assert abs(entry["w1"]) < config["search"]["phi_bound"] and entry["source"]
    assert cost.expected <= cost.epochs and cost.chain >= budget
    if not config["search"]["pruning"]["enabled"]:
        assert cost.epochs == cost.runs * budget == sum(trained.values())


@pytest.mark.parametrize("method", search_methods())
def test_every_method_proposes_the_same_bytes_twice_and_fits_its_packs(method, tmp_path):
    config = load_config(CONFIGS["smoke"])
    budget = min(config["budgets"])
    assert run_search(config, method, budget) == run_search(config, method, budget)
    counts = {group.iteration: group.count for group in search_method(method).pack_classes(config)}
    for iteration, entries in enumerate(run_search(config, method, budget)):
        assert len(entries) <= counts.get(iteration, counts.get("{iteration}", 0))


def test_an_unknown_method_is_an_error_not_a_default():
    with pytest.raises(ConfigError, match="'PBLF-GA' is not a search method; the registered ones are PBLF-BO"):
        search_method("PBLF-GA")
    with pytest.raises(ConfigError):
        plan.iterations(validate({}), "PBLF-GA", 20)


class Corners(SearchMethod):
    """A fifth method for the tests: it proposes the four corners (w1, b2) = (+-0.5, +-0.5) of mode 1111 in one
    iteration. Nothing about it exists outside this file."""

    name = "PBLF-CORNERS"
    salt = 99

    def iterations(self, config: dict[str, Any], budget: int) -> int:
        return 1

    def cost(self, config: dict[str, Any], budget: int) -> SearchCost:
        return SearchCost(4, 4 * budget, 4 * budget, budget)

    def pack_classes(self, config: dict[str, Any]) -> list[PackClass]:
        return [PackClass("corners", 0, 4)]

    def propose(self, config: dict[str, Any], history: Sequence[Any], budget: int, iteration: int,
                seed: int) -> list[dict[str, Any]]:
        return [{"w1": w1, "w2": 0.0, "b1": 0.0, "b2": b2, "mode": "1111", "source": "corner"}
                for w1 in (-0.5, 0.5) for b2 in (-0.5, 0.5)]


@pytest.fixture
def fifth():
    with registered(Corners()) as method:
        yield method.name
    assert method.name not in search_methods()  # gone again once the block ends


def test_a_fifth_method_joins_the_plan(fifth):
    config = load_config(CONFIGS["smoke"])
    assert methods() == ("PBLF-BO", "PBLF-RS", STANDARD, "PBLF-HG", fifth)
    assert plan.iterations(config, fifth, 1) == 1
    assert (plan.search_cost(config, 2, fifth).detail, plan.search_cost(config, 2, fifth).runs) == \
        (f"{fifth}, 2 epochs", 4)
    assert any(cost.detail == f"{fifth}, 1 epoch" for cost in plan.stage_costs(config))
    assert {run.method for run in plan.repeat_runs(config)} == set(methods())
    assert {run.method for run in plan.convergence_runs(config)} == set(methods())
    packed = validate({**config, "resources": {**config["resources"], "runs_per_job": 2}})
    names = [shape.name for shape in plan.pack_shapes(packed)]
    assert "corners_0" in names and "corners_1" in names and "repeats_2" in names  # 5 methods in packs of 2
    assert fifth in sampling_methods()


def test_the_proposer_stage_runs_a_fifth_method(fifth, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"device": "cpu"}))
    history = write_csv([], HISTORY_COLUMNS, tmp_path / "history.csv")
    stage_propose([config], history, 20, fifth, 0, tmp_path / "out")
    assert [entry["source"] for entry in read_proposal(tmp_path / "out" / "proposal.json")] == ["corner"] * 4
    with pytest.raises(ConfigError, match="makes 1 proposal"):
        stage_propose([config], history, 20, fifth, 1, tmp_path / "out")


def test_tables_and_figures_take_a_fifth_method(fifth, tmp_path):
    rows = [{"budget_epochs": 2, "method": method, "seed": seed, "test_top1": 80 + index + seed,
             "val_top1": 81 + index, "w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"}
            for index, method in enumerate(methods()) for seed in (1, 2, 3)]
    trials = read_trials(write_csv(rows, TRIALS_REQUIRED, tmp_path / "trials.csv"))
    made = table_6_2(trials)
    assert [row["method"] for row in made] == list(methods())
    assert made[-1]["vs_standard_diff"] == pytest.approx(4 - 2)  # the fifth's Top-1 minus Standard's, every seed
    assert ("PBLF-BO", fifth) in {(row["method"], row["versus"]) for row in table_6_2_paired(trials)}
    runs = {method: [{"run": {"kind": "repeat", "method": method, "budget": 2, "seed": seed}, "status": "ok",
                      "epochs": [{"epoch": e, "val_top1": 50.0 + e + k, "test_top1": 49.0 + e + k} for e in (1, 2)],
                      "val_top1": 52.0 + k, "test_top1": 51.0 + k} for seed in (1, 2)]
            for k, method in enumerate(methods())}
    data = curves.curve_figure(runs, 2)
    assert list(data.methods) == list(methods())
    paths = curves.draw_curves(data, tmp_path / "figure_6_1", "6.1")
    assert [path.suffix for path in paths] == [".png", ".pdf"]
    search = [{"budget_epochs": 2, "method": fifth, "iteration": 0, "index": i, "w1": w1, "w2": 0.0, "b1": 0.0,
               "b2": 0.5, "mode": "1111", "status": "ok", "epochs": 2, "val_top1": 50.0 + i, "test_top1": 49.0 + i}
              for i, w1 in enumerate((-0.5, 0.5, 0.25))]
    bo = [{**row, "method": "PBLF-BO", "w1": row["w1"] / 2} for row in search]
    rs = [{**row, "method": "PBLF-RS", "b1": 0.3} for row in search]
    made = scatter.scatter_figure({(2, "PBLF-BO"): bo, (2, "PBLF-RS"): rs, (2, fifth): search})
    assert made.methods == ["PBLF-BO", "PBLF-RS", fifth]
    written = scatter.draw_scatter(made, tmp_path / "figure_6_3", "6.3")
    assert json.dumps([str(p.name) for p in written]) == '["figure_6_3.png", "figure_6_3.pdf"]'
