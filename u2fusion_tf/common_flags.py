"""The flags several commands share, each defined here once with its one help text.

A command calls these under its ``__main__`` guard, next to its own flags (see `cli`); they are
key flags of the command, so its ``--help`` lists them.
"""

from __future__ import annotations

import sys

from absl import flags

from u2fusion_tf.catalogue import DATA_ROOT_HELP
from u2fusion_tf.cli import PrecisionParser
from u2fusion_tf.images import OUTPUT_SCALINGS
from u2fusion_tf.weights import WEIGHTS_HELP


def define_data_root() -> None:
    _key(flags.DEFINE_string("data_root", None, DATA_ROOT_HELP))


def define_weights() -> None:
    _key(flags.DEFINE_string("weights", None, WEIGHTS_HELP))


def define_precision() -> None:
    _key(
        flags.DEFINE(
            PrecisionParser(),
            "precision",
            "float32",
            "Compute precision of the generator; bf16 is about 3.5x faster on CPUs with bf16 units "
            "(fused Y within 0.005 of float32).",
        )
    )


def define_max_pairs() -> None:
    _key(
        flags.DEFINE_integer(
            "max_pairs",
            0,
            "Use only the first N pairs of each set (0: all of them).",
            lower_bound=0,
        )
    )


def define_output_scaling() -> None:
    _key(
        flags.DEFINE_enum(
            "output_scaling",
            "none",
            list(OUTPUT_SCALINGS),
            "none: the network output as it is; authors: as the authors' test program saves it "
            "(each image stretched by 1 / its maximum before 8 bits; for two colour sources the "
            "gray fused Y), the images behind the paper's tables.",
        )
    )


def _key(flag: flags.FlagHolder) -> None:
    """Makes a shared flag a key flag of the running command (absl's --help lists only those)."""
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[flag.name])
