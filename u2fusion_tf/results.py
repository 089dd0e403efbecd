"""The shipped model against the authors' and classic methods on every test set: ``make results``.

For the test split of every dataset and the paper's own test pairs (``u2fusion_test``; the
catalogue is `u2fusion_tf.datasets`), fuses each pair with every method, scores the results with
`u2fusion_tf.metrics` and writes:

- ``<report_dir>/results.md``: one table per dataset (standard convention, mean ± std), the
  quality bar (the shipped model's SSIM, Qabf and VIF relative to the authors' model) and a
  pointer to the paper's tables (`u2fusion_tf.paper`);
- ``<report_dir>/figure.jpg``: the sources and three fusions of the first test pair of every
  dataset;
- ``<out_dir>/scores.csv`` (per-image scores) and ``<out_dir>/fused/<set>/<method>/`` (the
  fused images, 8-bit PNG, which is what is scored).

Methods: ``u2fusion`` (``--weights``, default the shipped checkpoint), ``official`` (the
authors' checkpoint), ``average`` and ``laplacian_pyramid`` (`u2fusion_tf.baselines`), and for
multi-exposure sets ``mertens``; ``--output_scaling`` sets how the networks' images are
written. Every run fuses everything again, so the tables always match
the weights given::

    python -m u2fusion_tf.results --report_dir checkpoints
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from absl import flags

from u2fusion_tf import baselines, cli
from u2fusion_tf.datasets import (
    DATA_ROOT_HELP,
    PairSet,
    evaluation_sets,
    resolve_data_root,
    sha256_of,
)
from u2fusion_tf.errors import ImageError, U2FusionError
from u2fusion_tf.evaluate import format_table, score_folders, summarize, write_csv
from u2fusion_tf.files import write_atomically
from u2fusion_tf.fuse import define_output_scaling_flag, fuse, fuse_ycbcr_with, read_sources
from u2fusion_tf.images import read_image, scale_output, write_image
from u2fusion_tf.metrics import METRIC_NAMES
from u2fusion_tf.model import U2FusionNet
from u2fusion_tf.weights import OFFICIAL, default_weights, is_shipped, load_model

FLAGS = flags.FLAGS

Fusion = Callable[[Sequence[np.ndarray]], np.ndarray]
"""A method: same-sized source images in [0, 1] -> fused image (gray or RGB)."""

QUALITY_BAR_METRICS = ("SSIM", "Qabf", "VIF")
QUALITY_BAR_TOLERANCE = 0.05
"""The shipped model should be within 5% of the authors' model on these metrics, or better."""
"""The metrics of the paper's Tables 1-4 (its MG is AG here)."""
FIGURE_COLUMNS = ("source A", "source B", "u2fusion", "official", "laplacian_pyramid")
FIGURE_TILE = (300, 220)
"""Width and height each image is fitted into in the figure."""


def network_fusion(model: U2FusionNet, scaling: str = "none") -> Fusion:
    """A network as a method, its images written with an output scaling (`OUTPUT_SCALINGS`)."""
    return lambda images: scale_output(fuse(images, model), scaling)


def methods(
    networks: dict[str, U2FusionNet], task: str, scaling: str = "none"
) -> dict[str, Fusion]:
    """The methods compared on a set of the given task, by the folder name of their results;
    the networks' images with the output `scaling`."""
    found = {name: network_fusion(model, scaling) for name, model in networks.items()}
    for name, luminance_fusion in (
        ("average", baselines.average),
        ("laplacian_pyramid", baselines.laplacian_pyramid),
    ):
        found[name] = lambda images, f=luminance_fusion: fuse_ycbcr_with(images, f).to_image()
    if task == "multi-exposure":
        found["mertens"] = baselines.mertens
    return found


def fuse_set(
    evaluation_set: PairSet,
    fusions: dict[str, Fusion],
    out_dir: Path,
    max_pairs: int = 0,
    log: Callable[[str], None] = print,
) -> tuple[list[Path], list[str]]:
    """Fuses the set's pairs with every method; returns the method folders and the failures."""
    pairs = evaluation_set.pairs()[: max_pairs or None]
    if not pairs:
        raise U2FusionError(
            f"{evaluation_set.folder_a} and {evaluation_set.folder_b}: no test pairs found"
        )
    folders = [out_dir / "fused" / evaluation_set.name / method for method in fusions]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for index, (stem, path_a, path_b) in enumerate(pairs, 1):
        log(f"{evaluation_set.name} [{index}/{len(pairs)}] {stem}")
        try:
            images = read_sources([path_a, path_b])
        except ImageError as error:
            failures.append(str(error))
            continue
        for folder, fusion in zip(folders, fusions.values(), strict=True):
            write_image(folder / f"{stem}.png", np.clip(fusion(images), 0.0, 1.0))
    return folders, failures


