# PBLF: a table of contents. Each stage lives in its own rule file; all logic lives in the pblf package.
from snakemake.utils import min_version

min_version("9.19")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/repeats.smk"
include: "workflow/rules/convergence.smk"
include: "workflow/rules/generalisation.smk"
include: "workflow/rules/appendix_c.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/summary.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
