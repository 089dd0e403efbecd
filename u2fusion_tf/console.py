"""The console commands that ``pip install`` puts on PATH: ``u2fusion-<command>`` runs
``python -m u2fusion_tf.<command>`` with the same flags (the list is in ``setup.py``).

Every entry point is `main`: it reads the command from the name it was started by and runs
that module as ``__main__``, as ``python -m`` does, because the command modules define their
flags only when they run as the program (see `u2fusion_tf.cli`).
"""

from __future__ import annotations

import os
import runpy
import sys

from u2fusion_tf.startup import begin_command

PREFIX = "u2fusion-"


def command_of(program: str) -> str:
    """The command a console script runs: ``.../u2fusion-fuse`` (or ``u2fusion-fuse.exe``)
    -> ``fuse``."""
    name = os.path.splitext(os.path.basename(program))[0]
    if not name.startswith(PREFIX):
        raise SystemExit(f"error: {program}: not a u2fusion-<command> console command")
    return name[len(PREFIX) :]


def main() -> None:
    """Runs the command named by ``sys.argv[0]`` as ``python -m u2fusion_tf.<command>``."""
    command = command_of(sys.argv[0])
    begin_command(sys.argv)
    runpy.run_module(f"u2fusion_tf.{command}", run_name="__main__", alter_sys=True)
