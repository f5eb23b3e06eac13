# Data stage: the seeded train/validation split, data-set checksums, normalisation constants and augmentation.
# Both rules are local: they are cheap, and a data.download must happen where the network is (the login node).


localrules:
    stage_config,
    split,


rule stage_config:
    """The part of the config a stage reads, as JSON; it changes (and reruns that stage) only when those keys do."""
    output:
        L.stage_config("{stage}"),
    params:
        subset=lambda wildcards: stage_config(config, wildcards.stage),
    log:
        L.log(L.stage_config("{stage}")),
    wildcard_constraints:
        stage="|".join(STAGE_KEYS),
    run:
        # In Snakemake's own process, which knows the config files it merged; they are not a param, because a
        # param that lists files would rerun every stage whenever a file is added that changes nothing.
        write_stage_config(params.subset, output[0], workflow.configfiles, log[0])


rule split:
    """Read the data set (checksums before unpickling), split train/validation, record the normalisations."""
    input:
        config=L.stage_config("data"),
    output:
        L.split(),
        [L.array(name) for name in ARRAYS],
    params:
        out=out_dir,
    log:
        L.log(L.split()),
    conda:
        PBLF_ENV
    shell:
        "pblf split --config {input.config} --out {params.out} > {log} 2>&1"
