"""Scoring fused images: ``python -m u2fusion_tf.evaluate``.

Pairs the sources A, B and every folder of fused results by file stem, computes the metrics of
`u2fusion_tf.metrics` for each image and prints, per method (one method per ``--fused``
folder), the mean and standard deviation of each metric side by side::

    python -m u2fusion_tf.evaluate --sources_a vis/ --sources_b ir/ \\
        --fused results/ours --fused results/theirs --convention standard --csv scores.csv

    # fuse a dataset's test pairs (from the data root of `u2fusion_tf.catalogue`) with a model
    # first, then score them
    python -m u2fusion_tf.evaluate --dataset roadscene --fuse_with official \\
        --fuse_dir results/official

Fused files may be images or ``.npy`` raw fused luminance. Missing or size-mismatched files are
reported by name and skipped; a metric undefined for an image is NaN with a warning, and the
means ignore NaN (the table shows how many images each method was scored on).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.catalogue import (
    PairSet,
    resolve_data_root,
    split_sets,
    split_stems,
)
from u2fusion_tf.cli import log
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.files import check_writable, refuse_overwriting_inputs, write_atomically
from u2fusion_tf.fusion_files import fuse_folders
from u2fusion_tf.metrics import CONVENTIONS, METRIC_NAMES
from u2fusion_tf.scoring import method_name, score_folders, summarize
from u2fusion_tf.tables import format_table, write_csv
from u2fusion_tf.weights import load_model

FLAGS = flags.FLAGS


def scored_paths(
    sources: PairSet, fused_dirs: Sequence[str], output: str | os.PathLike
) -> list[str | os.PathLike]:
    """What scoring reads that an `output` could be: the source folders and pairs, the fused
    folders, and in each fused folder the image of a pair's stem if `output` is named so."""
    pairs, _ = sources.match()
    paths = [sources.folder_a, sources.folder_b, *fused_dirs]
    paths += [path for _, *pair in pairs for path in pair]
    if Path(output).stem in {pair.stem for pair in pairs}:
        paths += [os.path.join(folder, Path(output).name) for folder in fused_dirs]
    return paths


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
    fused_dirs = list(FLAGS.fused or [])
    if FLAGS.fuse_with:
        out_dir = FLAGS.fuse_dir or os.path.join(
            "results", method_name(FLAGS.fuse_with).removesuffix(".weights.h5")
        )
    for report in (FLAGS.csv, FLAGS.markdown):
        if report:  # checked before fusing and scoring, not after
            check_writable(report)
            folders = [*fused_dirs, out_dir] if FLAGS.fuse_with else fused_dirs
            refuse_overwriting_inputs(report, scored_paths(sources, folders, report))
    if FLAGS.fuse_with:
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
    from u2fusion_tf import common_flags

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
    common_flags.define_data_root()
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
