"""What a config implies: the proposals of each search, the runs of each stage, their seeds and resources, and the
final outputs.

Rules only wire files together; which runs and files exist for a config, and what each training run trains, is
decided here, where it can be tested without Snakemake. Paths come from :mod:`pblf.layout`.
"""

from __future__ import annotations

from typing import Any

from pblf.candidate import read_proposal
from pblf.layout import Layout, RunId
from pblf.names import FIGURE_FORMATS, METHODS, PROPOSERS, TABLE_FORMATS, TABLES
from pblf.seeding import derive_seed

# ------------------------------------------------------------------------------------------------------ search


def iterations(config: dict[str, Any], method: str) -> int:
    """How many proposals a search makes: BO its initial batch plus one per iteration, RS a single batch."""
    return 1 + config["search"]["bo"]["iterations"] if PROPOSERS[method] == "bo" else 1


def proposal_sizes(config: dict[str, Any], method: str, iteration: int) -> tuple[int, int]:
    """(acquisition candidates, random candidates) of one proposal."""
    if PROPOSERS[method] == "rs":
        return 0, config["search"]["rs"]["samples"]
    bo = config["search"]["bo"]
    return (0, bo["initial"]) if iteration == 0 else (bo["n_acq"], bo["n_random"])


def proposal_seed(config: dict[str, Any], budget: int, method: str, iteration: int) -> int:
    """The proposer's seed: distinct per search and iteration, 32-bit for scikit-learn's random_state."""
    return derive_seed(config["seed"], "propose", budget, method, iteration) % 2**32


def search_runs(config: dict[str, Any], budget: int | str, method: str, proposals: list[str]) -> list[RunId]:
    """The runs of every candidate of ``proposals`` (the proposal files of iterations 0, 1, ..., in order)."""
    return [
        RunId("search", int(budget), config["search"]["train_seed"], method, iteration, index)
        for iteration, proposal in enumerate(proposals)
        for index in range(len(read_proposal(proposal)))
    ]


# ------------------------------------------------------------------------------------------ repeats, convergence


def repeat_runs(config: dict[str, Any], budget: int | None = None) -> list[RunId]:
    """The repeat runs of one budget (or of every budget): every method, every repeat seed."""
    budgets = config["budgets"] if budget is None else [budget]
    return [RunId("repeat", b, s, m) for b in budgets for m in METHODS for s in config["repeats"]["seeds"]]


def convergence_runs(config: dict[str, Any]) -> list[RunId]:
    conv = config["convergence"]
    if not conv["enabled"]:
        return []
    return [RunId("convergence", conv["epochs"], conv["seed"], method) for method in conv["methods"]]


# -------------------------------------------------------------------------------------------------- training


def run_id(config: dict[str, Any], folder: str) -> RunId:
    """The identity of the run in ``folder`` (the training rule's ``run`` wildcard)."""
    return Layout.parse_run(folder, config["search"]["train_seed"], config["convergence"]["epochs"])


def candidate_source(config: dict[str, Any], layout: Layout, run: RunId) -> str:
    """The file that holds the candidate ``run`` trains: its proposal for a search run, otherwise the selection
    of its budget (the convergence reruns take the selection of ``convergence.from_budget``)."""
    if run.kind == "search":
        return layout.proposal(run.budget, run.method, run.iteration)
    budget = config["convergence"]["from_budget"] if run.kind == "convergence" else run.budget
    return layout.selection(budget, run.method)


def train_resources(config: dict[str, Any], budget: int) -> dict[str, int]:
    """What a training job asks an executor for: a runtime (minutes) that grows with the budget."""
    res = config["resources"]
    runtime = res["minutes_overhead"] + res["minutes_per_epoch"] * budget
    return {"runtime": max(1, int(round(runtime))), "mem_mb": res["mem_mb"], "gpu": res["gpu"]}


# ----------------------------------------------------------------------------------------------------- outputs


def curve_budget(config: dict[str, Any], figure: str) -> int:
    """Figure 6.1 shows the smallest budget (20 epochs in the thesis), Figure 6.2 the largest (100)."""
    budgets = sorted(config["budgets"])
    return budgets[0] if figure == "6.1" else budgets[-1]


def figures(config: dict[str, Any]) -> list[str]:
    """The figures a config produces: 6.2 needs a second budget, 6.4 the convergence reruns."""
    ids = ["6.1", "6.3", "C.1", "C.2", "C.3", "C.4"]
    if len(config["budgets"]) > 1:
        ids.append("6.2")
    if convergence_runs(config):
        ids.append("6.4")
    return sorted(ids)


def final_outputs(config: dict[str, Any], layout: Layout) -> list[str]:
    """Every file ``rule all`` asks for under ``config``: the tables, the figures and what they are made of."""
    outputs = [layout.trials(), layout.velocity()]
    outputs += [layout.table(name, fmt) for name in TABLES for fmt in TABLE_FORMATS]
    outputs += [layout.figure(figure, fmt) for figure in figures(config) for fmt in FIGURE_FORMATS]
    return outputs
