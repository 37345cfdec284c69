# The `download` rule makes the same outputs for every `data.source`, so the rules downstream
# never change: synthetic data are made here and downloaded from a loopback server; a registered
# source format (clipflow.data.sources.SOURCES) is read from `data.path` and its url list
# downloaded with img2dataset, or its local images packed into the same shards.
DOWNLOAD_OUTPUTS = {
    "url_list": f"{RESULTS}/download/url_list.tsv",
    "shards": directory(f"{RESULTS}/download/shards"),
    "stats": f"{RESULTS}/download/stats.json",
    "bad_rows": f"{RESULTS}/download/bad_rows.csv",
    "report": f"{RESULTS}/download/report.md",
    "plot": reported(f"{RESULTS}/download/report.png", "download", "download"),
}
SYNTHETIC = config["data"]["source"] == "synthetic"


if SYNTHETIC:

    rule synthesize_dataset:
        output:
            manifest=f"{RESULTS}/data/synthetic/manifest.tsv",
        log:
            f"{RESULTS}/logs/synthesize_dataset.log",
        benchmark:
            f"{RESULTS}/benchmarks/synthesize_dataset.tsv"
        conda:
            "../envs/data.yaml"
        resources:
            **rule_resources("default"),
        params:
            script=script("synthesize_dataset.py"),
            settings=config["data"]["synthetic"],
            output_dir=lambda wildcards, output: Path(output.manifest).parent,
        shell:
            "python {params.script:q} --output-dir {params.output_dir:q}"
            " --num-pairs {params.settings[num_pairs]} --image-size {params.settings[image_size]}"
            " --seed {params.settings[seed]}"
            " --num-broken-urls {params.settings[num_broken_urls]}"
            " --num-corrupt-images {params.settings[num_corrupt_images]} > {log:q} 2>&1"


rule download:
    input:
        **(
            {"manifest": rules.synthesize_dataset.output.manifest}
            if SYNTHETIC
            else {"source": config["data"]["path"]}
        ),
    output:
        **DOWNLOAD_OUTPUTS,
    log:
        f"{RESULTS}/logs/download.log",
    benchmark:
        f"{RESULTS}/benchmarks/download.tsv"
    conda:
        "../envs/data.yaml"
    threads: config["data"]["download"]["processes_count"]
    resources:
        **rule_resources("default"),
    params:
        script=script("download.py" if SYNTHETIC else "ingest.py"),
        source=download_arguments,
        options=json.dumps(config["data"]["download"], sort_keys=True),
    shell:
        "python {params.script:q} {params.source}"
        " --url-list {output.url_list:q} --output-folder {output.shards:q}"
        " --stats {output.stats:q} --bad-rows {output.bad_rows:q} --report {output.report:q}"
        " --plot {output.plot:q} --options {params.options:q} > {log:q} 2>&1"
