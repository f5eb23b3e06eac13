"""What a config implies: the proposals of each search, the runs of each stage, their seeds and resources, and the
final outputs.

Rules only wire files together; which runs and files exist for a config, and what each training run trains, is
decided here, where it can be tested without Snakemake. Paths come from :mod:`pblf.core.layout`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pblf.core.candidate import read_proposal
from pblf.core.config import check_device, compile_mode, load_config, search_seed
from pblf.core.errors import ConfigError
from pblf.core.layout import RUN_TEMPLATES, Layout, RunId
from pblf.core.names import FIGURE_FORMATS, REPRODUCTION_TABLES, TABLE_FORMATS, TABLES, TIMINGS, epochs_label
from pblf.results.generalisation import shared_runs
from pblf.search.registry import learning_methods, methods, search_method, search_methods
from pblf.training.wrn import wrn_layout

#: Where the benchmarks write what they measured (benchmarks/results in the checkout).
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"

# ------------------------------------------------------------------------------------------------------ search


def iterations(config: dict[str, Any], method: str, budget: int | str) -> int:
    """How many proposals the search of ``method`` at ``budget`` makes (its method says)."""
    return search_method(method).iterations(config, int(budget))


def searches(config: dict[str, Any], method: str) -> range:
    """The searches of ``method`` (``search.repeats`` of them; Standard, which searches nothing, has search 0)."""
    return range(config["search"]["repeats"] if method in search_methods() else 1)


def search_runs(config: dict[str, Any], budget: int | str, method: str, search: int | str,
                proposals: list[str]) -> list[RunId]:
    """The runs of every candidate of ``proposals`` (the proposal files of iterations 0, 1, ..., in order) of search
    ``search``, each trained with that search's seed."""
    return [
        RunId("search", int(budget), search_seed(config, int(search)), method, iteration, index, int(search))
        for iteration, proposal in enumerate(proposals)
        for index in range(len(read_proposal(proposal)))
    ]


# ------------------------------------------------------------------------------------------ repeats, convergence


def stage_methods(config: dict[str, Any], stage: str) -> tuple[str, ...]:
    """The methods the convergence or generalisation stage reruns (its ``methods``; null: every method), in the
    tables' order; a name that is neither Standard nor a registered search method is refused, naming the key."""
    chosen = config[stage]["methods"]
    if chosen is None:
        return methods()
    unknown = [name for name in chosen if name not in methods()]
    if unknown:
        raise ConfigError(f"config key {stage}.methods: {', '.join(unknown)} is not a method; choose from "
                          f"{', '.join(methods())}")
    return tuple(name for name in methods() if name in chosen)


def check(config: dict[str, Any]) -> None:
    """What the schema cannot know, checked before any job: the method names the stages name, that the target
    network is a Wide ResNet (its depth rule lives with the network, :mod:`pblf.training.wrn`), and that the plan
    stays under ``plan_ceiling``."""
    for stage in ("convergence", "generalisation"):
        stage_methods(config, stage)
    model = config["model"]
    wrn_layout(model["depth"], model["widen_factor"], model["base_width"])
    _check_ceiling(config)


#: What each key of ``plan_ceiling`` bounds, for the message.
_CEILING_UNITS = {"runs": "training runs", "epochs": "epochs"}


def _check_ceiling(config: dict[str, Any]) -> None:
    """Refuse a config that plans more training runs or epochs than ``plan_ceiling`` allows, counted as ``pblf plan``
    counts them (:func:`stage_costs`), so that a few digits too many cannot start months of GPU time. The schema's
    bounds on every list and count come first (:func:`pblf.core.config.validate`), which keeps the counting itself
    to a fraction of a second."""
    costs = stage_costs(config)
    planned = {"runs": sum(cost.runs for cost in costs), "epochs": sum(cost.epochs for cost in costs)}
    for key, unit in _CEILING_UNITS.items():
        ceiling = config["plan_ceiling"][key]
        if planned[key] > ceiling:
            raise ConfigError(f"config key plan_ceiling.{key}: the config plans {planned[key]:,} {unit}, above the "
                              f"ceiling of {ceiling:,} (pblf plan shows where they go); if the study means it, set "
                              f"plan_ceiling.{key}: {planned[key]} or more")


