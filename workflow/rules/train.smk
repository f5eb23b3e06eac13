# Training stage: one job per run (a search's evaluation, a repeat, a convergence or generalisation rerun), or, with
# resources.runs_per_job > 1, one job per pack of runs of one seed and budget (pblf.plan.pack_shapes: a rule per
# shape, whose outputs are its runs' metrics.json, so Snakemake still sees every run). Every run checkpoints every
# epoch in its own folder, so a rerun after any interruption resumes; the checkpoint is deliberately not a declared
# output, because Snakemake deletes the outputs of an unfinished job. The shell command `exec`s pblf, so that a
# SLURM signal reaches pblf itself and no shell dies before pblf has saved its checkpoints.


#: What every training job reads besides its candidates, and what it asks an executor for besides its runtime.
TRAINING_INPUTS = {"split": L.split(), "arrays": [L.array(name) for name in ARRAYS], "config": L.stage_config("train")}
TRAINING_RESOURCES = {"mem_mb": config["resources"]["mem_mb"], "gpu": config["resources"]["gpu"]}
# a change to what the training code does (not to its comments) reruns every training job
TRAINING_CODE = code_fingerprint()


if config["resources"]["runs_per_job"] == 1:

    rule train:
        """Train the target network with one candidate's backward pass (pblf.training.train)."""
        input:
            candidate=lambda w: plan.candidate_source(config, L, run_of(w)),
            resumed=resumed_metrics,
            **TRAINING_INPUTS,
        output:
            L.metrics("{run}"),
        params:
            run=run_flags,
            resume=resume_flag,
            out=out_dir,
            code=TRAINING_CODE,
        log:
            L.run_log("{run}"),
        wildcard_constraints:
            run=RUN_WILDCARD,
        threads: config["resources"]["cpus"]
        resources:
            runtime=lambda w: plan.train_resources(config, run_of(w).budget)["runtime"],
            **TRAINING_RESOURCES,
        conda:
            PBLF_ENV
        shell:
            "export OMP_NUM_THREADS={threads}; exec pblf train --config {input.config} --split {input.split}"
            " --candidate-file {input.candidate} {params.run} {params.resume} --out {params.out} >> {log} 2>&1"

else:
    for shape in plan.pack_shapes(config):

        rule:
            name:
                f"train_{shape.name}"
            input:
                candidates=pack_inputs(shape, "candidate_file"),
                resumed=pack_resumed(shape),
                **TRAINING_INPUTS,
            output:
                [L.metrics(member) for member in shape.members],
            params:
                runs=pack_runs(shape),
                code=TRAINING_CODE,
            log:
                L.run_log(shape.members[0]),
            wildcard_constraints:
                **dict(shape.constraints),
            threads: config["resources"]["cpus"]
            resources:
                runtime=pack_runtime(shape),
                **TRAINING_RESOURCES,
            conda:
                PBLF_ENV
            shell:
                "export OMP_NUM_THREADS={threads}; exec pblf train-pack --config {input.config}"
                " --split {input.split} --runs '{params.runs}' >> {log} 2>&1"
