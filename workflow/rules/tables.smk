# Tables stage: Tables 6.2, B.1 and B.2 (CSV, Markdown, LaTeX, HTML) from results/<name>/tables/trials.csv, and the reproduction
# tables, which set the thesis's numbers (pblf/results/thesis.yaml) beside them and the convergence reruns' end points.
# The report shows each table's HTML form: a rendered table with the thesis's column names, not a CSV file.


localrules:
    tables,
    reproduction,
    timings,


rule tables:
    input:
        L.trials(),
    output:
        html=[
            report(
                L.table(name, "html"),
                caption=f"../../report/{name}.rst",
                category="Tables",
                labels={"table": table_label(name)},
            )
            for name in TABLES
        ],
        other=[L.table(name, fmt) for name in TABLES for fmt in TABLE_FORMATS if fmt != "html"],
    params:
        out=out_dir,
    log:
        L.log(L.table("tables", "csv")),
    conda:
        PBLF_ENV
    shell:
        "pblf tables --trials {input} --out {params.out} > {log} 2>&1"


rule reproduction:
    input:
        trials=L.trials(),
        convergence=[L.metrics(run) for run in plan.convergence_runs(config)],
    output:
        html=[
            report(
                L.table(name, "html"),
                caption="../../report/reproduction.rst",
                category="Tables",
                labels={"table": name.replace("_", " ")},
            )
            for name in REPRODUCTION_TABLES
        ],
        other=[L.table(name, fmt) for name in REPRODUCTION_TABLES for fmt in TABLE_FORMATS if fmt != "html"],
    params:
        out=out_dir,
    log:
        L.log(L.table("reproduction", "csv")),
    conda:
        PBLF_ENV
    shell:
        "pblf reproduction --trials {input.trials} --convergence {input.convergence} --out {params.out} > {log} 2>&1"


rule timings:
    """What each search's training took, and on which GPU or processor: the one table that is a measurement."""
    input:
        [L.evaluations(budget, method, search) for budget in config["budgets"] for method in search_methods()
         for search in plan.searches(config, method)],
    output:
        html=report(
            L.table(TIMINGS, "html"),
            caption="../../report/timings.rst",
            category="Tables",
            labels={"table": "timings"},
        ),
        other=[L.table(TIMINGS, fmt) for fmt in TABLE_FORMATS if fmt != "html"],
    params:
        out=out_dir,
    log:
        L.log(L.table(TIMINGS, "csv")),
    conda:
        PBLF_ENV
    shell:
        "pblf timings --evaluations {input} --out {params.out} > {log} 2>&1"
