"""Quiet command lines (one device line, TensorFlow's logs only on request) and the lazy API."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import cv2
import numpy as np

TENSORFLOW_LOG_LINE = re.compile(r"^[IWEF]\d{4} ", re.MULTILINE)
"""TensorFlow's C++ log lines start with their level and date: ``I0000 00:00:...``."""


def run_fuse(tmp_path, weights, *extra, **environment):
    image = np.full((8, 9), 128, np.uint8)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), image)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | environment
    command = [sys.executable, "-m", "u2fusion_tf.fuse", "--inputs", "a.png", "b.png"]
    command += ["--output", "f.png", "--weights", str(weights), *extra]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env
    )


def test_a_command_prints_the_device_and_no_tensorflow_logs(tmp_path, random_weights_file):
    result = run_fuse(tmp_path, random_weights_file)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert re.fullmatch(r"device: (CPU \(\d+ cores; TensorFlow sees no GPU\)|GPU .+)", lines[0])
    assert lines[1] == "wrote f.png"


def test_verbose_or_the_users_log_level_shows_tensorflow_logs(tmp_path, random_weights_file):
    for extra, environment in ((["--verbose"], {}), ([], {"TF_CPP_MIN_LOG_LEVEL": "0"})):
        result = run_fuse(tmp_path, random_weights_file, *extra, **environment)
        assert result.returncode == 0, result.stderr
        assert TENSORFLOW_LOG_LINE.search(result.stderr), (extra, result.stderr)
        assert result.stderr.strip().endswith("wrote f.png")


def test_import_is_lazy_and_exposes_the_api(random_weights_file):
    code = (
        "import sys, numpy as np, u2fusion_tf\n"
        "print('before use:', 'tensorflow' in sys.modules)\n"
        f"model = u2fusion_tf.load_model({str(random_weights_file)!r})\n"
        "a, b = np.random.default_rng(0).random((2, 6, 7), np.float32)\n"
        "same = np.array_equal(u2fusion_tf.fuse([a, b], model), u2fusion_tf.fuse_y(a, b, model))\n"
        "from u2fusion_tf import fuse\n"
        "print('fused:', same, fuse([a, b], model).shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr
    assert "before use: False" in result.stdout
    assert "fused: True (6, 7)" in result.stdout
