"""Scoring fused images: ``python -m u2fusion_tf.evaluate``.

Pairs the sources A, B and every folder of fused results by file stem, computes the metrics of
`u2fusion_tf.metrics` for each image and prints, per method (one method per ``--fused``
folder), the mean and standard deviation of each metric side by side::

    python -m u2fusion_tf.evaluate --sources_a vis/ --sources_b ir/ \\
        --fused results/ours --fused results/theirs --convention standard --csv scores.csv

    # fuse a dataset's test pairs (from the data root of `u2fusion_tf.datasets`) with a model
    # first, then score them
    python -m u2fusion_tf.evaluate --dataset roadscene --fuse_with official \\
        --fuse_dir results/official

Fused files may be images or ``.npy`` raw fused luminance. Missing or size-mismatched files are
reported by name and skipped; a metric undefined for an image is NaN with a warning, and the
means ignore NaN (the table shows how many images each method was scored on).
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.cli import log
from u2fusion_tf.datasets import (
    DATA_ROOT_HELP,
    PairSet,
    resolve_data_root,
    split_sets,
    split_stems,
)
from u2fusion_tf.errors import ImageError, U2FusionError
from u2fusion_tf.files import check_writable, write_atomically
from u2fusion_tf.fuse import fuse_folders, fuse_y
from u2fusion_tf.headers import pixel_limit, require_within_limit
from u2fusion_tf.images import (
    RAW_SUFFIX,
    read_image,
    require_same_size,
    to_luminance,
)
from u2fusion_tf.metrics import CONVENTIONS, METRIC_NAMES, MetricWarning, compute_metrics
from u2fusion_tf.model import U2FusionNet
from u2fusion_tf.weights import load_model

FLAGS = flags.FLAGS


def read_fused(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """A fused result: an image file (`read_image`), or a ``.npy`` array of the raw fused
    luminance, which must be real floats in [0, 1] shaped (H, W), (H, W, 1) or (H, W, 3). The
    array's shape is checked from its header, against the pixel limit too, before it is read."""
    if not str(path).lower().endswith(RAW_SUFFIX):
        return read_image(path, max_pixels)
    expected = "expected real floats in [0, 1] shaped (H, W), (H, W, 1) or (H, W, 3)"
    try:
        with open(path, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(stream)
        if dtype.kind != "f" or not (len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3))):
            raise ImageError(str(path), f"holds a {shape} {dtype} array; {expected}")
        require_within_limit(str(path), shape[1], shape[0], pixel_limit(max_pixels))
        array = np.load(path)
    except (OSError, ValueError) as error:
        raise ImageError(str(path), f"cannot be read as a NumPy array ({error})") from error
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not np.isfinite(array).all():
        raise ImageError(str(path), f"has values that are not finite (NaN or infinite); {expected}")
    if array.min() < 0 or array.max() > 1:
        raise ImageError(
            str(path), f"has values from {array.min():g} to {array.max():g}; {expected}"
        )
    return array.astype(np.float64)


def method_name(folder: str) -> str:
    return Path(folder).name or str(folder)


