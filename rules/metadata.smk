rule build_metadata:
    input:
        shards=rules.download.output.shards,
    output:
        pairs=f"{RESULTS}/metadata/pairs.parquet",
        url_index=f"{RESULTS}/metadata/url_index.json",
    log:
        f"{RESULTS}/logs/metadata.log",
    benchmark:
        f"{RESULTS}/benchmarks/metadata.tsv"
    conda:
        "../envs/data.yaml"
    resources:
        **rule_resources("default"),
    params:
        script=script("build_metadata.py"),
    shell:
        "python {params.script:q} --shards {input.shards:q} --output {output.pairs:q}"
        " --url-index {output.url_index:q} > {log:q} 2>&1"
