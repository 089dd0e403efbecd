"""Where the generator's weights come from: the authors' TF1 checkpoint, or Keras weights files.

``load_model(weights)`` accepts

* ``"official"``: the authors' released checkpoint (hanna-xu/U2Fusion, pinned commit), taken from
  ``$U2FUSION_OFFICIAL_CKPT`` (a local checkpoint prefix) if set, else downloaded once into the
  Keras cache (``~/.keras/u2fusion_tf/``) and verified by SHA-256;
* a Keras weights file (``*.weights.h5``), e.g. one written by training or by
  ``python -m u2fusion_tf.weights --output official.weights.h5`` (the authors' weights converted);
* ``None``: the model this project ships inside the package (`SHIPPED_WEIGHTS`; its training
  record is in ``checkpoints/README.md``), else ``"official"``.

TensorFlow is imported on first use, so that a command's ``--help`` does not wait for it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.errors import WeightsError
from u2fusion_tf.files import replaced_atomically, sha256_of

if TYPE_CHECKING:  # imported where used: the commands' flags are read without TensorFlow
    import keras

    from u2fusion_tf.model import U2FusionNet

FLAGS = flags.FLAGS

OFFICIAL = "official"
OFFICIAL_ENV = "U2FUSION_OFFICIAL_CKPT"
OFFICIAL_REPOSITORY = "hanna-xu/U2Fusion"
OFFICIAL_COMMIT = "0a5882140df67b3e0b588e1f2233e18cf944f1a4"
OFFICIAL_FILES = {
    "model.ckpt.index": "15b7d283a1de8f616cc42978346bd24d47a9c380d624370368b956beb593014e",
    "model.ckpt.data-00000-of-00001": (
        "e50cada8d4ec92f2577ad5db5d212fba521dffb35d04e00a20364b43512c64c8"
    ),
}
OFFICIAL_SCOPES = {
    "conv1_1": "Generator/encoder",
    **{f"dense_block_conv{k}": "Generator/encoder" for k in range(1, 6)},
    **{f"conv2_{k}": "Generator_1/decoder" for k in range(1, 5)},
}
"""The TF1 variable scope of each convolution in the authors' checkpoint."""

SHIPPED_WEIGHTS = Path(__file__).resolve().with_name("u2fusion.weights.h5")
"""The model this project trained, shipped inside the package (``package_data``), so every
install fuses with it offline; one file, no copy."""
SHIPPED_NAME = f"u2fusion_tf/{SHIPPED_WEIGHTS.name}"
"""How documents and help texts name it (its place in the source tree and in the wheel)."""
SHIPPED_SHA256 = "406bba656dcb43234cb793810519fbc794fab7b0f8f45fb4a28fab9029bed5d0"
"""The shipped model's file; another file in its place (a damaged copy, or a model retrained
there) is used with a warning."""
KERAS_WEIGHTS_SUFFIX = ".weights.h5"
WEIGHTS_HELP = (
    "Keras .weights.h5 file, or 'official' for the authors' checkpoint. "
    f"Default: the shipped model ({SHIPPED_NAME}) if present, else 'official'."
)
"""The ``--weights`` flag's help, for every command that loads a model."""


def official_url(filename: str) -> str:
    return f"https://github.com/{OFFICIAL_REPOSITORY}/raw/{OFFICIAL_COMMIT}/model/{filename}"


def official_checkpoint() -> str:
    """The prefix of a verified copy of the authors' checkpoint, downloading it if needed."""
    prefix = os.environ.get(OFFICIAL_ENV)
    if prefix:
        folder, stem = os.path.split(prefix)
        for filename, expected in OFFICIAL_FILES.items():
            path = os.path.join(folder, filename.replace("model.ckpt", stem, 1))
            if not os.path.isfile(path):
                raise WeightsError(
                    f"{path}: not found ({OFFICIAL_ENV}={prefix} names a checkpoint prefix)"
                )
            if sha256_of(path) != expected:
                raise WeightsError(f"{path}: SHA-256 differs from the authors' released checkpoint")
        return prefix
    import keras

    cache_subdir = f"u2fusion_tf/official-{OFFICIAL_COMMIT[:7]}"
    for filename, expected in OFFICIAL_FILES.items():
        try:
            path = keras.utils.get_file(
                filename, official_url(filename), file_hash=expected, cache_subdir=cache_subdir
            )
        except Exception as error:  # any network or hash failure ends in the same advice
            raise WeightsError(
                f"cannot download the authors' checkpoint ({official_url(filename)}: {error}); "
                f"without internet, set {OFFICIAL_ENV} to a local copy's prefix "
                "(…/model.ckpt, with model.ckpt.index and model.ckpt.data-00000-of-00001 "
                "beside it) or pass a Keras weights file"
            ) from error
    return os.path.join(os.path.dirname(path), "model.ckpt")


