import json
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import LockException
from snakemake.utils import validate

from clipflow.config import (
    check_config,
    check_paper_table,
    experiment_config,
    scale_down,
)
from clipflow.reporting.claims import check_claims, replicate_seeds

# A command-line config file that sets `experiment` (config/experiments/) is the whole
# experiment, not an extension of config/config.yaml; `scale: tiny` shrinks it to CPU minutes.
_chosen = scale_down(
    experiment_config(
        config,
        workflow.overwrite_configfiles,
        workflow.config_settings.overwrite_config,
    )
)
config.update(_chosen)  # in place: snakemake keeps its own reference to `config`
for _key in set(config) - set(_chosen):
    del config[_key]
# A one-line error naming the key first; then snakemake's validate fills in the schema defaults.
check_config(config, workflow.source_path("../config/schema.yaml"))
validate(config, "../config/schema.yaml", set_default=True)
check_paper_table(config)


envvars:
    "PATH",


RESULTS = f"results/{config['experiment']}"
BENCHMARKS = config["benchmarks"]["enabled"]
CHECKPOINTS = ["init", "final"]
SYNTHETIC_BENCHMARKS = expand(
    f"{RESULTS}/data/benchmarks/{{name}}",
    name=["shapes_zeroshot", "colours_zeroshot", "retrieval", "compositional"],
)
PYTHON_ENV = {
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "HF_HUB_OFFLINE": "1",
    "WANDB_MODE": "disabled",
}

for _name, _value in PYTHON_ENV.items():
    os.environ.setdefault(_name, _value)
# Rules call `python`: make it the interpreter running snakemake (the project venv) even when the venv
# is not activated. A conda env (--use-conda) still comes first, since activation prepends its bin.
os.environ["PATH"] = os.pathsep.join(
    [str(Path(sys.executable).parent), os.environ["PATH"]]
)


ENABLED_RUNS = [
    name for name, settings in config["runs"].items() if settings.get("enabled", True)
]
check_claims(config)
# `train.seeds` replicates every run: a list of seeds, or a count (seeds 0..n-1). Each replicate
# is a run instance `<run>/seed<k>` (its checkpoints, logs and results under that path); without
# `seeds`, an instance is the run itself, trained with its `seed`.
SEEDS = replicate_seeds(config["train"].get("seeds"))


def run_instance(run, seed):
    """The instance id (path component) of `run`'s replicate with `seed` (None: unreplicated)."""
    return run if seed is None else f"{run}/seed{seed}"


def parse_instance(instance):
    """(run, seed) of an instance id (or of a `mining/seed<k>` directory); seed None when runs
    are not replicated."""
    run, _, replicate = instance.partition("/")
    return run, (int(replicate.removeprefix("seed")) if replicate else None)


RUNS = [run_instance(run, seed) for run in ENABLED_RUNS for seed in SEEDS]


def script(name):
    """A workflow script's path, relative to the working directory so moving both reruns nothing."""
    return os.path.relpath(Path(workflow.basedir) / "workflow_scripts" / name)


def run_settings(instance):
    """The run instance's training settings: `train` defaults overridden by `runs.<run>`, its
    replicate's seed, and a `pretrained: {run: <name>}` resolved to the final weights of that
    run's instance with the same seed."""
    run, seed = parse_instance(instance)
    settings = {**config["train"], **config["runs"][run]}
    for workflow_only in ("enabled", "published_as", "seeds"):
        settings.pop(workflow_only, None)
    if seed is not None:
        settings["seed"] = seed
    if isinstance(settings.get("pretrained"), dict):
        settings["pretrained"] = starting_weights(instance)
    return settings


def starting_weights(instance):
    """The final checkpoint of the run that the instance's `pretrained: {run: <name>}` names
    (same seed), or None when it starts from no run of the experiment."""
    run, seed = parse_instance(instance)
    pretrained = {**config["train"], **config["runs"][run]}.get("pretrained")
    if not isinstance(pretrained, dict):
        return None
    if pretrained["run"] not in ENABLED_RUNS or pretrained["run"] == run:
        raise ValueError(
            f"config key runs.{run}.pretrained.run: {pretrained['run']!r} is not another "
            "enabled run"
        )
    return f"{RESULTS}/runs/{run_instance(pretrained['run'], seed)}/model_final.pt"


