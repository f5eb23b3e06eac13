# Training stage: one job per run (a search's evaluation, a repeat or a convergence rerun). The job checkpoints
# every epoch in its run folder, so a rerun after any interruption resumes; the checkpoint is deliberately not a
# declared output, because Snakemake deletes the outputs of an unfinished job.


rule train:
    """Train the target network with one candidate's backward pass (pblf.train)."""
    input:
        candidate=lambda w: plan.candidate_source(config, L, run_of(w)),
        split=L.split(),
        config=L.stage_config("train"),
        resumed=resumed_metrics,
    output:
        L.metrics("{run}"),
    params:
        run=run_flags,
        resume=resume_flag,
        out=out_dir,
        # a change to what the training code does (not to its comments) reruns every training job
        code=code_fingerprint(),
    log:
        L.run_log("{run}"),
    wildcard_constraints:
        run=RUN_WILDCARD,
    threads: config["resources"]["cpus"]
    resources:
        runtime=lambda w: plan.train_resources(config, run_of(w).budget)["runtime"],
        mem_mb=config["resources"]["mem_mb"],
        gpu=config["resources"]["gpu"],
    conda:
        PBLF_ENV
    shell:
        # exec: a SLURM signal then reaches pblf itself, and no shell dies before pblf has saved its checkpoint
        "export OMP_NUM_THREADS={threads}; exec pblf train --config {input.config} --split {input.split}"
        " --candidate-file {input.candidate} {params.run} {params.resume} --out {params.out} >> {log} 2>&1"
