"""TensorFlow's start-up, as a command shows it: quiet, then one line naming the device.

Importing TensorFlow prints a dozen C++ log lines (oneDNN notices, CPU instruction sets, and on
machines with CUDA libraries but no GPU ``failed call to cuInit: ... CUDA error``), which read
like failures. TensorFlow 2.21 writes some of them before its logging reads
``TF_CPP_MIN_LOG_LEVEL``, so a command silences the process's stderr while TensorFlow imports
and finds its devices, and sets ``TF_CPP_MIN_LOG_LEVEL=3`` for what comes later. ``--verbose``,
or ``TF_CPP_MIN_LOG_LEVEL`` set by the user, leaves TensorFlow's logging alone.

`u2fusion_tf/__init__.py` calls `quiet_tensorflow_startup` when the package is imported to run
one of its commands (``python -m u2fusion_tf.<command>``): that import comes before the command
module's own, so before TensorFlow's.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LOG_LEVEL = "3"
"""Errors too: the cuInit line is logged as an error; real errors still raise in Python."""


def wants_verbose(argv: Sequence[str]) -> bool:
    """Whether the command line asks for TensorFlow's own logs (``--verbose``, absl style)."""
    for argument in argv:
        if argument == "--verbose":
            return True
        if argument.startswith("--verbose="):
            return argument.split("=", 1)[1].lower() not in ("false", "0")
    return False


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Sends file descriptor 2 (where C++ code logs) to /dev/null for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet_tensorflow_startup(argv: Sequence[str]) -> None:
    """Imports TensorFlow and finds its devices without its C++ start-up logs, unless
    `argv` has ``--verbose`` or the user set ``TF_CPP_MIN_LOG_LEVEL``."""
    if wants_verbose(argv) or LOG_LEVEL_VARIABLE in os.environ:
        return
    os.environ[LOG_LEVEL_VARIABLE] = QUIET_LOG_LEVEL
    with stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()


def device_line() -> str:
    """One line naming where TensorFlow computes: the first GPU (and how many), else the CPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"device: CPU ({os.cpu_count()} cores; TensorFlow sees no GPU)"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    more = f" and {len(gpus) - 1} more" if len(gpus) > 1 else ""
    return f"device: GPU {name}{more}"
