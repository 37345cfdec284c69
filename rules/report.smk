rule report:
    input:
        results=evaluation_results(),
        train_logs=expand(f"{RESULTS}/runs/{{run_name}}/train_log.csv", run_name=RUNS),
    output:
        csv=reported(f"{RESULTS}/tables/summary.csv", "evaluation", "summary"),
        markdown=f"{RESULTS}/tables/summary.md",
        latex=f"{RESULTS}/tables/summary.tex",
        loss_plot=reported(
            f"{RESULTS}/plots/loss_curves.png", "training", "loss_curves"
        ),
        benchmark_plots=reported(
            expand(f"{RESULTS}/plots/{{benchmark}}.png", benchmark=BENCHMARKS),
            "evaluation",
            "benchmark",
            subcategory="per benchmark",
        ),
        comparison_plot=reported(
            f"{RESULTS}/plots/comparison.png", "evaluation", "comparison"
        ),
        published=[
            reported(f"{RESULTS}/tables/published.csv", "evaluation", "published"),
            *multiext(f"{RESULTS}/tables/published", ".md", ".tex"),
        ],
        paper=(
            [
                reported(f"{RESULTS}/tables/paper.csv", "evaluation", "paper"),
                *multiext(f"{RESULTS}/tables/paper", ".md", ".tex"),
            ]
            if PAPER_TABLE
            else []
        ),
        claims=(
            [
                reported(f"{RESULTS}/tables/claims.csv", "claims", "claims"),
                f"{RESULTS}/tables/claims.md",
            ]
            if config["claims"]
            else []
        ),
        per_seed=(
            reported(
                f"{RESULTS}/tables/summary_per_seed.csv", "evaluation", "per_seed"
            )
            if SEEDS != [None]
            else []
        ),
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    conda:
        "../envs/report.yaml"
    resources:
        **rule_resources("default"),
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
