"""Deployment export: the SavedModel loaded without the project, saved_model_cli, TFLite."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from u2fusion_tf.errors import FileError
from u2fusion_tf.export import (
    SIGNATURE_IMAGES,
    SIGNATURE_Y,
    TFLiteFusion,
    export,
    save_saved_model,
    tflite_bytes,
)
from u2fusion_tf.fuse import fuse, fuse_y
from u2fusion_tf.images import read_image, to_luminance

TFLITE_FLOAT32_TOLERANCE = 1e-5
"""TFLite's float32 kernels sum in another order than oneDNN's (measured: 4e-7)."""
TFLITE_FLOAT16_TOLERANCE = 2e-3
"""float16 weights (about 3 significant digits) move the fused Y by a few 1e-4 (half 1/255)."""

CHILD = """
import sys
import numpy as np
import tensorflow as tf

folder = sys.argv[1]
model = tf.saved_model.load(folder + "/saved_model")
inputs = np.load(folder + "/inputs.npz")
fused_y = model.signatures["serving_default"](
    source1=tf.constant(inputs["y1"]), source2=tf.constant(inputs["y2"])
)["fused_y"]
outputs = {"fused_y": fused_y.numpy()}
for k in range(int(inputs["pairs"])):
    images = {f"image{i}": tf.constant(inputs[f"image{i}_{k}"]) for i in (1, 2)}
    outputs[f"fused_{k}"] = model.signatures["fuse_images"](**images)["fused"].numpy()
