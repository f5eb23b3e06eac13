# Shared helpers: config validation (before any job), result paths and the list of final outputs.
import os

import pblf.workflow as pw
from snakemake.exceptions import WorkflowError
from pblf.candidate import standard_candidate
from pblf.config import ConfigError, validate

try:
    config.update(validate(config))
except ConfigError as err:
    raise WorkflowError(str(err)) from None

RESULTS = "results"
LOGS = "logs"
PBLF_ENV = "../../envs/pblf.yaml"


def all_outputs():
    """Every final file of the run, per the config (see pblf.workflow)."""
    return pw.final_outputs(config, RESULTS)


# --- search: the proposals and runs of a search so far (each proposal waits for its checkpoint)


def proposals_before(wildcards, upto):
    """The proposal files of iterations 0..upto-1 (each waits for its checkpoint to have run)."""
    return [
        checkpoints.propose.get(budget=wildcards.budget, method=wildcards.method, iteration=f"{i:03d}").output[0]
        for i in range(upto)
    ]


def search_metrics(wildcards, upto):
    runs = pw.search_runs(RESULTS, wildcards.budget, wildcards.method, proposals_before(wildcards, upto))
    return [f"{run}/metrics.json" for run in runs]


def search_runs_dir(wildcards):
    return f"{RESULTS}/runs/search/b{wildcards.budget}/{wildcards.method}"


# --- repeats and figures


def repeat_runs_of(budget):
    """The repeat run folders of one budget: every method, every repeat seed."""
    return [pw.repeat_run(RESULTS, budget, m, s) for m in pw.METHODS for s in config["repeats"]["seeds"]]


def repeat_runs():
    return [run for budget in config["budgets"] for run in repeat_runs_of(budget)]
