"""The authors' checkpoint: import, reproduction of their TF1 program, Keras weights files."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from u2fusion_tf.catalogue import u2fusion_test_sets
from u2fusion_tf.errors import WeightsError
from u2fusion_tf.files import sha256_of
from u2fusion_tf.fuse import fuse_y
from u2fusion_tf.images import read_image, to_luminance
from u2fusion_tf.weights import (
    OFFICIAL_FILES,
    import_official_checkpoint,
    load_model,
    official_checkpoint,
    save_weights,
)


class AuthorsTF1Program:
    """The authors' test graph rebuilt with TF1 ops in a `tf.compat.v1` session: their variables
    (created under their own names), restored by a TF1 `Saver` from their checkpoint, and their
    ops (REFLECT pad, VALID conv, bias_add, max(x, 0.2x), concat([new, old]), tanh/2 + 0.5)."""

    def __init__(self, prefix: str):
        self.graph = tf.Graph()
        v1 = tf.compat.v1
        reader = tf.train.load_checkpoint(prefix)
        with self.graph.as_default():
            self.source1 = v1.placeholder(tf.float32, (1, None, None, 1))
            self.source2 = v1.placeholder(tf.float32, (1, None, None, 1))
            variables = {
                name: v1.Variable(tf.zeros(shape), name=name)
                for name, shape in reader.get_variable_to_shape_map().items()
            }

            def conv(x, scope, leaky=True):
                x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
                out = tf.nn.bias_add(
                    tf.nn.conv2d(x, variables[f"{scope}/kernel"], [1, 1, 1, 1], "VALID"),
                    variables[f"{scope}/bias"],
                )
                return tf.maximum(out, 0.2 * out) if leaky else out

            out = conv(tf.concat([self.source1, self.source2], 3), "Generator/encoder/conv1_1")
            for k in range(1, 6):
                out = tf.concat([conv(out, f"Generator/encoder/dense_block_conv{k}"), out], 3)
            for k in range(1, 4):
                out = conv(out, f"Generator_1/decoder/conv2_{k}")
            out = conv(out, "Generator_1/decoder/conv2_4", leaky=False)
            self.fused = tf.nn.tanh(out) / 2 + 0.5
            self.session = v1.Session(graph=self.graph)
            v1.train.Saver(var_list=variables).restore(self.session, prefix)

    def __call__(self, y1: np.ndarray, y2: np.ndarray) -> np.ndarray:
        feed = {self.source1: y1[None, :, :, None], self.source2: y2[None, :, :, None]}
        return self.session.run(self.fused, feed)[0, :, :, 0]


def test_import_copies_every_variable(official_env):
    model = import_official_checkpoint(official_checkpoint())
    reader = tf.train.load_checkpoint(official_env)
    names = reader.get_variable_to_shape_map()
    assert len(names) == 20
    imported = {}
    for layer, conv in model.named_convolutions().items():
        (scope,) = [n.rsplit("/", 1)[0] for n in names if n.endswith(f"/{layer}/kernel")]
        np.testing.assert_array_equal(conv.kernel.numpy(), reader.get_tensor(f"{scope}/kernel"))
        np.testing.assert_array_equal(conv.bias.numpy(), reader.get_tensor(f"{scope}/bias"))
        imported[f"{scope}/kernel"] = imported[f"{scope}/bias"] = True
    assert set(imported) == set(names)


def test_keras_weights_round_trip(official_env, tmp_path):
    path = tmp_path / "official.weights.h5"
    save_weights(load_model("official"), path)
    assert sorted(os.listdir(tmp_path)) == ["official.weights.h5"], "no temporary file left"
    reloaded = load_model(path)
    reference = import_official_checkpoint(official_env)
    for a, b in zip(reloaded.weights, reference.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("source", ["official", "keras file"])
def test_bf16_models_compute_in_bfloat16(official_env, tmp_path, source):
    """Whichever way the weights arrive, `precision="bf16"` keeps float32 weights but computes
    in bfloat16: its fused image differs from float32 by bf16 rounding, not by zero."""
    weights = "official"
    if source == "keras file":
        weights = tmp_path / "official.weights.h5"
        save_weights(load_model("official"), weights)
    f32, bf16 = load_model(weights), load_model(weights, precision="bf16")
    assert bf16.precision == "bf16" and bf16.conv1_1.conv.compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in bf16.weights)
    for a, b in zip(f32.weights, bf16.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    sources = tf.random.uniform((1, 64, 64, 2), seed=3)
    difference = np.abs(bf16.infer(sources).numpy() - f32.infer(sources).numpy())
    assert 0 < difference.mean() < 1 / 255


def test_reproduces_the_authors_tf1_program_on_their_test_pairs(
    official_env, shared_data, all_pairs
):
    """The fused Y of whole test images agrees with the authors' graph to float32 rounding: the
    first pair of each of the six u2fusion_test sets, or all 35 with ``--all-pairs``."""
    authors = AuthorsTF1Program(official_env)
    model = load_model("official")
    differences, sets = [], u2fusion_test_sets(shared_data)
    for pairs in sets:
        for _, path1, path2 in pairs.pairs()[: None if all_pairs else 1]:
            y1 = to_luminance(read_image(path1))
            y2 = to_luminance(read_image(path2))
            ours = fuse_y(y1, y2, model)
            theirs = authors(y1, y2)
            assert ours.shape == theirs.shape == y1.shape
            differences.append(np.abs(ours - theirs).mean())
            assert np.abs(ours - theirs).max() < 1e-4, path1
    assert len(differences) == (35 if all_pairs else len(sets))
    assert np.mean(differences) < 1e-5


def test_official_fusion_of_a_shared_pair(official_env, shared_data):
    folder = shared_data / "u2fusion_test" / "medical"
    fused = fuse_y(
        read_image(folder / "pet" / "1.png"),
        read_image(folder / "mri" / "1.png"),
        load_model("official"),
    )
    assert fused.shape == (256, 256)
    assert np.isfinite(fused).all() and fused.min() >= 0 and fused.max() <= 1
    assert fused.std() > 0.05


def test_env_copy_is_verified(official_env, tmp_path, monkeypatch):
    for name in OFFICIAL_FILES:
        shutil.copy(official_env.replace("model.ckpt", name), tmp_path / name)
    data = tmp_path / "model.ckpt.data-00000-of-00001"
    data.chmod(0o644)
    data.write_bytes(data.read_bytes()[:-1] + b"\0")
    monkeypatch.setenv("U2FUSION_OFFICIAL_CKPT", str(tmp_path / "model.ckpt"))
    with pytest.raises(WeightsError, match="SHA-256"):
        official_checkpoint()
    monkeypatch.setenv("U2FUSION_OFFICIAL_CKPT", str(tmp_path / "missing.ckpt"))
    with pytest.raises(WeightsError, match=r"missing\.ckpt\.index: not found"):
        official_checkpoint()


def test_offline_download_fails_with_advice(monkeypatch, tmp_path):
    monkeypatch.delenv("U2FUSION_OFFICIAL_CKPT", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", _refuse_network, raising=False)
    with pytest.raises(WeightsError, match="U2FUSION_OFFICIAL_CKPT"):
        official_checkpoint()


def _refuse_network(*args, **kwargs):
    raise OSError("network is unreachable")


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "absent.weights.h5", "no such weights file"),
        (b"not hdf5", "garbage.weights.h5", "not U2Fusion generator weights"),
        (b"", "model.h5", "ending in .weights.h5"),
    ],
)
def test_bad_weights_files(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        load_model(path)


def test_sha256_constants_match_the_shared_copy(official_env):
    for name, expected in OFFICIAL_FILES.items():
        digest = hashlib.sha256(Path(official_env.replace("model.ckpt", name)).read_bytes())
        assert digest.hexdigest() == expected


def test_weights_that_are_not_finite_are_refused(random_model, tmp_path):
    path = tmp_path / "nan.weights.h5"
    bias = random_model.conv2_4.conv.bias
    kept = bias.numpy()
    bias.assign([np.nan])
    try:
        save_weights(random_model, path)
    finally:
        bias.assign(kept)
    with pytest.raises(WeightsError, match=r"nan\.weights\.h5: has values that are not finite"):
        load_model(path)


def test_the_shipped_weights_are_checked_by_their_sha256(random_weights_file, capsys, monkeypatch):
    from u2fusion_tf import weights

    assert sha256_of(weights.SHIPPED_WEIGHTS) == weights.SHIPPED_SHA256
    load_model()
    assert "warning" not in capsys.readouterr().err
    monkeypatch.setattr(weights, "SHIPPED_WEIGHTS", random_weights_file)  # retrained in place
    load_model(random_weights_file)
    assert f"warning: {random_weights_file}: SHA-256 differs" in capsys.readouterr().err
