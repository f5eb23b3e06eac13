"""What the Snakefile needs from the package: the results layout, the runs a config implies, seeds, final outputs.

Rules only wire files together; which files exist for a config, where each lives and what each training run trains
is decided here, in one place, where it can be tested without Snakemake. Every other module that reads results
(collection, selection, tables, audit) finds files through these functions too.

Results layout (``results/`` by default)::

    config/<stage>.json                          config keys a stage reads
    data/split.json                              the train/validation split record
    search/b<B>/<method>/i<III>/history.csv      what the proposer of iteration III saw
    search/b<B>/<method>/i<III>/proposal.json    its proposal (a Snakemake checkpoint)
    search/b<B>/<method>/trials.csv              every evaluated candidate of the search
    select/b<B>/<method>.json                    the chosen candidate (highest Top-1 validation)
    runs/search/b<B>/<method>/i<III>/c<JJ>/      one training run: metrics.json, checkpoint.pt
    runs/repeats/b<B>/<method>/s<S>/             the chosen candidate retrained with repeat seed S
    runs/convergence/<method>/s<S>/              the long reruns (Figure 6.4)
    tables/trials.csv                            one row per repeat seed (SPEC section 3)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pblf.config import stage_config  # noqa: F401 - the rules call it as pw.stage_config
from pblf.files import read_json
from pblf.seeding import derive_seed


#: The searched methods and the proposer method each uses.
SEARCH_METHODS: dict[str, str] = {"PBLF-BO": "bo", "PBLF-RS": "rs"}
METHODS: tuple[str, ...] = ("PBLF-BO", "PBLF-RS", "Standard")


# ------------------------------------------------------------------------------------------------------ search


def iterations(config: dict[str, Any], method: str) -> int:
    """How many proposals a search makes: BO its initial batch plus one per iteration, RS a single batch."""
    return 1 + config["search"]["bo"]["iterations"] if method == "PBLF-BO" else 1


def proposal_sizes(config: dict[str, Any], method: str, iteration: int) -> tuple[int, int]:
    """(acquisition candidates, random candidates) of one proposal."""
    if method == "PBLF-RS":
        return 0, config["search"]["rs"]["samples"]
    bo = config["search"]["bo"]
    return (0, bo["initial"]) if iteration == 0 else (bo["n_acq"], bo["n_random"])


def proposal_seed(config: dict[str, Any], budget: int, method: str, iteration: int) -> int:
    """The proposer's seed: distinct per search and iteration, 32-bit for scikit-learn's random_state."""
    return derive_seed(config["seed"], "propose", budget, method, iteration) % 2**32


def search_dir(results: str, budget: int | str, method: str) -> str:
    return f"{results}/search/b{budget}/{method}"


def proposal_path(results: str, budget: int | str, method: str, iteration: int | str) -> str:
    return f"{search_dir(results, budget, method)}/i{int(iteration):03d}/proposal.json"


def search_run_name(iteration: int, index: int) -> str:
    """A search run's folder inside its search's folder under ``runs/search``."""
    return f"i{iteration:03d}/c{index:02d}"


def search_run(results: str, budget: int | str, method: str, iteration: int, index: int) -> str:
    return f"{results}/runs/search/b{budget}/{method}/{search_run_name(iteration, index)}"


def repeat_run(results: str, budget: int | str, method: str, seed: int | str) -> str:
    return f"{results}/runs/repeats/b{budget}/{method}/s{seed}"


def convergence_run(results: str, method: str, seed: int | str) -> str:
    return f"{results}/runs/convergence/{method}/s{seed}"


def select_path(results: str, budget: int | str, method: str) -> str:
    return f"{results}/select/b{budget}/{method}.json"


def proposal_candidates(path: str | Path) -> list[dict[str, Any]]:
    return read_json(path)["candidates"]


def search_runs(results: str, budget: int | str, method: str, proposals: list[str | Path]) -> list[str]:
    """The run folders of every candidate of ``proposals`` (ordered by iteration), in evaluation order."""
    return [
        search_run(results, budget, method, iteration, index)
        for iteration, proposal in enumerate(proposals)
        for index in range(len(proposal_candidates(proposal)))
    ]


# -------------------------------------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class RunSpec:
    """What one training run trains: the file that holds its candidate (and which one), the budget and the seed."""

    candidate_file: str
    index: int
    budget: int
    seed: int


_SEARCH_RUN = re.compile(r"search/b(?P<budget>\d+)/(?P<method>[^/]+)/i(?P<iteration>\d{3})/c(?P<index>\d{2})")
_REPEAT_RUN = re.compile(r"repeats/b(?P<budget>\d+)/(?P<method>[^/]+)/s(?P<seed>\d+)")
_CONVERGENCE_RUN = re.compile(r"convergence/(?P<method>[^/]+)/s(?P<seed>\d+)")
#: Snakemake wildcard constraint for the ``run`` of the training rule.
RUN_PATTERN = re.sub(r"\(\?P<\w+>", "(?:", "|".join(p.pattern for p in (_SEARCH_RUN, _REPEAT_RUN, _CONVERGENCE_RUN)))


def run_spec(config: dict[str, Any], results: str, run: str) -> RunSpec:
    """Decode a run folder name (relative to ``results/runs``) into what it trains."""
    if match := _SEARCH_RUN.fullmatch(run):
        g = match.groupdict()
        path = proposal_path(results, g["budget"], g["method"], g["iteration"])
        return RunSpec(path, int(g["index"]), int(g["budget"]), config["search"]["train_seed"])
    if match := _REPEAT_RUN.fullmatch(run):
        g = match.groupdict()
        return RunSpec(select_path(results, g["budget"], g["method"]), 0, int(g["budget"]), int(g["seed"]))
    if match := _CONVERGENCE_RUN.fullmatch(run):
        g = match.groupdict()
        conv = config["convergence"]
        return RunSpec(select_path(results, conv["from_budget"], g["method"]), 0, conv["epochs"], int(g["seed"]))
    raise ValueError(f"{run!r} is not a run folder (search/b<B>/<method>/i<III>/c<JJ>, repeats/..., convergence/...)")


def parse_run(run: str | Path) -> dict[str, Any]:
    """The parts of a run folder's path: kind (search, repeats, convergence), budget, method, seed, ..."""
    text = Path(run).as_posix()
    for kind, pattern in (("search", _SEARCH_RUN), ("repeats", _REPEAT_RUN), ("convergence", _CONVERGENCE_RUN)):
        if match := pattern.search(text):
            parts: dict[str, Any] = {"kind": kind}
            for key, value in match.groupdict().items():
                parts[key] = value if key == "method" else int(value)
            return parts
    raise ValueError(f"{run} is not a run folder of the results layout (runs/search|repeats|convergence/...)")


