"""What a config implies: proposals per search, runs per stage, where each run's candidate comes from, outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import benchmark
from pblf import plan
from pblf.core.candidate import write_proposal
from pblf.core.config import load_config, validate
from pblf.core.layout import Layout, RunId
from pblf.search.bo import BayesianOptimisation
from pblf.search.method import proposal_seed
from pblf.search.registry import methods

ROOT = Path(__file__).resolve().parents[1]
L = Layout()


@pytest.fixture(scope="module")
def thesis() -> dict:
    return load_config([ROOT / "config.yaml"])


@pytest.fixture(scope="module")
def smoke() -> dict:
    return load_config([ROOT / "config.yaml", ROOT / "presets" / "smoke.yaml"])


def test_proposals_of_the_thesis_searches(thesis):
    bo = thesis["search"]["bo"]
    assert plan.iterations(thesis, "PBLF-BO", 20) == 1 + bo["iterations"]
    assert plan.iterations(thesis, "PBLF-RS", 20) == 1
    assert BayesianOptimisation.proposal_sizes(thesis, 0) == (0, bo["initial"])
    assert BayesianOptimisation.proposal_sizes(thesis, 5) == (bo["n_acq"], bo["n_random"])
    assert plan.iterations(thesis, "PBLF-HG", 20) == 1


def test_with_pruning_random_search_is_one_iteration_per_rung_of_successive_halving(thesis):
    pruned = validate({**thesis, "search": {**thesis["search"], "pruning": {"enabled": True}}})
    # rungs 1/9 and 1/3 of the budget: 100 epochs stop at 11 and 33, 20 epochs at 2 and 7, 2 epochs at 1 (once)
    assert plan.iterations(pruned, "PBLF-RS", 100) == 3 and plan.iterations(pruned, "PBLF-RS", 2) == 2
    assert plan.iterations(pruned, "PBLF-BO", 100) == plan.iterations(thesis, "PBLF-BO", 100)


def test_proposal_seeds_differ_per_search_and_iteration(thesis):
    seeds = {proposal_seed(thesis, b, m, r, i) for b in (20, 100) for m in ("PBLF-BO", "PBLF-RS") for r in range(3)
             for i in range(5)}
    assert len(seeds) == 60 and all(0 <= s < 2**32 for s in seeds)


def test_search_runs_follow_the_proposals(smoke, tmp_path):
    proposals = []
    for iteration, n in enumerate((2, 1)):
        path = write_proposal(tmp_path / f"i{iteration}.json",
                              [{"w1": 0.1 * k, "w2": 0, "b1": 0, "b2": 0, "mode": "0000", "source": "random"}
                               for k in range(n)])
        proposals.append(str(path))
    runs = plan.search_runs(smoke, 2, "PBLF-BO", 0, proposals)
    seed = smoke["search"]["train_seed"]
    assert runs == [RunId("search", 2, seed, "PBLF-BO", 0, 0), RunId("search", 2, seed, "PBLF-BO", 0, 1),
                    RunId("search", 2, seed, "PBLF-BO", 1, 0)]
    second = plan.search_runs(smoke, 2, "PBLF-BO", 1, proposals)  # another search: its own training seed
    assert {(run.seed, run.search) for run in second} == {(seed + 1000, 1)}


def test_repeat_and_convergence_runs(smoke):
    repeats = plan.repeat_runs(smoke)
    assert len(repeats) == len(smoke["budgets"]) * 4 * len(smoke["repeats"]["seeds"])
    assert plan.repeat_runs(smoke, 1) == [r for r in repeats if r.budget == 1]
    conv = smoke["convergence"]
    assert plan.convergence_runs(smoke) == [RunId("convergence", conv["epochs"], conv["seed"], m) for m in methods()]
    off = validate({**smoke, "convergence": {**conv, "enabled": False}})
    assert plan.convergence_runs(off) == [] and "6.4" not in plan.figures(off)


def test_each_run_trains_the_candidate_of_its_file(smoke):
    conv = smoke["convergence"]
    search = plan.run_id(smoke, "search/b2/PBLF-BO/r1/i001/c00")
    assert plan.candidate_source(smoke, L, search) == L.proposal(2, "PBLF-BO", 1, 1)
    repeat = plan.run_id(smoke, "repeats/b1/PBLF-RS/r1/s1")
    assert plan.candidate_source(smoke, L, repeat) == L.selection(1, "PBLF-RS", 1)
    rerun = plan.run_id(smoke, "convergence/Standard/s0")
    assert rerun.budget == conv["epochs"]
    assert plan.candidate_source(smoke, L, rerun) == L.selection(conv["from_budget"], "Standard", 0)


def test_final_outputs_of_the_thesis_config(thesis):
    outputs = plan.final_outputs(thesis, L)
    assert L.table("table_6_2", "tex") in outputs and L.trials() in outputs
    assert {L.figure(f, "png") for f in ("6.1", "6.2", "6.3", "6.4", "C.1", "C.4")} <= set(outputs)
    one_budget = validate({**thesis, "budgets": [100], "generalisation": {**thesis["generalisation"], "from_budget": 100}})
    assert L.figure("6.2", "png") not in plan.final_outputs(one_budget, L)
    assert plan.curve_budget(thesis, "6.1") == 20 and plan.curve_budget(thesis, "6.2") == 100


def test_training_resources_grow_with_the_budget(thesis):
    res = thesis["resources"]
    assert plan.train_resources(thesis, 100)["runtime"] == round(res["minutes_overhead"] + 100 * res["minutes_per_epoch"])
    assert plan.train_resources(thesis, 1)["gpu"] == res["gpu"]


def test_the_thesis_run_costs_what_the_thesis_protocol_says(thesis):
    costs = {(c.stage, c.detail): c for c in plan.stage_costs(thesis)}
    bo100 = costs["search", "PBLF-BO, 100 epochs"]
    assert (bo100.runs, bo100.epochs, bo100.chain) == (120, 12_000, 101 * 100)
    assert costs["search", "PBLF-RS, 20 epochs"].epochs == 100 * 20
    hg = costs["search", "PBLF-HG, 100 epochs"]
    assert (hg.runs, hg.epochs, hg.chain) == (1, 100, 100)  # one learning run (beyond the thesis)
    assert costs["repeats", "40 runs"].epochs == 5 * 4 * (20 + 100)
    assert costs["convergence", "4 runs"].epochs == 4 * 600
    # 4 methods x (4 batch sizes x 2 scalings, less linear at 128: the fixed run) x 3 seeds
    assert costs["generalisation", "84 runs"].epochs == 4 * 7 * 3 * 20
    assert plan.critical_epochs(thesis) == 101 * 100 + 600  # BO at 100 epochs, then the 600-epoch reruns


def test_pruning_costs_are_successive_halving_exact_and_the_median_rule_expected(thesis):
    pruned = validate({**thesis, "search": {**thesis["search"], "pruning": {"enabled": True}}})
    rs = plan.search_cost(pruned, 100, "PBLF-RS")
    # 100 candidates to epoch 33, the best 34 to 67, the best 12 to 100: 66 x 33 + 22 x 67 + 12 x 100
    assert (rs.runs, rs.epochs) == (146, 66 * 33 + 22 * 67 + 12 * 100)
    bo = plan.search_cost(pruned, 100, "PBLF-BO")
    # 20 initial runs in full; each later run: 33 + (67 - 33) / 2 + (100 - 67) / 4 epochs to expect
    assert bo.epochs == 12_000 and bo.expected == pytest.approx(20 * 100 + 100 * (33 + 34 / 2 + 33 / 4))


def test_plan_prints_wall_times(thesis, capsys):
    plan.stage_plan([ROOT / "config.yaml"], gpus=8, seconds_per_epoch=55)
    out = capsys.readouterr().out
    assert "total" in out and "33,000" in out and "on 8 GPUs" in out and "days" in out
    plan.stage_plan([ROOT / "config.yaml"])  # the committed GPU measurement, and what each fast option gives
    out = capsys.readouterr().out
    assert "at 3.998 s per epoch (measured on NVIDIA H200" in out and "+ packs of 8" in out
    plan.stage_plan([ROOT / "config.yaml", ROOT / "presets/demo.yaml"])  # a network no GPU benchmark measured
    assert "give --seconds-per-epoch" in capsys.readouterr().out


def test_plan_reads_the_epoch_time_the_gpu_benchmark_writes(thesis, tmp_path):
    """benchmarks/bench_train.py names its epoch variants as pblf plan looks them up (run here on a CPU on a tiny
    network: the code path the GPU benchmark takes)."""
    bench_train = benchmark("bench_train")
    assert bench_train.main(["--out", str(tmp_path / "cuda-bench_train.json"), "--parts", "c", "--force-epoch",
                             "--threads", "1"]) == 0
    times = plan.gpu_epoch_times(thesis, tmp_path)
    assert times is not None and times.alone > 0
    assert plan.epoch_variant({**thesis["train"], "compile": True, "compile_mode": "reduce-overhead"}) == \
        "bf16=off compile=reduce-overhead"
    assert plan.gpu_epoch_times({**thesis, "train": {**thesis["train"], "bf16": True}}, tmp_path) is None


def test_searches_needed_counts_what_pblf_plan_counts(thesis):
    """benchmarks/searches_needed.py (docs/statistics.md's table of what S costs): one search per method is the plan's total,
    a second adds every search again and the retrains of its three choices, and the interval factor is t / sqrt(S)."""
    rows = {row["searches"]: row for row in benchmark("searches_needed").rows(55.0)}
    costs = plan.stage_costs(thesis)
    assert rows[1]["trainings"] == sum(cost.runs for cost in costs) and rows[1]["t_975"] is None
    searched = sum(cost.runs for cost in costs if cost.stage == "search")
    retrains = 3 * len(thesis["budgets"]) * len(thesis["repeats"]["seeds"])
    assert rows[2]["trainings"] - rows[1]["trainings"] == searched + retrains
    assert rows[3]["half_width_per_spread"] == pytest.approx(rows[3]["t_975"] / 3**0.5, abs=1e-4)


def test_several_searches_multiply_the_search_cost_but_not_its_chain(thesis):
    two = validate({**thesis, "search": {**thesis["search"], "repeats": 2}})
    one, both = plan.search_cost(thesis, 100, "PBLF-BO"), plan.search_cost(two, 100, "PBLF-BO")
    assert (both.runs, both.epochs, both.chain) == (2 * one.runs, 2 * one.epochs, one.chain)
    assert both.detail == "PBLF-BO, 100 epochs, 2 searches" and one.detail == "PBLF-BO, 100 epochs"
    assert plan.critical_epochs(two) == plan.critical_epochs(thesis)  # the searches run side by side


def test_plan_reads_the_committed_gpu_measurement_and_its_packs(thesis):
    """Until a new GPU run replaces it, the H200 measurement of 2026-12-04 seeds the plan: one run alone at its
    measured epoch time, a pack's time scaled from its 10,000-image runs to 45,000 images, per run."""
    times = plan.gpu_epoch_times(thesis)
    assert times is not None and "h200-2026-12-04/gpu_bench.json" in times.source and "H200" in times.source
    assert times.alone == 3.998 and sorted(times.packed) == [2, 4, 8, 16]
    assert times.packed[8] == pytest.approx(2.031 * 4.5 / 8)
    assert times.per_run(1) == 3.998 and times.per_run(6) == times.packed[4] and times.per_run(32) == times.packed[16]
    graphs = {**thesis, "train": {**thesis["train"], "compile": True, "compile_mode": "reduce-overhead"}}
    assert plan.gpu_epoch_times(graphs).alone == 1.828
    assert plan.gpu_epoch_times({**thesis, "model": {**thesis["model"], "depth": 28}}) is None


def test_wall_time_is_the_work_over_the_gpus_or_the_chain(thesis):
    times = plan.EpochTimes("by hand", alone=2.0, packed={4: 0.5})
    alone = plan.wall_time(thesis, times, gpus=1)
    assert alone.gpu_hours == pytest.approx(33_000 * 2.0 / 3600)
    assert alone.chain_hours == pytest.approx(10_700 * 2.0 / 3600) and alone.wall_hours == alone.gpu_hours
    packed = {**thesis, "resources": {**thesis["resources"], "runs_per_job": 4}}
    assert plan.wall_time(packed, times, gpus=1).gpu_hours == pytest.approx(33_000 * 0.5 / 3600)
    wide = plan.wall_time(packed, times, gpus=100)
    assert wide.wall_hours == wide.chain_hours == pytest.approx(10_700 * 2.0 / 3600)  # q = 1: the chain trains alone
    options = plan.fast_options(thesis)
    assert list(options) == ["as configured", "+ CUDA graphs", "+ packs of 8", "+ batch BO (q = 8)"]
    batched = options["+ batch BO (q = 8)"]["search"]["bo"]
    assert (batched["n_acq"], batched["iterations"]) == (8, 13) and thesis["search"]["bo"]["n_acq"] == 1
