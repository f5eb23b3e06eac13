# Training stage: one job per (candidate, budget, seed), whether a search evaluation, a repeat or a convergence
# rerun. The job checkpoints every epoch in its run folder, so a rerun after any interruption resumes; the
# checkpoint is deliberately not a declared output, because Snakemake deletes the outputs of an unfinished job.


rule train:
    """Train the target network with one candidate's backward pass (pblf.train)."""
    input:
        candidate=lambda w: pw.run_spec(config, RESULTS, w.run).candidate_file,
        split=f"{RESULTS}/data/split.json",
        config=f"{RESULTS}/config/train.json",
    output:
        f"{RESULTS}/runs/{{run}}/metrics.json",
    params:
        spec=lambda w: pw.run_spec(config, RESULTS, w.run),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{LOGS}/runs/{{run}}.log",
    wildcard_constraints:
        run=pw.RUN_PATTERN,
    threads: config["resources"]["cpus"]
    resources:
        runtime=lambda w: pw.train_resources(config, pw.run_spec(config, RESULTS, w.run).budget)["runtime"],
        mem_mb=config["resources"]["mem_mb"],
        gpu=config["resources"]["gpu"],
    conda:
        PBLF_ENV
    shell:
        # exec: a SLURM signal then reaches pblf itself, and no shell dies before pblf has saved its checkpoint
        "export OMP_NUM_THREADS={threads}; exec pblf train --config {input.config} --split {input.split}"
        " --candidate @{input.candidate} --index {params.spec.index}"
        " --budget {params.spec.budget} --seed {params.spec.seed} --out {params.out} >> {log} 2>&1"
