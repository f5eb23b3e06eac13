# Figures stage: 6.1 and 6.2 (Top-1 and validation curves of the repeats), 6.3 (every sampled candidate, PCA),
# 6.4 (convergence). Each figure waits for all of its runs: none is drawn from partial data.


localrules:
    figure_curves,
    figure_scatter,
    figure_convergence,


rule figure_curves:
    """Figure 6.1 (the smallest budget) and 6.2 (the largest)."""
    input:
        lambda w: [f"{run}/metrics.json" for run in repeat_runs_of(pw.curve_budget(config, w.n))],
    output:
        png=report(
            f"{RESULTS}/figures/figure_6_{{n}}.png",
            caption="../../report/figure_6_curves.rst",
            category="Figures",
            labels={"figure": "6.{n}"},
        ),
        pdf=f"{RESULTS}/figures/figure_6_{{n}}.pdf",
    params:
        runs=lambda w: repeat_runs_of(pw.curve_budget(config, w.n)),
        budget=lambda w: pw.curve_budget(config, w.n),
        stem=lambda w, output: output.png.removesuffix(".png"),
    log:
        f"{LOGS}/figures/figure_6_{{n}}.log",
    wildcard_constraints:
        n="[12]",
    conda:
        PBLF_ENV
    shell:
        "pblf figure curves --budget {params.budget} --inputs {params.runs} --out {params.stem} > {log} 2>&1"


rule figure_scatter:
    """Figure 6.3: every candidate PBLF-BO and PBLF-RS sampled, at every budget."""
    input:
        [
            f"{RESULTS}/search/b{budget}/{method}/trials.csv"
            for budget in config["budgets"]
            for method in pw.SEARCH_METHODS
        ],
    output:
        png=report(
            f"{RESULTS}/figures/figure_6_3.png",
            caption="../../report/figure_6_3.rst",
            category="Figures",
            labels={"figure": "6.3"},
        ),
        pdf=f"{RESULTS}/figures/figure_6_3.pdf",
    params:
        stem=lambda w, output: output.png.removesuffix(".png"),
    log:
        f"{LOGS}/figures/figure_6_3.log",
    conda:
        PBLF_ENV
    shell:
        "pblf figure scatter --inputs {input} --out {params.stem} > {log} 2>&1"


rule figure_convergence:
    """Figure 6.4: the convergence reruns."""
    input:
        [f"{pw.convergence_run(RESULTS, m, config['convergence']['seed'])}/metrics.json" for m in config["convergence"]["methods"]],
    output:
        png=report(
            f"{RESULTS}/figures/figure_6_4.png",
            caption="../../report/figure_6_4.rst",
            category="Figures",
            labels={"figure": "6.4"},
        ),
        pdf=f"{RESULTS}/figures/figure_6_4.pdf",
    params:
        runs=[pw.convergence_run(RESULTS, m, config["convergence"]["seed"]) for m in config["convergence"]["methods"]],
        stem=lambda w, output: output.png.removesuffix(".png"),
    log:
        f"{LOGS}/figures/figure_6_4.log",
    conda:
        PBLF_ENV
    shell:
        "pblf figure convergence --inputs {params.runs} --out {params.stem} > {log} 2>&1"
