MINING = f"{RESULTS}/{{mining_dir}}"
DATASET_NAME = config["mining"]["dataset_name"]


rule embed_pairs:
    input:
        pairs=rules.build_metadata.output.pairs,
        shards=rules.download.output.shards,
        encoder=lambda wildcards: mining_encoder(wildcards.mining_dir)[1],
    output:
        embeddings=f"{MINING}/embeddings.npz",
    log:
        f"{RESULTS}/logs/{{mining_dir}}/embed_pairs.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{mining_dir}}/embed_pairs.tsv"
    wildcard_constraints:
        mining_dir="|".join(MINING_DIRS),
    conda:
        "../envs/mining.yaml"
    threads: resource("train", "threads")
    resources:
        **rule_resources("train", gpus=True),
    params:
        script=script("embed_pairs.py"),
        model=lambda wildcards: mining_encoder(wildcards.mining_dir)[0],
        # Outside `output:` so a killed job keeps the shards it finished (like checkpoints)
        cache_dir=f"{MINING}/embedding_cache",
    shell:
        "python {params.script:q} --pairs {input.pairs:q} --shards-dir {input.shards:q}"
        " --model {params.model:q} --pretrained {input.encoder:q}"
        " --output {output.embeddings:q} --cache-dir {params.cache_dir:q} > {log:q} 2>&1"


rule mine_hard_pairs:
    input:
        embeddings=rules.embed_pairs.output.embeddings,
    output:
        pairs=f"{MINING}/{DATASET_NAME}_hard_sample.csv",
        pairs_dict=f"{MINING}/{DATASET_NAME}_hard_sample_dict.json",
        report=f"{MINING}/mining_report.json",
        plot=reported(
            f"{MINING}/score_histogram.png",
            "mining",
            "mining_scores",
            subcategory="{mining_dir}",
        ),
    log:
        f"{RESULTS}/logs/{{mining_dir}}/mine_hard_pairs.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{mining_dir}}/mine_hard_pairs.tsv"
    wildcard_constraints:
        mining_dir="|".join(MINING_DIRS),
    conda:
        "../envs/mining.yaml"
    threads: resource("mining", "threads")
    resources:
        **rule_resources("mining", gpus=True),
    params:
        script=script("mine_hard_pairs.py"),
        topk=config["mining"]["topk"],
        index=config["mining"]["index"],
        index_options=json.dumps(config["mining"]["index_options"]),
        chunk_size=config["mining"]["chunk_size"],
        recall_sample=config["mining"]["recall_sample"],
        dataset_name=DATASET_NAME,
    shell:
        "python {params.script:q} --embeddings {input.embeddings:q}"
        " --topk {params.topk} --index {params.index:q} --index-options {params.index_options:q}"
        " --chunk-size {params.chunk_size} --recall-sample {params.recall_sample}"
        " --dataset-name {params.dataset_name:q}"
        " --output-csv {output.pairs:q} --output-dict {output.pairs_dict:q}"
        " --output-report {output.report:q} --output-plot {output.plot:q} > {log:q} 2>&1"


rule plot_hard_pairs:
    input:
        hard_pairs=rules.mine_hard_pairs.output.pairs,
        pairs=rules.build_metadata.output.pairs,
        shards=rules.download.output.shards,
    output:
        plot=reported(
            f"{MINING}/hard_pairs.png",
            "mining",
            "mining_pairs",
            subcategory="{mining_dir}",
        ),
    log:
        f"{RESULTS}/logs/{{mining_dir}}/plot_hard_pairs.log",
    wildcard_constraints:
        mining_dir="|".join(MINING_DIRS),
    localrule: True
    conda:
        "../envs/mining.yaml"
    params:
        script=script("plot_hard_pairs.py"),
    shell:
        "python {params.script:q} --hard-pairs {input.hard_pairs:q} --pairs {input.pairs:q}"
        " --shards {input.shards:q} --output {output.plot:q} > {log:q} 2>&1"
