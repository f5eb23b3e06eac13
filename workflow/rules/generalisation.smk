# Generalisation stage (the thesis's §6.3.1): the chosen candidates of the generalisation.from_budget searches and
# Standard, retrained at other batch sizes, with the learning rate fixed or scaled (rule train:
# runs/generalisation/...), gathered into a table and a figure. Diverged runs are data here.


localrules:
    generalisation,
    generalisation_table,
    figure_generalisation,


rule generalisation:
    """Every generalisation run as a row (runs.csv); the run at train.batch_size under both scalings."""
    input:
        config=L.stage_config("generalisation"),
        metrics=[L.metrics(run) for run in plan.generalisation_runs(config)],
    output:
        L.generalisation_runs(),
    params:
        out=out_dir,
    log:
        L.log(L.generalisation_runs()),
    conda:
        PBLF_ENV
    shell:
        "pblf generalisation --config {input.config} --metrics {input.metrics} --out {params.out} > {log} 2>&1"


rule generalisation_table:
    """Per method, batch size and scaling: Top-1 and divergences (a table under tables/, like every other)."""
    input:
        L.generalisation_runs(),
    output:
        table=report(
            L.generalisation_table("html"),
            caption="../../report/table_generalisation.rst",
            category="Generalisation",
            labels={"table": "generalisation"},
        ),
        other=[L.generalisation_table(fmt) for fmt in TABLE_FORMATS if fmt != "html"],
    params:
        out=out_dir,
    log:
        L.log(L.generalisation_table("csv")),
    conda:
        PBLF_ENV
    shell:
        "pblf generalisation-table --runs {input} --out {params.out} > {log} 2>&1"


rule figure_generalisation:
    """Top-1 against batch size, one line per method, one panel per learning-rate scaling."""
    input:
        L.generalisation_runs(),
    output:
        png=report(
            L.figure("generalisation", "png"),
            caption="../../report/figure_generalisation.rst",
            category="Generalisation",
            labels={"figure": "generalisation"},
        ),
        pdf=L.figure("generalisation", "pdf"),
    params:
        out=out_dir,
    log:
        L.log(L.figure("generalisation", "png")),
    conda:
        PBLF_ENV
    shell:
        "pblf figure generalisation --inputs {input} --out {params.out} > {log} 2>&1"
