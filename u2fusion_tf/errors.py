"""Errors a user can act on: the command-line tools print them as one line and exit non-zero."""

from __future__ import annotations

import sys
from collections.abc import Callable

from absl import app


class U2FusionError(Exception):
    """A problem with the user's input, files or settings (not a bug in the program)."""


class ImageError(U2FusionError):
    """An image file that cannot be read, written or fused; the message starts with its path."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class WeightsError(U2FusionError):
    """Model weights that cannot be found, fetched, verified or loaded."""


INTERRUPTED_EXIT = 130
"""The shell's status for a command stopped by Ctrl-C (128 + SIGINT)."""


def run_main(main: Callable[[list[str]], None], on_interrupt: str) -> None:
    """Runs an absl ``main`` so that a `U2FusionError` or a failed file operation (a full disk,
    a folder without permission) ends as ``error: <message>`` and exit 1, and Ctrl-C as
    ``interrupted; <on_interrupt>`` (what was kept, how to resume) and exit 130."""

    def guarded(argv: list[str]) -> None:
        try:
            main(argv)
        except U2FusionError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            print(f"error: {where}{error.strerror or error}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print(f"interrupted; {on_interrupt}", file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT)

    app.run(guarded)
