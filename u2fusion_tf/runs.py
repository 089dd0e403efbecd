"""A training run's folder: what `u2fusion_tf.training` writes there and the reports read back.

config.json                 the run's settings (`TrainConfig`)
provenance.json             the code commit and command that trained it (the ablation runner)
task<k>-<task>.weights.h5   the weights after the k-th task
fisher-task<k>.npz          mu (Eq. 9) after the k-th task, one array per trainable variable
events.out.tfevents.*       TensorBoard: loss/*, degrees/*, val/<task>, images, ewc/fisher
ckpt/                       checkpoints to resume from
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.files import write_atomically

CONFIG_FILE = "config.json"
PROVENANCE_FILE = "provenance.json"
FISHER_TAG = "ewc/fisher"
"""Written once at the end of every task, when mu is measured."""


def task_weights_name(number: int, task: str) -> str:
    """The file of the weights after task `number` (1-based)."""
    return f"task{number}-{task}.weights.h5"


def fisher_name(number: int) -> str:
    return f"fisher-task{number}.npz"


def validation_tag(task: str) -> str:
    """The TensorBoard tag of a task's held-out L_sim."""
    return f"val/{task}"


def read_json(path: Path) -> dict:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise U2FusionError(f"{path}: cannot be read as JSON ({error})") from error
    if not isinstance(content, dict):
        raise U2FusionError(f"{path}: expected a JSON object")
    return content


@dataclass(frozen=True)
class Run:
    """A run folder: its settings, provenance and what it has finished."""

    folder: Path
    config: dict
    provenance: dict

    @property
    def task_order(self) -> list[str]:
        return list(self.config["task_order"])

    def weights(self, task_number: int) -> Path:
        """The weights after task `task_number` (1-based)."""
        return self.folder / task_weights_name(task_number, self.task_order[task_number - 1])

    def fisher(self, task_number: int) -> Path:
        return self.folder / fisher_name(task_number)

    @property
    def tasks_done(self) -> int:
        return sum(self.weights(k).is_file() for k in range(1, len(self.task_order) + 1))

    @property
    def finished(self) -> bool:
        return self.tasks_done == len(self.task_order)

    @property
    def commit(self) -> str:
        return str(self.provenance.get("commit", "not recorded"))


def read_run(folder: Path) -> Run | None:
    """The run in `folder`, or None when it has no config.json (not started)."""
    if not (folder / CONFIG_FILE).is_file():
        return None
    config = read_json(folder / CONFIG_FILE)
    if not isinstance(config.get("task_order"), list):
        raise U2FusionError(f"{folder / CONFIG_FILE}: has no task_order")
    provenance_path = folder / PROVENANCE_FILE
    provenance = read_json(provenance_path) if provenance_path.is_file() else {}
    return Run(folder, config, provenance)


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


def write_provenance(folder: Path, command: list[str]) -> None:
    """Records the code commit and the command that trains the run in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {"commit": code_commit(), "command": command}
    write_atomically(folder / PROVENANCE_FILE, json.dumps(record, indent=2).encode())


@dataclass(frozen=True)
class Events:
    """What a run folder's TensorBoard events hold: scalars by tag and step, and the steps at
    which every other tag was written. A step written twice (training resumed from an earlier
    checkpoint repeats steps) keeps its last value."""

    scalars: dict[str, dict[int, float]]
    steps: dict[str, set[int]]

    def series(self, tag: str) -> tuple[list[int], list[float]]:
        """(steps, values) of a scalar tag, by step."""
        points = sorted(self.scalars.get(tag, {}).items())
        return [s for s, _ in points], [v for _, v in points]

    def task_end_steps(self) -> list[int]:
        """The global step at which each finished task ended."""
        return sorted(self.steps.get(FISHER_TAG, ()))


def read_events(folder: Path) -> Events:
    """All ``events.out.tfevents.*`` of a run folder, in the order they were written (file
    names start with the time). A truncated last record (a run stopped mid-write) ends its file."""
    import tensorflow as tf

    scalars: dict[str, dict[int, float]] = {}
    steps: dict[str, set[int]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    steps.setdefault(value.tag, set()).add(event.step)
                    scalar = _scalar(value)
                    if scalar is not None:
                        scalars.setdefault(value.tag, {})[event.step] = scalar
        except tf.errors.DataLossError:
            continue
        except (tf.errors.OpError, ValueError) as error:
            raise U2FusionError(
                f"{path}: cannot be read as TensorBoard events ({error})"
            ) from error
    return Events(scalars, steps)


def _scalar(value) -> float | None:
    """The number of a scalar summary value (TF2 writes a 0-d tensor), else None."""
    if value.WhichOneof("value") == "simple_value":
        return float(value.simple_value)
    if value.WhichOneof("value") == "tensor":
        import tensorflow as tf

        array = tf.make_ndarray(value.tensor)
        if array.ndim == 0 and np.issubdtype(array.dtype, np.floating):
            return float(array)
    return None


def read_mu(path: Path) -> np.ndarray:
    """All values of a ``fisher-task<k>.npz`` (one array per trainable variable), flattened."""
    try:
        with np.load(path) as arrays:
            return np.concatenate([arrays[name].ravel() for name in sorted(arrays.files)])
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise U2FusionError(f"{path}: cannot be read as a NumPy .npz file ({error})") from error


def mu_after_each_task(run: Run) -> list[np.ndarray]:
    """mu after task 1, 2, ... for the tasks whose Fisher file exists (in order, no gaps)."""
    found = []
    for k in range(1, len(run.task_order) + 1):
        if not run.fisher(k).is_file():
            break
        found.append(read_mu(run.fisher(k)))
    return found
