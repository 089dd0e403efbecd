"""Errors a user can act on: the command-line tools print them as one line and exit non-zero
(`u2fusion_tf.cli.run_main`)."""

from __future__ import annotations


class U2FusionError(Exception):
    """A problem with the user's input, files or settings (not a bug in the program)."""


class FileError(U2FusionError):
    """A file that cannot be read or written; the message starts with its path."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class ImageError(FileError):
    """An image file that cannot be read, written or fused."""


class WeightsError(U2FusionError):
    """Model weights that cannot be found, fetched, verified or loaded."""
