# Repeats stage: the chosen candidate of each (budget, method), and Standard, retrained with every repeat seed
# (rule train), gathered into results/tables/trials.csv (one row per repeat; every table is made from it).


localrules:
    trials,


rule trials:
    input:
        [L.metrics(run) for run in plan.repeat_runs(config)],
    output:
        L.trials(),
    params:
        out=out_dir,
    log:
        L.log(L.trials()),
    conda:
        PBLF_ENV
    shell:
        "pblf trials --metrics {input} --out {params.out} > {log} 2>&1"
