"""What every command (``python -m u2fusion_tf.<command>``) shares: how it runs, reports and
reads a precision.

A command module follows one pattern::

    FLAGS = flags.FLAGS

    def main(argv): ...  # reads FLAGS.<name>; progress via `log`

    if __name__ == "__main__":
        flags.DEFINE_string("output", None, "...")
        cli.run_main(main, on_interrupt="what is kept, and how to resume")

The flags are defined at module level under the ``__main__`` guard, not at import: the commands
import each other as libraries (results uses fuse and evaluate, bench uses train) and share flag
names with different meanings (``--output``, ``--out_dir``), which absl refuses to define twice.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from absl import app, flags

from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.headers import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV
from u2fusion_tf.precision import ALIASES, PRECISIONS, canonical_precision


def log(line: str) -> None:
    """Progress and warnings go to stderr, unbuffered; stdout is kept for results."""
    print(line, file=sys.stderr, flush=True)


INTERRUPTED_EXIT = 130
"""The shell's status for a command stopped by Ctrl-C (128 + SIGINT)."""


def run_main(
    main: Callable[[list[str]], None],
    on_interrupt: str,
    computes: bool = True,
    reads_images: bool = False,
) -> None:
    """Runs an absl ``main`` after one line naming the device (only for commands that
    `computes` with TensorFlow; the others never start it), so that a `U2FusionError` or a
    failed file operation (a full disk, a folder without permission) ends as ``error:
    <message>`` and exit 1, and Ctrl-C as ``interrupted; <on_interrupt>`` (what was kept, how
    to resume) and exit 130. TensorFlow's logs show only with ``--verbose`` (see
    `u2fusion_tf.startup`). A command that `reads_images` gets ``--max_pixels``, which its
    ``main`` passes on to every function that reads images (None: `headers.pixel_limit`)."""
    from absl import logging

    from u2fusion_tf.startup import device_line

    flags.DEFINE_boolean("verbose", False, "Show TensorFlow's own start-up and progress logs.")
    if reads_images:
        flags.DEFINE_integer(
            "max_pixels",
            None,
            f"Refuse images whose header declares more pixels (width x height) than this; "
            f"default ${MAX_PIXELS_ENV} or {DEFAULT_MAX_PIXELS}.",
            lower_bound=1,
        )

    def guarded(argv: list[str]) -> None:
        if not flags.FLAGS.verbose:
            logging.set_verbosity(logging.WARNING)
        if computes:
            log(device_line())
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


class PrecisionParser(flags.ArgumentParser):
    """Parses a precision flag to its one word, accepting the aliases:
    ``flags.DEFINE(cli.PrecisionParser(), "precision", "float32", "...")``."""

    syntactic_help = " or ".join(PRECISIONS) + "".join(
        f" ({alias} = {word})" for alias, word in ALIASES.items()
    )

    def parse(self, argument: str) -> str:
        return canonical_precision(argument)

    def flag_type(self) -> str:
        return "precision"
