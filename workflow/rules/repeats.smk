# Repeats stage: the chosen candidate of each (budget, method), and Standard, retrained with every repeat seed
# (rule train), gathered into results/<name>/tables/trials.csv (one row per repeat; every table is made from it), with
# what each search cost (candidates trained, epochs spent) from its evaluations.csv.


localrules:
    trials,


rule trials:
    input:
        metrics=[L.metrics(run) for run in plan.repeat_runs(config)],
        evaluations=[L.evaluations(budget, method, search) for budget in config["budgets"]
                     for method in search_methods() for search in plan.searches(config, method)],
    output:
        L.trials(),
    params:
        out=out_dir,
    log:
        L.log(L.trials()),
    conda:
        PBLF_ENV
    shell:
        "pblf trials --metrics {input.metrics} --evaluations {input.evaluations} --out {params.out} > {log} 2>&1"
