"""The generator for deployment: a SavedModel (TensorFlow Serving, ``tf.saved_model.load``) or a
TFLite file, loadable without this project.

Command line::

    python -m u2fusion_tf.export --weights official --format saved_model --output u2fusion/1
    python -m u2fusion_tf.export --format tflite --output u2fusion.tflite [--tflite_weights float16]

The SavedModel has two serving signatures:

* ``serving_default`` (`SIGNATURE_Y`): ``source1``, ``source2`` float32 (batch, H, W, 1) in
  [0, 1], any H, W >= 2, to ``fused_y`` float32 (batch, H, W, 1): what `fuse.fuse_y` computes
  (whole images, no tiling).
* ``fuse_images`` (`SIGNATURE_IMAGES`): ``image1``, ``image2`` uint8 (H, W, 1) gray or
  (H, W, 3) RGB, to ``fused`` uint8 (H, W, 1) when both are gray, else (H, W, 3) RGB, with the
  fuse tool's colour rules (one RGB source lends its chroma, two are fused by Eq. 10) and its
  8-bit rounding.

The TFLite file holds ``serving_default`` alone (inputs ``source1``, ``source2``; one output),
with dynamic H and W: its interpreter resizes to each input. ``--tflite_weights float16``
stores the weights in float16 (half the file; computation stays float32).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.cli import log
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.files import write_atomically
from u2fusion_tf.images import CHROMA_CENTRE, RGB_TO_YCBCR, YCBCR_TO_RGB
from u2fusion_tf.model import U2FusionNet
from u2fusion_tf.weights import WEIGHTS_HELP, load_model

SIGNATURE_Y = "serving_default"
SIGNATURE_IMAGES = "fuse_images"
FORMATS = ("saved_model", "tflite")
TFLITE_WEIGHTS = ("float32", "float16")
FLAGS = flags.FLAGS
_SOURCE = tf.TensorSpec((None, None, None, 1), tf.float32)
_IMAGE = tf.TensorSpec((None, None, None), tf.uint8)


def _to_ycbcr(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """uint8 (H, W, 1 or 3) -> Y (H, W), Cb-Cr (H, W, 2) and whether it is gray; a gray image
    keeps its values as Y and has exactly gray chroma, as `images.YCbCr.of` gives it."""
    pixels = tf.cast(image, tf.float32) / 255.0
    gray = tf.equal(tf.shape(image)[-1], 1)
    rgb = tf.tile(pixels, [1, 1, 3 // tf.shape(image)[-1]])
    ycbcr = tf.tensordot(rgb, tf.constant(RGB_TO_YCBCR.T, tf.float32), 1)
    y = tf.where(gray, pixels[..., 0], ycbcr[..., 0])
    chroma = tf.where(gray, CHROMA_CENTRE, ycbcr[..., 1:] + CHROMA_CENTRE)
    return y, chroma, gray


def _fuse_chroma(c1: tf.Tensor, c2: tf.Tensor) -> tf.Tensor:
    """`images.fuse_chroma` (paper Eq. 10) in TensorFlow."""
    d1, d2 = tf.abs(c1 - CHROMA_CENTRE), tf.abs(c2 - CHROMA_CENTRE)
    total = d1 + d2
    return tf.where(total == 0, CHROMA_CENTRE, tf.math.divide_no_nan(c1 * d1 + c2 * d2, total))


class FusionModule(tf.Module):
    """The serving signatures around one generator (see the module docstring)."""

    def __init__(self, model: U2FusionNet):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[_SOURCE, _SOURCE])
    def fuse_y(self, source1: tf.Tensor, source2: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"fused_y": self.model(tf.concat([source1, source2], -1), training=False)}

    @tf.function(input_signature=[_IMAGE, _IMAGE])
    def fuse_images(self, image1: tf.Tensor, image2: tf.Tensor) -> dict[str, tf.Tensor]:
        tf.debugging.assert_equal(tf.shape(image1)[:2], tf.shape(image2)[:2], "sizes differ")
        y1, chroma1, gray1 = _to_ycbcr(image1)
        y2, chroma2, gray2 = _to_ycbcr(image2)
        y = self.model(tf.stack([y1, y2], -1)[tf.newaxis], training=False)[0]
        chroma = tf.where(gray1, chroma2, tf.where(gray2, chroma1, _fuse_chroma(chroma1, chroma2)))
        ycbcr = tf.concat([y, chroma - CHROMA_CENTRE], -1)
        rgb = tf.tensordot(ycbcr, tf.constant(YCBCR_TO_RGB.T, tf.float32), 1)
        channels = tf.where(gray1 & gray2, 1, 3)  # gray: R = Y exactly, the chroma being 0.5
        fused = tf.round(tf.clip_by_value(rgb[..., :channels], 0.0, 1.0) * 255.0)
        return {"fused": tf.cast(fused, tf.uint8)}


def save_saved_model(model: U2FusionNet, output: str | os.PathLike) -> None:
    """Writes the SavedModel folder whole or not at all (built beside it, then renamed); an
    existing SavedModel at `output` is replaced, anything else there is refused."""
    output = Path(output)
    if output.exists() and not (output / "saved_model.pb").is_file():
        raise U2FusionError(f"{output}: exists and is not a SavedModel; choose another --output")
    parent = make_parent(output)
    module = FusionModule(model)
    building = Path(tempfile.mkdtemp(dir=parent, prefix=".tmp-"))
    try:
        tf.saved_model.save(
            module,
            str(building),
            signatures={SIGNATURE_Y: module.fuse_y, SIGNATURE_IMAGES: module.fuse_images},
        )
        building.chmod(0o777 & ~_umask())
        if output.exists():
            old = Path(tempfile.mkdtemp(dir=parent, prefix=".old-"))
            output.rename(old / "saved_model")
            building.rename(output)
            shutil.rmtree(old)
        else:
            building.rename(output)
    finally:
        shutil.rmtree(building, ignore_errors=True)


def make_parent(output: str | os.PathLike) -> Path:
    """Creates the folder `output` goes in, with its missing parents (as ``mkdir -p``)."""
    parent = Path(output).absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise U2FusionError(f"{output}: cannot create {parent} ({error.strerror})") from error
    return parent


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def tflite_bytes(model: U2FusionNet, weights: str = "float32") -> bytes:
    """The ``serving_default`` signature as a TFLite flatbuffer with dynamic H, W.

    The weights are frozen into constants first: converted with its variables, the Keras 3
    model gives a file without them (and NaN outputs).
    """
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

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
    """Writes `model` in `form` ("saved_model" or "tflite") to `output`."""
    if form == "saved_model":
        save_saved_model(model, output)
    elif form == "tflite":
        make_parent(output)
        write_atomically(output, tflite_bytes(model, tflite_weights))
    else:
        raise U2FusionError(f"unknown format {form!r}; use {' or '.join(FORMATS)}")


def main(argv: list[str]) -> None:
    del argv
    if not FLAGS.output:
        raise U2FusionError("give --output (a folder for saved_model, a .tflite file for tflite)")
    weights = FLAGS.weights
    if weights and os.path.exists(FLAGS.output) and os.path.samefile(weights, FLAGS.output):
        raise U2FusionError(f"{FLAGS.output}: is the weights file; choose another --output")
    export(load_model(weights), FLAGS.format, FLAGS.output, FLAGS.tflite_weights)
    log(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    flags.DEFINE_string("weights", None, WEIGHTS_HELP)
    flags.DEFINE_enum("format", "saved_model", list(FORMATS), "What to write.")
    flags.DEFINE_string("output", None, "SavedModel folder, or .tflite file.")
    flags.DEFINE_enum(
        "tflite_weights", "float32", list(TFLITE_WEIGHTS), "TFLite weight storage (float16: half)."
    )
    cli.run_main(main, on_interrupt="no partial export was written")