def parse_search_trials(path: str | Path) -> tuple[int, str]:
    """(budget, method) of a ``search/b<B>/<method>/trials.csv`` path."""
    match = re.search(r"search/b(\d+)/([^/]+)/trials\.csv$", Path(path).as_posix())
    if not match:
        raise ValueError(f"{path} is not a search trials file (search/b<B>/<method>/trials.csv)")
    return int(match.group(1)), match.group(2)


def train_resources(config: dict[str, Any], budget: int) -> dict[str, int]:
    """What a training job asks an executor for: a runtime (minutes) that grows with the budget."""
    res = config["resources"]
    runtime = res["minutes_overhead"] + res["minutes_per_epoch"] * budget
    return {"runtime": max(1, int(round(runtime))), "mem_mb": res["mem_mb"], "gpu": res["gpu"]}


# ----------------------------------------------------------------------------------------------------- outputs


def curve_budget(config: dict[str, Any], figure: int | str) -> int:
    """Figure 6.1 shows the smallest budget (20 epochs in the thesis), Figure 6.2 the largest (100)."""
    budgets = sorted(config["budgets"])
    return budgets[0] if int(figure) == 1 else budgets[-1]


def figure_names(config: dict[str, Any]) -> list[str]:
    """The figures a config produces: 6.2 needs a second budget, 6.4 the convergence reruns."""
    names = ["figure_6_1", "figure_6_3"] + [f"figure_C_{n}" for n in (1, 2, 3, 4)]
    if len(config["budgets"]) > 1:
        names.append("figure_6_2")
    if config["convergence"]["enabled"] and config["convergence"]["methods"]:
        names.append("figure_6_4")
    return sorted(names)


def final_outputs(config: dict[str, Any], results: str = "results") -> list[str]:
    """Every file ``rule all`` asks for under ``config``: the tables, the figures and what they are made of."""
    outputs = [f"{results}/tables/trials.csv", f"{results}/trajectories/velocity.csv"]
    outputs += [f"{results}/tables/{t}.{ext}" for t in ("table_6_2", "table_B_1", "table_B_2")
                for ext in ("csv", "md", "tex")]
    outputs += [f"{results}/figures/{name}.{ext}" for name in figure_names(config) for ext in ("png", "pdf")]
    return outputs