def run_config_json(wildcards):
    return json.dumps(run_settings(wildcards.run_name), sort_keys=True)


def train_inputs(wildcards):
    """Pairs and shards, plus the negatives and hard pairs that the run's settings ask for."""
    settings = run_settings(wildcards.run_name)
    inputs = {
        "pairs": f"{RESULTS}/metadata/pairs.parquet",
        "shards": f"{RESULTS}/download/shards",
    }
    if settings.get("negatives"):
        inputs["negatives"] = f"{RESULTS}/negatives/negatives.parquet"
    if settings.get("sampler") == "hard_pairs":
        inputs["hard_pairs"] = (
            f"{RESULTS}/{mining_dir(wildcards.run_name)}/"
            f"{config['mining']['dataset_name']}_hard_sample.csv"
        )
    if starting_weights(wildcards.run_name) is not None:
        inputs["pretrained"] = starting_weights(wildcards.run_name)
    return inputs


def optional_train_arguments(wildcards, input):
    return " ".join(
        f"--{name.replace('_', '-')} {shlex.quote(str(input[name]))}"
        for name in ("negatives", "hard_pairs")
        if name in input.keys()
    )


def resource(family, key):
    """A resource of a rule family, falling back to `resources.default`."""
    value = config["resources"].get(family, {}).get(key)
    return value if value is not None else config["resources"]["default"][key]


def family_resources(family):
    """Every resource a rule family sets, over those of `resources.default`."""
    return {**config["resources"]["default"], **config["resources"].get(family, {})}


def slurm_resources(family):
    """Optional SLURM settings (partition, account, qos, extra sbatch options) of a rule family,
    falling back to `resources.default`; where neither sets one, the profile's default or
    SLURM's own applies."""
    keys = ("slurm_partition", "slurm_account", "qos", "slurm_extra")
    chosen = family_resources(family)
    return {key: chosen[key] for key in keys if key in chosen}


def rule_resources(family, gpus=False):
    """The resources of a family of rules, over those of `resources.default`: SLURM
    settings, memory and runtime, and with `gpus` its GPU count."""
    chosen = {
        **slurm_resources(family),
        "mem_mb": resource(family, "mem_mb"),
        "runtime": resource(family, "runtime"),
    }
    if gpus:
        chosen["gpu"] = resource(family, "gpus")
    return chosen


def reported(path, stage, caption, **annotations):
    """`path` shown by `snakemake --report` in the category of its workflow `stage`, with
    report/<caption>.rst as its caption (`annotations`: subcategory, labels)."""
    return report(
        path, caption=f"../report/{caption}.rst", category=stage, **annotations
    )


def training_tasks():
    return resource("train", "tasks")


def training_launch_resources():
    """Resources that make a multi-rank train job: SLURM allocates `tasks` tasks over `nodes`,
    one per GPU unless `tasks_per_gpu` says otherwise (the plugin would take `tasks` per GPU),
    and `mpi` tells the plugin's job step to run the rule's shell once (its launcher calls srun)
    rather than once per task."""
    if training_tasks() == 1:
        return {}
    chosen = family_resources("train")
    launch = {
        "tasks": training_tasks(),
        "mpi": "srun",
        "cpus_per_task": resource("train", "threads"),
        "nodes": chosen.get("nodes", 1),
    }
    if resource("train", "gpus"):
        launch["tasks_per_gpu"] = chosen.get("tasks_per_gpu", 1)
    return launch


def train_launcher_arguments(wildcards):
    if config["train_launcher"] != "submitit":
        return ""
    return f"--launcher submitit --submitit-options {shlex.quote(submitit_options(wildcards))}"