def score_folders(
    sources: PairSet,
    fused_dirs: Sequence[str],
    metrics: Sequence[str] = METRIC_NAMES,
    convention: str = "standard",
    log: Callable[[str], None] = print,
    max_pixels: int | None = None,
) -> tuple[list[dict], list[str]]:
    """Scores every fused folder on the source pairs; returns per-image rows and skipped files
    (images above `max_pixels` among them).

    A row is {"method", "stem", <metric>: value}.
    """
    pairs, skipped = sources.match()
    fused_files = {}
    for folder in fused_dirs:
        if not os.path.isdir(folder):
            raise ImageError(folder, "is not a folder")
        fused_files[folder] = {
            p.stem: p for p in sorted(Path(folder).iterdir()) if not p.name.startswith(".")
        }
        if not fused_files[folder]:
            skipped.append(f"{folder}: is empty, no fused images to score")
    rows = []
    for index, (stem, path_a, path_b) in enumerate(pairs, 1):
        log(f"[{index}/{len(pairs)}] {stem}")
        try:
            a, b = read_image(path_a, max_pixels), read_image(path_b, max_pixels)
            require_same_size(path_b, b, path_a, a)
        except ImageError as error:
            skipped.append(str(error))
            continue
        for folder in fused_dirs:
            path_f = fused_files[folder].get(stem)
            try:
                if path_f is None:
                    raise ImageError(os.path.join(folder, stem + ".*"), "missing")
                f = read_fused(path_f, max_pixels)
                require_same_size(path_f, f, path_a, a)
            except ImageError as error:
                skipped.append(str(error))
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", MetricWarning)
                scores = compute_metrics(a, b, f, list(metrics), convention)
            for warning in caught:
                log(f"warning: {path_f}: {warning.message}")
            rows.append({"method": method_name(folder), "stem": stem, **scores})
    return rows, skipped


def fusion_difference(
    sets: Sequence[PairSet],
    model: U2FusionNet,
    reference: U2FusionNet,
    pairs_per_set: int = 0,
) -> dict:
    """How far `model`'s fused Y is from `reference`'s (e.g. bf16 from float32): the max and
    the mean over the pairs of each pair's max and mean |difference|; `pairs_per_set` > 0 takes
    only the first pairs of each set."""
    maxima, means = [], []
    for pairs in sets:
        for _, path1, path2 in pairs.pairs()[: pairs_per_set or None]:
            y1, y2 = (to_luminance(read_image(p)) for p in (path1, path2))
            difference = np.abs(fuse_y(y1, y2, model) - fuse_y(y1, y2, reference))
            maxima.append(float(difference.max()))
            means.append(float(difference.mean()))
    return {
        "pairs": len(means),
        "max_abs_diff": max(maxima),
        "mean_abs_diff": float(np.mean(means)),
    }


def summarize(
    rows: Sequence[dict], metrics: Sequence[str], methods: Sequence[str] = ()
) -> dict[str, dict[str, tuple[float, float, int]]]:
    """Per method and metric: (mean, population std, images with a defined value). `methods`
    are shown even when none of their images could be scored (n = 0)."""
    summary: dict[str, dict[str, tuple[float, float, int]]] = {}
    for method in dict.fromkeys([*methods, *(row["method"] for row in rows)]):
        summary[method] = {}
        for metric in metrics:
            values = np.array([row[metric] for row in rows if row["method"] == method], dtype=float)
            values = values[np.isfinite(values)]
            mean, std = (
                (float(values.mean()), float(values.std())) if len(values) else (math.nan, math.nan)
            )
            summary[method][metric] = (mean, std, len(values))
    return summary


def format_table(summary: dict, metrics: Sequence[str], markdown: bool = False) -> str:
    """Metrics as rows, methods as columns, cells 'mean ± std' (n shown when some are NaN)."""
    methods = list(summary)
    counts = {m: max(n for _, _, n in summary[m].values()) if summary[m] else 0 for m in methods}

    def cell(method: str, metric: str) -> str:
        mean, std, n = summary[method][metric]
        if counts[method] == 0:
            return "no images"
        text = f"{mean:.4g} ± {std:.3g}"
        return text if n == counts[method] else f"{text} (n={n})"

    header = ["metric", *(f"{m} (n={counts[m]})" for m in methods)]
    body = [[metric, *(cell(m, metric) for m in methods)] for metric in metrics]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(value.ljust(w) for value, w in zip(row, widths, strict=True))
        for row in [header, *body]
    )


