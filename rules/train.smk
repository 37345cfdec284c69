if config["train_launcher"] == "submitit":

    # The rule only submits and waits; the training job is submitit's.
    localrules:
        train,


rule train:
    input:
        unpack(train_inputs),
    output:
        model_init=f"{RESULTS}/runs/{{run_name}}/model_init.pt",
        model_final=f"{RESULTS}/runs/{{run_name}}/model_final.pt",
        log_csv=f"{RESULTS}/runs/{{run_name}}/train_log.csv",
        log_jsonl=f"{RESULTS}/runs/{{run_name}}/train_log.jsonl",
    log:
        f"{RESULTS}/logs/train/{{run_name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{run_name}}.tsv"
    wildcard_constraints:
        run_name="|".join(RUNS),
    conda:
        "../envs/train.yaml"
    # the local scheduler counts every rank's threads; SLURM gets cpus_per_task per rank
    threads: resource("train", "threads") * training_tasks()
    resources:
        **rule_resources("train", gpus=True),
        **training_launch_resources(),
    params:
        script=script("train.py"),
        launch=(
            "python"
            if config["train_launcher"] == "submitit"
            else f"python -m clipflow.launch --tasks {training_tasks()} --"
        ),
        launcher_arguments=train_launcher_arguments,
        threads_per_rank=resource("train", "threads"),
        run_config=run_config_json,
        optional_inputs=optional_train_arguments,
        # Outside `output:` on purpose: snakemake deletes a failed job's outputs, and the
        # checkpoints are what a rerun resumes from.
        device="cuda" if resource("train", "gpus") else "cpu",
        checkpoint_dir=f"{RESULTS}/checkpoints/{{run_name}}",
    shell:
        "{params.launch} {params.script:q} --metadata {input.pairs:q} --shards {input.shards:q}"
        " --run-config {params.run_config:q} --checkpoint-dir {params.checkpoint_dir:q}"
        " --model-init {output.model_init:q} --model-final {output.model_final:q}"
        " --log-csv {output.log_csv:q} --log-jsonl {output.log_jsonl:q} {params.optional_inputs}"
        " --threads {params.threads_per_rank} --device {params.device} {params.launcher_arguments}"
        " > {log:q} 2>&1"
