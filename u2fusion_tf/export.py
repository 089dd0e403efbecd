"""The generator for deployment: a SavedModel (TensorFlow Serving, ``tf.saved_model.load``) or a
TFLite file, loadable without this project; written by ``python -m u2fusion_tf.export``.

The SavedModel has two serving signatures:

* ``serving_default`` (`SIGNATURE_Y`): ``source1``, ``source2`` float32 (batch, H, W, 1) in
  [0, 1], any H, W >= 2, to ``fused_y`` float32 (batch, H, W, 1): what `fusion.fuse_y` computes
  (whole images, no tiling).
* ``fuse_images`` (`SIGNATURE_IMAGES`): ``image1``, ``image2`` uint8 (H, W, 1) gray or
  (H, W, 3) RGB, to ``fused`` uint8 (H, W, 1) when both are gray, else (H, W, 3) RGB, with the
  fuse tool's colour rules (one RGB source lends its chroma, two are fused by Eq. 10) and its
  8-bit rounding.

TensorFlow is imported only for the work (the signatures are `u2fusion_tf.serving`), so the
command checks its flags and output first.

Command line::

    python -m u2fusion_tf.export --weights official --format saved_model --output u2fusion/1
    python -m u2fusion_tf.export --format tflite --output u2fusion.tflite [--tflite_weights float16]

The TFLite file holds ``serving_default`` alone (inputs ``source1``, ``source2``; one output),
with dynamic H and W: its interpreter resizes to each input. ``--tflite_weights float16``
stores the weights in float16 (half the file; computation stays float32).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.cli import log
from u2fusion_tf.errors import FileError, U2FusionError
from u2fusion_tf.files import (
    check_writable,
    folder_replaced_atomically,
    refuse_overwriting_inputs,
    write_atomically,
)

if TYPE_CHECKING:
    from u2fusion_tf.model import U2FusionNet

SIGNATURE_Y = "serving_default"
SIGNATURE_IMAGES = "fuse_images"
FORMATS = ("saved_model", "tflite")
TFLITE_WEIGHTS = ("float32", "float16")
FLAGS = flags.FLAGS


def check_output(form: str, output: str | os.PathLike) -> None:
    """Fails before any work when `output` cannot take an export in `form`: its folder is
    missing or read-only, or something other than a SavedModel would be replaced."""
    if form not in FORMATS:
        raise U2FusionError(f"unknown format {form!r}; use {' or '.join(FORMATS)}")
    if form == "tflite":
        check_writable(output)
        return
    check_writable(output, folder=True)
    if os.path.exists(output) and not os.path.isfile(os.path.join(output, "saved_model.pb")):
        raise FileError(str(output), "exists and is not a SavedModel; choose another --output")


def save_saved_model(model: U2FusionNet, output: str | os.PathLike) -> None:
    """Writes the SavedModel folder whole or not at all; an existing SavedModel at `output` is
    replaced, anything else there is refused."""
    import tensorflow as tf

    from u2fusion_tf.serving import FusionModule

    check_output("saved_model", output)
    module = FusionModule(model)
    with folder_replaced_atomically(output) as building:
        tf.saved_model.save(
            module,
            building,
            signatures={SIGNATURE_Y: module.fuse_y, SIGNATURE_IMAGES: module.fuse_images},
        )


def make_parent(output: str | os.PathLike) -> Path:
    """Creates the folder `output` goes in, with its missing parents (as ``mkdir -p``)."""
    parent = Path(output).absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise U2FusionError(f"{output}: cannot create {parent} ({error.strerror})") from error
    return parent


def tflite_bytes(model: U2FusionNet, weights: str = "float32") -> bytes:
    """The ``serving_default`` signature as a TFLite flatbuffer with dynamic H, W.

    The weights are frozen into constants first: converted with its variables, the Keras 3
    model gives a file without them (and NaN outputs).
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    from u2fusion_tf.serving import FusionModule

    if weights not in TFLITE_WEIGHTS:
        raise U2FusionError(
            f"unknown TFLite weights {weights!r}; use {' or '.join(TFLITE_WEIGHTS)}"
        )
    module = FusionModule(model)
    frozen = convert_variables_to_constants_v2(module.fuse_y.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], module)
    if weights == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def tflite_interpreter_class() -> tuple[type, str]:
    """The TFLite interpreter and whose it is: LiteRT's (``pip install ai-edge-litert``) where
    it is installed, else TensorFlow's ``tf.lite.Interpreter`` (deprecated in its favour;
    TensorFlow 2.21 still ships it, and it runs)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        return tf.lite.Interpreter, "tf.lite.Interpreter (TensorFlow; LiteRT is not installed)"
    return Interpreter, "LiteRT (ai_edge_litert)"


class TFLiteFusion:
    """Runs an exported TFLite generator like `U2FusionNet.infer`: (batch, H, W, 2) sources to
    the fused (batch, H, W, 1), with TFLite's CPU kernels (XNNPACK), in the interpreter of
    `tflite_interpreter_class` (named by `engine`)."""

    def __init__(self, content: bytes, threads: int | None = None):
        interpreter, self.engine = tflite_interpreter_class()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*tf.lite.Interpreter is deprecated", UserWarning)
            self.interpreter = interpreter(
                model_content=content, num_threads=threads or os.cpu_count()
            )
        self.run = self.interpreter.get_signature_runner(SIGNATURE_Y)

    def infer(self, sources: np.ndarray) -> np.ndarray:
        sources = np.asarray(sources, np.float32)
        (fused,) = self.run(source1=sources[..., :1], source2=sources[..., 1:]).values()
        return fused  # its name is lost when the weights are frozen


def export(model: U2FusionNet, form: str, output: str, tflite_weights: str = "float32") -> None:
    """Writes `model` in `form` ("saved_model" or "tflite") to `output`, creating its missing
    parent folders."""
    make_parent(output)
    check_output(form, output)
    if form == "saved_model":
        save_saved_model(model, output)
    else:
        write_atomically(output, tflite_bytes(model, tflite_weights))


def main(argv: list[str]) -> None:
    del argv
    if not FLAGS.output:
        raise U2FusionError("give --output (a folder for saved_model, a .tflite file for tflite)")
    from u2fusion_tf.weights import OFFICIAL, default_weights, load_model

    weights = FLAGS.weights or default_weights()
    replaces_folder = FLAGS.format == "saved_model"
    refuse_overwriting_inputs(
        FLAGS.output, [] if weights == OFFICIAL else [weights], replaces_folder
    )
    make_parent(FLAGS.output)
    check_output(FLAGS.format, FLAGS.output)  # before loading (or downloading) the weights
    export(load_model(weights), FLAGS.format, FLAGS.output, FLAGS.tflite_weights)
    log(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    from u2fusion_tf import common_flags

    common_flags.define_weights()
    flags.DEFINE_enum("format", "saved_model", list(FORMATS), "What to write.")
    flags.DEFINE_string("output", None, "SavedModel folder, or .tflite file.")
    flags.DEFINE_enum(
        "tflite_weights", "float32", list(TFLITE_WEIGHTS), "TFLite weight storage (float16: half)."
    )
    cli.run_main(main, on_interrupt="no partial export was written")