def import_official_checkpoint(prefix: str, model: U2FusionNet | None = None) -> U2FusionNet:
    """Copies the authors' TF1 variables (``<scope>/<layer>/kernel`` in HWIO, ``bias``) into the
    Keras generator, layer by layer."""
    import tensorflow as tf

    from u2fusion_tf.model import U2FusionNet

    model = model or U2FusionNet()
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name, conv in model.named_convolutions().items():
            scope = f"{OFFICIAL_SCOPES[name]}/{name}"
            conv.kernel.assign(reader.get_tensor(f"{scope}/kernel"))
            conv.bias.assign(reader.get_tensor(f"{scope}/bias"))
    except (tf.errors.OpError, ValueError) as error:
        raise WeightsError(f"{prefix}: not the authors' U2Fusion checkpoint ({error})") from error
    return model


def default_weights() -> str:
    """The project's trained model if it is in the package, else the authors' weights."""
    return str(SHIPPED_WEIGHTS) if SHIPPED_WEIGHTS.is_file() else OFFICIAL


def is_shipped(weights: str | os.PathLike) -> bool:
    """Whether `weights` is the shipped file (whatever path names it)."""
    return SHIPPED_WEIGHTS.is_file() and os.path.samefile(weights, SHIPPED_WEIGHTS)


def load_model(weights: str | os.PathLike | None = None, precision: str = "float32") -> U2FusionNet:
    """A generator with the given weights: ``"official"``, a ``.weights.h5`` file or None
    (default), computing in `precision` ("float32" or "bf16")."""
    from u2fusion_tf.model import U2FusionNet

    weights = default_weights() if weights is None else str(weights)
    if weights != OFFICIAL:
        if not os.path.isfile(weights):
            raise WeightsError(f"{weights}: no such weights file (or pass '{OFFICIAL}')")
        if not weights.endswith(KERAS_WEIGHTS_SUFFIX):
            raise WeightsError(
                f"{weights}: expected a Keras weights file ending in {KERAS_WEIGHTS_SUFFIX}"
            )

    model = U2FusionNet(precision)
    if weights == OFFICIAL:
        return import_official_checkpoint(official_checkpoint(), model)
    if is_shipped(weights) and sha256_of(weights) != SHIPPED_SHA256:
        cli.log(
            f"warning: {weights}: SHA-256 differs from the model this project ships "
            "(retrained or damaged); using it"
        )
    try:
        model.load_weights(weights)
    except Exception as error:  # h5py and Keras raise many types for a bad file
        raise WeightsError(f"{weights}: not U2Fusion generator weights ({error})") from error
    if not all(np.isfinite(variable.numpy()).all() for variable in model.weights):
        raise WeightsError(f"{weights}: has values that are not finite (NaN or infinite)")
    return model


def save_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """Saves Keras weights whole or not at all: a crash mid-write never leaves a truncated file
    at `path`."""
    path = str(path)
    if not path.endswith(KERAS_WEIGHTS_SUFFIX):
        raise WeightsError(f"{path}: Keras weights files must end in {KERAS_WEIGHTS_SUFFIX}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with replaced_atomically(path) as temporary:
        model.save_weights(temporary, overwrite=True)


def main(argv: list[str]) -> None:
    """``python -m u2fusion_tf.weights --output FILE``: the authors' weights as a Keras file."""
    del argv
    save_weights(load_model(OFFICIAL), FLAGS.output)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    flags.DEFINE_string("output", "official.weights.h5", "Keras weights file to write.")
    cli.run_main(main, on_interrupt="no weights file was written")
