# Shared helpers: config validation (before any job), result paths and the list of final outputs.
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
