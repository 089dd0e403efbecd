"""What every command (``python -m u2fusion_tf.<command>``) shares: how it runs, reports and
reads a precision.

A command module follows one pattern::

    FLAGS = flags.FLAGS

    def main(argv): ...  # reads FLAGS.<name>, calls the library; progress via `log`

    if __name__ == "__main__":
        from u2fusion_tf import common_flags

        flags.DEFINE_string("output", None, "...")
        common_flags.define_weights()  # flags several commands share
        cli.run_main(main, on_interrupt="what is kept, and how to resume")

The flags are defined under the ``__main__`` guard, not at import: the Python API imports
command modules (``u2fusion_tf.fuse``), the tests import several in one process, and commands
share flag names with different meanings (``--output``, ``--out_dir``), which absl refuses to
define twice. No module imports a command; what commands share lives in the library.

A command imports TensorFlow only when it needs it (in its functions, not at the top of the
module), so ``--help`` and usage errors answer at once; `startup` names the device when
TensorFlow starts.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import sys
from collections.abc import Callable, Sequence

from absl import app, flags

from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.headers import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV
from u2fusion_tf.precision import ALIASES, PRECISIONS, canonical_precision
from u2fusion_tf.startup import INTERRUPTED_EXIT, announce_device


def log(line: str) -> None:
    """Progress and warnings go to stderr, unbuffered; stdout is kept for results."""
    print(line, file=sys.stderr, flush=True)


WAIT_SECONDS = 0.2
"""How long the main thread waits for a thread's work at a time: Linux may hand a Ctrl-C to any
thread, and a wait without a timeout would not see it until the work is done."""


def result_of(future: concurrent.futures.Future):
    """`future`'s result, waiting in slices of `WAIT_SECONDS` so that Ctrl-C ends the wait."""
    while True:
        try:
            return future.result(timeout=WAIT_SECONDS)
        except concurrent.futures.TimeoutError:
            continue


def rate_and_eta(done: int, total: int, elapsed: float, unit: str) -> str:
    """``, <rate> <unit>/s, ETA H:MM:SS`` for progress lines, once something is done."""
    if done <= 0 or elapsed <= 0:
        return ""
    rate = done / elapsed
    left = round((total - done) / rate)
    return f", {rate:.2f} {unit}/s, ETA {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"


SHORT_HELP = frozenset({"--help", "-help", "-?", "--helpshort", "-helpshort"})
FULL_HELP = frozenset({"--helpfull", "-helpfull"})


def parse_flags(argv: Sequence[str]) -> list[str]:
    """absl's flag parsing, except that asking for help prints it and exits 0 (absl exits 1),
    before any other flag is looked at."""
    for argument in argv[1:]:
        if argument == "--":
            break
        if argument in SHORT_HELP | FULL_HELP:
            app.usage(shorthelp=argument in SHORT_HELP, writeto_stdout=True)
            if argument in SHORT_HELP:
                print("\nTry --helpfull to get a list of all flags.")
            sys.exit(0)
    return app.parse_flags_with_usage(list(argv))


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
    ``main`` passes on to every function that reads images (None: `headers.pixel_limit`).
    ``--help`` lists these shared flags with the command's own and exits 0."""
    from absl import logging

    shared = [
        flags.DEFINE_boolean("verbose", False, "Show TensorFlow's own start-up and progress logs.")
    ]
    if reads_images:
        shared.append(
            flags.DEFINE_integer(
                "max_pixels",
                None,
                "Refuse images whose header declares more pixels (width x height) than this "
                f"(default: ${MAX_PIXELS_ENV}, else {DEFAULT_MAX_PIXELS}).",
                lower_bound=1,
            )
        )
    for flag in shared:  # shown by --help, which lists the main module's key flags
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[flag.name])

    def guarded(argv: list[str]) -> None:
        try:
            # From here Ctrl-C raises KeyboardInterrupt, so that cleanups run (until now it
            # ended the command at once: `startup.interrupted_at_startup`)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if not flags.FLAGS.verbose:
                logging.set_verbosity(logging.WARNING)
            if computes:
                announce_device(log)
            main(argv)
        except U2FusionError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            print(f"error: {where}{error.strerror or error}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # one line, however often it is pressed
            print(f"interrupted; {on_interrupt}", file=sys.stderr)
            end_now(INTERRUPTED_EXIT)

    app.run(guarded, flags_parser=parse_flags)


def end_now(status: int) -> None:
    """Exits without tearing the interpreter down. Once the interrupt has unwound the command
    (its cleanups run, its thread pools joined) nothing is left to do, but unloading TensorFlow
    takes seconds, a minute on a loaded machine: the user (or a test) would wait for it."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


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
