rule report:
    input:
        results=evaluation_results(),
        train_logs=expand(f"{RESULTS}/runs/{{run_name}}/train_log.csv", run_name=RUNS),
    output:
        csv=f"{RESULTS}/tables/summary.csv",
        markdown=f"{RESULTS}/tables/summary.md",
        latex=f"{RESULTS}/tables/summary.tex",
        loss_plot=f"{RESULTS}/plots/loss_curves.png",
        benchmark_plots=expand(
            f"{RESULTS}/plots/{{benchmark}}.png", benchmark=BENCHMARKS
        ),
        comparison_plot=f"{RESULTS}/plots/comparison.png",
        published=multiext(f"{RESULTS}/tables/published", ".csv", ".md", ".tex"),
        paper=(
            multiext(f"{RESULTS}/tables/paper", ".csv", ".md", ".tex")
            if PAPER_TABLE
            else []
        ),
        claims=(
            multiext(f"{RESULTS}/tables/claims", ".csv", ".md")
            if config["claims"]
            else []
        ),
        per_seed=(f"{RESULTS}/tables/summary_per_seed.csv" if SEEDS != [None] else []),
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    conda:
        "../envs/report.yaml"
    resources:
        **slurm_resources("default"),
        mem_mb=resource("default", "mem_mb"),
        runtime=resource("default", "runtime"),
    params:
        script=script("report.py"),
        tables_dir=lambda wildcards, output: Path(output.csv).parent,
        plots_dir=lambda wildcards, output: Path(output.loss_plot).parent,
        shared_init=shared_init_arguments(),
        published=published_arguments(),
        paper_table=paper_table_argument(),
        claims=claims_argument(),
    shell:
        "python {params.script:q} --results {input.results:q} --train-logs {input.train_logs:q}"
        " --tables-dir {params.tables_dir:q} --plots-dir {params.plots_dir:q} {params.shared_init}"
        " {params.published} {params.paper_table} {params.claims}"
        " > {log:q} 2>&1"
