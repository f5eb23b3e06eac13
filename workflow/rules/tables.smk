# Tables stage: Tables 6.2, B.1 and B.2 (CSV, Markdown, LaTeX) from results/tables/trials.csv.


localrules:
    tables,


TABLES = ("table_6_2", "table_B_1", "table_B_2")


rule tables:
    input:
        f"{RESULTS}/tables/trials.csv",
    output:
        csv=[
            report(
                f"{RESULTS}/tables/{name}.csv",
                caption=f"../../report/{name}.rst",
                category="Tables",
                labels={"table": name.replace("table_", "").replace("_", ".")},
            )
            for name in TABLES
        ],
        other=[f"{RESULTS}/tables/{name}.{ext}" for name in TABLES for ext in ("md", "tex")],
    params:
        out=lambda w, output: os.path.dirname(output.csv[0]),
    log:
        f"{LOGS}/tables/tables.log",
    conda:
        PBLF_ENV
    shell:
        "pblf tables --trials {input} --out {params.out} > {log} 2>&1"
