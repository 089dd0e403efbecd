"""Shared fixtures: the datasets and the authors' checkpoint (from the read-only ../shared
folder, or where the README's set-up says) and small random-weight models for tests that need a
network but not its training."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from u2fusion_tf.catalogue import SHARED

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
OFFICIAL_PREFIX = SHARED / "official" / "u2fusion_tf1" / "model.ckpt"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all-pairs",
        action="store_true",
        help="Check parity with the authors' program on all 35 u2fusion_test pairs (`make "
        "parity`), not only the first pair of each set.",
    )


@pytest.fixture(scope="session")
def all_pairs(request) -> bool:
    return request.config.getoption("--all-pairs")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The datasets: ../shared/data, else where `python -m u2fusion_tf.datasets fetch` puts
    them; or a skip saying how to get them."""
    from u2fusion_tf.catalogue import FETCH_ROOT
    from u2fusion_tf.datasets import read_manifest

    names = {file.dataset for file in read_manifest()}
    for folder in (SHARED / "data", FETCH_ROOT):
        if all((folder / name).is_dir() for name in names):
            return folder
    pytest.skip(
        f"the datasets are in neither {SHARED / 'data'} nor {FETCH_ROOT}: "
        "get them with `python -m u2fusion_tf.datasets fetch`"
    )


@pytest.fixture(scope="session")
def paper_text() -> str:
    """The paper's text in ../shared/paper, or a skip saying it is missing."""
    path = SHARED / "paper" / "U2Fusion_TPAMI.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found: the paper's text sits in ../shared")
    return path.read_text(encoding="utf-8")


@pytest.fixture
def official_env(monkeypatch) -> str:
    """The authors' checkpoint: the prefix U2FUSION_OFFICIAL_CKPT names if set, else the copy in
    ../shared; or a skip saying how to point the tests at one."""
    from u2fusion_tf.weights import OFFICIAL_ENV

    prefix = os.environ.get(OFFICIAL_ENV) or str(OFFICIAL_PREFIX)
    if not Path(f"{prefix}.index").is_file():
        pytest.skip(
            f"{prefix}.index not found: set {OFFICIAL_ENV} to the prefix of a copy of the "
            "authors' checkpoint (the weights section of the README says where to get one)"
        )
    monkeypatch.setenv(OFFICIAL_ENV, prefix)
    return prefix


@pytest.fixture(scope="session")
def random_model():
    """A generator with seeded random weights (larger than the default init, so that every layer
    matters), for tests of plumbing rather than of trained behaviour."""
    from u2fusion_tf.model import U2FusionNet

    model = U2FusionNet()
    rng = np.random.default_rng(0)
    for conv in model.named_convolutions().values():
        fan_in = int(np.prod(conv.kernel.shape[:-1]))
        conv.kernel.assign(
            rng.normal(0, 1.5 / np.sqrt(fan_in), conv.kernel.shape).astype(np.float32)
        )
        conv.bias.assign(rng.normal(0, 0.1, conv.bias.shape).astype(np.float32))
    return model


@pytest.fixture(scope="session")
def random_weights_file(random_model, tmp_path_factory) -> Path:
    from u2fusion_tf.weights import save_weights

    path = tmp_path_factory.mktemp("weights") / "random.weights.h5"
    save_weights(random_model, path)
    return path


@pytest.fixture(scope="session")
def task_files(tmp_path_factory) -> dict[str, str]:
    """Tiny prepared-data files of the three tasks: 16x16 patches of two generated pairs each,
    with the information measure of an untrained VGG16 head, as `make data` would store it."""
    import cv2

    from u2fusion_tf.catalogue import TASKS, PairSet
    from u2fusion_tf.data import prepare

    rng = np.random.default_rng(5)
    root = tmp_path_factory.mktemp("tasks")
    files = {}
    for task in TASKS:
        folder1, folder2 = root / task / "a", root / task / "b"
        folder1.mkdir(parents=True)
        folder2.mkdir()
        for stem in ("p1", "p2"):
            image = cv2.GaussianBlur(rng.uniform(0, 255, (48, 64)).astype(np.uint8), (0, 0), 1.0)
            cv2.imwrite(str(folder1 / f"{stem}.png"), image)
            cv2.imwrite(str(folder2 / f"{stem}.png"), cv2.GaussianBlur(image, (0, 0), 2.0))
        files[task] = str(root / f"{task}.h5")
        source = PairSet(task, folder1, folder2)
        prepare([source], files[task], task, "none", patch_size=16, stride=16, log=lambda _: None)
    return files


@pytest.fixture(scope="session")
def tiny_run(task_files) -> Callable:
    """Makes the config of a tiny training run in a run folder: a few steps per task on
    `task_files` (c = 0.1 suits their untrained-head measure); keywords change settings."""
    from u2fusion_tf.catalogue import TASKS
    from u2fusion_tf.config import TrainConfig

    def make(run_dir, **changes):
        settings = {
            "epochs": dict.fromkeys(TASKS, 1),
            "c": dict.fromkeys(TASKS, 0.1),
            "batch_size": 6,
            "fisher_batches": 2,
            "fisher_batch_size": 3,
            "validation_patches": 4,
            "validate_every": 3,
            "vgg_weights": "none",
        }
        return TrainConfig(data_files=task_files, run_dir=str(run_dir), **{**settings, **changes})

    return make


@pytest.fixture(scope="session")
def summary_tags() -> Callable:
    """The TensorBoard tags a training run over `tasks` writes, as the README lists them:
    (scalar tags, image tags, histogram tags)."""

    def tags(tasks) -> tuple[set[str], set[str], set[str]]:
        scalars = {
            "loss/total",
            "loss/ssim",
            "loss/mse",
            "loss/lambda_ewc",
            "degrees/w1",
            "degrees/w2",
        }
        scalars |= {f"val/{task}" for task in tasks}
        return scalars, {"images/source1", "images/source2", "images/fused"}, {"ewc/fisher"}

    return tags


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """Picks TCP ports of 127.0.0.1 that nothing listens on at the time."""

    def pick() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    return pick
