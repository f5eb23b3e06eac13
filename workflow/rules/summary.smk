# Summary stage: the answer on one page (results/<name>/summary.html): Table 6.2 and Figures 6.1-6.3, which the
# report's front page (report/workflow.rst) embeds above the description of the workflow.


localrules:
    summary,


rule summary:
    input:
        table=L.table("table_6_2", "html"),
        figures=[L.figure(figure, "png") for figure in plan.figures(config) if figure in KEY_FIGURES],
    output:
        report(
            L.summary(),
            caption="../../report/summary.rst",
            category="Summary",
            labels={"page": "Table 6.2 and the key figures"},
        ),
    params:
        out=out_dir,
    log:
        L.log(L.summary()),
    conda:
        PBLF_ENV
    shell:
        "pblf summary --table {input.table} --figures {input.figures} --out {params.out} > {log} 2>&1"
