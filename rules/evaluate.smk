rule synthesize_benchmarks:
    output:
        roots=directory(SYNTHETIC_BENCHMARKS),
    log:
        f"{RESULTS}/logs/synthesize_benchmarks.log",
    benchmark:
        f"{RESULTS}/benchmarks/synthesize_benchmarks.tsv"
    conda:
        "../envs/data.yaml"
    resources:
        **rule_resources("default"),
    params:
        script=script("synthesize_benchmarks.py"),
        output_dir=lambda wildcards, output: Path(output.roots[0]).parent,
        seed=config["benchmarks"]["seed"],
        num_images=config["benchmarks"]["num_images"],
        image_size=config["data"]["synthetic"]["image_size"],
    shell:
        "python {params.script:q} --output-dir {params.output_dir:q}"
        " --seed {params.seed} --num-images {params.num_images}"
        " --image-size {params.image_size} > {log:q} 2>&1"


rule evaluate:
    input:
        model=f"{RESULTS}/runs/{{run_name}}/model_{{weights}}.pt",
        data=benchmark_inputs,
    output:
        result=f"{RESULTS}/eval/{{run_name}}/{{weights}}/{{benchmark}}.json",
    log:
        f"{RESULTS}/logs/evaluate/{{run_name}}/{{weights}}/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{run_name}}/{{weights}}/{{benchmark}}.tsv"
    wildcard_constraints:
        run_name="|".join(RUNS),
        weights="|".join(CHECKPOINTS),
        benchmark="|".join(EVALUATED),
    conda:
        "../envs/evaluate.yaml"
    threads: resource("default", "threads")
    resources:
        **rule_resources("default"),
    params:
        script=script("evaluate.py"),
        kind=lambda wildcards: BENCHMARKS[wildcards.benchmark]["kind"],
        root=lambda wildcards: benchmark_root(wildcards.benchmark),
        model=lambda wildcards: run_settings(wildcards.run_name)["model"],
        options=benchmark_options,
        batch_size=config["benchmarks"]["batch_size"],
        # outside `output:`: kept when a job fails; the encoder names each file by a hash of
        # the model's weights, so checkpoints never read each other's embeddings
        embedding_cache=f"{RESULTS}/eval_cache/{{benchmark}}",
    shell:
        "python {params.script:q} --benchmark {params.kind:q} --data-root {params.root:q}"
        " --model {params.model:q} --pretrained {input.model:q} --output {output.result:q}"
        " --batch-size {params.batch_size} --dataset-name {wildcards.benchmark:q} {params.options}"
        " --option embedding_cache={params.embedding_cache:q}"
        " > {log:q} 2>&1"


if COPIED:

    rule copy_result:
        input:
            result=lambda wildcards: (
                f"{RESULTS}/eval/{wildcards.run_name}/{wildcards.weights}/"
                f"{SAME_EVALUATION[wildcards.benchmark]}.json"
            ),
        output:
            result=f"{RESULTS}/eval/{{run_name}}/{{weights}}/{{benchmark}}.json",
        log:
            f"{RESULTS}/logs/evaluate/{{run_name}}/{{weights}}/{{benchmark}}.log",
        wildcard_constraints:
            run_name="|".join(RUNS),
            weights="|".join(CHECKPOINTS),
            benchmark="|".join(COPIED),
        localrule: True
        conda:
            "../envs/evaluate.yaml"
        params:
            script=script("copy_result.py"),
        shell:
            "python {params.script:q} --input {input.result:q} --output {output.result:q}"
            " --dataset-name {wildcards.benchmark:q} > {log:q} 2>&1"