def write_csv(path: str | os.PathLike, rows: Sequence[dict], metrics: Sequence[str]) -> None:
    """Per-image scores as CSV, written atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, ["method", "stem", *metrics])
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, text.getvalue().encode())


def main(argv: list[str]) -> None:
    del argv
    metrics = FLAGS.metrics or list(METRIC_NAMES)
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise U2FusionError(
            f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRIC_NAMES)}"
        )
    if FLAGS.splits and not FLAGS.dataset:
        raise U2FusionError("--splits needs --dataset")
    if FLAGS.sources_a and FLAGS.sources_b:
        stems = split_stems(FLAGS.dataset, "test", FLAGS.splits) if FLAGS.dataset else None
        sources = PairSet.of(FLAGS.sources_a, FLAGS.sources_b, stems)
    elif FLAGS.dataset:
        data_root = resolve_data_root(FLAGS.data_root)
        (sources,) = split_sets(data_root, "test", [FLAGS.dataset], FLAGS.splits)
    else:
        raise U2FusionError("give --sources_a and --sources_b, or --dataset (see --help)")
    for report in (FLAGS.csv, FLAGS.markdown):
        if report:
            check_writable(report)  # before fusing and scoring, not after
    fused_dirs = list(FLAGS.fused or [])
    if FLAGS.fuse_with:
        out_dir = FLAGS.fuse_dir or os.path.join(
            "results", method_name(FLAGS.fuse_with).removesuffix(".weights.h5")
        )
        log(f"fusing with {FLAGS.fuse_with} into {out_dir}")
        model = load_model(FLAGS.fuse_with)
        failures = fuse_folders(sources, out_dir, model, max_pixels=FLAGS.max_pixels)
        for failure in failures:
            log(f"skipped: {failure}")
        fused_dirs.insert(0, out_dir)
    if not fused_dirs:
        raise U2FusionError("give --fused folders and/or --fuse_with WEIGHTS")
    rows, skipped = score_folders(
        sources, fused_dirs, metrics, FLAGS.convention, log, FLAGS.max_pixels
    )
    for problem in skipped:
        log(f"skipped: {problem}")
    log(f"{len(skipped)} file(s) skipped")
    if not rows:
        raise U2FusionError("nothing was scored")
    summary = summarize(rows, metrics, [method_name(folder) for folder in fused_dirs])
    print(f"convention: {FLAGS.convention}")
    print(format_table(summary, metrics))
    if FLAGS.csv:
        write_csv(FLAGS.csv, rows, metrics)
    if FLAGS.markdown:
        table = format_table(summary, metrics, markdown=True)
        write_atomically(FLAGS.markdown, f"Convention: {FLAGS.convention}\n\n{table}\n".encode())


if __name__ == "__main__":
    flags.DEFINE_string("sources_a", None, "Folder of the first sources.")
    flags.DEFINE_string("sources_b", None, "Folder of the second sources (paired by file stem).")
    flags.DEFINE_multi_string("fused", None, "Folder of fused results of one method (repeatable).")
    flags.DEFINE_list(
        "metrics", None, f"Metrics to compute (default all: {','.join(METRIC_NAMES)})."
    )
    flags.DEFINE_enum(
        "convention", "standard", list(CONVENTIONS), "Scaling convention (see README)."
    )
    flags.DEFINE_string("csv", None, "Write per-image scores here.")
    flags.DEFINE_string("markdown", None, "Write the summary table here as Markdown.")
    flags.DEFINE_string(
        "dataset",
        None,
        "Score this dataset's test split: its pairs under --data_root, or only those stems of "
        "--sources_a/--sources_b.",
    )
    flags.DEFINE_string("data_root", None, DATA_ROOT_HELP)
    flags.DEFINE_string(
        "splits", None, "Another splits.json for --dataset (default: the package's)."
    )
    flags.DEFINE_string(
        "fuse_with", None, "Fuse the pairs first with these weights (file or 'official')."
    )
    flags.DEFINE_string(
        "fuse_dir", None, "Where --fuse_with writes (default results/<weights name>)."
    )
    cli.run_main(
        main,
        on_interrupt="no table or CSV was written; fused images already written are complete",
        reads_images=True,
    )
