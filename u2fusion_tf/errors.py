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


def run_main(main: Callable[[list[str]], None]) -> None:
    """Runs an absl ``main`` so that a `U2FusionError` ends as ``error: <message>`` and exit 1."""

    def guarded(argv: list[str]) -> None:
        try:
            main(argv)
        except U2FusionError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)

    app.run(guarded)