def stage_check_config(config: list[Path], device_check: bool = True) -> None:
    """``pblf check-config``: validate the merged config files, the method names and (unless told not to) that a
    requested GPU is there."""
    merged = load_config(config)
    check(merged)
    if device_check:
        check_device(merged)
    print(f"configuration is valid: {', '.join(map(str, config))}")


def repeat_runs(config: dict[str, Any], budget: int | None = None) -> list[RunId]:
    """The repeat runs of one budget (or of every budget): every search of every method, every repeat seed."""
    budgets = config["budgets"] if budget is None else [budget]
    return [RunId("repeat", b, s, m, search=r) for b in budgets for m in methods() for r in searches(config, m)
            for s in config["repeats"]["seeds"]]


def generalisation_runs(config: dict[str, Any]) -> list[RunId]:
    """The chosen candidates of the ``generalisation.from_budget`` searches and Standard, at every batch size and lr
    scaling, with every seed; at ``train.batch_size`` a linearly scaled rate is the fixed one, and with both scalings
    that run is trained once, as ``fixed`` (the table lists it under both: :func:`~pblf.results.generalisation.shared_runs`)."""
    general = config["generalisation"]
    if not general["enabled"]:
        return []
    return [RunId("generalisation", general["from_budget"], seed, method, batch_size=batch, lr_scaling=scaling)
            for method in stage_methods(config, "generalisation") for batch in general["batch_sizes"]
            for scaling in general["lr_scaling"] if not shared_runs(config, batch, scaling) for seed in general["seeds"]]



def convergence_runs(config: dict[str, Any]) -> list[RunId]:
    conv = config["convergence"]
    if not conv["enabled"]:
        return []
    return [RunId("convergence", conv["epochs"], conv["seed"], method) for method in stage_methods(config, "convergence")]


# -------------------------------------------------------------------------------------------------- training


def run_id(config: dict[str, Any], folder: str) -> RunId:
    """The identity of the run in ``folder`` (the training rule's ``run`` wildcard)."""
    return Layout.parse_run(folder, config["search"]["train_seed"], config["convergence"]["epochs"])


def resume_source(layout: Layout, run: RunId, proposal: str) -> str | None:
    """The run folder a search run continues (its proposal entry's ``resume``: successive halving), or None."""
    if run.kind != "search":
        return None
    resume = read_proposal(proposal)[run.index].get("resume")
    return layout.run(RunId("search", run.budget, run.seed, run.method, search=run.search, **resume)) \
        if resume else None


def candidate_source(config: dict[str, Any], layout: Layout, run: RunId) -> str:
    """The file that holds the candidate ``run`` trains: its proposal for a search run, otherwise the selection
    of its budget (the convergence reruns take the selection of ``convergence.from_budget``): a repeat's search's,
    search 0's for the convergence and generalisation reruns."""
    if run.kind == "search":
        return layout.proposal(run.budget, run.method, run.search, run.iteration)
    budget = config["convergence"]["from_budget"] if run.kind == "convergence" else run.budget
    return layout.selection(budget, run.method, run.search or 0)  # a generalisation run's budget is its from_budget


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
    """The figures a config produces: 6.2 needs a second budget, 6.4 the convergence reruns, the generalisation
    figure its stage; PBLF-HG's trajectories are always drawn."""
    ids = ["6.1", "6.3", "C.1", "C.2", "C.3", "C.4", *(["hypergradient"] if learning_methods() else [])]
    if len(config["budgets"]) > 1:
        ids.append("6.2")
    if convergence_runs(config):
        ids.append("6.4")
    if generalisation_runs(config):
        ids.append("generalisation")
    return sorted(ids)


