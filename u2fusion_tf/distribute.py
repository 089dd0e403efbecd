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
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import tensorflow as tf

from u2fusion_tf.config import STRATEGIES
from u2fusion_tf.errors import U2FusionError

logger = logging.getLogger(__name__)


def make_strategy(
    name: str, join_timeout: float = 300.0, log: Callable[[str], None] = logger.info
) -> tf.distribute.Strategy:
    """The strategy `name` (one of `STRATEGIES`); call it before anything else runs on a device,
    as `MultiWorkerMirroredStrategy` requires. A multi-worker strategy is made once every worker
    of ``TF_CONFIG`` has joined (`wait_for_workers`), at most `join_timeout` seconds later."""
    if name not in STRATEGIES:
        raise U2FusionError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")
    if name == "multi_worker":  # first: listing logical devices would start TensorFlow
        cluster, task_type, task_index = read_tf_config()
        wait_for_workers(cluster, task_type, task_index, join_timeout, log)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "auto":
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "one_device"
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(devices[0].name)
    return tf.distribute.MirroredStrategy([device.name for device in devices])


TRAINING_JOBS = ("chief", "worker")
"""The cluster jobs that train; TensorFlow's others (``ps``, ``evaluator``) have no part here."""


def read_tf_config() -> tuple[dict[str, list[str]], str, int]:
    """The cluster (job -> ``host:port`` addresses), this process's task type and index, from
    ``TF_CONFIG``; checked here, as TensorFlow would fail on them with a traceback or a wait
    that never ends."""
    if "TF_CONFIG" not in os.environ:
        raise U2FusionError(
            "--strategy multi_worker: set TF_CONFIG to the cluster and this worker's task"
        )
    try:
        settings = json.loads(os.environ["TF_CONFIG"])
    except ValueError as error:
        raise U2FusionError(f"TF_CONFIG: not JSON ({error})") from error
    cluster = settings.get("cluster") if isinstance(settings, dict) else None
    task = settings.get("task") if isinstance(settings, dict) else None
    if not isinstance(cluster, dict) or not cluster or not isinstance(task, dict):
        raise U2FusionError(
            'TF_CONFIG: expected {"cluster": {"worker": ["host:port", ...]}, '
            '"task": {"type": "worker", "index": 0}}'
        )
    for job, addresses in cluster.items():
        if job not in TRAINING_JOBS:
            raise U2FusionError(
                f"TF_CONFIG: cluster job {job!r} does not train; use {' and '.join(TRAINING_JOBS)}"
            )
        if not isinstance(addresses, list) or not addresses:
            raise U2FusionError(f"TF_CONFIG: cluster job {job!r} needs a list of host:port")
        for address in addresses:
            _split_address(address)
    if len(cluster.get("chief", [])) > 1:
        raise U2FusionError("TF_CONFIG: a cluster has at most one chief")
    task_type, task_index = task.get("type"), task.get("index", 0)
    if task_type not in cluster:
        raise U2FusionError(
            f"TF_CONFIG: task type {task_type!r} is not a job of the cluster ({', '.join(cluster)})"
        )
    if not isinstance(task_index, int) or not 0 <= task_index < len(cluster[task_type]):
        raise U2FusionError(
            f"TF_CONFIG: task index {task_index!r} is not among the cluster's "
            f"{len(cluster[task_type])} {task_type} task(s) (0 .. {len(cluster[task_type]) - 1})"
        )
    return cluster, task_type, task_index


def _split_address(address: object) -> tuple[str, int]:
    """``host:port`` as (host, port), or a one-line error."""
    host, _, port = str(address).rpartition(":")
    if not isinstance(address, str) or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise U2FusionError(f"TF_CONFIG: {address!r} is not a host:port address")
    return host.strip("[]"), int(port)


JOIN_POLL_SECONDS = 0.5
"""How often the peers' ports are tried while waiting for them."""
JOIN_REPORT_SECONDS = 10.0
"""How often the workers still missing are named while waiting."""


def wait_for_workers(
    cluster: dict[str, list[str]],
    task_type: str,
    task_index: int,
    timeout: float,
    log: Callable[[str], None],
) -> None:
    """Returns when every other task of `cluster` accepts connections at its address; meanwhile
    names the ones that have not joined, and stops with a one-line error after `timeout` seconds.

    TensorFlow itself would wait silently and forever. While this process waits, its own port
    answers (a plain socket, closed before TensorFlow's server takes the port), so that the
    others see it joined; a probe is a connection opened and closed at once."""
    peers = {
        f"{job} {index} ({address})": _split_address(address)
        for job, addresses in cluster.items()
        for index, address in enumerate(addresses)
        if (job, index) != (task_type, task_index)
    }
    started, reported = time.monotonic(), -math.inf
    with _answering(cluster[task_type][task_index]):
        while missing := [name for name, address in peers.items() if not _answers(address)]:
            waited = time.monotonic() - started
            if waited >= timeout:
                raise U2FusionError(
                    f"TF_CONFIG: {', '.join(missing)} did not join within --join_timeout "
                    f"{timeout:g} s"
                )
            if time.monotonic() - reported >= JOIN_REPORT_SECONDS:
                log(f"waiting for {', '.join(missing)} to join ({waited:.0f} s of {timeout:g})")
                reported = time.monotonic()
            time.sleep(JOIN_POLL_SECONDS)


@contextmanager
def _answering(address: str) -> Iterator[None]:
    """Accepts (and closes) connections at this task's port while the block runs."""
    try:
        listener = socket.create_server(("", _split_address(address)[1]))
    except OSError as error:
        raise U2FusionError(
            f"TF_CONFIG: this task's address {address} cannot be taken ({error.strerror})"
        ) from error
    stop = threading.Event()

    def answer() -> None:
        listener.settimeout(JOIN_POLL_SECONDS)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:  # a timeout: look at `stop` again
                continue
            with connection:  # the prober closes first, so the port is not held after
                connection.settimeout(JOIN_POLL_SECONDS)
                with suppress(OSError):
                    connection.recv(1)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        listener.close()


def _answers(address: tuple[str, int]) -> bool:
    """Whether something accepts connections at `address`."""
    try:
        with socket.create_connection(address, timeout=JOIN_POLL_SECONDS):
            return True
    except OSError:
        return False


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
