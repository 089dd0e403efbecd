"""Training under tf.distribute on this CPU: two logical devices under MirroredStrategy take the
step one device takes on the same global batch, a two-task run with EWC completes and resumes
under it, and two worker processes under MultiWorkerMirroredStrategy end with equal weights."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from u2fusion_tf.catalogue import TASKS
from u2fusion_tf.distribute import make_strategy, wait_for_workers
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.weights import load_model

HARNESS = Path(__file__).with_name("logical_devices.py")
TWO_TASKS = TASKS[:2]
TOLERANCE = 1e-6
"""Weights of a mirrored and a one-device run may differ by float32 rounding (the replicas' sums
are added in another order): measured about 1e-8 after 3 steps; the weights are about 0.1."""


def two_task_settings(tiny_run, run_dir: Path, strategy: str, **changes) -> dict:
    """Two tasks of 3 steps of 6 patches each (3 per replica on two), EWC between them."""
    config = tiny_run(
        run_dir, task_order=TWO_TASKS, validate_every=2, log_every=1, strategy=strategy, **changes
    )
    return {**dataclasses.asdict(config), "task_order": list(TWO_TASKS)}


def run_on_logical_devices(count: int, runs: list[dict], folder: Path) -> str:
    """Runs the trainings in one process with `count` logical CPU devices; returns its log."""
    paths = []
    for index, settings in enumerate(runs):
        paths.append(folder / f"config{index}.json")
        paths[-1].write_text(json.dumps(settings))
    result = subprocess.run(
        [sys.executable, str(HARNESS), str(count), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def task_weights(run_dir: Path, index: int) -> list[np.ndarray]:
    path = run_dir / f"task{index + 1}-{TWO_TASKS[index]}.weights.h5"
    return [v.numpy() for v in load_model(str(path)).trainable_variables]


def test_mirrored_steps_equal_one_device_steps_and_a_two_task_run_resumes(tiny_run, tmp_path):
    """The same two tasks on one device, and on two replicas stopped after task 1 and resumed:
    after the first task's 3 steps and after the second's (with the EWC penalty of the first)
    the weights agree to float32 rounding."""
    one, mirrored = tmp_path / "one_device", tmp_path / "mirrored"
    log = run_on_logical_devices(
        2,
        [
            two_task_settings(tiny_run, one, "one_device"),
            two_task_settings(tiny_run, mirrored, "mirrored", stop_after_tasks=1),
            two_task_settings(tiny_run, mirrored, "mirrored"),
        ],
        tmp_path,
    )
    assert "MirroredStrategy with 2 replica(s)" in log
    assert "OneDeviceStrategy with 1 replica(s)" in log
    assert "resumed from" in log and "task 2/2 multi-exposure" in log
    for index in (0, 1):
        for a, b in zip(task_weights(one, index), task_weights(mirrored, index), strict=True):
            np.testing.assert_allclose(b, a, rtol=0, atol=TOLERANCE)
    assert not np.allclose(task_weights(one, 0)[0], task_weights(one, 1)[0])
    ewc = np.load(mirrored / "fisher-task1.npz")
    assert sum(float(value.sum()) for value in ewc.values()) > 0


def worker_process(cluster: dict, index: int, flags: list[str]) -> subprocess.Popen:
    """``python -m u2fusion_tf.train`` as worker `index` of `cluster` (stderr into stdout)."""
    task = {"type": "worker", "index": index}
    return subprocess.Popen(
        [sys.executable, "-m", "u2fusion_tf.train", *flags],
        env={**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": task})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_workers_on_this_machine_end_with_equal_weights(task_files, free_port, tmp_path):
    """Two `python -m u2fusion_tf.train --strategy multi_worker` processes, one cluster on
    127.0.0.1 through TF_CONFIG, the second started once the first says it waits for it: a few
    steps of two tasks; the chief writes the run folder, both keep a checkpoint, and their
    weights are equal."""
    data_dir = Path(next(iter(task_files.values()))).parent
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    run_dir = tmp_path / "run"
    flags = [
        f"--data_dir={data_dir}",
        f"--run_dir={run_dir}",
        f"--tasks={','.join(TWO_TASKS)}",
        "--strategy=multi_worker",
        "--batch_size=6",
        "--fisher_batches=2",
        "--fisher_batch_size=3",
        "--validation_patches=4",
        "--vgg_weights=none",
        *(
            f"--{name}_{task.replace('-', '_')}={value}"
            for task in TWO_TASKS
            for name, value in (("epochs", 1), ("c", 0.1))
        ),
    ]
    workers, waiting = [], []
    for index in (0, 1):
        workers.append(worker_process(cluster, index, flags))
        for line in workers[0].stdout if index == 0 else ():  # worker 1 joins late
            waiting.append(line)
            if line.startswith("waiting for worker 1 (") or "Traceback" in line:
                break
    logs = [worker.communicate(timeout=900)[0] for worker in workers]
    logs[0] = "".join(waiting) + logs[0]
    assert f"waiting for worker 1 ({cluster['worker'][1]}) to join" in logs[0]
    assert [worker.returncode for worker in workers] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "MultiWorkerMirroredStrategy with 2 replica(s), this process worker 0 (chief)" in logs[0]
    assert os.path.isfile(run_dir / "task2-multi-exposure.weights.h5")
    assert len(glob.glob(str(run_dir / "events.out.tfevents.*"))) == 1
    readers = [
        tf.train.load_checkpoint(str(run_dir / folder)) for folder in ("ckpt", "ckpt-worker1")
    ]
    names = [
        n for n in readers[0].get_variable_to_shape_map() if n != "_CHECKPOINTABLE_OBJECT_GRAPH"
    ]
    weights = [n for n in names if n.startswith("optimizer/_trainable_variables/")]
    assert (
        len(weights) == 20 and readers[1].get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE") == 6
    )
    for name in names:  # weights, optimizer state, theta* and mu of EWC, progress
        np.testing.assert_array_equal(readers[0].get_tensor(name), readers[1].get_tensor(name))


@pytest.mark.parametrize(
    ("tf_config", "message"),
    [
        ("{", "TF_CONFIG: not JSON"),
        ('{"cluster": {"worker": ["127.0.0.1:1"]}}', "TF_CONFIG: expected {"),
        (
            {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "ps", "index": 0}},
            "TF_CONFIG: task type 'ps' is not a job of the cluster \\(worker\\)",
        ),
        (
            {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 5}},
            "TF_CONFIG: task index 5 is not among the cluster's 1 worker task\\(s\\) \\(0 .. 0\\)",
        ),
        (
            {"cluster": {"worker": ["127.0.0.1:1"], "ps": ["127.0.0.1:2"]}, "task": {}},
            "TF_CONFIG: cluster job 'ps' does not train",
        ),
        (
            {"cluster": {"worker": ["127.0.0.1"]}, "task": {"type": "worker", "index": 0}},
            "TF_CONFIG: '127.0.0.1' is not a host:port address",
        ),
    ],
)
def test_a_tf_config_that_cannot_form_the_cluster_is_one_line(monkeypatch, tf_config, message):
    """Checked before TensorFlow's collective ops start (which would raise a ValueError)."""
    text = tf_config if isinstance(tf_config, str) else json.dumps(tf_config)
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(U2FusionError, match=message):
        make_strategy("multi_worker")