def submitit_options(wildcards):
    """The submitit job of a run (train_launcher: submitit), from `resources.train`."""
    chosen = family_resources("train")
    nodes = chosen.get(
        "nodes", 1
    )  # `tasks` and `gpus` count the whole job, as for the plugin
    options = {
        "folder": f"{RESULTS}/checkpoints/{wildcards.run_name}/submitit",
        "timeout_min": resource("train", "runtime"),
        "nodes": nodes,
        "tasks_per_node": training_tasks() // nodes,
        "gpus_per_node": resource("train", "gpus") // nodes,
        "cpus_per_task": resource("train", "threads"),
        "mem_gb": resource("train", "mem_mb") / 1000,
        "slurm_partition": chosen.get("slurm_partition"),
        "slurm_account": chosen.get("slurm_account"),
        "slurm_qos": chosen.get("qos"),
    }
    return json.dumps(options, sort_keys=True)


def download_arguments(wildcards, input):
    """The arguments of the `download` script: the synthetic data's manifest, or a registered
    source's format, file and `--images-root`/`--max-pairs` where `data` sets them."""
    if config["data"]["source"] == "synthetic":
        return f"--manifest {shlex.quote(input.manifest)}"
    source = f"--source {shlex.quote(config['data']['source'])} --path {shlex.quote(input.source)}"
    return " ".join(
        [source]
        + [
            f"{flag} {shlex.quote(str(config['data'][key]))}"
            for flag, key in (
                ("--images-root", "images_root"),
                ("--max-pairs", "max_pairs"),
            )
            if config["data"].get(key) is not None
        ]
    )


def benchmark_root(name):
    """A benchmark's data root: configured, or the synthetic one it names (default: its own)."""
    synthetic = BENCHMARKS[name].get("synthetic", name)
    return BENCHMARKS[name].get("root", f"{RESULTS}/data/benchmarks/{synthetic}")


def benchmark_inputs(wildcards):
    if "root" in BENCHMARKS[wildcards.benchmark]:
        return []
    return SYNTHETIC_BENCHMARKS


def same_evaluation():
    """Benchmark -> the first benchmark with the same kind, data and options.

    Such benchmarks score every checkpoint identically (scale tiny's stand-ins, for one), so
    each is evaluated once and the others get a copy of its results under their own names.
    """
    first = {}
    return {
        name: first.setdefault(
            json.dumps(
                [settings["kind"], benchmark_root(name), settings.get("options", {})],
                sort_keys=True,
            ),
            name,
        )
        for name, settings in BENCHMARKS.items()
    }


SAME_EVALUATION = same_evaluation()
EVALUATED = [name for name, first in SAME_EVALUATION.items() if name == first]
COPIED = [name for name, first in SAME_EVALUATION.items() if name != first]


def benchmark_options(wildcards):
    """`--option key=value` arguments, shell-quoted (values come from config)."""
    options = BENCHMARKS[wildcards.benchmark].get("options", {})
    return " ".join(
        f"--option {shlex.quote(f'{key}={json.dumps(value)}')}"
        for key, value in sorted(options.items())
    )


# Hard pairs are mined once per seed, with that replicate's encoder run, so a HELIP replicate
# mines with the checkpoint it fine-tunes.
MINING_DIRS = ["mining" if seed is None else f"mining/seed{seed}" for seed in SEEDS]


def mining_dir(instance):
    """The mining directory (under RESULTS) of a run instance's seed."""
    seed = parse_instance(instance)[1]
    return "mining" if seed is None else f"mining/seed{seed}"


def mining_encoder(directory):
    """(model name, checkpoint path) of the frozen encoder that embeds the pairs for mining
    into `directory` (one of MINING_DIRS)."""
    encoder = config["mining"]["encoder"]
    if "run" in encoder:
        if encoder["run"] not in ENABLED_RUNS:
            raise ValueError(
                f"mining.encoder.run: {encoder['run']!r} is not an enabled run"
            )
        instance = run_instance(encoder["run"], parse_instance(directory)[1])
        return (
            run_settings(instance)["model"],
            f"{RESULTS}/runs/{instance}/model_final.pt",
        )
    return encoder["model"], encoder["checkpoint"]


def shared_initial_weights():
    """Run instance -> the first one that starts from the same weights (same model, pretrained,
    seed).

    The trainer's starting point depends on nothing else, so the `init` checkpoint is evaluated
    once per distinct start, and the report compares every run with its start's results.
    """
    first = {}
    return {
        run: first.setdefault(
            tuple(
                run_settings(run).get(key) for key in ("model", "pretrained", "seed")
            ),
            run,
        )
        for run in RUNS
    }


