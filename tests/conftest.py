"""Shared fixtures: the read-only ../shared folder (datasets, the authors' checkpoint) and small
random-weight models for tests that need a network but not its training."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("U2FUSION_SHARED", REPOSITORY_ROOT.parent / "shared"))
OFFICIAL_PREFIX = SHARED / "official" / "u2fusion_tf1" / "model.ckpt"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip saying it is missing."""
    folder = SHARED / "data"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found: the shared datasets sit beside the checkout")
    return folder


@pytest.fixture
def official_env(monkeypatch) -> str:
    """Points U2FUSION_OFFICIAL_CKPT at the authors' checkpoint in ../shared, or skips."""
    if not OFFICIAL_PREFIX.with_suffix(".ckpt.index").is_file():
        pytest.skip(f"{OFFICIAL_PREFIX}.* not found: the authors' checkpoint sits in ../shared")
    monkeypatch.setenv("U2FUSION_OFFICIAL_CKPT", str(OFFICIAL_PREFIX))
    return str(OFFICIAL_PREFIX)


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