def test_workers_wait_for_each_other_and_name_the_missing(free_port):
    """Two workers of one cluster, in threads of this process, each see the other join; a
    cluster whose third worker never comes names it, and stops after the timeout."""
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(3)]}
    two = {"worker": cluster["worker"][:2]}
    errors, servers = [], []

    def join(index: int) -> None:
        try:
            wait_for_workers(two, "worker", index, 60, lambda _: None)
        except Exception as error:
            errors.append(error)
            return
        # TensorFlow's server takes the port next: a peer still waiting finds it there
        port = int(two["worker"][index].rsplit(":", 1)[1])
        servers.append(socket.create_server(("127.0.0.1", port)))

    threads = [threading.Thread(target=join, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for server in servers:
        server.close()
    assert errors == []
    lines = []
    with pytest.raises(U2FusionError) as raised:
        wait_for_workers(cluster, "worker", 0, 1.0, lines.append)
    missing = f"worker 1 ({cluster['worker'][1]}), worker 2 ({cluster['worker'][2]})"
    assert lines[0].startswith(f"waiting for {missing} to join (0 s of 1)")
    assert str(raised.value) == f"TF_CONFIG: {missing} did not join within --join_timeout 1 s"


def test_a_worker_whose_peer_never_joins_stops_after_the_timeout(task_files, free_port, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    data_dir = Path(next(iter(task_files.values()))).parent
    flags = [f"--data_dir={data_dir}", f"--run_dir={tmp_path / 'run'}", "--vgg_weights=none"]
    flags += ["--strategy=multi_worker", "--join_timeout=2"]
    worker = worker_process(cluster, 0, flags)
    log = worker.communicate(timeout=300)[0]
    assert worker.returncode == 1, log
    peer = f"worker 1 ({cluster['worker'][1]})"
    assert f"waiting for {peer} to join (0 s of 2)" in log
    assert log.strip().splitlines()[-1] == (
        f"error: TF_CONFIG: {peer} did not join within --join_timeout 2 s"
    )
    assert "Traceback" not in log and not os.path.exists(tmp_path / "run")
