"""Start a training script as ``tasks`` processes, the same command on a laptop and on SLURM.

``python -m clipflow.launch --tasks N -- script.py ARGS`` replaces itself with:

* ``python script.py ARGS`` for one task;
* ``srun --ntasks=N ... python script.py ARGS`` inside a SLURM allocation (the train rule's job
  asks for N tasks; ``training/distributed.py`` reads each rank from ``SLURM_PROCID``), so
  multi-node jobs rendezvous on the allocation's first node;
* ``python -m torch.distributed.run --standalone --nproc-per-node=N script.py ARGS`` elsewhere.

The launcher execs rather than wrapping, so signals (``scancel``, ``--signal=USR1@...``) reach the
training processes, which checkpoint and stop (``training/preemption.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence


def launch_command(
    tasks: int, script_and_args: Sequence[str], environ: Mapping[str, str] = os.environ
) -> list[str]:
    """The command line that runs ``script_and_args`` as ``tasks`` ranks."""
    if tasks < 1:
        raise ValueError(f"--tasks must be at least 1, got {tasks}")
    if not script_and_args:
        raise ValueError("no script to launch (give it after --)")
    python = [sys.executable, *script_and_args]
    if tasks == 1:
        return python
    if "SLURM_JOB_ID" in environ:
        # --kill-on-bad-exit: one crashed rank must not leave the others waiting in a collective
        return ["srun", f"--ntasks={tasks}", "--kill-on-bad-exit=1", *python]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={tasks}",
        *script_and_args,
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1, help="training processes (ranks)")
    parser.add_argument("script_and_args", nargs=argparse.REMAINDER, help="-- script.py ARGS")
    args = parser.parse_args(argv)
    script_and_args = args.script_and_args
    if script_and_args[:1] == ["--"]:
        script_and_args = script_and_args[1:]
    try:
        command = launch_command(args.tasks, script_and_args)
    except ValueError as error:
        parser.error(str(error))
    sys.stdout.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