def final_outputs(config: dict[str, Any], layout: Layout) -> list[str]:
    """Every file ``rule all`` asks for under ``config``: the tables, the figures, what they are made of and the page
    that shows the answer."""
    outputs = [layout.trials(), layout.velocity()]
    outputs += [layout.table(name, fmt) for name in (*TABLES, *REPRODUCTION_TABLES, TIMINGS) for fmt in TABLE_FORMATS]
    outputs += [layout.figure(figure, fmt) for figure in figures(config) for fmt in FIGURE_FORMATS]
    if generalisation_runs(config):
        outputs += [layout.generalisation_table(fmt) for fmt in TABLE_FORMATS]
    return [*outputs, layout.summary()]


# ---------------------------------------------------------------------------------------------------- the cost


@dataclass(frozen=True)
class StageCost:
    """What one part of a run of the pipeline trains: its training runs (jobs), the epochs they train at most and,
    with pruning, the epochs to expect, and the longest chain of epochs that must run one after another."""

    stage: str
    detail: str
    runs: int
    epochs: int
    expected: float
    chain: int
    #: Which runs the row counts, as :func:`cost_group` names a run: (stage,), or ("search", budget, method).
    group: tuple[Any, ...] = ()


def cost_group(run: RunId) -> tuple[Any, ...]:
    """The row of :func:`stage_costs` that counts ``run``: a search's runs by budget and method, the others by stage."""
    if run.kind == "search":
        return ("search", run.budget, run.method)
    return ({"repeat": "repeats"}.get(run.kind, run.kind),)


def search_cost(config: dict[str, Any], budget: int, method: str) -> StageCost:
    """What the searches of ``method`` at ``budget`` cost (its method says what one costs; ``search.repeats`` of
    them run side by side, so the chain is one search's)."""
    cost = search_method(method).cost(config, budget)
    n = len(searches(config, method))
    detail = f"{method}, {epochs_label(budget)}" + (f", {n} searches" if n > 1 else "")
    return StageCost("search", detail, n * cost.runs, n * cost.epochs, n * cost.expected, cost.chain,
                     ("search", budget, method))


def stage_costs(config: dict[str, Any]) -> list[StageCost]:
    """Every part of the pipeline that trains, per search and per stage after the searches."""
    costs = [search_cost(config, budget, method) for budget in sorted(config["budgets"]) for method in search_methods()]
    for kind, runs in (("repeats", repeat_runs(config)), ("convergence", convergence_runs(config)),
                       ("generalisation", generalisation_runs(config))):
        epochs = sum(run.budget for run in runs)
        costs.append(StageCost(kind, f"{len(runs)} runs", len(runs), epochs, epochs,
                               max((run.budget for run in runs), default=0), (kind,)))
    return costs


def critical_epochs(config: dict[str, Any]) -> int:
    """The longest chain of epochs that must train one after another, however many GPUs: a budget's longest search
    (PBLF-BO's iterations), then the repeats (or convergence, or generalisation) of the candidate it chose."""
    chain = lambda budget: max(search_cost(config, budget, m).chain for m in search_methods())  # noqa: E731
    paths = [chain(budget) + budget for budget in config["budgets"]]
    if convergence_runs(config):
        paths.append(chain(config["convergence"]["from_budget"]) + config["convergence"]["epochs"])
    if generalisation_runs(config):
        paths.append(chain(config["generalisation"]["from_budget"]) + config["generalisation"]["from_budget"])
    return max(paths)


def epoch_variant(train_cfg: dict[str, Any]) -> str:
    """The name benchmarks/bench_train.py gives the epoch variant a training config runs (precision and compile
    mode), so that :func:`gpu_epoch_times` finds its measurement."""
    return f"bf16={'on' if train_cfg['bf16'] else 'off'} compile={compile_mode(train_cfg) or 'off'}"


