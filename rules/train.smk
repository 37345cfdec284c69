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
    threads: resource("train", "threads")
    resources:
        **slurm_extra("train"),
        mem_mb=resource("train", "mem_mb"),
        runtime=resource("train", "runtime"),
        gpu=resource("train", "gpus"),
    params:
        script=script("train.py"),
        run_config=run_config_json,
        optional_inputs=optional_train_arguments,
        # Outside `output:` on purpose: snakemake deletes a failed job's outputs, and the
        # checkpoints are what a rerun resumes from.
        device="cuda" if resource("train", "gpus") else "cpu",
        checkpoint_dir=f"{RESULTS}/checkpoints/{{run_name}}",
    shell:
        "python {params.script:q} --metadata {input.pairs:q} --shards {input.shards:q}"
        " --run-config {params.run_config:q} --checkpoint-dir {params.checkpoint_dir:q}"
        " --model-init {output.model_init:q} --model-final {output.model_final:q}"
        " --log-csv {output.log_csv:q} --log-jsonl {output.log_jsonl:q} {params.optional_inputs}"
        " --threads {threads} --device {params.device} > {log:q} 2>&1"
