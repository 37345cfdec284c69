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
    resources:
        **slurm_extra("default"),
        mem_mb=resource("default", "mem_mb"),
        runtime=resource("default", "runtime"),
    params:
        script=script("generate_negatives.py"),
        per_caption=config["negatives"]["per_caption"],
        seed=config["negatives"]["seed"],
    shell:
        "python {params.script:q} --pairs {input.pairs:q}"
        " --per-caption {params.per_caption} --seed {params.seed}"
        " --output {output.negatives:q} --report {output.report:q} > {log:q} 2>&1"
