"""The paper's ablations (Sec. 5) trained by this code: every variant with the same schedule and
seed, so that only what the ablation changes differs.

    baseline        the paper's recipe (three tasks, modal -> exposure -> focus, EWC)
    no-ewc          EWC off (Fig. 18-19); starts from the baseline's task-1 weights, since EWC
                    acts only from task 2 on
    fixed-degrees   w1 = w2 = 0.5 instead of Eq. 2 (Fig. 22)
    exposure-first  exposure -> modal -> focus (Table 5)
    focus-first     focus -> modal -> exposure (Table 5)
    lambda-8e3, lambda-8e5, lambda-8e6
                    EWC's lambda a tenth, ten and a hundred times the paper's 8e4 (baseline);
                    start from the baseline's task-1 weights like no-ewc

Every variant is trained once per seed of ``--seeds``, so that an effect can be told from the
spread between seeds. ``python -m u2fusion_tf.ablations --data_dir D --runs_dir R -- <train
flags>`` trains them seed by seed, variant by variant, as ``python -m u2fusion_tf.train
--run_dir R/seed<k>/<variant> <train flags> --seed <k> <variant flags>``. Each training
resumes from its checkpoints, so rerunning the command after an interruption (or in a later
sitting) carries on where it stopped; finished variants cost only a check. Each run folder
gets ``provenance.json``: the code commit and the command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.features import TASKS
from u2fusion_tf.files import write_atomically

FLAGS = flags.FLAGS

VARIANTS: dict[str, list[str]] = {
    "baseline": [],
    "no-ewc": ["--noewc"],
    "fixed-degrees": ["--fixed_degrees"],
    "exposure-first": ["--tasks", "multi-exposure,multi-modal,multi-focus"],
    "focus-first": ["--tasks", "multi-focus,multi-modal,multi-exposure"],
    "lambda-8e3": ["--ewc_lambda", "8e3"],
    "lambda-8e5": ["--ewc_lambda", "8e5"],
    "lambda-8e6": ["--ewc_lambda", "8e6"],
}
"""Each variant's flags on top of the common training flags."""
SEEDS = (0, 1, 2)
"""The seeds every variant is trained with by default."""
SHARES_FIRST_TASK = {
    variant: "baseline" for variant in ("no-ewc", "lambda-8e3", "lambda-8e5", "lambda-8e6")
}
"""Variants that start from another variant's weights after its first task."""


def code_commit() -> str:
    """The git commit of the package's checkout (with '+changes' when it has uncommitted
    changes), or 'unknown' outside a git checkout."""
    folder = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(
            ["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+changes" if dirty else "")


def train_command(data_dir: str, run_dir: str, variant: str, train_flags: Sequence[str]) -> list:
    return [
        sys.executable,
        "-m",
        "u2fusion_tf.train",
        "--data_dir",
        data_dir,
        "--run_dir",
        run_dir,
        "--fisher_after_last_task",  # Fig. 19 reads mu after every task, the last too
        *train_flags,
        *VARIANTS[variant],
    ]


def train_variant(
    data_dir: str,
    runs_dir: str,
    variant: str,
    train_flags: Sequence[str],
    log: Callable[[str], None] = print,
) -> None:
    """Trains (or resumes) one variant. A variant that others start from keeps a copy of its
    run folder as it stood after its first task (``<variant>-task1``); those others start from
    a copy of it."""
    run_dir = os.path.join(runs_dir, variant)
    command = train_command(data_dir, run_dir, variant, train_flags)
    if variant in SHARES_FIRST_TASK.values():
        first_task_snapshot(runs_dir, variant, command, log)
    parent = SHARES_FIRST_TASK.get(variant)
    if parent and not os.path.isdir(os.path.join(run_dir, "ckpt")):
        parent_command = train_command(
            data_dir, os.path.join(runs_dir, parent), parent, train_flags
        )
        copy_folder(first_task_snapshot(runs_dir, parent, parent_command, log), run_dir)
    os.makedirs(run_dir, exist_ok=True)
    record = {"commit": code_commit(), "command": command[1:]}
    write_atomically(
        os.path.join(run_dir, "provenance.json"), json.dumps(record, indent=2).encode()
    )
    log(f"{variant}: {' '.join(command[1:])}")
    run(command)


def first_task_snapshot(
    runs_dir: str, variant: str, command: list[str], log: Callable[[str], None] = print
) -> str:
    """``<runs_dir>/<variant>-task1``: the variant's run folder right after its first task,
    training that task first if needed."""
    run_dir, snapshot = os.path.join(runs_dir, variant), os.path.join(runs_dir, f"{variant}-task1")
    if os.path.isdir(snapshot):
        return snapshot
    done = os.listdir(run_dir) if os.path.isdir(run_dir) else []
    if any(name.startswith("task2-") for name in done):
        raise U2FusionError(
            f"{run_dir}: is past its first task but {snapshot} is missing; remove {run_dir} "
            "to train it again"
        )
    if not os.path.isfile(os.path.join(run_dir, f"task1-{TASKS[0]}.weights.h5")):
        log(f"{variant}: first task, kept for the variants that start from it")
        run([*command, "--stop_after_tasks", "1"])
    copy_folder(run_dir, snapshot)
    return snapshot


def copy_folder(source: str, destination: str) -> None:
    """Copied under a temporary name and renamed, so that a half copy never counts."""
    temporary = destination + ".copying"
    shutil.rmtree(temporary, ignore_errors=True)
    shutil.copytree(source, temporary)
    os.replace(temporary, destination)


def run(command: list) -> None:
    result = subprocess.run(command)
    if result.returncode:
        raise U2FusionError(
            f"training stopped (exit status {result.returncode}): {' '.join(command[1:])}"
        )


def seed_folder(runs_dir: str, seed: int) -> str:
    """The folder of one seed's run folders, ``<runs_dir>/seed<k>``."""
    return os.path.join(runs_dir, f"seed{seed}")


def main(argv: list[str]) -> None:
    unknown = [v for v in FLAGS.variants if v not in VARIANTS]
    if unknown:
        raise U2FusionError(
            f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}"
        )
    train_flags = argv[1:]
    if "--seed" in train_flags or any(f.startswith("--seed=") for f in train_flags):
        raise U2FusionError("--seed: give the seeds with --seeds, before the --")
    for seed in FLAGS.seeds:
        for variant in FLAGS.variants:
            train_variant(
                FLAGS.data_dir,
                seed_folder(FLAGS.runs_dir, seed),
                variant,
                [*train_flags, "--seed", str(seed)],
                log=cli.log,
            )


if __name__ == "__main__":
    flags.DEFINE_string("data_dir", "data", "Folder with the prepared <task>.h5 files.")
    flags.DEFINE_string("runs_dir", "runs/ablations", "One run folder per variant is made here.")
    flags.DEFINE_list("variants", list(VARIANTS), "Variants to train, in this order.")
    flags.DEFINE_multi_integer(
        "seeds", list(SEEDS), "Seeds to train every variant with, in this order.", lower_bound=0
    )
    cli.run_main(
        main, on_interrupt="each variant's last checkpoint is kept; run it again to resume"
    )
