# Figures stage: 6.1 and 6.2 (Top-1 and validation curves of the repeats), 6.3 (every sampled candidate, PCA) and
# PBLF-HG's trajectories;
# Figure 6.4 is in convergence.smk. Each figure waits for all of its runs: none is drawn from partial data.


localrules:
    figure_curves,
    figure_scatter,
    figure_hypergradient,


rule figure_curves:
    """Figure 6.1 (the smallest budget) and 6.2 (the largest)."""
    input:
        lambda w: [L.metrics(run) for run in plan.repeat_runs(config, plan.curve_budget(config, f"6.{w.n}"))
                   if run.search == 0],
    output:
        png=report(
            L.figure("6.{n}", "png"),
            caption="../../report/figure_6_curves.rst",
            category="Figures",
            labels={"figure": "6.{n}"},
        ),
        pdf=L.figure("6.{n}", "pdf"),
    params:
        out=out_dir,
    log:
        L.log(L.figure("6.{n}", "png")),
    wildcard_constraints:
        n="[12]",
    conda:
        PBLF_ENV
    shell:
        "pblf figure 6.{wildcards.n} --inputs {input} --out {params.out} > {log} 2>&1"


rule figure_scatter:
    """Figure 6.3: every candidate PBLF-BO and PBLF-RS sampled (search 0), at every budget."""
    input:
        [L.evaluations(budget, method, 0) for budget in config["budgets"] for method in sampling_methods()],
    output:
        png=report(
            L.figure("6.3", "png"),
            caption="../../report/figure_6_3.rst",
            category="Figures",
            labels={"figure": "6.3"},
        ),
        pdf=L.figure("6.3", "pdf"),
    params:
        out=out_dir,
    log:
        L.log(L.figure("6.3", "png")),
    conda:
        PBLF_ENV
    shell:
        "pblf figure 6.3 --inputs {input} --out {params.out} > {log} 2>&1"


rule figure_hypergradient:
    """PBLF-HG: phi and the gates against training steps, one column per budget."""
    input:
        learning_metrics,
    output:
        png=report(
            L.figure("hypergradient", "png"),
            caption="../../report/figure_hypergradient.rst",
            category="Figures",
            labels={"figure": "PBLF-HG"},
        ),
        pdf=L.figure("hypergradient", "pdf"),
    params:
        out=out_dir,
    log:
        L.log(L.figure("hypergradient", "png")),
    conda:
        PBLF_ENV
    shell:
        "pblf figure hypergradient --inputs {input} --out {params.out} > {log} 2>&1"
