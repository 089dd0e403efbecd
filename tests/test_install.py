"""Installed as a user installs it: a wheel in a fresh virtual environment fuses offline with the
shipped model, from any folder, through its console commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
EXAMPLES = REPOSITORY / "data" / "examples"


def run(command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin folder of a fresh venv holding the wheel built from this checkout (built from a
    copy of its files, so the checkout gets no build folders)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in ("setup.py", "README.md"):
        shutil.copy(REPOSITORY / name, source)
    shutil.copytree(
        REPOSITORY / "u2fusion_tf", source / "u2fusion_tf", ignore=shutil.ignore_patterns("*.pyc")
    )
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source])
    (wheel,) = wheels.glob("u2fusion_tf-*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel])
    return venv / "bin"


def offline_environment(tmp_path: Path) -> dict[str, str]:
    """No route to the authors' checkpoint: no local copy named, an empty Keras cache, no proxy
    that could reach the network, and nothing of the checkout on the path."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("U2FUSION_OFFICIAL_CKPT", "PYTHONPATH") and "proxy" not in key.lower()
    }
    keras_home = tmp_path / "keras"
    keras_home.mkdir()
    return environment | {"KERAS_HOME": str(keras_home), "https_proxy": "http://127.0.0.1:9"}


def test_a_wheel_fuses_offline_with_the_shipped_model_like_the_clone(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = offline_environment(tmp_path)
    where = run(
        [installed / "python", "-c", "import u2fusion_tf.weights as w; print(w.SHIPPED_WEIGHTS)"],
        cwd=elsewhere,
        env=environment,
    ).stdout.strip()
    assert where.startswith(str(installed.parent)) and Path(where).is_file()
    sources = [str(EXAMPLES / "exposure_under.png"), str(EXAMPLES / "exposure_over.png")]
    run(
        [installed / "u2fusion-fuse", "--inputs", *sources, "--output", "installed.png"],
        cwd=elsewhere,
        env=environment,
    )
    run(
        [sys.executable, "-m", "u2fusion_tf.fuse", "--inputs", *sources, "--output", "clone.png"],
        cwd=elsewhere,
        env=environment | {"PYTHONPATH": str(REPOSITORY)},
    )
    installed_bytes = (elsewhere / "installed.png").read_bytes()
    assert installed_bytes == (elsewhere / "clone.png").read_bytes()


@pytest.mark.parametrize("command", ["fuse", "train", "evaluate", "data", "datasets", "export"])
def test_every_console_command_is_on_path_and_takes_the_modules_flags(installed, command, tmp_path):
    environment = offline_environment(tmp_path)
    result = run([installed / f"u2fusion-{command}", "--help"], cwd=tmp_path, env=environment)
    module = f"{installed.parent}/lib/python{sys.version_info.major}.{sys.version_info.minor}"
    assert f"{module}/site-packages/u2fusion_tf/{command}.py:" in result.stdout, result.stdout
    assert "--[no]verbose" in result.stdout, result.stdout


def test_a_console_command_does_real_work(installed, shared_data, tmp_path):
    command = [installed / "u2fusion-datasets", "verify", "--root", shared_data]
    result = run(
        [*command, "--datasets", "u2fusion_test"],
        cwd=tmp_path,
        env=offline_environment(tmp_path),
    )
    assert result.stderr.strip().endswith("files verified"), result.stderr
