# Convergence stage (Figure 6.4): the chosen candidates of the convergence.from_budget searches and Standard,
# retrained for convergence.epochs epochs (rule train: runs/convergence/<method>/s<seed>), and their curves.


localrules:
    figure_convergence,


rule figure_convergence:
    """Figure 6.4: the Top-1 curves of the convergence reruns."""
    input:
        [L.metrics(run) for run in plan.convergence_runs(config)],
    output:
        png=report(
            L.figure("6.4", "png"),
            caption="../../report/figure_6_4.rst",
            category="Figures",
            labels={"figure": "6.4"},
        ),
        pdf=L.figure("6.4", "pdf"),
    params:
        out=out_dir,
    log:
        L.log(L.figure("6.4", "png")),
    conda:
        PBLF_ENV
    shell:
        "pblf figure 6.4 --inputs {input} --out {params.out} > {log} 2>&1"
