# Appendix C: gradient trajectories of a toy network under a beta-scaled ReLU derivative (CPU, seconds).


localrules:
    trajectories,
    figure_c,


rule trajectories:
    """Every step's (w1, w2) per trial for Figures C.1-C.3, and the velocity table of Figure C.4."""
    input:
        config=f"{RESULTS}/config/appendix_c.json",
    output:
        csv=expand(f"{RESULTS}/trajectories/figure_C_{{n}}.csv", n=(1, 2, 3)),
        velocity=f"{RESULTS}/trajectories/velocity.csv",
    params:
        out_dir=lambda w, output: os.path.dirname(output.velocity),
    log:
        f"{LOGS}/trajectories/trajectories.log",
    conda:
        PBLF_ENV
    shell:
        "pblf trajectories --config {input.config} --out-dir {params.out_dir} > {log} 2>&1"


rule figure_c:
    """Figures C.1-C.3 (trajectories over the loss landscape) and C.4 (velocity against beta)."""
    input:
        csv=lambda w: f"{RESULTS}/trajectories/" + ("velocity.csv" if w.n == "4" else f"figure_C_{w.n}.csv"),
        config=f"{RESULTS}/config/appendix_c.json",
    output:
        png=report(
            f"{RESULTS}/figures/figure_C_{{n}}.png",
            caption="../../report/figure_C.rst",
            category="Appendix C",
            labels={"figure": "C.{n}"},
        ),
        pdf=f"{RESULTS}/figures/figure_C_{{n}}.pdf",
    params:
        velocity=lambda w: "--velocity" if w.n == "4" else "",
        stem=lambda w, output: output.png.removesuffix(".png"),
    log:
        f"{LOGS}/figures/figure_C_{{n}}.log",
    wildcard_constraints:
        n="[1-4]",
    conda:
        PBLF_ENV
    shell:
        "pblf figure-c --config {input.config} --csv {input.csv} {params.velocity} --out {params.stem} > {log} 2>&1"
