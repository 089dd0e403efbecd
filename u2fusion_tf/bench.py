"""How fast fusion, training and data preparation run here: ``python -m u2fusion_tf.bench``.

Everything is measured in one process (so ratios are meaningful on a noisy machine), each figure
the median of ``--repeats`` timed runs after a warm-up:

* the machine's ceilings: float32 and bfloat16 4096x4096 matmul GFLOP/s;
* fusion throughput (megapixels/s, achieved GFLOP/s and its ratio to the float32 ceiling) at
  256x256, 1024x1024 and a 24-megapixel pair fused in tiles, with the peak resident memory of
  the large run (measured in a child process);
* the network's ten convolutions timed alone (``tf.nn.conv2d`` on inputs of their shapes at
  512x512): the bound that fusion cannot pass whatever the code around them does;
* training seconds per step and patches/s, with precomputed degrees and with VGG16 in the step;
* data preparation: patches/s of the VGG16 information measure;
* the same in bfloat16, with the max and mean absolute difference of the bf16 fused Y from
  float32 on the paper's test pairs (``u2fusion_test`` in the data root) when they are there.

The network costs `FLOPS_PER_PIXEL` floating-point operations per output pixel (2 per
multiply-add of its ten 3x3 convolutions).
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from u2fusion_tf.datasets import DATA_ROOT_HELP, resolve_data_root
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.model import DECODER_CHANNELS, DENSE_CONVOLUTIONS, GROWTH, PRECISIONS, U2FusionNet
from u2fusion_tf.weights import default_weights

VGG_CONVOLUTIONS = [
    (224, 3, 64), (224, 64, 64), (112, 64, 128), (112, 128, 128),
    (56, 128, 256), (56, 256, 256), (56, 256, 256),
    (28, 256, 512), (28, 512, 512), (28, 512, 512),
    (14, 512, 512), (14, 512, 512), (14, 512, 512),
]  # fmt: skip
"""(side, C_in, C_out) of VGG16's 3x3 convolutions up to block5_conv3 on a 224x224 input."""
VGG_FLOPS = sum(2 * 9 * side * side * c_in * c_out for side, c_in, c_out in VGG_CONVOLUTIONS)
LARGE_SIDE = 4899
"""A 4899x4899 pair is 24.0 megapixels."""
FUSION_SIDES = (256, 1024)
CONVOLUTIONS_SIDE = 512
"""Side at which the ten convolutions are timed alone."""


def flops_per_pixel() -> int:
    """2 * 9 * C_in * C_out summed over the ten convolutions."""
    channels = [(2, GROWTH)] + [(GROWTH * k, GROWTH) for k in range(1, DENSE_CONVOLUTIONS + 1)]
    widths = [GROWTH * (DENSE_CONVOLUTIONS + 1), *DECODER_CHANNELS, 1]
    channels += list(itertools.pairwise(widths))
    return sum(2 * 9 * c_in * c_out for c_in, c_out in channels)


FLOPS_PER_PIXEL = flops_per_pixel()


