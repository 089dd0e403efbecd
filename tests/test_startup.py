"""Quiet command lines (one device line, TensorFlow's logs only on request) and the lazy API."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
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


COMMANDS = sorted(
    path.stem
    for path in (REPOSITORY / "u2fusion_tf").glob("*.py")
    if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8") and path.stem != "cli"
)
RUN_AS_COMMAND = (
    "import runpy, sys\n"
    "from u2fusion_tf.startup import begin_command\n"
    "begin_command(sys.argv)\n"
    "try:\n"
    "    runpy.run_module(sys.argv[1], run_name='__main__', alter_sys=True)\n"
    "finally:\n"
    "    print('tensorflow loaded:', 'tensorflow' in sys.modules, file=sys.stderr)\n"
)
"""Runs ``python -m <module> ...`` (as the console commands do) and says at exit whether
TensorFlow was imported."""


def run_command(module, *arguments, cwd=None):
    return subprocess.run(
        [sys.executable, "-c", RUN_AS_COMMAND, module, *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=os.environ | {"PYTHONPATH": str(REPOSITORY)},
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_help_exits_0_before_tensorflow_loads(command):
    result = run_command(f"u2fusion_tf.{command}", "--help")
    assert result.returncode == 0, result.stderr
    assert "--[no]verbose" in result.stdout and "Try --helpfull" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "tensorflow loaded: False", command


def test_help_lists_the_shared_flags_and_a_usage_error_needs_no_tensorflow():
    result = run_command("u2fusion_tf.datasets", "--help")
    assert "--[no]verbose: Show TensorFlow's own" in result.stdout
    result = run_command("u2fusion_tf.datasets", "unpack")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: usage: python -m u2fusion_tf.datasets fetch|verify (see --help)",
        "tensorflow loaded: False",
    ]


def mapped(pid: int, library: str) -> bool:
    with open(f"/proc/{pid}/maps") as maps:
        return library in maps.read()


@pytest.mark.parametrize(
    ("library", "command"),
    [
        # fuse reads its sources before it loads TensorFlow: it waits on the pipe after numpy
        ("_multiarray_umath", ["u2fusion_tf.fuse", "--inputs", "a.png", "endless.png"]),
        # train imports TensorFlow first thing
        ("libtensorflow", ["u2fusion_tf.train", "--data_dir", "endless.png", "--run_dir", "run"]),
    ],
)
def test_ctrl_c_during_start_up_imports_is_one_line_and_exit_130(tmp_path, library, command):
    """Interrupted while numpy, then TensorFlow, are being imported: no traceback (and no
    ImportError about a broken numpy) but the command's one line."""
    os.mkfifo(tmp_path / "endless.png")  # a command that gets this far waits here
    cv2.imwrite(str(tmp_path / "a.png"), np.full((8, 9), 128, np.uint8))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            *command,
            "--output",
            "f.weights.h5" if "train" in command[0] else "f.png",
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": str(REPOSITORY)},
    )
    deadline = time.monotonic() + 120
    while process.poll() is None and not mapped(process.pid, library):
        assert time.monotonic() < deadline, f"{library} was never loaded"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=300)[1]
    assert process.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) <= 2 and lines[-1].startswith("interrupted; "), stderr
    assert sorted(os.listdir(tmp_path)) == ["a.png", "endless.png"]