np.savez(folder + "/outputs.npz", **outputs)
print("project imported:", any(name.startswith("u2fusion_tf") for name in sys.modules))
"""


@pytest.fixture(scope="module")
def shipped_model():
    from u2fusion_tf.weights import load_model

    return load_model()


@pytest.fixture(scope="module")
def colour_pairs(shared_data):
    """Real pairs covering the three colour rules: two gray (RoadScene visible + infrared), one
    RGB (Harvard PET + MRI), two RGB (Lytro near + far focus); as uint8 in RGB order."""
    import cv2

    files = [
        ("u2fusion_test/vis-ir/RoadScene/vis/1.jpg", "u2fusion_test/vis-ir/RoadScene/ir/1.jpg"),
        ("harvard_pet_mri/pet/25057.png", "harvard_pet_mri/mri/25057.png"),
        ("mfifb/a/lytro_01.jpg", "mfifb/b/lytro_01.jpg"),
    ]
    pairs = []
    for names in files:
        paths = [shared_data / name for name in names]
        if not all(path.is_file() for path in paths):
            pytest.skip(f"{paths} not found in the shared data")
        uint8 = []
        for path in paths:
            pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            uint8.append(pixels[:, :, ::-1] if pixels.ndim == 3 else pixels[:, :, np.newaxis])
        pairs.append((paths, uint8))
    return pairs


def test_saved_model_in_a_fresh_process_matches_fuse_y_and_the_fuse_tool(
    shipped_model, colour_pairs, tmp_path
):
    save_saved_model(shipped_model, tmp_path / "saved_model")
    (paths, _), *_ = colour_pairs
    y1, y2 = (to_luminance(read_image(path)) for path in paths)
    inputs = {"y1": y1[None, :, :, None], "y2": y2[None, :, :, None], "pairs": len(colour_pairs)}
    for k, (_, images) in enumerate(colour_pairs):
        inputs |= {f"image1_{k}": images[0], f"image2_{k}": images[1]}
    np.savez(tmp_path / "inputs.npz", **inputs)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert child.returncode == 0, child.stderr
    assert "project imported: False" in child.stdout
    outputs = np.load(tmp_path / "outputs.npz")
    np.testing.assert_array_equal(outputs["fused_y"][0, :, :, 0], fuse_y(y1, y2, shipped_model))
    for k, (paths, _) in enumerate(colour_pairs):
        expected = fuse([read_image(path) for path in paths], shipped_model)
        expected = np.round(np.clip(expected, 0, 1) * 255).astype(np.int16)
        if expected.ndim == 2:
            expected = expected[:, :, np.newaxis]
        served = outputs[f"fused_{k}"]
        assert served.shape == expected.shape, paths  # gray stays gray, colour gives RGB
        difference = np.abs(served.astype(np.int16) - expected)
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-3, paths


def test_saved_model_cli_lists_both_signatures(random_model, tmp_path):
    save_saved_model(random_model, tmp_path / "model")
    command = ["show", "--dir", str(tmp_path / "model"), "--tag_set", "serve"]
    shown = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", *command],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert shown.returncode == 0, shown.stderr
    assert f'SignatureDef key: "{SIGNATURE_Y}"' in shown.stdout
    assert f'SignatureDef key: "{SIGNATURE_IMAGES}"' in shown.stdout


@pytest.mark.parametrize(
    ("weights", "tolerance"),
    [("float32", TFLITE_FLOAT32_TOLERANCE), ("float16", TFLITE_FLOAT16_TOLERANCE)],
)
def test_tflite_matches_fuse_y_at_any_size(weights, tolerance, shipped_model, colour_pairs):
    engine = TFLiteFusion(tflite_bytes(shipped_model, weights))
    for paths, _ in colour_pairs[:2]:  # two sizes: the interpreter resizes between them
        y1, y2 = (to_luminance(read_image(path)) for path in paths)
        sources = np.stack([y1, y2], -1)[np.newaxis]
        difference = np.abs(engine.infer(sources)[0, :, :, 0] - fuse_y(y1, y2, shipped_model))
        assert difference.max() < tolerance, paths
        if weights == "float16":
            assert difference.max() > 1e-6  # the weights really were stored in float16


def test_export_command_writes_each_format_and_refuses_bad_outputs(random_weights_file, tmp_path):
    def run(*args):
        command = [sys.executable, "-m", "u2fusion_tf.export", "--weights", random_weights_file]
        return subprocess.run(
            [*map(str, command), *map(str, args)], capture_output=True, text=True, timeout=900
        )

    result = run("--format", "tflite", "--output", tmp_path / "m.tflite")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m.tflite").stat().st_size > 2_000_000  # the weights are inside
    result = run("--format", "saved_model", "--output", tmp_path / "models" / "u2fusion" / "1")
    assert result.returncode == 0, result.stderr  # missing parents are created, as the README's
    assert (tmp_path / "models" / "u2fusion" / "1" / "saved_model.pb").is_file()
    (tmp_path / "notes").mkdir()
    result = run("--output", tmp_path / "notes")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "is not a SavedModel" in result.stderr and "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["m.tflite", "models", "notes"]  # nothing half-written


def test_export_replaces_an_older_saved_model(random_model, tmp_path):
    export(random_model, "saved_model", str(tmp_path / "model"))
    (tmp_path / "model" / "stale.txt").write_text("from an older export")
    export(random_model, "saved_model", str(tmp_path / "model"))
    assert not (tmp_path / "model" / "stale.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["model"]


def run_export(*args):
    command = [sys.executable, "-m", "u2fusion_tf.export", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def test_export_with_the_official_weights_replaces_an_existing_output(official_env, tmp_path):
    output = tmp_path / "m.tflite"
    output.write_bytes(b"an older export")
    result = run_export("--weights", "official", "--format", "tflite", "--output", output)
    assert result.returncode == 0, result.stderr
    assert output.stat().st_size > 2_000_000
    assert sorted(os.listdir(tmp_path)) == ["m.tflite"]


def test_replacing_an_export_never_deletes_its_weights(random_weights_file, tmp_path):
    """A SavedModel folder holding the weights it is made from, or the weights file itself, is
    refused before any work."""
    model = tmp_path / "sm"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"an older export")
    weights = model / "my.weights.h5"
    weights.write_bytes(random_weights_file.read_bytes())
    for form, output, problem in [
        ("saved_model", model, f"holds the input {weights}"),
        ("tflite", weights, f"is the input {weights}"),
    ]:
        result = run_export("--weights", weights, "--format", form, "--output", output)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(f"error: {output}: {problem}")
    assert weights.read_bytes() == random_weights_file.read_bytes()
    assert sorted(os.listdir(model)) == ["my.weights.h5", "saved_model.pb"]


def test_an_export_into_a_folder_not_writable_names_the_output(random_model, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    for form, name in [("saved_model", "model"), ("tflite", "m.tflite")]:
        with pytest.raises(FileError, match=rf"^{tmp_path / name}: output folder .* not writable"):
            export(random_model, form, str(tmp_path / name))
    assert os.listdir(tmp_path) == []