def evaluation_results():
    starts = sorted(set(shared_initial_weights().values()), key=RUNS.index)
    return [
        *expand(
            f"{RESULTS}/eval/{{run_name}}/init/{{benchmark}}.json",
            run_name=starts,
            benchmark=BENCHMARKS,
        ),
        *expand(
            f"{RESULTS}/eval/{{run_name}}/final/{{benchmark}}.json",
            run_name=RUNS,
            benchmark=BENCHMARKS,
        ),
    ]


def shared_init_arguments():
    """`--shared-init RUN=START` pairs; replicates of a run share the same pair (their starts
    differ only by seed), so runs are named without it."""
    pairs = [
        f"{run}={start}"
        for run, start in dict.fromkeys(
            (parse_instance(run)[0], parse_instance(start)[0])
            for run, start in shared_initial_weights().items()
        )
        if run != start
    ]
    return "--shared-init " + " ".join(pairs) if pairs else ""


def claims_argument():
    """The report's `--claims` (the config's `claims` as JSON), when the config has any."""
    if not config["claims"]:
        return ""
    return f"--claims {shlex.quote(json.dumps(config['claims'], sort_keys=True))}"


def published_arguments():
    """The report's `--reference` and `--published-as` pairs, from config."""
    references = [
        f"{name}={settings['published']}"
        for name, settings in BENCHMARKS.items()
        if "published" in settings
    ]
    reproduces = [
        f"{run}={config['runs'][run]['published_as']}"
        for run in ENABLED_RUNS
        if "published_as" in config["runs"][run]
    ]
    return " ".join(
        shlex.quote(argument)
        for flag, pairs in (("--reference", references), ("--published-as", reproduces))
        if pairs
        for argument in (flag, *pairs)
    )


PAPER_TABLE = config["report"].get("paper_table")


def paper_table_argument():
    """The report's `--paper-table` (report.paper_table as JSON), when the config has one."""
    if PAPER_TABLE is None:
        return ""
    return f"--paper-table {shlex.quote(json.dumps(PAPER_TABLE, sort_keys=True))}"


# --- fault handling (issue 15) ---


def training_targets():
    """Every enabled run's `train` outputs (weights and logs): targets of `all` in their own
    right, so a forced retrain that failed (snakemake deletes a failed job's outputs) is
    retried, rather than skipped because the evaluations and report of the old model exist.
    Called in the Snakefile, once rules/train.smk has defined the rule."""
    return expand(list(rules.train.output), run_name=RUNS)


def stage_figures():
    """The report's figure of each stage the runs use: the negatives table where a run trains
    on negatives, the hard-pairs grid of each mining directory a run samples from."""
    sampling = [i for i in RUNS if run_settings(i).get("sampler") == "hard_pairs"]
    figures = sorted({f"{RESULTS}/{mining_dir(i)}/hard_pairs.png" for i in sampling})
    if any(run_settings(i).get("negatives") for i in RUNS):
        figures.append(f"{RESULTS}/negatives/examples.csv")
    return figures


def refuse_a_second_process():
    """A second snakemake process on this experiment stops with snakemake's lock message.

    Snakemake checks for incomplete outputs while it builds the DAG, before it takes its lock,
    so the second process would instead see the first one's running jobs as incomplete and
    advise `--rerun-incomplete`, which would rerun them under the running process. The check
    runs where the DAG is built, in the main process only (job processes that a cluster
    executor starts re-read this file while the main process holds the lock); dry runs and
    `--nolock` keep snakemake's own behaviour, and so does `--report`.
    """
    build_dag = workflow._build_dag

    def build_dag_if_unlocked():
        main_process = not (workflow.remote_exec or workflow.subprocess_exec)
        # `--report` and `--lint` build the DAG without execution settings and never run a job
        executing = workflow.execution_settings is not None
        if (
            main_process
            and executing
            and workflow.execution_settings.lock
            and not workflow.dryrun
        ):
            locked = (key for _, key in workflow.persistence._read_locks())
            if any(key.startswith(f"{RESULTS}/") for key in locked):
                raise LockException()
        build_dag()

    workflow._build_dag = build_dag_if_unlocked


refuse_a_second_process()
