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
* the input pipeline: seconds per step fed by tf.data from an HDF5 file vs from memory;
* data preparation: patches/s of the VGG16 information measure;
* the same in bfloat16, with the max and mean absolute difference of the bf16 fused Y from
  float32 on the paper's test pairs (``u2fusion_test`` in the data root) when they are there;
* the exported TFLite model (float32 and float16 weights) beside TensorFlow at the same sizes;
* folder fusion pairs/s on the RoadScene test pairs of the data root, one thing at a time and
  with read-ahead.

The network costs `flops_per_pixel()` floating-point operations per output pixel (2 per
multiply-add of its ten 3x3 convolutions).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.catalogue import resolve_data_root, u2fusion_test_sets
from u2fusion_tf.errors import U2FusionError, WeightsError
from u2fusion_tf.files import write_atomically
from u2fusion_tf.fusion import fuse_y
from u2fusion_tf.precision import PRECISIONS, compute_dtype
from u2fusion_tf.scoring import fusion_difference
from u2fusion_tf.tables import markdown_table
from u2fusion_tf.weights import default_weights, load_model

if TYPE_CHECKING:
    from u2fusion_tf.model import U2FusionNet

FLAGS = flags.FLAGS

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
"""Sides of the square pairs whose fusion is timed; the ten convolutions are also timed alone at
half the largest (`convolutions_row`), and the bf16 speed-up is read at the largest."""


@functools.cache
def flops_per_pixel() -> int:
    """2 * 9 * C_in * C_out summed over the ten convolutions."""
    from u2fusion_tf.model import DECODER_CHANNELS, DENSE_CONVOLUTIONS, GROWTH

    channels = [(2, GROWTH)] + [(GROWTH * k, GROWTH) for k in range(1, DENSE_CONVOLUTIONS + 1)]
    widths = [GROWTH * (DENSE_CONVOLUTIONS + 1), *DECODER_CHANNELS, 1]
    channels += list(itertools.pairwise(widths))
    return sum(2 * 9 * c_in * c_out for c_in, c_out in channels)


