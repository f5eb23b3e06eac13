# Search stage: PBLF-BO (a random initial batch, then one Snakemake checkpoint per GP iteration) and PBLF-RS
# (one random batch). Each proposal decides the training runs of its iteration; the next proposer reads them all
# (see the walk-through at the top of common.smk).


localrules:
    history,
    propose,
    evaluations,
    select,
    select_standard,


rule history:
    """Everything the search evaluated before this iteration: the proposer's input."""
    input:
        proposals=lambda w: proposals_before(w, int(w.iteration)),
        metrics=lambda w: search_metrics(w, int(w.iteration)),
    output:
        L.history("{budget}", "{method}", "{search}", "{iteration}"),
    params:
        out=out_dir,
    log:
        L.log(L.history("{budget}", "{method}", "{search}", "{iteration}")),
    conda:
        PBLF_ENV
    shell:
        "pblf history --proposals {input.proposals} --metrics {input.metrics} --out {params.out} > {log} 2>&1"


checkpoint propose:
    """One proposal of one search: random candidates for PBLF-RS and BO's initial batch, GP-UCB/EI after (settings:
    search config; search r of search.repeats draws from its own random streams)."""
    input:
        history=L.history("{budget}", "{method}", "{search}", "{iteration}"),
        config=L.stage_config("search"),
    output:
        L.proposal("{budget}", "{method}", "{search}", "{iteration}"),
    params:
        out=out_dir,
    log:
        L.log(L.proposal("{budget}", "{method}", "{search}", "{iteration}")),
    conda:
        PBLF_ENV
    shell:
        "pblf propose --config {input.config} --history {input.history} --budget {wildcards.budget}"
        " --method {wildcards.method} --search {wildcards.search} --iteration {wildcards.iteration}"
        " --out {params.out} > {log} 2>&1"


rule evaluations:
    """Every candidate the search evaluated, in order (Figure 6.3 and the selection read it)."""
    input:
        proposals=lambda w: proposals_before(w, plan.iterations(config, w.method, w.budget)),
        metrics=lambda w: search_metrics(w, plan.iterations(config, w.method, w.budget)),
    output:
        L.evaluations("{budget}", "{method}", "{search}"),
    params:
        out=out_dir,
    log:
        L.log(L.evaluations("{budget}", "{method}", "{search}")),
    conda:
        PBLF_ENV
    shell:
        "pblf evaluations --proposals {input.proposals} --metrics {input.metrics} --out {params.out} > {log} 2>&1"


rule select:
    """The search's candidate: highest Top-1 validation, the earliest among equals."""
    input:
        L.evaluations("{budget}", "{method}", "{search}"),
    output:
        L.selection("{budget}", "{method}", "{search}"),
    params:
        out=out_dir,
    log:
        L.log(L.selection("{budget}", "{method}", "{search}")),
    wildcard_constraints:
        method="|".join(search_methods()),
    conda:
        PBLF_ENV
    shell:
        "pblf select --evaluations {input} --out {params.out} > {log} 2>&1"


rule select_standard:
    """Standard backpropagation, phi = (0, 0, 0, 1) in mode 1111, recorded like a chosen candidate."""
    input:
        config=L.stage_config("select"),
    output:
        L.selection("{budget}", STANDARD, 0),
    params:
        out=out_dir,
    log:
        L.log(L.selection("{budget}", STANDARD, 0)),
    conda:
        PBLF_ENV
    shell:
        "pblf select-standard --config {input.config} --budget {wildcards.budget} --out {params.out} > {log} 2>&1"
