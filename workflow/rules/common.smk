# Shared helpers: config validation (before any job), the results layout, and the input functions of the search.
#
# How one PBLF-BO iteration flows through the DAG (budget B, iteration III = 003, say):
#   1. rule history      reads the proposals of iterations 000-002 and the metrics.json of every run they asked for
#                        (each proposal is a checkpoint's output, so its runs are known only once it has run), and
#                        writes search/bB/PBLF-BO/r0/i003/history.csv (r0: the method's first search);
#   2. checkpoint propose reads that history and the search config and writes i003/proposal.json: the GP is fitted
#                        to the history, and the proposal's candidates decide which runs iteration 003 has;
#   3. rule train        trains each of them, runs/search/bB/PBLF-BO/r0/i003/c<JJ>/metrics.json, reading its candidate
#                        from the proposal (the run's identity comes from its folder, decoded by pblf.plan.run_id);
#   4. rule history      of iteration 004 asks for i003/proposal.json through checkpoints.propose.get(), which makes
#                        Snakemake re-evaluate the DAG after step 2, and for the metrics of step 3: the loop goes on
#                        until the last iteration, whose runs rule evaluations gathers for the selection.
# Iteration 000 is the random initial batch (its history is empty); PBLF-RS is a single iteration 000.
import json
import os
import sys
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError
from pblf import plan
from pblf.core.config import STAGE_KEYS, check_device, read_yaml, stage_config, validate
from pblf.core.errors import UserError
from pblf.core.files import check_can_create
from pblf.core.layout import RUN_WILDCARD, check_run_folder, run_layout, run_name, write_run_record
from pblf.core.names import (
    ARRAYS, FIGURE_FORMATS, REPRODUCTION_TABLES, STANDARD, TABLE_FORMATS, TABLES, TIMINGS, table_label,
)
from pblf.core.provenance import code_fingerprint, write_stage_config
from pblf.results.summary import KEY_FIGURES
from pblf.search.registry import learning_methods, sampling_methods, search_methods
from pblf.status import where_the_answer_is
from pblf.training.dataset import check_dataset

try:
    for path in workflow.configfiles:  # Snakemake keeps the last of two equal keys; pblf refuses it
        read_yaml(path)
    config.update(validate(config))
    plan.check(config)
    # Every run in a folder of its own (results/<name>/, logs/<name>/), so that the demo, smoke and thesis runs
    # live side by side; every pblf command of a rule writes its provenance into it (PBLF_RESULTS).
    L = run_layout(run_name(config, workflow.configfiles))
    shell.prefix(f"export PBLF_RESULTS={L.results}; ")
    # What else would stop a job is checked here too, dry runs included, but only by the process that plans the
    # run (a job's own Snakemake parses this file again): the output folders, and the data set until the data stage
    # has read it (afterwards training reads the arrays the split records, not the data set).
    if workflow.is_main_process:
        check_run_folder(L, workflow.configfiles)
        for folder in (L.results, L.logs):
            check_can_create(folder)
        if not os.path.exists(L.split()):
            check_dataset(config["data"])
except UserError as err:  # one line of pblf's, not Snakemake's wrapper and a traceback into this file
    print(f"pblf: error: {err}", file=sys.stderr)
    raise SystemExit(1) from None


onsuccess:
    answer = where_the_answer_is(L)  # empty until Table 6.2 exists (a run of a single target)
    if answer:
        print(answer)


onstart:
    # Before the first job of a real run (not a dry run): if the jobs run on this machine, the GPU asked for must be
    # here, and a run that would quietly fall back to hours of CPU training says so (a cluster executor runs them
    # elsewhere, where a login node usually has no GPU, so neither is checked then); then the run folder's record of
    # its config files.
    if workflow.local_exec:
        try:
            check_device(config)
        except UserError as err:
            raise WorkflowError(str(err)) from None
        if config["device"] == "auto":
            from pblf.training.train import cpu_fallback_warning

            warning = cpu_fallback_warning(config)
            if warning:
                print(f"WARNING: {warning}", file=sys.stderr)
    write_run_record(L, workflow.configfiles)

PBLF_ENV = "../../envs/pblf.yaml"


def out_dir(wildcards, output):
    """Every pblf command writes into a folder (--out): the folder of the rule's first output."""
    return os.path.dirname(output[0])


# --- search: the proposals and runs of a search so far (each proposal waits for its checkpoint)


def proposals_before(wildcards, upto):
    """The proposal files of iterations 0..upto-1 (each waits for its checkpoint to have run)."""
    return [
        checkpoints.propose.get(budget=wildcards.budget, method=wildcards.method, search=wildcards.search,
                                iteration=L.iteration(i)).output[0]
        for i in range(upto)
    ]


def search_metrics(wildcards, upto):
    """The metrics.json of every run the proposals of iterations 0..upto-1 asked for."""
    runs = plan.search_runs(config, wildcards.budget, wildcards.method, wildcards.search,
                            proposals_before(wildcards, upto))
    return [L.metrics(run) for run in runs]


def learning_metrics(wildcards):
    """The metrics.json of the learning run (PBLF-HG's) of search 0 at every budget (each waits for its proposal's
    checkpoint)."""
    return [
        L.metrics(run)
        for method in learning_methods()
        for budget in config["budgets"]
        for run in plan.search_runs(config, budget, method, 0,
                                    proposals_before(SimpleNamespace(budget=str(budget), method=method, search="0"), 1))
    ]


# --- training


def run_of(wildcards):
    return plan.run_id(config, wildcards.run)


def run_flags(wildcards):
    """The run's identity as pblf train's flags (--kind, --method, --budget, --seed, --iteration, --index, ...)."""
    return " ".join(f"--{key.replace('_', '-')} {value}" for key, value in run_of(wildcards).to_dict().items())


def resume_folder(wildcards):
    """The run a search run continues (successive halving), from its proposal entry; None for every other run."""
    run = run_of(wildcards)
    return plan.resume_source(L, run, plan.candidate_source(config, L, run))


def resumed_metrics(wildcards):
    """The metrics of the run this one continues: it must have finished (and its checkpoint is then final)."""
    folder = resume_folder(wildcards)
    return [f"{folder}/metrics.json"] if folder else []


def resume_flag(wildcards):
    folder = resume_folder(wildcards)
    return f"--resume-from {folder}" if folder else ""


# --- packs (resources.runs_per_job > 1): each shape's input functions, bound to the shape


def pack_inputs(shape, key):
    return lambda wildcards: sorted({m[key] for m in plan.pack_members(config, L, shape, wildcards)})


def pack_resumed(shape):
    return lambda wildcards: [f"{m['resume_from']}/metrics.json"
                              for m in plan.pack_members(config, L, shape, wildcards) if m["resume_from"]]


def pack_runs(shape):
    """The pack's runs as `pblf train-pack --runs` takes them (JSON)."""
    return lambda wildcards: json.dumps(plan.pack_members(config, L, shape, wildcards), separators=(",", ":"))


def pack_runtime(shape):
    """Minutes for the pack: its runs one after another (an upper bound when they train fused)."""
    return lambda wildcards: len(shape.members) * plan.train_resources(
        config, plan.run_id(config, shape.members[0].format(**wildcards)).budget
    )["runtime"]


def all_outputs():
    """Every final file of the run, per the config (see pblf.plan)."""
    return plan.final_outputs(config, L)
