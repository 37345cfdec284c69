MINING = f"{RESULTS}/mining"
DATASET_NAME = config["mining"]["dataset_name"]


rule embed_pairs:
    input:
        pairs=rules.build_metadata.output.pairs,
        shards=rules.download.output.shards,
        encoder=mining_encoder()[1],
    output:
        embeddings=f"{MINING}/embeddings.npz",
        url_index=f"{MINING}/url_index/{DATASET_NAME}_url_index.json",
    log:
        f"{RESULTS}/logs/embed_pairs.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed_pairs.tsv"
    conda:
        "../envs/mining.yaml"
    threads: resource("train", "threads")
    resources:
        **slurm_extra("train"),
        mem_mb=resource("train", "mem_mb"),
        runtime=resource("train", "runtime"),
        gpus=resource("train", "gpus"),
    params:
        model=mining_encoder()[0],
    shell:
        "python {SCRIPTS}/embed_pairs.py --pairs {input.pairs:q} --shards-dir {input.shards:q}"
        " --model {params.model:q} --pretrained {input.encoder:q}"
        " --output {output.embeddings:q} --output-url-index {output.url_index:q} > {log:q} 2>&1"


rule mine_hard_pairs:
    input:
        embeddings=rules.embed_pairs.output.embeddings,
    output:
        pairs=f"{MINING}/{DATASET_NAME}_hard_sample.csv",
        pairs_dict=f"{MINING}/{DATASET_NAME}_hard_sample_dict.json",
        report=f"{MINING}/mining_report.json",
        plot=f"{MINING}/score_histogram.png",
    log:
        f"{RESULTS}/logs/mine_hard_pairs.log",
    benchmark:
        f"{RESULTS}/benchmarks/mine_hard_pairs.tsv"
    conda:
        "../envs/mining.yaml"
    resources:
        **slurm_extra("default"),
        mem_mb=resource("default", "mem_mb"),
        runtime=resource("default", "runtime"),
    params:
        topk=config["mining"]["topk"],
        index=config["mining"]["index"],
    shell:
        "python {SCRIPTS}/mine_hard_pairs.py --embeddings {input.embeddings:q}"
        " --topk {params.topk} --index {params.index:q} --dataset-name {DATASET_NAME:q}"
        " --output-csv {output.pairs:q} --output-dict {output.pairs_dict:q}"
        " --output-report {output.report:q} --output-plot {output.plot:q} > {log:q} 2>&1"