def median_seconds(run: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    return interleaved_median_seconds([run], repeats, warmup)[0]


def interleaved_median_seconds(
    runs: Sequence[Callable[[], object]], repeats: int, warmup: int = 1
) -> list[float]:
    """The median seconds of each of `runs`, timed in turn (a, b, a, b, ...) so that a machine
    that slows down or speeds up during the bench shifts them alike and their ratio holds."""
    for _ in range(warmup):
        for run in runs:
            run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, timed in zip(runs, times, strict=True):
            started = time.perf_counter()
            run()
            timed.append(time.perf_counter() - started)
    return [statistics.median(timed) for timed in times]


def matmul_gflops(precision: str, repeats: int, side: int = 4096) -> float:
    import tensorflow as tf

    a = tf.random.uniform((side, side), dtype=tf.float32)
    a = tf.cast(a, compute_dtype(precision))
    seconds = median_seconds(lambda: tf.linalg.matmul(a, a).numpy(), repeats)
    return 2 * side**3 / seconds / 1e9


def generator(precision: str) -> tuple[U2FusionNet, str]:
    """A generator in the given precision with the default weights, and their file name; or
    random weights, named "random", when those cannot be had (speed does not depend on the
    weights, the bf16 accuracy check does)."""
    from u2fusion_tf.model import U2FusionNet

    try:
        return load_model(precision=precision), Path(default_weights()).name
    except WeightsError:
        return U2FusionNet(precision), "random"


def fusion_row(model: U2FusionNet, side: int, repeats: int, ceiling: float) -> dict:
    import tensorflow as tf

    sources = tf.random.uniform((1, side, side, 2), seed=1)
    seconds = median_seconds(lambda: model.infer(sources).numpy(), repeats)
    gflops = side * side * flops_per_pixel() / seconds / 1e9
    return {
        "size": f"{side}x{side}",
        "seconds": seconds,
        "megapixels_per_s": side * side / seconds / 1e6,
        "gflops": gflops,
        "ratio_to_float32_ceiling": gflops / ceiling,
    }


def convolutions_row(model: U2FusionNet, side: int, repeats: int, ceiling: float) -> dict:
    """The ten convolutions of `model`, each timed alone on a random input of its shape."""
    import tensorflow as tf

    dtype = compute_dtype(model.precision)
    conv = tf.function(lambda x, kernel: tf.nn.conv2d(x, kernel, 1, "VALID"))
    seconds = 0.0
    for layer in model.named_convolutions().values():
        kernel = tf.cast(layer.kernel, dtype)
        x = tf.cast(tf.random.uniform((1, side + 2, side + 2, kernel.shape[2]), seed=3), dtype)
        seconds += median_seconds(lambda x=x, kernel=kernel: conv(x, kernel).numpy(), repeats)
    gflops = side * side * flops_per_pixel() / seconds / 1e9
    return {
        "size": f"{side}x{side}",
        "seconds": seconds,
        "gflops": gflops,
        "ratio_to_float32_ceiling": gflops / ceiling,
    }


def tiled_fusion(precision: str, side: int) -> dict:
    """Seconds and peak resident memory of fusing a random side x side pair (in tiles, as
    `fuse_y` chooses for a large image), after a warm-up on a 600x600 crop. Meant for a fresh
    process (`large_fusion_row`), whose peak memory is then this fusion's."""
    model, _ = generator(precision)
    rng = np.random.default_rng(0)
    y1, y2 = (rng.random((side, side), np.float32) for _ in range(2))
    fuse_y(y1[:600, :600], y2[:600, :600], model, tile=512)
    started = time.perf_counter()
    fuse_y(y1, y2, model)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_gb": peak_rss_gb()}


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def large_fusion_row(precision: str, side: int, ceiling: float) -> dict:
    """`tiled_fusion` in a child process (``--tiled_fusion``), with its throughput."""
    command = [sys.executable, "-m", "u2fusion_tf.bench", "--tiled_fusion", precision]
    command += ["--large_side", str(side)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    gflops = side * side * flops_per_pixel() / measured["seconds"] / 1e9
    return {
        "size": f"{side}x{side} tiled",
        "seconds": measured["seconds"],
        "megapixels_per_s": side * side / measured["seconds"] / 1e6,
        "gflops": gflops,
        "ratio_to_float32_ceiling": gflops / ceiling,
        "peak_rss_gb": measured["peak_rss_gb"],
    }


TRAINING_STEP_MODES = ("deterministic", "nondeterministic")


def determinism_row(repeats: int, steps: int) -> dict:
    """Seconds per float32 training step (stored degrees) with and without op determinism, each
    timed in a fresh process (``--training_step``): TensorFlow cannot turn it off once on."""
    seconds = {}
    for mode in TRAINING_STEP_MODES:
        command = [sys.executable, "-m", "u2fusion_tf.bench", "--training_step", mode]
        command += ["--repeats", str(repeats), "--train_steps", str(steps)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        seconds[mode] = json.loads(result.stdout.strip().splitlines()[-1])["seconds_per_step"]
    return {
        "seconds_per_step": seconds,
        "cost": seconds["deterministic"] / seconds["nondeterministic"] - 1,
    }


def training_rows(precision: str, repeats: int, steps: int, deterministic: bool = False) -> dict:
    """Seconds per step with stored degrees vs with VGG16 run inside the step (batch 18, 64x64),
    with TensorFlow's op determinism or (as the bench process keeps it) without."""
    import tensorflow as tf

    from u2fusion_tf.config import TrainConfig
    from u2fusion_tf.training import Trainer

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
                vgg_precision=precision,
                precision=precision,
                deterministic=deterministic,
            )
            step = Trainer(config, log=lambda _: None).make_train_step(100.0)

            def steps_run(step=step):
                for _ in range(steps):
                    float(step(sources, information)[0]["total"])

            seconds = median_seconds(steps_run, repeats) / steps
        rows[name] = {"seconds_per_step": seconds, "patches_per_s": 18 / seconds}
    rows["speedup"] = (
        rows["vgg_in_step"]["seconds_per_step"] / rows["precomputed"]["seconds_per_step"]
    )
    return rows


def input_pipeline_row(repeats: int, steps: int) -> dict:
    """Seconds per training step (float32, batch 18 of 64x64) fed by the tf.data pipeline from an
    HDF5 patch file, against steps on batches already in memory: equal when reading and source
    swapping overlap the step."""
    import cv2
    import tensorflow as tf

    from u2fusion_tf.catalogue import PairSet
    from u2fusion_tf.config import TrainConfig
    from u2fusion_tf.data import (
        PatchFiles,
        epoch_dataset,
        epoch_plan,
        load_patches,
        prepare,
    )
    from u2fusion_tf.training import Trainer

    batch = 18
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for sub in ("a", "b"):
            (root / sub).mkdir()
        for stem in ("p1", "p2", "p3", "p4"):
            image = cv2.GaussianBlur(rng.uniform(0, 255, (192, 192)).astype(np.uint8), (0, 0), 1)
            cv2.imwrite(str(root / "a" / f"{stem}.png"), image)
            cv2.imwrite(str(root / "b" / f"{stem}.png"), cv2.GaussianBlur(image, (0, 0), 2))
        path = str(root / "patches.h5")
        prepare([PairSet("bench", root / "a", root / "b")], path, "multi-modal", "none",
                vgg_precision="bf16", log=lambda _: None)  # fmt: skip
        config = TrainConfig(
            data_files={}, run_dir=str(root / "run"), vgg_weights="none", deterministic=False
        )
        step = Trainer(config, log=lambda _: None).make_train_step(100.0)
        files = PatchFiles(path)
        rows = np.arange(len(files))
        in_memory = load_patches(path)
        batches, _ = epoch_plan(len(rows), batch, [0])
        resident = [
            (tf.constant(in_memory.patches[b]), tf.constant(in_memory.information[b]))
            for b in batches
        ]
        streamed = iter(epoch_dataset(files, rows, batch, [0]).repeat())
        cycle = itertools.cycle(resident)

        def run_steps(batches) -> None:
            for _ in range(steps):
                float(step(*next(batches))[0]["total"])

        memory_seconds, pipeline_seconds = (
            seconds / steps
            for seconds in interleaved_median_seconds(
                [lambda: run_steps(cycle), lambda: run_steps(streamed)], repeats
            )
        )
        files.close()
    return {
        "seconds_per_step_in_memory": memory_seconds,
        "seconds_per_step_pipeline": pipeline_seconds,
        "ratio": pipeline_seconds / memory_seconds,
    }


def measure_row(precision: str, repeats: int, ceiling: float) -> dict:
    import tensorflow as tf

    from u2fusion_tf.features import VGGFeatureHead, information_measure

    head = VGGFeatureHead("none", precision=precision)
    patches = tf.random.uniform((32, 64, 64, 1), seed=2)
    seconds = median_seconds(lambda: information_measure(head, patches).numpy(), repeats)
    gflops = 32 * VGG_FLOPS / seconds / 1e9
    return {
        "patches_per_s": 32 / seconds,
        "gflops": gflops,
        "ratio_to_matching_ceiling": gflops / ceiling,
    }


def bf16_accuracy(data_root: Path, pairs_per_set: int = 0) -> dict | None:
    """`scoring.fusion_difference` of bf16 from float32 with the default weights over the
    paper's test pairs (None without them or without trained weights)."""
    try:
        sets = u2fusion_test_sets(data_root)
    except U2FusionError as error:
        cli.log(f"no bf16 accuracy check: {error}")
        return None
    (f32, weights_name), (bf16, _) = generator("float32"), generator("bf16")
    if weights_name == "random":
        return None
    return {"weights": weights_name, **fusion_difference(sets, bf16, f32, pairs_per_set)}


def tflite_rows(model: U2FusionNet, repeats: int, sides: Sequence[int] = FUSION_SIDES) -> dict:
    """TFLite (XNNPACK) fusion beside TensorFlow's, per TFLite weight storage: seconds, the
    ratio TensorFlow s / TFLite s (> 1: TFLite is faster) and max |TFLite - TF| fused Y."""
    import tensorflow as tf

    from u2fusion_tf.export import TFLITE_WEIGHTS, TFLiteFusion, tflite_bytes

    rows = {}
    for weights in TFLITE_WEIGHTS:
        engine = TFLiteFusion(tflite_bytes(model, weights))
        rows[weights] = []
        for side in sides:
            sources = tf.random.uniform((1, side, side, 2), seed=1).numpy()
            seconds, reference = interleaved_median_seconds(
                [lambda engine=engine, x=sources: engine.infer(x),
                 lambda x=sources: model.infer(x).numpy()],
                repeats,
            )  # fmt: skip
            difference = np.abs(engine.infer(sources) - model.infer(sources).numpy()).max()
            rows[weights].append(
                {
                    "size": f"{side}x{side}",
                    "seconds": seconds,
                    "tensorflow_seconds": reference,
                    "speed_vs_tensorflow": reference / seconds,
                    "max_abs_diff": float(difference),
                }
            )
    return rows


FOLDER_PAIRS = "u2fusion_test/vis-ir/RoadScene"
"""The shared test pairs fused as a folder (``vis/`` and ``ir/``) by the bench."""


def folder_rows(model: U2FusionNet, data_root: Path, repeats: int, pairs: int = 0) -> dict | None:
    """Pairs/s of folder fusion one thing at a time (as before read-ahead) and with
    `fusion_files.READ_AHEAD`; None without the test pairs. `pairs` > 0 takes only the first
    ones."""
    from u2fusion_tf.catalogue import PairSet
    from u2fusion_tf.fusion_files import READ_AHEAD, fuse_folders

    folders = [data_root / FOLDER_PAIRS / name for name in ("vis", "ir")]
    if not all(folder.is_dir() for folder in folders):
        return None
    stems = frozenset(pair.stem for pair in PairSet.of(*folders).pairs()[: pairs or None])
    sources = PairSet.of(*folders, stems=stems)
    modes = {"sequential": 0, "read_ahead": READ_AHEAD}
    with tempfile.TemporaryDirectory() as out_dir:

        def fuse_all(read_ahead: int) -> None:
            quiet = lambda _: None  # noqa: E731
            fuse_folders(sources, out_dir, model, read_ahead=read_ahead, log=quiet)

        seconds = interleaved_median_seconds(
            [functools.partial(fuse_all, read_ahead) for read_ahead in modes.values()], repeats
        )
    rows = {"pairs": len(stems), "folder": FOLDER_PAIRS}
    rows.update(
        {f"{name}_pairs_per_s": len(stems) / s for name, s in zip(modes, seconds, strict=True)}
    )
    rows["speedup"] = rows["read_ahead_pairs_per_s"] / rows["sequential_pairs_per_s"]
    return rows


def run(
    repeats: int,
    large_side: int,
    train_steps: int,
    data_root: Path,
    accuracy_pairs_per_set: int = 0,
    folder_pairs: int = 0,
    sides: Sequence[int] = FUSION_SIDES,
) -> dict:
    import keras
    import tensorflow as tf

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "repeats": repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": cpu_name(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "load_average_at_start": os.getloadavg()[0],
        },
        "flops_per_pixel": flops_per_pixel(),
        "ceilings_gflops": {p: matmul_gflops(p, repeats) for p in PRECISIONS},
    }
    f32 = report["ceilings_gflops"]["float32"]
    for precision in PRECISIONS:
        ceiling = report["ceilings_gflops"][precision]
        model, _ = generator(precision)
        rows = [fusion_row(model, side, repeats, f32) for side in sides]
        if large_side:
            rows.append(large_fusion_row(precision, large_side, f32))
        report[precision] = {
            "fusion": rows,
            "convolutions_alone": convolutions_row(model, max(sides) // 2, repeats, f32),
            "training": training_rows(precision, repeats, train_steps),
            "vgg_measure": measure_row(precision, repeats, ceiling),
        }
    report["input_pipeline"] = input_pipeline_row(repeats, train_steps)
    report["determinism"] = determinism_row(repeats, train_steps)
    f32_row, bf16_row = (largest_untiled(report[p]["fusion"]) for p in ("float32", "bf16"))
    report["bf16"]["fusion_speedup"] = {
        "size": bf16_row["size"],
        "ratio": bf16_row["gflops"] / f32_row["gflops"],
    }
    report["bf16"]["accuracy"] = bf16_accuracy(data_root, accuracy_pairs_per_set)
    model, _ = generator("float32")
    report["tflite"] = tflite_rows(model, repeats, sides)
    report["folder"] = folder_rows(model, data_root, repeats, folder_pairs)
    report["peak_rss_gb_this_process"] = peak_rss_gb()
    report["machine"]["load_average_at_end"] = os.getloadavg()[0]
    return report


def cpu_name() -> str:
    """The processor's model name (Linux), else its architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


@dataclass(frozen=True)
class Goal:
    """A speed target set for a 2-core CPU: reached when the figure `measured` reads from a
    report is at least `target` (`at_least`) or below it."""

    text: str
    measured: Callable[[dict], float | None]
    target: float
    at_least: bool
    shown: str
    """How the figure is written, a format string."""

    def verdict(self, report: dict) -> tuple[str, str]:
        """The figure as written and "reached", "not reached" or "not measured"."""
        value = self.measured(report)
        if value is None:
            return "", "not measured"
        reached = value >= self.target if self.at_least else value < self.target
        return self.shown.format(value), "reached" if reached else "not reached"


def largest_untiled(rows: Sequence[dict]) -> dict:
    """The fusion row of the largest pair fused whole (not in tiles)."""
    return max(
        (row for row in rows if "peak_rss_gb" not in row),
        key=lambda row: int(row["size"].split("x")[0]),
    )


def _tiled_peak(precision: str) -> Callable[[dict], float | None]:
    def peak(report: dict) -> float | None:
        rows = [row for row in report[precision]["fusion"] if "peak_rss_gb" in row]
        return rows[0]["peak_rss_gb"] if rows else None

    return peak


def _bf16_mean_difference(report: dict) -> float | None:
    accuracy = report["bf16"].get("accuracy")
    return accuracy["mean_abs_diff"] if accuracy else None


GOALS = (
    Goal(
        "float32 fusion at >= 85% of the float32 matmul ceiling (largest untiled size)",
        lambda report: largest_untiled(report["float32"]["fusion"])["ratio_to_float32_ceiling"],
        0.85, True, "{:.0%}",
    ),
    Goal(
        "bf16 fusion >= 1.5x as fast as float32 (largest untiled size)",
        lambda report: report["bf16"]["fusion_speedup"]["ratio"], 1.5, True, "{:.2f}x",
    ),
    Goal(
        "bf16 fused Y differs from float32 by < 1/255 on average (the paper's test pairs)",
        _bf16_mean_difference, 1 / 255, False, "{:.5f}",
    ),
    *(
        Goal(
            f"{precision} training with stored degrees >= 4x faster per step than with VGG16 "
            "in the step",
            lambda report, p=precision: report[p]["training"]["speedup"], 4.0, True, "{:.1f}x",
        )
        for precision in PRECISIONS
    ),
    *(
        Goal(
            f"{precision} VGG16 measure at >= 70% of the {precision} matmul ceiling",
            lambda report, p=precision: report[p]["vgg_measure"]["ratio_to_matching_ceiling"],
            0.7, True, "{:.0%}",
        )
        for precision in PRECISIONS
    ),
    *(
        Goal(
            f"{precision} fusion of the 24-megapixel pair in tiles in < 4 GB of memory",
            _tiled_peak(precision), 4.0, False, "{:.2f} GB",
        )
        for precision in PRECISIONS
    ),
)  # fmt: skip
"""The targets the bench judges, each by its own rule (`Goal.verdict`)."""


def format_report(report: dict) -> str:
    """The figures of `run` as a Markdown report: the machine, tables, and the goals judged."""
    machine, c = report["machine"], report["ceilings_gflops"]
    lines = [
        "# Speed",
        "",
        f"Written by `make bench` (`python -m u2fusion_tf.bench`) on {report['date']}; each "
        f"figure is the median of {report['repeats']} timed runs after a warm-up, all measured "
        "in one process so that ratios compare within the run.",
        "",
        f"- machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['gpus']} GPUs; "
        f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}",
        f"- load average (1 minute): {machine['load_average_at_start']:.2f} at the start, "
        f"{machine['load_average_at_end']:.2f} at the end",
        f"- ceilings: float32 matmul {c['float32']:.0f} GFLOP/s, "
        f"bf16 matmul {c['bf16']:.0f} GFLOP/s",
        f"- the network: {report['flops_per_pixel'] / 1e6:.3f} MFLOP per output pixel",
        "",
        "## Fusion",
        "",
    ]
    rows = []
    for precision in PRECISIONS:
        for row in report[precision]["fusion"]:
            rss = f"{row['peak_rss_gb']:.2f} GB" if "peak_rss_gb" in row else ""
            rows.append(
                [precision, row["size"], f"{row['seconds']:.3f}", f"{row['megapixels_per_s']:.3f}",
                 f"{row['gflops']:.0f}", f"{row['ratio_to_float32_ceiling']:.0%}", rss]
            )  # fmt: skip
    for precision in PRECISIONS:
        row = report[precision]["convolutions_alone"]
        rows.append(
            [precision, f"the ten convolutions alone, {row['size']}", f"{row['seconds']:.3f}",
             "", f"{row['gflops']:.0f}", f"{row['ratio_to_float32_ceiling']:.0%}", ""]
        )  # fmt: skip
    header = ["precision", "fusion size", "s", "MP/s", "GFLOP/s", "of f32 ceiling", "peak RSS"]
    lines += [markdown_table(header, rows), ""]
    speedup = report["bf16"]["fusion_speedup"]
    lines.append(f"- bf16 fusion speed-up at {speedup['size']}: {speedup['ratio']:.2f}x")
    accuracy = report["bf16"].get("accuracy")
    if accuracy:
        lines.append(
            f"- bf16 vs float32 fused Y ({accuracy['weights']} weights) on {accuracy['pairs']} "
            f"test pairs: max |diff| {accuracy['max_abs_diff']:.4f}, "
            f"mean |diff| {accuracy['mean_abs_diff']:.5f} (1/255 = {1 / 255:.5f})"
        )
    folder = report["folder"]
    if folder:
        lines.append(
            f"- folder fusion ({folder['pairs']} pairs of {folder['folder']}, float32): "
            f"{folder['sequential_pairs_per_s']:.2f} pairs/s one at a time, "
            f"{folder['read_ahead_pairs_per_s']:.2f} pairs/s with read-ahead "
            f"({folder['speedup']:.2f}x)"
        )
    rows = [
        [f"TFLite, {weights} weights", row["size"], f"{row['seconds']:.3f}",
         f"{row['tensorflow_seconds']:.3f}", f"{row['speed_vs_tensorflow']:.2f}x",
         f"{row['max_abs_diff']:.1e}"]
        for weights, engine_rows in report["tflite"].items()
        for row in engine_rows
    ]  # fmt: skip
    header = ["engine", "fusion size", "s", "TensorFlow s", "TFLite speed / TF",
              "max abs diff from TF"]  # fmt: skip
    lines += ["", markdown_table(header, rows), "", "## Training and data preparation", ""]
    rows = []
    for precision in PRECISIONS:
        t, v = report[precision]["training"], report[precision]["vgg_measure"]
        vgg_share = f"{v['ratio_to_matching_ceiling']:.0%}"
        rows.append(
            [precision, f"{t['precomputed']['seconds_per_step']:.3f}",
             f"{t['vgg_in_step']['seconds_per_step']:.3f}", f"{t['speedup']:.1f}x",
             f"{v['patches_per_s']:.1f}", f"{v['gflops']:.0f} ({vgg_share})"]
        )  # fmt: skip
    header = ["precision", "train s/step (stored degrees)", "train s/step (VGG in step)",
              "ratio", "VGG measure patches/s", "VGG GFLOP/s (of ceiling)"]  # fmt: skip
    lines += [markdown_table(header, rows), ""]
    feed, cost = report["input_pipeline"], report["determinism"]
    lines += [
        f"- float32 train s/step: {feed['seconds_per_step_in_memory']:.3f} with the batches in "
        f"memory, {feed['seconds_per_step_pipeline']:.3f} fed by tf.data from HDF5 "
        f"(ratio {feed['ratio']:.2f})",
        f"- float32 train s/step: {cost['seconds_per_step']['deterministic']:.3f} with op "
        f"determinism (the default), {cost['seconds_per_step']['nondeterministic']:.3f} "
        f"without (--nodeterministic): {cost['cost']:+.1%}",
        "",
        "## Goals",
        "",
        "Each goal is reached when its figure passes the target (`bench.GOALS`).",
        "",
        markdown_table(
            ["goal", "measured", "verdict"],
            [[goal.text, *goal.verdict(report)] for goal in GOALS],
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.tiled_fusion:
        print(json.dumps(tiled_fusion(FLAGS.tiled_fusion, FLAGS.large_side)))
        return
    if FLAGS.training_step:
        deterministic = FLAGS.training_step == "deterministic"
        rows = training_rows("float32", FLAGS.repeats, FLAGS.train_steps, deterministic)
        print(json.dumps(rows["precomputed"]))
        return
    report = run(
        FLAGS.repeats, FLAGS.large_side, FLAGS.train_steps, resolve_data_root(FLAGS.data_root)
    )
    text = format_report(report)
    if FLAGS.json:
        write_atomically(FLAGS.json, json.dumps(report, indent=2).encode())
    if FLAGS.report:
        write_atomically(FLAGS.report, text.encode())
    print(text, end="")


if __name__ == "__main__":
    from u2fusion_tf import common_flags

    flags.DEFINE_integer("repeats", 3, "Timed runs per figure (the median is reported).")
    flags.DEFINE_integer("large_side", LARGE_SIDE, "Side of the large tiled fusion (0 skips it).")
    flags.DEFINE_integer("train_steps", 3, "Training steps per timed run.")
    common_flags.define_data_root()
    flags.DEFINE_string("json", None, "Also write the figures here as JSON.")
    flags.DEFINE_string("report", None, "Also write the Markdown report here.")
    flags.DEFINE(
        cli.PrecisionParser(),
        "tiled_fusion",
        None,
        "Only time the large tiled fusion in this precision and print it as JSON (the bench runs "
        "this in a child process, to measure its peak memory alone).",
    )
    flags.DEFINE_enum(
        "training_step",
        None,
        list(TRAINING_STEP_MODES),
        "Only time the float32 training step in this mode and print it as JSON (the bench runs "
        "this in child processes, since op determinism cannot be turned off once on).",
    )
    cli.run_main(main, on_interrupt="no figures were written")
