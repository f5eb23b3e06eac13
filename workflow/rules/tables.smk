# Tables stage: Tables 6.2, B.1 and B.2 (CSV, Markdown, LaTeX) from results/tables/trials.csv.


localrules:
    tables,


rule tables:
    input:
        L.trials(),
    output:
        csv=[
            report(
                L.table(name, "csv"),
                caption=f"../../report/{name}.rst",
                category="Tables",
                labels={"table": table_label(name)},
            )
            for name in TABLES
        ],
        other=[L.table(name, fmt) for name in TABLES for fmt in TABLE_FORMATS if fmt != "csv"],
    params:
        out=out_dir,
    log:
        L.log(L.table("tables", "csv")),
    conda:
        PBLF_ENV
    shell:
        "pblf tables --trials {input} --out {params.out} > {log} 2>&1"
