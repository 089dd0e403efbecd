"""``make ablations``: the paper's ablations (Sec. 5) trained by this code, every variant of
`u2fusion_tf.variants` once per seed, with the same schedule, so that only what the ablation
changes differs and an effect can be told from the spread between seeds::

    python -m u2fusion_tf.ablations --data_dir D --runs_dir R [--seeds 0,1,2] -- <train flags>

trains, seed by seed and variant by variant, ``python -m u2fusion_tf.train --run_dir
R/seed<k>/<variant> <train flags> --seed <k> <variant flags>``. Each training resumes from its
checkpoints, so rerunning the command after an interruption (or in a later sitting) carries on
where it stopped; finished variants cost only a check. Each run folder gets ``provenance.json``:
the code commit and the command.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.files import copy_folder
from u2fusion_tf.runs import write_provenance
from u2fusion_tf.variants import (
    SEEDS,
    SHARES_FIRST_TASK,
    VARIANTS,
    first_task_folder,
    run_folder,
)

logger = logging.getLogger(__name__)

FLAGS = flags.FLAGS


def train_command(data_dir: str, run_dir: Path, variant: str, train_flags: Sequence[str]) -> list:
    return [
        sys.executable,
        "-m",
        "u2fusion_tf.train",
        "--data_dir",
        data_dir,
        "--run_dir",
        str(run_dir),
        "--fisher_after_last_task",  # Fig. 19 reads mu after every task, the last too
        *train_flags,
        *VARIANTS[variant],
    ]


def train_variant(
    data_dir: str,
    runs_dir: str,
    seed: int,
    variant: str,
    train_flags: Sequence[str],
    log: Callable[[str], None] = logger.info,
) -> None:
    """Trains (or resumes) one variant with one seed. A variant that others start from keeps a
    copy of its run folder as it stood after its first task; those others start from a copy of
    it."""
    flags_with_seed = [*train_flags, "--seed", str(seed)]
    run_dir = run_folder(runs_dir, seed, variant)
    command = train_command(data_dir, run_dir, variant, flags_with_seed)
    if variant in SHARES_FIRST_TASK.values():
        first_task_snapshot(runs_dir, seed, variant, command, log)
    parent = SHARES_FIRST_TASK.get(variant)
    if parent and not (run_dir / "ckpt").is_dir():
        parent_command = train_command(
            data_dir, run_folder(runs_dir, seed, parent), parent, flags_with_seed
        )
        copy_folder(first_task_snapshot(runs_dir, seed, parent, parent_command, log), run_dir)
    write_provenance(run_dir, command[1:])
    log(f"seed {seed}, {variant}: {' '.join(command[1:])}")
    run(command)


def first_task_snapshot(
    runs_dir: str, seed: int, variant: str, command: list[str], log: Callable[[str], None]
) -> Path:
    """The variant's run folder right after its first task, training that task first if
    needed."""
    run_dir = run_folder(runs_dir, seed, variant)
    snapshot = first_task_folder(runs_dir, seed, variant)
    if snapshot.is_dir():
        return snapshot
    done = [p.name for p in run_dir.iterdir()] if run_dir.is_dir() else []
    if any(name.startswith("task2-") for name in done):
        raise U2FusionError(
            f"{run_dir}: is past its first task but {snapshot} is missing; remove {run_dir} "
            "to train it again"
        )
    if not any(name.startswith("task1-") and name.endswith(".weights.h5") for name in done):
        log(f"seed {seed}, {variant}: first task, kept for the variants that start from it")
        write_provenance(run_dir, command[1:])
        run([*command, "--stop_after_tasks", "1"])
    copy_folder(run_dir, snapshot)
    return snapshot


def run(command: list) -> None:
    result = subprocess.run(command)
    if result.returncode:
        raise U2FusionError(
            f"training stopped (exit status {result.returncode}): {' '.join(command[1:])}"
        )


def main(argv: list[str]) -> None:
    unknown = [v for v in FLAGS.variants if v not in VARIANTS]
    if unknown:
        raise U2FusionError(
            f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}"
        )
    train_flags = argv[1:]
    if "--seed" in train_flags or any(f.startswith("--seed=") for f in train_flags):
        raise U2FusionError("--seed: give the seeds with --seeds, before the --")
    if not all(seed.isdigit() for seed in FLAGS.seeds):
        raise U2FusionError(f"--seeds {','.join(FLAGS.seeds)}: give whole numbers from 0")
    for seed in (int(seed) for seed in FLAGS.seeds):
        for variant in FLAGS.variants:
            train_variant(FLAGS.data_dir, FLAGS.runs_dir, seed, variant, train_flags, cli.log)


if __name__ == "__main__":
    flags.DEFINE_string("data_dir", "data", "Folder with the prepared <task>.h5 files.")
    flags.DEFINE_string("runs_dir", "runs/ablations", "One folder per seed is made here.")
    flags.DEFINE_list("variants", list(VARIANTS), "Variants to train, in this order.")
    flags.DEFINE_list(
        "seeds", [str(seed) for seed in SEEDS], "Seeds to train every variant with, in order."
    )
    cli.run_main(
        main, on_interrupt="each variant's last checkpoint is kept; run it again to resume"
    )
