# Search stage: PBLF-BO (a random initial batch, then one Snakemake checkpoint per GP iteration) and PBLF-RS
# (one random batch). Each proposal decides the training runs of its iteration; the next proposer reads them all.


localrules:
    history,
    propose,
    collect_search,
    select,
    select_standard,


rule history:
    """Everything the search evaluated before this iteration: the proposer's input."""
    input:
        proposals=lambda w: proposals_before(w, int(w.iteration)),
        metrics=lambda w: search_metrics(w, int(w.iteration)),
    output:
        f"{RESULTS}/search/b{{budget}}/{{method}}/i{{iteration}}/history.csv",
    params:
        runs_dir=search_runs_dir,
    log:
        f"{LOGS}/search/b{{budget}}/{{method}}/i{{iteration}}/history.log",
    conda:
        PBLF_ENV
    shell:
        "pblf collect --history --proposals {input.proposals} --runs-dir {params.runs_dir} --out {output} > {log} 2>&1"


checkpoint propose:
    """One proposal: random candidates for PBLF-RS and BO's initial batch, GP-UCB/EI plus random ones after."""
    input:
        history=f"{RESULTS}/search/b{{budget}}/{{method}}/i{{iteration}}/history.csv",
        config=f"{RESULTS}/config/search.json",
    output:
        f"{RESULTS}/search/b{{budget}}/{{method}}/i{{iteration}}/proposal.json",
    params:
        method=lambda w: pw.SEARCH_METHODS[w.method],
        sizes=lambda w: pw.proposal_sizes(config, w.method, int(w.iteration)),
        seed=lambda w: pw.proposal_seed(config, int(w.budget), w.method, int(w.iteration)),
        bo=config["search"]["bo"],
        phi_bound=config["search"]["phi_bound"],
    log:
        f"{LOGS}/search/b{{budget}}/{{method}}/i{{iteration}}/propose.log",
    conda:
        PBLF_ENV
    shell:
        "pblf propose --method {params.method} --history {input.history}"
        " --n-acq {params.sizes[0]} --n-random {params.sizes[1]} --seed {params.seed}"
        " --beta {params.bo[beta]} --acquisition {params.bo[acquisition]} --xi {params.bo[xi]}"
        " --phi-bound {params.phi_bound} --out {output} > {log} 2>&1"


rule collect_search:
    """Every candidate the search evaluated, in order (Figure 6.3 and the selection read it)."""
    input:
        proposals=lambda w: proposals_before(w, pw.iterations(config, w.method)),
        metrics=lambda w: search_metrics(w, pw.iterations(config, w.method)),
    output:
        f"{RESULTS}/search/b{{budget}}/{{method}}/trials.csv",
    params:
        runs_dir=search_runs_dir,
    log:
        f"{LOGS}/search/b{{budget}}/{{method}}/collect.log",
    conda:
        PBLF_ENV
    shell:
        "pblf collect --proposals {input.proposals} --runs-dir {params.runs_dir} --out {output} > {log} 2>&1"


rule select:
    """The search's candidate: highest Top-1 validation, the earliest among equals."""
    input:
        f"{RESULTS}/search/b{{budget}}/{{method}}/trials.csv",
    output:
        f"{RESULTS}/select/b{{budget}}/{{method}}.json",
    log:
        f"{LOGS}/select/b{{budget}}/{{method}}.log",
    wildcard_constraints:
        method="PBLF-BO|PBLF-RS",
    conda:
        PBLF_ENV
    shell:
        "pblf select --trials {input} --budget {wildcards.budget} --method {wildcards.method} --out {output} > {log} 2>&1"


rule select_standard:
    """Standard backpropagation, phi = (0, 0, 0, 1) in mode 1111, recorded like a chosen candidate."""
    output:
        f"{RESULTS}/select/b{{budget}}/Standard.json",
    params:
        candidate=lambda w: standard_candidate(config).to_json(),
    log:
        f"{LOGS}/select/b{{budget}}/Standard.log",
    conda:
        PBLF_ENV
    shell:
        "pblf select --candidate '{params.candidate}' --budget {wildcards.budget} --method Standard"
        " --out {output} > {log} 2>&1"
