"""A command's start-up: Ctrl-C ends it with one line from the first moment, and TensorFlow,
when the command needs it, starts quiet and names the device in one line.

Importing TensorFlow prints a dozen C++ log lines (oneDNN notices, CPU instruction sets, and on
machines with CUDA libraries but no GPU ``failed call to cuInit: ... CUDA error``), which read
like failures. TensorFlow 2.21 writes some of them before its logging reads
``TF_CPP_MIN_LOG_LEVEL``, so a command sets ``TF_CPP_MIN_LOG_LEVEL=3`` and silences the
process's stderr while TensorFlow imports (an import hook: whichever module imports it first)
and while it first looks for devices (`device_line`). ``--verbose``, or ``TF_CPP_MIN_LOG_LEVEL``
set by the user, leaves TensorFlow's logging alone. Nothing here imports TensorFlow, so
``--help`` and usage errors answer before it loads.

`begin_command` runs first, before the command module's imports: from ``u2fusion_tf/__init__.py``
for ``python -m u2fusion_tf.<command>``, from `u2fusion_tf.console` for ``u2fusion-<command>``.
Until `cli.run_main` takes over, Ctrl-C prints one line and exits 130 at once (nothing has been
written yet), instead of a traceback out of the middle of an import.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence

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


INTERRUPTED_EXIT = 130
"""The shell's status for a command stopped by Ctrl-C (128 + SIGINT)."""
_saved_stderr: int | None = None
"""The real stderr while `stderr_silenced` holds it, so that a Ctrl-C line still shows."""
_quiet = False
"""Whether this command keeps TensorFlow's C++ logs hidden (`begin_command`)."""
_announce: Callable[[str], None] | None = None
"""Where to name the device once TensorFlow has started (`announce_device`)."""


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Sends file descriptor 2 (where C++ code logs) to /dev/null for the duration."""
    global _saved_stderr
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        _saved_stderr = saved
        yield
    finally:
        _saved_stderr = None
        os.dup2(saved, 2)
        os.close(saved)


def quiet_startup() -> contextlib.AbstractContextManager:
    """Silences stderr for TensorFlow's first steps if the command asked for quiet."""
    return stderr_silenced() if _quiet else contextlib.nullcontext()


class TensorFlowStart(importlib.abc.MetaPathFinder):
    """Imports the ``tensorflow`` package, when a module first asks for it, with stderr
    silenced (if quiet) and names the device after it (if asked); then steps aside."""

    def find_spec(self, name: str, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def start(module) -> None:
                with quiet_startup():
                    exec_module(module)
                if _announce:
                    _announce(device_line())

            spec.loader.exec_module = start
        return spec


def interrupted_at_startup(signum: int, frame) -> None:
    """Ctrl-C before the command runs: one line and exit 130 at once, with no traceback out of
    an import (numpy, TensorFlow) and nothing to clean up."""
    if _saved_stderr is not None:
        os.dup2(_saved_stderr, 2)
    os.write(2, b"interrupted; nothing was done\n")
    os._exit(INTERRUPTED_EXIT)


def begin_command(argv: Sequence[str]) -> None:
    """What a command does before anything else: Ctrl-C ends it with one line; TensorFlow, if
    the command imports it, starts without its C++ logs unless `argv` has ``--verbose`` or the
    user set ``TF_CPP_MIN_LOG_LEVEL``."""
    global _quiet
    signal.signal(signal.SIGINT, interrupted_at_startup)
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, TensorFlowStart())
    if wants_verbose(argv) or LOG_LEVEL_VARIABLE in os.environ:
        return
    _quiet = True
    os.environ[LOG_LEVEL_VARIABLE] = QUIET_LOG_LEVEL


def announce_device(log: Callable[[str], None]) -> None:
    """Logs `device_line` now if TensorFlow is loaded, else as soon as it loads: a command
    that never needs it (a usage error, --help) does not wait for it."""
    global _announce
    if "tensorflow" in sys.modules:
        log(device_line())
    else:
        _announce = log


def device_line() -> str:
    """One line naming where TensorFlow computes: the first GPU (and how many), else the CPU.
    It is the first look for devices (which logs on machines with CUDA libraries but no GPU)."""
    with quiet_startup():
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"device: CPU ({os.cpu_count()} cores; TensorFlow sees no GPU)"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    more = f" and {len(gpus) - 1} more" if len(gpus) > 1 else ""
    return f"device: GPU {name}{more}"
