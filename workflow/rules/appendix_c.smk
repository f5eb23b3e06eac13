# Appendix C: gradient trajectories of a toy network under a beta-scaled ReLU derivative (CPU, seconds).


localrules:
    trajectories,
    figure_c,


rule trajectories:
    """Every step's (w1, w2) per start for Figures C.1-C.3, and the velocity table of Figure C.4."""
    input:
        config=L.stage_config("appendix_c"),
    output:
        csv=[L.trajectory(figure) for figure in ("C.1", "C.2", "C.3")],
        velocity=L.velocity(),
    params:
        out=out_dir,
    log:
        L.log(L.velocity()),
    conda:
        PBLF_ENV
    shell:
        "pblf trajectories --config {input.config} --out {params.out} > {log} 2>&1"


rule figure_c:
    """Figures C.1-C.3 (trajectories over the loss landscape) and C.4 (velocity against beta)."""
    input:
        csv=lambda w: L.velocity() if w.n == "4" else L.trajectory(f"C.{w.n}"),
        config=L.stage_config("appendix_c"),
    output:
        png=report(
            L.figure("C.{n}", "png"),
            caption="../../report/figure_C.rst",
            category="Appendix C",
            labels={"figure": "C.{n}"},
        ),
        pdf=L.figure("C.{n}", "pdf"),
    params:
        out=out_dir,
    log:
        L.log(L.figure("C.{n}", "png")),
    wildcard_constraints:
        n="[1-4]",
    conda:
        PBLF_ENV
    shell:
        "pblf figure C.{wildcards.n} --inputs {input.csv} --config {input.config} --out {params.out} > {log} 2>&1"
