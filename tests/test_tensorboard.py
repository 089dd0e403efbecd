"""What training logs is what TensorBoard shows: the real `tensorboard` server, started on a short
two-task run's folder, serves every scalar, histogram and image tag through its HTTP data API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import cv2
import numpy as np
import pytest

from u2fusion_tf.training import Trainer

TASKS = ("multi-modal", "multi-exposure")


@pytest.fixture(scope="module")
def run_dir(tiny_run, tmp_path_factory):
    """Two tasks of 3 steps each, validated every 2 steps, with EWC between them."""
    folder = str(tmp_path_factory.mktemp("tensorboard") / "run")
    Trainer(tiny_run(folder, task_order=TASKS, validate_every=2), log=lambda _: None).run()
    return folder


@pytest.fixture
def tensorboard(run_dir, free_port, tmp_path):
    """A `tensorboard` server on 127.0.0.1 reading `run_dir`; yields a GET of its data API."""
    port = free_port()
    log = open(tmp_path / "tensorboard.log", "w")  # noqa: SIM115 (closed below)
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", run_dir, "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--load_fast", "false"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def get(path: str, **query) -> bytes:
        url = f"http://127.0.0.1:{port}/data/{path}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read()

    try:
        yield get
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def wait_for_tags(get, plugin: str, expected: set[str], seconds: float = 900) -> dict:
    """The run's tags of `plugin` once the server has loaded all of `expected` (it starts, then
    loads the event files in the background: seconds on an idle machine, minutes on a busy one)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            tags = json.loads(get(f"plugin/{plugin}/tags")).get(".", {})
            if expected <= set(tags) or time.monotonic() > deadline:
                return tags
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(1)


def test_tensorboard_serves_the_runs_scalars_histograms_and_images(tensorboard, summary_tags):
    """22 training patches per task (two held out), batches of 6: 3 steps per task."""
    get = tensorboard
    scalars, images, histograms = summary_tags(TASKS)
    assert set(wait_for_tags(get, "scalars", scalars)) >= scalars
    totals = json.loads(get("plugin/scalars/scalars", run=".", tag="loss/total"))
    assert [step for _, step, _ in totals] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(value) for _, _, value in totals)
    ewc = [
        value
        for _, _, value in json.loads(get("plugin/scalars/scalars", run=".", tag="loss/lambda_ewc"))
    ]
    assert ewc[:3] == [0, 0, 0] and min(ewc[4:]) > 0, "the penalty acts from the second task on"
    curve = json.loads(get("plugin/scalars/scalars", run=".", tag=f"val/{TASKS[0]}"))
    assert {step for _, step, _ in curve} == {2, 3, 4, 6}, "the first task stays validated"

    assert set(wait_for_tags(get, "histograms", histograms)) >= histograms
    assert set(wait_for_tags(get, "images", images)) >= images
    samples = json.loads(get("plugin/images/images", run=".", tag="images/fused", sample=0))
    assert samples[-1]["step"] == 6
    blob_key = urllib.parse.parse_qs(samples[-1]["query"])["blob_key"][0]
    png = get("plugin/images/individualImage", blob_key=blob_key)
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image.shape[:2] == (16, 16) and image.std() > 0