def score_set(
    evaluation_set: PairSet,
    folders: Sequence[Path],
    convention: str,
    metrics: Sequence[str] = METRIC_NAMES,
    log: Callable[[str], None] = print,
) -> tuple[list[dict], list[str]]:
    """Scores the fused folders of a set; each row's stem is prefixed by the set's name."""
    fused = replace(evaluation_set, stems=frozenset(p.stem for p in folders[0].glob("*.png")))
    rows, skipped = score_folders(
        fused, [str(folder) for folder in folders], metrics, convention, log=lambda line: None
    )
    log(f"{evaluation_set.name}: scored {len(rows)} results ({convention} convention)")
    for row in rows:
        row["stem"] = f"{evaluation_set.name}/{row['stem']}"
    return rows, skipped


def quality_bar(summaries: dict[str, dict]) -> tuple[str, list[str]]:
    """A Markdown table of u2fusion / official - 1 per dataset and metric; and the misses."""
    header = ["dataset", *QUALITY_BAR_METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    misses = []
    for table, summary in summaries.items():
        cells = []
        for metric in QUALITY_BAR_METRICS:
            ours, theirs = summary["u2fusion"][metric][0], summary["official"][metric][0]
            relative = ours / theirs - 1
            cells.append(f"{relative:+.1%}")
            if relative < -QUALITY_BAR_TOLERANCE:
                misses.append(f"{table} {metric} {relative:+.1%}")
        lines.append("| " + " | ".join([table, *cells]) + " |")
    return "\n".join(lines), misses


def make_figure(
    examples: Sequence[tuple[str, dict[str, Path]]],
    path: Path,
    columns: Sequence[str] = FIGURE_COLUMNS,
) -> None:
    """A grid: one row per example pair (its images by column name), under a header of the
    column names."""
    width, height = FIGURE_TILE
    header = _strip(width * len(columns))
    for index, column in enumerate(columns):
        _label(header[:, index * width :], column)
    parts = [header]
    for label, images in examples:
        tiles = [_tile(read_image(images[column]), width, height) for column in columns]
        parts += [_label(_strip(header.shape[1]), label), np.concatenate(tiles, axis=1)]
    write_image(path, np.concatenate(parts).astype(np.float32) / 255)


def _tile(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The image as 8-bit RGB, scaled to fit width x height and centred on white."""
    image = np.round(image * 255).astype(np.uint8)
    image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image
    scale = min(width / image.shape[1], height / image.shape[0])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    tile = np.full((height, width, 3), 255, np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    tile[top : top + size[1], left : left + size[0]] = image
    return tile


def _strip(width: int) -> np.ndarray:
    return np.full((26, width, 3), 255, np.uint8)


def _label(image: np.ndarray, text: str) -> np.ndarray:
    cv2.putText(image, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return image


@dataclass
class Report:
    """What `collect` measured, per table (a dataset, or a group of the paper's test pairs)."""

    model: str
    """What the ``u2fusion`` column is (`describe_weights`)."""
    scores: dict[str, list[dict]] = field(default_factory=dict)
    """Per-image rows of every method, standard convention."""
    scaling: str = "none"
    """The output scaling of the networks' images (`OUTPUT_SCALINGS`)."""
    examples: dict[str, tuple[str, dict[str, Path]]] = field(default_factory=dict)
    """The first pair of each dataset: its label and its images by `FIGURE_COLUMNS` name."""
    skipped: list[str] = field(default_factory=list)

    def summaries(self) -> dict[str, dict]:
        return {table: summarize(rows, METRIC_NAMES) for table, rows in self.scores.items()}


def describe_weights(weights: str) -> str:
    """Names the reported model in ``results.md``, so a report of other weights says so."""
    if weights == OFFICIAL:
        return "the authors' checkpoint"
    name = "the shipped model" if is_shipped(weights) else "the model"
    return f"{name} `{Path(weights).name}` (SHA-256 {sha256_of(weights)[:12]})"


def collect(
    data_root: str,
    weights: str,
    out_dir: Path,
    max_pairs: int = 0,
    log: Callable[[str], None] = print,
    scaling: str = "none",
) -> Report:
    """Fuses every test set with every method into `out_dir` and scores the results."""
    sets = evaluation_sets(data_root)
    networks = {"u2fusion": load_model(weights), "official": load_model(OFFICIAL)}
    report = Report(describe_weights(weights), scaling=scaling)
    for evaluation_set in sets:
        fusions = methods(networks, evaluation_set.task, scaling)
        folders, failures = fuse_set(evaluation_set, fusions, out_dir, max_pairs, log)
        rows, skipped = score_set(evaluation_set, folders, "standard", log=log)
        report.scores.setdefault(evaluation_set.table, []).extend(rows)
        report.skipped += failures + skipped
        if not evaluation_set.table.startswith("u2fusion_test"):
            stem, path_a, path_b = evaluation_set.pairs()[0]
            fused = {folder.name: folder / f"{stem}.png" for folder in folders}
            report.examples[evaluation_set.table] = (
                f"{evaluation_set.name}/{stem}",
                {"source A": path_a, "source B": path_b, **fused},
            )
    return report


def render(report: Report) -> str:
    """``results.md``: the tables, the quality bar and where the paper's tables are."""
    summaries = report.summaries()
    lines = [
        "# Results on the test sets",
        "",
        "Written by `make results` (`python -m u2fusion_tf.results`). Standard convention "
        "(images on the 0-255 scale; see the README for both conventions); mean ± std over the "
        "test pairs; fused images scored as 8-bit PNG, the networks' with output scaling "
        f"`{report.scaling}`. `u2fusion` is {report.model}.",
        "",
    ]
    for table, summary in summaries.items():
        lines += [f"## {table}", "", format_table(summary, METRIC_NAMES, markdown=True), ""]
    lines += [
        "## Quality bar: u2fusion relative to the authors' model",
        "",
        f"u2fusion / official - 1 (the bar: no worse than -{QUALITY_BAR_TOLERANCE:.0%}).",
        "",
        quality_bar(summaries)[0],
        "",
        "The paper's Tables 1-4 beside the authors' and the shipped model, in the paper's "
        "convention: `make paper` (`paper.md`).",
        "",
    ]
    if report.skipped:
        lines += ["## Skipped", "", *(f"- {line}" for line in report.skipped), ""]
    return "\n".join(lines)


def run(
    data_root: str | Path,
    weights: str,
    out_dir: Path,
    report_dir: Path,
    max_pairs: int = 0,
    log: Callable[[str], None] = print,
    scaling: str = "none",
) -> list[str]:
    """Fuses, scores and reports every test set; returns the quality-bar misses."""
    report = collect(data_root, weights, out_dir, max_pairs, log, scaling)
    report_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(report_dir / "results.md", render(report).encode())
    rows = [row for rows in report.scores.values() for row in rows]
    write_csv(str(out_dir / "scores.csv"), rows, METRIC_NAMES)
    make_figure(list(report.examples.values()), report_dir / "figure.jpg")
    log(f"wrote {report_dir / 'results.md'}, {report_dir / 'figure.jpg'}, {out_dir / 'scores.csv'}")
    return quality_bar(report.summaries())[1]


def main(argv: list[str]) -> None:
    del argv
    misses = run(
        resolve_data_root(FLAGS.data_root),
        FLAGS.weights or default_weights(),
        Path(FLAGS.out_dir),
        Path(FLAGS.report_dir),
        FLAGS.max_pairs,
        cli.log,
        FLAGS.output_scaling,
    )
    for miss in misses:
        print(f"below the quality bar: {miss}")


if __name__ == "__main__":
    flags.DEFINE_string("data_root", None, DATA_ROOT_HELP)
    flags.DEFINE_string("weights", None, "The model to report (default: the shipped checkpoint).")
    flags.DEFINE_string("out_dir", "results", "Where fused images and per-image scores go.")
    flags.DEFINE_string("report_dir", "results", "Where results.md and figure.jpg go.")
    flags.DEFINE_integer("max_pairs", 0, "Use only the first N pairs of each set (0: all).")
    define_output_scaling_flag()
    cli.run_main(
        main,
        on_interrupt="files already written are complete; run it again to finish",
    )
