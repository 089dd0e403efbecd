"""Where training runs: one device, every GPU of a machine, or several machines (`tf.distribute`).

`make_strategy` turns ``--strategy`` into a `tf.distribute.Strategy`:

* ``one_device``: the first GPU, or the CPU;
* ``mirrored``: `tf.distribute.MirroredStrategy` over every GPU of the machine (without GPUs,
  over its logical CPU devices);
* ``multi_worker``: `tf.distribute.MultiWorkerMirroredStrategy`, its cluster and this process's
  place in it read from the ``TF_CONFIG`` environment variable, as TensorFlow documents it;
* ``auto``: ``mirrored`` when TensorFlow sees more than one GPU, else ``one_device``.

Every replica computes its piece of the global batch; the step's loss is the global-batch mean
and the gradients are summed over the replicas, so N replicas take the step one device takes on
the whole batch. One process, the chief, writes the run folder (TensorBoard, weights, settings);
the others keep their own checkpoints (`checkpoint_folder`) so that each can resume, on a shared
file system or not.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from u2fusion_tf.errors import U2FusionError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy `name` (one of `STRATEGIES`); call it before anything else runs on a device,
    as `MultiWorkerMirroredStrategy` requires."""
    if name not in STRATEGIES:
        raise U2FusionError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")
    if name == "multi_worker":  # first: listing logical devices would start TensorFlow
        if "TF_CONFIG" not in os.environ:
            raise U2FusionError(
                "--strategy multi_worker: set TF_CONFIG to the cluster and this worker's task"
            )
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as error:
            raise U2FusionError(f"TF_CONFIG: not JSON ({error})") from error
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "auto":
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "one_device"
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(devices[0].name)
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def worker(strategy: tf.distribute.Strategy) -> tuple[str | None, int]:
    """This process's task type and index in a multi-worker cluster; (None, 0) otherwise."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run folder: the ``chief`` task, or worker 0 of a cluster
    without one, or the only process."""
    task_type, task_id = worker(strategy)
    if task_type is None or task_type == "chief":
        return True
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def checkpoint_folder(strategy: tf.distribute.Strategy, run_dir: str) -> str:
    """Where this process keeps its checkpoints: ``<run_dir>/ckpt`` for the chief,
    ``<run_dir>/ckpt-<task type><index>`` for the other workers (every worker must save, and
    restores from its own copy, identical to the chief's)."""
    if is_chief(strategy):
        return os.path.join(run_dir, "ckpt")
    task_type, task_id = worker(strategy)
    return os.path.join(run_dir, f"ckpt-{task_type}{task_id}")


def any_worker(strategy: tf.distribute.Strategy, flag: bool) -> bool:
    """Whether `flag` holds in any worker process, so that all take the same decision (e.g. to
    save a checkpoint, which every worker must do together); every worker must call it."""
    if worker(strategy)[0] is None:
        return flag
    votes = strategy.run(lambda: tf.constant(float(flag)))
    return float(strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)) > 0


def describe(strategy: tf.distribute.Strategy) -> str:
    """One line for the log: the strategy, its replicas and this process's place."""
    task_type, task_id = worker(strategy)
    where = f", this process {task_type} {task_id}" if task_type else ""
    name = type(strategy).__name__  # MultiWorkerMirroredStrategy's class has another name
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name = "MultiWorkerMirroredStrategy"
    return (
        f"{name} with {strategy.num_replicas_in_sync} replica(s){where}"
        f"{' (chief)' if is_chief(strategy) and task_type else ''}"
    )
