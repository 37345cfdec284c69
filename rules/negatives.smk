rule negatives:
    input:
        pairs=rules.build_metadata.output.pairs,
    output:
        negatives=f"{RESULTS}/negatives/negatives.parquet",
        report=f"{RESULTS}/negatives/report.md",
    log:
        f"{RESULTS}/logs/negatives.log",
    benchmark:
        f"{RESULTS}/benchmarks/negatives.tsv"
    conda:
        "../envs/negatives.yaml"
    threads: config["negatives"]["n_process"]
    resources:
        **rule_resources("default"),
    params:
        script=script("generate_negatives.py"),
        per_caption=config["negatives"]["per_caption"],
        seed=config["negatives"]["seed"],
        generator_set=config["negatives"]["generator_set"],
        batch_size=config["negatives"]["batch_size"],
        # empty: no fill-mask step (WordNet rules only)
        fill_mask_model=config["negatives"]["fill_mask"]["model"] or "",
        fill_mask_top_k=config["negatives"]["fill_mask"]["top_k"],
    shell:
        "python {params.script:q} --pairs {input.pairs:q}"
        " --per-caption {params.per_caption} --seed {params.seed}"
        " --generator-set {params.generator_set} --n-process {threads}"
        " --batch-size {params.batch_size} --fill-mask-model={params.fill_mask_model:q}"
        " --fill-mask-top-k {params.fill_mask_top_k}"
        " --output {output.negatives:q} --report {output.report:q} > {log:q} 2>&1"


rule negatives_table:
    input:
        negatives=rules.negatives.output.negatives,
    output:
        table=reported(
            f"{RESULTS}/negatives/examples.csv", "negatives", "negatives_examples"
        ),
    log:
        f"{RESULTS}/logs/negatives_table.log",
    localrule: True
    conda:
        "../envs/negatives.yaml"
    params:
        script=script("negatives_table.py"),
    shell:
        "python {params.script:q} --negatives {input.negatives:q} --output {output.table:q}"
        " > {log:q} 2>&1"
