from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/metadata.smk"
include: "rules/negatives.smk"
include: "rules/mining.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    # negatives and hard pairs come in through the runs that train on them (CE-CLIP, HELIP),
    # and so do their report figures
    input:
        rules.download.output.stats,
        training_targets(),
        rules.report.output,
        stage_figures(),