#: The GPU measurements ``pblf plan`` reads, newest first (each relative to :data:`BENCHMARKS`): a run of
#: ``benchmarks/bench_train.py --device cuda``, then the first measurement of this project's code on a GPU (an
#: NVIDIA H200, 2026-12-04, torch 2.11: the same benchmark functions), which seeds the plan until a new run
#: replaces it.
GPU_MEASUREMENTS: tuple[str, ...] = ("cuda-bench_train.json", "h200-2026-12-04/gpu_bench.json")
#: The training images of one CIFAR-10 epoch of the pipeline (50,000 less the validation split's 5,000).
EPOCH_IMAGES = 45_000


@dataclass(frozen=True)
class EpochTimes:
    """Seconds of one WRN-16-2 CIFAR-10 epoch (evaluation included) per run on a GPU, for one training variant
    (precision and compile mode): alone, and per run in a fused pack of K (``packed``), as a benchmark measured."""

    source: str
    alone: float
    packed: dict[int, float]

    def per_run(self, size: int) -> float:
        """Seconds per run-epoch in packs of ``size``: the largest pack measured that is not larger (a pack of 6
        counts as one of 4 measured: never faster than measured)."""
        measured = [k for k in self.packed if k <= size]
        return self.packed[max(measured)] if size > 1 and measured else self.alone


def gpu_epoch_times(config: dict[str, Any], results: Path = BENCHMARKS) -> EpochTimes | None:
    """The epoch times of the variant ``config`` trains, from the newest of :data:`GPU_MEASUREMENTS`; None when
    there is none or the config trains another network or data set. A pack's time, measured on runs of
    ``d_pack.train_images`` images, is scaled to :data:`EPOCH_IMAGES` in proportion (a launch-bound step's time
    grows with the steps, not the arithmetic)."""
    model, data = config["model"], config["data"]
    if (model["depth"], model["widen_factor"], model["base_width"], data["dataset"]) != (16, 2, 16, "cifar10"):
        return None
    variant = epoch_variant(config["train"])
    for name in GPU_MEASUREMENTS:
        path = results / name
        if not path.is_file():
            continue
        measured = json.loads(path.read_text())
        alone = measured.get("c_epoch", {}).get("variants", {}).get(variant, {}).get("seconds_per_epoch_with_eval")
        if alone is None:
            return None
        pack = measured.get("d_pack", {})
        scale = EPOCH_IMAGES / pack["train_images"] if pack.get("train_images") else 0.0
        packed = {row["pack_size"]: row["seconds_per_epoch_with_eval"] * scale / row["pack_size"]
                  for key, row in pack.get("variants", {}).items()
                  if key.startswith(f"{variant} pack=") and scale}
        return EpochTimes(f"measured on {measured.get('device', 'a GPU')}, benchmarks/results/{name}", alone, packed)
    return None


@dataclass(frozen=True)
class WallTime:
    """What a config costs on G GPUs at measured epoch times: GPU hours, the chain's hours, and the wall time."""

    gpu_hours: float
    chain_hours: float
    wall_hours: float


def wall_time(config: dict[str, Any], times: EpochTimes, gpus: int) -> WallTime:
    """GPU time at the per-run epoch time of the config's packs (``resources.runs_per_job``), and the wall time:
    that work spread over ``gpus``, or the longest chain (:func:`critical_epochs`), whichever is longer. A chain
    epoch trains one search iteration's candidates side by side (``n_acq + n_random``, in one pack when
    ``runs_per_job`` holds them, else alone), and every epoch of the chain is counted so: with batches, an upper
    bound (the chain's initial batch and its reruns also train alone, faster)."""
    pack = config["resources"]["runs_per_job"]
    bo = config["search"]["bo"]
    batch = bo["n_acq"] + bo["n_random"]
    work = sum(cost.expected for cost in stage_costs(config))
    chain_epoch = times.per_run(batch) * batch if 1 < batch <= pack else times.alone
    gpu = work * times.per_run(pack) / 3600
    chain = critical_epochs(config) * chain_epoch / 3600
    return WallTime(gpu, chain, max(gpu / gpus, chain))


