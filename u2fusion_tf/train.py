"""``python -m u2fusion_tf.train`` (``u2fusion-train``): the command that trains U2Fusion's three
tasks in sequence (`u2fusion_tf.training`), every setting a flag of `u2fusion_tf.config`::

    python -m u2fusion_tf.train --data_dir data --run_dir runs/u2fusion --output my.weights.h5

Running the same command again resumes where the last checkpoint left off; finished tasks are
not redone. TensorFlow is imported only when training starts, so ``--help`` answers at once.
"""

from __future__ import annotations

import os

from absl import flags

from u2fusion_tf import cli, config
from u2fusion_tf.config import config_from_flags, define_flags
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.files import check_writable
from u2fusion_tf.weights import KERAS_WEIGHTS_SUFFIX

FLAGS = flags.FLAGS


def check_output(path: str | None) -> None:
    """Refuses an --output that cannot take the final weights, before any work."""
    if path:
        if not path.endswith(KERAS_WEIGHTS_SUFFIX):
            raise U2FusionError(f"--output {path}: must end in {KERAS_WEIGHTS_SUFFIX}")
        if os.path.isdir(os.path.dirname(os.path.abspath(path))):
            check_writable(path)


def without_determinism_hint(error, deterministic: bool) -> Exception:
    """A TensorFlow error, as a one-line `U2FusionError` when op determinism caused it (an op
    with no deterministic kernel on this device); any other error unchanged."""
    if deterministic and "determinis" in error.message.lower():
        first_line = error.message.strip().splitlines()[0]
        return U2FusionError(f"{first_line}; train with --nodeterministic on this device")
    return error


def main(argv: list[str]) -> None:
    import tensorflow as tf

    from u2fusion_tf.training import Trainer
    from u2fusion_tf.weights import save_weights

    del argv
    order = FLAGS.tasks
    check_output(FLAGS.output)
    settings = config_from_flags(
        FLAGS,
        data_files={t: os.path.join(FLAGS.data_dir, f"{t}.h5") for t in order},
        run_dir=FLAGS.run_dir,
    )
    trainer = Trainer(settings, log=cli.log)
    try:
        final = trainer.run()
    except KeyboardInterrupt:
        trainer.writer.flush()  # the command ends without teardown (`cli.end_now`)
        raise
    except tf.errors.OpError as error:
        hint = without_determinism_hint(error, settings.deterministic)
        if hint is error:
            raise
        raise hint from error
    if FLAGS.output and trainer.chief and int(trainer.state.task_index) == len(order):
        save_weights(trainer.model, FLAGS.output)
        cli.log(f"wrote {FLAGS.output} (the weights after task {len(order)}, {final})")


if __name__ == "__main__":
    flags.DEFINE_string("data_dir", "data", "Folder with the prepared <task>.h5 files.")
    flags.DEFINE_string(
        "run_dir", "runs/u2fusion", "Run folder: checkpoints, per-task weights, TensorBoard."
    )
    flags.DEFINE_string("output", None, "Also copy the final weights here when all tasks are done.")
    define_flags()
    flags.adopt_module_key_flags(config)  # --help lists the settings' flags too
    cli.run_main(
        main, on_interrupt="the last checkpoint is kept; run the same command again to resume"
    )
