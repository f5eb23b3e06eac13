# Repeats stage: the chosen candidate of each (budget, method), and Standard, retrained with every repeat seed,
# gathered into results/tables/trials.csv (one row per trained seed; every table is made from it).


localrules:
    trials,


rule trials:
    input:
        [f"{run}/metrics.json" for run in repeat_runs()],
    output:
        f"{RESULTS}/tables/trials.csv",
    params:
        runs=repeat_runs(),
    log:
        f"{LOGS}/tables/trials.log",
    conda:
        PBLF_ENV
    shell:
        "pblf trials --runs {params.runs} --out {output} > {log} 2>&1"