def fast_options(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The config, and the same study with each option the GPU benchmark measured added in turn: CUDA graphs, packs
    of 8, and PBLF-BO in batches of 8 (the same trainings in an eighth of the iterations: a protocol change,
    ``benchmarks/bench_batch_bo.py`` measures what it costs in quality)."""
    graphs = {**config, "train": {**config["train"], "compile": True, "compile_mode": "reduce-overhead"}}
    packs = {**graphs, "resources": {**graphs["resources"], "runs_per_job": 8}}
    bo = config["search"]["bo"]
    batched = {**packs, "search": {**packs["search"], "bo": {**bo, "n_acq": 8, "n_random": 0,
                                                             "iterations": -(-bo["iterations"] * (bo["n_acq"] + bo["n_random"]) // 8)}}}
    return {"as configured": config, "+ CUDA graphs": graphs, "+ packs of 8": packs, "+ batch BO (q = 8)": batched}


def _hours(epochs: float, seconds_per_epoch: float) -> str:
    hours = epochs * seconds_per_epoch / 3600
    return f"{hours:,.1f} h" if hours < 48 else f"{hours / 24:,.1f} days"


def stage_plan(config: list[Path], gpus: int = 1, seconds_per_epoch: float | None = None) -> None:
    """``pblf plan``: print what a config trains (runs, epochs, with pruning the epochs to expect) and how long it
    takes on ``gpus`` GPUs at ``seconds_per_epoch`` (measured by the GPU benchmark where there is one)."""
    cfg = load_config(config)
    if gpus < 1 or (seconds_per_epoch is not None and not seconds_per_epoch > 0):
        raise ConfigError(f"--gpus {gpus} must be >= 1 and --seconds-per-epoch {seconds_per_epoch} > 0")
    source, times = "given", None
    if seconds_per_epoch is None:
        times = gpu_epoch_times(cfg)
        seconds_per_epoch, source = (None, "") if times is None else (times.alone, times.source)
    costs = stage_costs(cfg)
    pruned = cfg["search"]["pruning"]["enabled"]
    width = max(24, *(len(cost.detail) for cost in costs))
    lines = [f"{'stage':<15} {'what':<{width}} {'runs':>7} {'epochs':>9}" + (f" {'expected':>10}" if pruned else "")]
    for cost in costs:
        lines.append(f"{cost.stage:<15} {cost.detail:<{width}} {cost.runs:>7,} {cost.epochs:>9,}"
                     + (f" {cost.expected:>10,.0f}" if pruned else ""))
    total, expected = sum(c.epochs for c in costs), sum(c.expected for c in costs)
    lines.append(f"{'total':<15} {'':<{width}} {sum(c.runs for c in costs):>7,} {total:>9,}"
                 + (f" {expected:>10,.0f}" if pruned else ""))
    if pruned:
        lines.append("expected: successive halving's counts are exact; the median rule is expected to stop half of "
                     "the PBLF-BO runs at each rung (its premise); benchmarks/bench_pruning.py measures it")
    for method in learning_methods():
        lines.append(f"{method}: its learning run's epochs count as plain ones here; it also learns while it trains "
                     "(every few steps a look-ahead and a double backward, several steps' work), which the timings "
                     "table measures")
    chain = critical_epochs(cfg)
    if seconds_per_epoch is None:
        lines.append(f"longest chain of epochs one after another: {chain:,}; give --seconds-per-epoch (or run "
                     "benchmarks/bench_train.py --device cuda) for wall times")
    else:
        work = expected if pruned else total
        wall = max(work * seconds_per_epoch / gpus, chain * seconds_per_epoch)
        lines.append(f"at {seconds_per_epoch:g} s per epoch ({source}) on {gpus} GPU{'s' if gpus > 1 else ''}: "
                     f"{_hours(work, seconds_per_epoch)} of GPU time; at least {_hours(wall / seconds_per_epoch, seconds_per_epoch)} "
                     f"of wall time (the longest chain alone, {chain:,} epochs, takes {_hours(chain, seconds_per_epoch)})")
    if times is not None:
        lines.append(f"on {gpus} GPU{'s' if gpus > 1 else ''} at the epoch times {times.source} (packs scaled to "
                     f"{EPOCH_IMAGES:,} images):")
        for name, option in fast_options(cfg).items():
            option_times = gpu_epoch_times(option) or times
            cost = wall_time(option, option_times, gpus)
            lines.append(f"  {name:<22} {cost.gpu_hours:6.1f} h of GPU time, chain {cost.chain_hours:5.1f} h, "
                         f"wall at least {cost.wall_hours:5.1f} h")
    print("\n".join(lines))


# ------------------------------------------------------------------------------------------------------ packs


@dataclass(frozen=True)
class PackShape:
    """A set of runs that train together in one job (``resources.runs_per_job`` > 1): their folders under ``runs/``
    with Snakemake wildcards (the same wildcards in each), and the constraints that keep shapes from overlapping."""

    name: str
    members: tuple[str, ...]
    constraints: tuple[tuple[str, str], ...] = ()


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def pack_shapes(config: dict[str, Any]) -> list[PackShape]:
    """Every pack a config trains, as rule shapes: a search iteration's candidates (PBLF-BO's initial batch, each
    later iteration's, each rung of PBLF-RS) in slices of ``runs_per_job``; the repeats of one budget, search and seed
    across methods; the convergence reruns; the generalisation runs of one batch size, scaling and seed across methods.
    Runs of a pack share their seed and budget, so they share initial weights, batches and learning rates."""
    size = config["resources"]["runs_per_job"]
    search = RUN_TEMPLATES["search"]
    shapes = []
    for method in search_methods():
        for group in search_method(method).pack_classes(config):
            for part, indices in enumerate(_chunks(list(range(group.count)), size)):
                members = tuple(search.fill(budget="{budget}", method=method, search="{search}",
                                            iteration=group.iteration, index=index) for index in indices)
                shapes.append(PackShape(f"{group.name}_{part}", members, group.constraints))
    # search 0's choices and Standard; with search.repeats > 1, the other searches' choices apart (Standard has none)
    repeats = [("repeats", methods(), "0")]
    if config["search"]["repeats"] > 1:
        repeats.append(("repeats_more", search_methods(), "[1-9][0-9]*"))
    for name, members, search_pattern in repeats:
        for part, group in enumerate(_chunks(list(members), size)):
            shapes.append(PackShape(f"{name}_{part}", tuple(RUN_TEMPLATES["repeat"].fill(
                budget="{budget}", method=method, search="{search}", seed="{seed}") for method in group),
                (("search", search_pattern),)))
    for part, group in enumerate(_chunks(list(stage_methods(config, "convergence")), size)):
        shapes.append(PackShape(f"convergence_{part}", tuple(RUN_TEMPLATES["convergence"].fill(
            method=method, seed="{seed}") for method in group)))
    for part, group in enumerate(_chunks(list(stage_methods(config, "generalisation")), size)):
        shapes.append(PackShape(f"generalisation_{part}", tuple(RUN_TEMPLATES["generalisation"].fill(
            budget="{budget}", method=method, batch_size="{batch_size}", lr_scaling="{lr_scaling}", seed="{seed}")
            for method in group)))
    return shapes


def pack_members(config: dict[str, Any], layout: Layout, shape: PackShape,
                 wildcards: dict[str, str]) -> list[dict[str, Any]]:
    """The runs of one pack, as ``pblf train-pack`` takes them: identity, candidate file, folder, the run it
    continues."""
    members = []
    for pattern in shape.members:
        folder = pattern.format(**wildcards)
        run = run_id(config, folder)
        source = candidate_source(config, layout, run)
        members.append({"run": run.to_dict(), "candidate_file": source, "out": layout.run(run),
                        "resume_from": resume_source(layout, run, source)})
    return members
