# Data stage: the seeded train/validation split, data-set checksums, normalisation constants and augmentation.
# Both rules are local: they are cheap, and a data.download must happen where the network is (the login node).


localrules:
    stage_config,
    split,


rule stage_config:
    """The part of the config a stage reads, as JSON; it changes (and reruns that stage) only when those keys do."""
    output:
        f"{RESULTS}/config/{{stage}}.json",
    params:
        subset=lambda wildcards: pw.stage_config(config, wildcards.stage),
    log:
        f"{LOGS}/config/{{stage}}.log",
    wildcard_constraints:
        stage="data|train|search|appendix_c",
    conda:
        PBLF_ENV
    script:
        "../scripts/stage_config.py"


rule split:
    """Read the data set (checksums before unpickling), split train/validation, record the normalisations."""
    input:
        config=f"{RESULTS}/config/data.json",
    output:
        f"{RESULTS}/data/split.json",
    log:
        f"{LOGS}/data/split.log",
    conda:
        PBLF_ENV
    shell:
        "pblf split --config {input.config} --out {output} > {log} 2>&1"