def median_seconds(run: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def matmul_gflops(dtype: tf.DType, repeats: int, side: int = 4096) -> float:
    a = tf.random.uniform((side, side), dtype=tf.float32)
    a = tf.cast(a, dtype)
    seconds = median_seconds(lambda: tf.linalg.matmul(a, a).numpy(), repeats)
    return 2 * side**3 / seconds / 1e9


def generator(precision: str) -> U2FusionNet:
    """A generator in the given precision with the default weights (or random ones when those
    cannot be had: speed does not depend on the weights, the bf16 accuracy check does)."""
    from u2fusion_tf.errors import WeightsError
    from u2fusion_tf.weights import load_model

    try:
        model = load_model(precision=precision)
        model.weights_name = Path(default_weights()).name
    except WeightsError:
        model = U2FusionNet(precision)
        model.weights_name = "random"
    return model


def fusion_row(model: U2FusionNet, side: int, repeats: int, ceiling: float) -> dict:
    sources = tf.random.uniform((1, side, side, 2), seed=1)
    seconds = median_seconds(lambda: model.infer(sources).numpy(), repeats)
    gflops = side * side * FLOPS_PER_PIXEL / seconds / 1e9
    return {
        "size": f"{side}x{side}",
        "seconds": seconds,
        "megapixels_per_s": side * side / seconds / 1e6,
        "gflops": gflops,
        "ratio_to_float32_ceiling": gflops / ceiling,
    }


def convolutions_row(model: U2FusionNet, side: int, repeats: int, ceiling: float) -> dict:
    """The ten convolutions of `model`, each timed alone on a random input of its shape."""
    dtype = tf.bfloat16 if model.precision == "bf16" else tf.float32
    conv = tf.function(lambda x, kernel: tf.nn.conv2d(x, kernel, 1, "VALID"))
    seconds = 0.0
    for layer in model.named_convolutions().values():
        kernel = tf.cast(layer.kernel, dtype)
        x = tf.cast(tf.random.uniform((1, side + 2, side + 2, kernel.shape[2]), seed=3), dtype)
        seconds += median_seconds(lambda x=x, kernel=kernel: conv(x, kernel).numpy(), repeats)
    gflops = side * side * FLOPS_PER_PIXEL / seconds / 1e9
    return {
        "size": f"{side}x{side}",
        "seconds": seconds,
        "gflops": gflops,
        "ratio_to_float32_ceiling": gflops / ceiling,
    }


def large_fusion_row(precision: str, side: int, ceiling: float) -> dict:
    """Fuses a side x side pair in tiles in a child process, reporting its time and peak RSS."""
    code = (
        "import json, resource, time, numpy as np;"
        "from u2fusion_tf.bench import generator;"
        "from u2fusion_tf.fuse import fuse_y;"
        f"model = generator({precision!r}); rng = np.random.default_rng(0);"
        f"y1, y2 = (rng.random(({side}, {side}), np.float32) for _ in range(2));"
        "fuse_y(y1[:600, :600], y2[:600, :600], model, tile=512);"
        "t = time.perf_counter(); fuse_y(y1, y2, model); s = time.perf_counter() - t;"
        "print(json.dumps({'seconds': s, 'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    gflops = side * side * FLOPS_PER_PIXEL / measured["seconds"] / 1e9
    return {
        "size": f"{side}x{side} tiled",
        "seconds": measured["seconds"],
        "megapixels_per_s": side * side / measured["seconds"] / 1e6,
        "gflops": gflops,
        "ratio_to_float32_ceiling": gflops / ceiling,
        "peak_rss_gb": measured["peak_rss_gb"],
    }


def training_rows(precision: str, repeats: int, steps: int) -> dict:
    """Seconds per step with stored degrees vs with VGG16 run inside the step (batch 18, 64x64)."""
    from u2fusion_tf.train import TrainConfig, Trainer

    rng = np.random.default_rng(0)
    sources = tf.constant(rng.random((18, 64, 64, 2), np.float32))
    information = tf.constant(rng.random((18, 2), np.float32))  # ignored with VGG in the step
    rows = {}
    for name, online in (("precomputed", False), ("vgg_in_step", True)):
        with tempfile.TemporaryDirectory() as run_dir:
            config = TrainConfig(
                data_files={},
                run_dir=run_dir,
                vgg_weights="none",
                measure_online=online,
                vgg_precision="bfloat16" if precision == "bf16" else "float32",
                precision=precision,
            )
            step = Trainer(config, log=lambda _: None).make_train_step(100.0)

            def steps_run(step=step):
                for _ in range(steps):
                    float(step(sources, information)["total"])

            seconds = median_seconds(steps_run, repeats) / steps
        rows[name] = {"seconds_per_step": seconds, "patches_per_s": 18 / seconds}
    rows["speedup"] = (
        rows["vgg_in_step"]["seconds_per_step"] / rows["precomputed"]["seconds_per_step"]
    )
    return rows


def measure_row(precision: str, repeats: int, ceiling: float) -> dict:
    from u2fusion_tf.features import VGGFeatureHead, information_measure

    head = VGGFeatureHead("none", precision="bfloat16" if precision == "bf16" else "float32")
    patches = tf.random.uniform((32, 64, 64, 1), seed=2)
    seconds = median_seconds(lambda: information_measure(head, patches).numpy(), repeats)
    gflops = 32 * VGG_FLOPS / seconds / 1e9
    return {
        "patches_per_s": 32 / seconds,
        "gflops": gflops,
        "ratio_to_matching_ceiling": gflops / ceiling,
    }


def bf16_accuracy(data_root: Path, pairs_per_set: int = 0) -> dict | None:
    """Max and mean |bf16 - float32| of the fused Y over the paper's test pairs (None without
    them or without trained weights); `pairs_per_set` > 0 uses only the first pairs of each set."""
    from u2fusion_tf.datasets import u2fusion_test_sets
    from u2fusion_tf.fuse import fuse_y
    from u2fusion_tf.images import read_image, to_luminance

    try:
        sets = u2fusion_test_sets(data_root)
    except U2FusionError as error:
        print(f"no bf16 accuracy check: {error}", file=sys.stderr)
        return None
    models = {p: generator(p) for p in PRECISIONS}
    if models["float32"].weights_name == "random":
        return None
    maxima, means = [], []
    for pairs in sets:
        for _, path1, path2 in pairs.pairs()[: pairs_per_set or None]:
            y1, y2 = (to_luminance(read_image(p)) for p in (path1, path2))
            difference = np.abs(fuse_y(y1, y2, models["bf16"]) - fuse_y(y1, y2, models["float32"]))
            maxima.append(float(difference.max()))
            means.append(float(difference.mean()))
    return {
        "weights": models["float32"].weights_name,
        "pairs": len(means),
        "max_abs_diff": max(maxima),
        "mean_abs_diff": float(np.mean(means)),
    }


def run(
    repeats: int,
    large_side: int,
    train_steps: int,
    data_root: Path,
    accuracy_pairs_per_set: int = 0,
) -> dict:
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "tensorflow": tf.__version__,
            "gpus": len(tf.config.list_physical_devices("GPU")),
        },
        "flops_per_pixel": FLOPS_PER_PIXEL,
        "ceilings_gflops": {
            "float32": matmul_gflops(tf.float32, repeats),
            "bf16": matmul_gflops(tf.bfloat16, repeats),
        },
    }
    f32 = report["ceilings_gflops"]["float32"]
    for precision in PRECISIONS:
        ceiling = report["ceilings_gflops"][precision]
        model = generator(precision)
        rows = [fusion_row(model, side, repeats, f32) for side in FUSION_SIDES]
        if large_side:
            rows.append(large_fusion_row(precision, large_side, f32))
        report[precision] = {
            "fusion": rows,
            "convolutions_alone": convolutions_row(model, CONVOLUTIONS_SIDE, repeats, f32),
            "training": training_rows(precision, repeats, train_steps),
            "vgg_measure": measure_row(precision, repeats, ceiling),
        }
    report["bf16"]["fusion_speedup_1024"] = (
        report["bf16"]["fusion"][1]["gflops"] / report["float32"]["fusion"][1]["gflops"]
    )
    report["bf16"]["accuracy"] = bf16_accuracy(data_root, accuracy_pairs_per_set)
    report["peak_rss_gb_this_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return report


def format_report(report: dict) -> str:
    c = report["ceilings_gflops"]
    lines = [
        f"machine: {report['machine']['cpus']} CPUs, {report['machine']['gpus']} GPUs, TensorFlow {report['machine']['tensorflow']}",
        f"ceilings: float32 matmul {c['float32']:.0f} GFLOP/s, bf16 matmul {c['bf16']:.0f} GFLOP/s",
        "",
        "| precision | fusion size | s | MP/s | GFLOP/s | of f32 ceiling | peak RSS |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for precision in PRECISIONS:
        for row in report[precision]["fusion"]:
            rss = f"{row['peak_rss_gb']:.2f} GB" if "peak_rss_gb" in row else ""
            lines.append(
                f"| {precision} | {row['size']} | {row['seconds']:.3f} | {row['megapixels_per_s']:.3f} | "
                f"{row['gflops']:.0f} | {row['ratio_to_float32_ceiling']:.0%} | {rss} |"
            )
    for precision in PRECISIONS:
        row = report[precision]["convolutions_alone"]
        lines.append(
            f"| {precision} | the ten convolutions alone, {row['size']} | {row['seconds']:.3f} | | "
            f"{row['gflops']:.0f} | {row['ratio_to_float32_ceiling']:.0%} | |"
        )
    lines += [
        "",
        "| precision | train s/step (stored degrees) | train s/step (VGG in step) | ratio | VGG measure patches/s | VGG GFLOP/s (of ceiling) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for precision in PRECISIONS:
        t, v = report[precision]["training"], report[precision]["vgg_measure"]
        lines.append(
            f"| {precision} | {t['precomputed']['seconds_per_step']:.3f} | {t['vgg_in_step']['seconds_per_step']:.3f} | "
            f"{t['speedup']:.1f}x | {v['patches_per_s']:.1f} | {v['gflops']:.0f} ({v['ratio_to_matching_ceiling']:.0%}) |"
        )
    accuracy = report["bf16"].get("accuracy")
    lines.append("")
    lines.append(f"bf16 fusion speed-up at 1024x1024: {report['bf16']['fusion_speedup_1024']:.2f}x")
    if accuracy:
        lines.append(
            f"bf16 vs float32 fused Y ({accuracy['weights']} weights) on {accuracy['pairs']} test pairs: max |diff| {accuracy['max_abs_diff']:.4f}, "
            f"mean |diff| {accuracy['mean_abs_diff']:.5f} (1/255 = {1 / 255:.5f})"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    from absl import flags

    f = flags.FLAGS
    del argv
    report = run(f.repeats, f.large_side, f.train_steps, resolve_data_root(f.data_root))
    if f.json:
        Path(f.json).write_text(json.dumps(report, indent=2))
    print(format_report(report))


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_integer("repeats", 3, "Timed runs per figure (the median is reported).")
    flags.DEFINE_integer("large_side", LARGE_SIDE, "Side of the large tiled fusion (0 skips it).")
    flags.DEFINE_integer("train_steps", 3, "Training steps per timed run.")
    flags.DEFINE_string("data_root", None, DATA_ROOT_HELP)
    flags.DEFINE_string("json", None, "Also write the figures here as JSON.")


if __name__ == "__main__":
    from u2fusion_tf.errors import run_main

    _define_flags()
    run_main(main, on_interrupt="no figures were written")
