"""The paper's Tables 1-4 beside this project's measurements: ``make paper``.

For every test set of the paper's Tables 1-4, puts side by side: U2Fusion's published mean ± std
(`PUBLISHED`, typed from the paper), the authors' model on our copies of their test pairs with
and without their output scaling (`u2fusion_tf.images.OUTPUT_SCALINGS`), and the shipped model;
all scored in the paper's convention of `u2fusion_tf.metrics`. For the authors' model it states
whether each mean falls within the paper's standard deviation. Writes
``<report_dir>/paper.md``; the fused images (8-bit PNG, what is scored) go to
``<out_dir>/fused/<set>/<method>/``::

    python -m u2fusion_tf.paper --report_dir checkpoints

When the paper's text is at hand (``--paper_text``), the typed numbers are first checked against
its tables (`parse_table`), and a difference stops the run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.datasets import DATA_ROOT_HELP, PairSet, evaluation_sets, resolve_data_root
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.evaluate import summarize
from u2fusion_tf.files import write_atomically
from u2fusion_tf.results import fuse_set, network_fusion, score_set
from u2fusion_tf.weights import OFFICIAL, SHIPPED_NAME, default_weights, load_model

FLAGS = flags.FLAGS

METRIC_OF = {
    "CC": ("CC", 1.0),
    "SSIM": ("SSIM", 1.0),
    "PSNR": ("PSNR", 1.0),
    "SCD": ("SCD", 1.0),
    "EI": ("EI", 1.0),
    "VIF": ("VIF", 1.0),
    "MG": ("AG", 1e3),
}
"""The paper's metric -> this project's metric and the factor to the paper's unit (Table 4 gives
MG, the average gradient, in units of 1e-3)."""


@dataclass(frozen=True)
class Published:
    """U2Fusion's row of one test set in one of the paper's tables, and the sets we compare."""

    table: int
    dataset: str
    pairs: int
    scores: dict[str, tuple[float, float]]
    """The paper's metric -> (mean, std), as printed."""
    compared_with: tuple[str, ...]
    """Names of our test sets (`u2fusion_tf.datasets.PairSet`) scored against it."""


PUBLISHED = (
    # Typed from the U2Fusion row of the paper's Tables 1-4 (mean±std as printed); the pair
    # counts are the paper's, from Secs. 4.2.1, 4.2.2, 4.3 and 4.4.
    Published(
        1,
        "TNO",
        20,
        {
            "CC": (0.537, 0.11),
            "SSIM": (1.9909, 0.005),
            "PSNR": (62.914, 2.07),
            "SCD": (1.780, 0.11),
        },
        ("u2fusion_test-vis-ir-TNO",),
    ),
    Published(
        1,
        "RoadScene",
        45,
        {
            "CC": (0.635, 0.20),
            "SSIM": (1.9909, 0.005),
            "PSNR": (63.305, 2.35),
            "SCD": (1.635, 0.24),
        },
        ("u2fusion_test-vis-ir-RoadScene",),
    ),
    Published(
        2,
        "Harvard",
        10,
        {
            "SCD": (1.312, 0.04),
            "CC": (0.834, 0.08),
            "SSIM": (1.9921, 0.002),
            "PSNR": (63.458, 1.15),
        },
        ("u2fusion_test-medical",),
    ),
    Published(
        3,
        "dataset in [41]",
        30,
        {"SSIM": (1.954, 0.01), "EI": (0.265, 0.09), "PSNR": (56.074, 0.96), "CC": (0.837, 0.05)},
        ("u2fusion_test-multi-exposure-dataset1",),
    ),
    Published(
        3,
        "EMPA HDR",
        15,
        {"SSIM": (1.968, 0.02), "EI": (0.240, 0.13), "PSNR": (58.454, 3.07), "CC": (0.831, 0.10)},
        ("u2fusion_test-multi-exposure-dataset2",),
    ),
    Published(
        4,
        "Lytro",
        20,
        {"EI": (0.316, 0.11), "CC": (0.972, 0.01), "VIF": (1.466, 0.20), "MG": (34.767, 12.67)},
        ("u2fusion_test-multi-focus", "mfifb"),
    ),
)

TABLES = (1, 2, 3, 4)
"""The paper's tables of fusion scores (Table 5, the training orders, needs trained models)."""
COLUMNS = {
    "official_authors_scaling": "authors' model, saved as theirs",
    "official": "authors' model, network output",
    "u2fusion": "shipped model",
}
"""The fused-image folders scored, and how the report names them."""
SWAPPED_SETS = frozenset({"mfifb"})
"""Sets whose source folders come in the other order than the authors' (MFIFB's a/b are the
near/far-focused images; the authors fuse far, near)."""

REPORT_HEAD = [
    "# The paper's Tables 1-4 beside our measurements",
    "",
    "Written by `make paper` (`python -m u2fusion_tf.paper`). For each test set of the paper's "
    "Tables 1-4: U2Fusion's mean ± std as the paper prints it (n = the pairs the paper scored), "
    "then the authors' released model (`official`) on our copies of the test pairs, once saved "
    "as their test program saves it (`--output_scaling authors`: each image stretched by "
    "1 / its maximum before 8 bits) and once as the network outputs it (`--output_scaling "
    f"none`), and the shipped model (`{SHIPPED_NAME}`, network output). All "
    "scored as 8-bit PNG in the paper's convention of `u2fusion_tf.metrics` (images in [0, 1]; "
    "SSIM the sum over the two sources with L = 255 constants; PSNR with a 255 peak; MG is the "
    "average gradient AG, in the paper's unit of 1e-3 in Table 4).",
    "",
    "The last column says, for the authors' model, whether our mean lies within the paper's "
    "mean ± std, and how far from the paper's mean it is in units of the paper's std.",
    "",
    "**The pairs differ.** The paper scored more pairs than its authors published: 20 TNO, 45 "
    "RoadScene, 10 Harvard, 30 + 15 multi-exposure (the dataset in [41] and EMPA HDR) and "
    "20 Lytro pairs. `u2fusion_test` holds the pairs of the authors' repository "
    "(`test_imgs/`): 10 TNO, 10 RoadScene, 4 Harvard, 5 + 3 multi-exposure (`dataset1`, "
    "`dataset2`) and 3 Lytro pairs; which of the paper's pairs they are is not stated. For "
    "Table 4 the 20 Lytro pairs themselves are here too (the `mfifb` test split, "
    "`lytro_01..20`, fused in the authors' order far, near: MFIFB's `b`, `a`), the paper's own "
    "set. Means over a few pairs scatter by about std / "
    "sqrt(n), so a difference of up to one std is expected from the choice of pairs alone.",
    "",
    "## Summary: metrics where the authors' model is within the paper's std",
    "",
    "| table | paper's set (pairs) | our pairs | saved as theirs | network output |",
    "| --- | --- | --- | --- | --- |",
]


def parse_table(text: str, number: int) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """Table `number` of the paper's text: method -> test set -> metric -> (mean, std).

    A table is ``TABLE <n>``, a caption, a ``Method`` header (test sets spanning the metric
    columns of a second header line, or directly the metrics when the caption names one set)
    and tab-separated rows of ``mean±std`` up to a blank line.
    """
    lines = text.splitlines()
    try:
        start = lines.index(f"TABLE {number}")
        header = next(i for i in range(start, len(lines)) if lines[i].startswith("Method\t"))
    except (ValueError, StopIteration) as error:
        raise U2FusionError(f"the paper's text has no TABLE {number} with a Method row") from error
    if lines[header + 1].startswith("\t"):
        datasets, current = [], ""
        for label in lines[header].split("\t")[1:]:
            current = _plain(label) or current
            datasets.append(current)
        metrics, body = lines[header + 1].split("\t")[1:], header + 2
    else:
        caption = " ".join(lines[start + 1 : header])
        named = re.search(r"on the \*([^*]+)\* dataset", caption)
        if named is None:
            raise U2FusionError(f"TABLE {number}: its caption names no test set")
        metrics, body = lines[header].split("\t")[1:], header + 1
        datasets = [named.group(1)] * len(metrics)
    table: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for line in lines[body:]:
        if not line.strip():
            break
        method, *cells = line.split("\t")
        if len(cells) != len(metrics):
            raise U2FusionError(f"TABLE {number}: row {method!r} has {len(cells)} cells")
        for dataset, metric, cell in zip(datasets, metrics, cells, strict=True):
            mean, std = (float(value) for value in cell.split("±"))
            table.setdefault(method, {}).setdefault(dataset, {})[_plain(metric)] = (mean, std)
    return table


def _plain(label: str) -> str:
    """A header label without markup or unit: ``<i>EMPA HDR</i>`` -> EMPA HDR, ``MG (x)`` -> MG."""
    return re.sub(r"<[^>]+>", "", label).split(" (")[0].strip()


def check_published(text: str) -> list[str]:
    """Where `PUBLISHED` differs from the U2Fusion rows of the paper's text (empty: nowhere)."""
    differences = []
    for published in PUBLISHED:
        printed = parse_table(text, published.table)["U2Fusion"].get(published.dataset, {})
        if printed != published.scores:
            differences.append(
                f"Table {published.table} {published.dataset}: typed {published.scores}, "
                f"printed {printed}"
            )
    return differences


def within_std(ours: float, published: tuple[float, float]) -> str:
    """Whether a measured mean lies within the paper's mean ± std, and by how many stds."""
    mean, std = published
    distance = (ours - mean) / std
    inside = abs(ours - mean) <= std * (1 + 1e-9)  # a mean exactly one std away is within
    return f"{'yes' if inside else 'no'} ({distance:+.2f} std)"


def comparison_table(published: Published, summary: dict) -> str:
    """Markdown: one row per metric of the paper's table, the paper's and our columns."""
    counts = {column: max(n for _, _, n in summary[column].values()) for column in COLUMNS}
    header = [
        "metric",
        f"paper: U2Fusion (n={published.pairs})",
        *(f"{name} (n={counts[column]})" for column, name in COLUMNS.items()),
        "authors' model within the paper's std: saved as theirs / network output",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for paper_metric, (mean, std) in published.scores.items():
        metric, factor = METRIC_OF[paper_metric]
        ours = {column: summary[column][metric] for column in COLUMNS}
        cells = [f"{m * factor:.5g} ± {s * factor:.2g}" for m, s, _ in ours.values()]
        verdicts = [
            within_std(ours[column][0] * factor, (mean, std))
            for column in ("official_authors_scaling", "official")
        ]
        lines.append(
            "| "
            + " | ".join([paper_metric, f"{mean:g} ± {std:g}", *cells, " / ".join(verdicts)])
            + " |"
        )
    return "\n".join(lines)


def verdict_counts(published: Published, summary: dict, column: str) -> str:
    """'k of n' metrics within the paper's std for one column, naming those outside."""
    outside = []
    for paper_metric, scores in published.scores.items():
        metric, factor = METRIC_OF[paper_metric]
        if "yes" not in within_std(summary[column][metric][0] * factor, scores):
            outside.append(paper_metric)
    inside = len(published.scores) - len(outside)
    text = f"{inside} of {len(published.scores)}"
    return text + (f" (not {', '.join(outside)})" if outside else "")


def find_sets(data_root: str | Path) -> dict[str, PairSet]:
    """Our sets named in `PUBLISHED` by name, sources in the authors' order; an error names any
    set that is missing."""
    sets = {s.name: s for s in evaluation_sets(data_root)}
    missing = [name for p in PUBLISHED for name in p.compared_with if name not in sets]
    if missing:
        raise U2FusionError(f"{data_root}: test sets not found: {', '.join(missing)}")
    for name in SWAPPED_SETS:
        sets[name] = replace(sets[name], folder_a=sets[name].folder_b, folder_b=sets[name].folder_a)
    return sets


def run(
    data_root: str | Path,
    weights: str,
    out_dir: Path,
    report_dir: Path,
    paper_text: Path | None = None,
    max_pairs: int = 0,
    log: Callable[[str], None] = print,
    tables: Sequence[int] = TABLES,
) -> Path:
    """Fuses, scores and writes ``paper.md`` for the paper's `tables`; returns its path."""
    if paper_text is not None and paper_text.is_file():
        differences = check_published(paper_text.read_text(encoding="utf-8"))
        if differences:
            raise U2FusionError(f"{paper_text}: " + "; ".join(differences))
        log(f"the typed numbers match the tables of {paper_text}")
    sets = find_sets(data_root)
    official, shipped = load_model(OFFICIAL), load_model(weights)
    fusions = {
        "official_authors_scaling": network_fusion(official, "authors"),
        "official": network_fusion(official),
        "u2fusion": network_fusion(shipped),
    }
    sections, summary_rows, skipped_all = [], [], []
    for published in (p for p in PUBLISHED if p.table in tables):
        metrics = [METRIC_OF[metric][0] for metric in published.scores]
        for name in published.compared_with:
            evaluation_set = sets[name]
            folders, failures = fuse_set(evaluation_set, fusions, out_dir, max_pairs, log)
            rows, skipped = score_set(evaluation_set, folders, "paper", metrics, log)
            skipped_all += failures + skipped
            summary = summarize(rows, metrics)
            pairs = sum(row["method"] == "official" for row in rows)
            ours = f"{_describe(evaluation_set, data_root)}, {pairs} pair{'s' * (pairs != 1)}"
            sections += [
                f"## Table {published.table}, {published.dataset}: {ours}",
                "",
                comparison_table(published, summary),
                "",
            ]
            summary_rows.append(
                f"| {published.table} | {published.dataset} ({published.pairs}) | {ours} | "
                f"{verdict_counts(published, summary, 'official_authors_scaling')} | "
                f"{verdict_counts(published, summary, 'official')} |"
            )
    report = [*REPORT_HEAD, *summary_rows, "", *sections]
    if skipped_all:
        report += ["## Skipped", "", *(f"- {line}" for line in skipped_all), ""]
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / "paper.md"
    write_atomically(path, "\n".join(report).encode())
    log(f"wrote {path}")
    return path


def _describe(evaluation_set: PairSet, data_root: str | Path) -> str:
    """Where a set's pairs come from, for the report."""
    if evaluation_set.stems is None:
        return f"`{evaluation_set.folder_a.parent.relative_to(data_root).as_posix()}`"
    return f"`{evaluation_set.name}` test split"


def main(argv: list[str]) -> None:
    del argv
    known = [str(table) for table in TABLES]
    if not FLAGS.tables or len(set(FLAGS.tables)) < len(FLAGS.tables):
        raise U2FusionError(f"--tables: give some of {','.join(known)}, once each")
    if not set(FLAGS.tables) <= set(known):
        raise U2FusionError(f"--tables {','.join(FLAGS.tables)}: give some of {','.join(known)}")
    run(
        resolve_data_root(FLAGS.data_root),
        FLAGS.weights or default_weights(),
        Path(FLAGS.out_dir),
        Path(FLAGS.report_dir),
        Path(FLAGS.paper_text) if FLAGS.paper_text else None,
        FLAGS.max_pairs,
        cli.log,
        [int(table) for table in FLAGS.tables],
    )


if __name__ == "__main__":
    flags.DEFINE_string("data_root", None, DATA_ROOT_HELP)
    flags.DEFINE_string("weights", None, "The shipped model (default: the shipped checkpoint).")
    flags.DEFINE_string("out_dir", "results/paper", "Where the fused images go.")
    flags.DEFINE_string("report_dir", "results", "Where paper.md goes.")
    flags.DEFINE_string(
        "paper_text",
        "../shared/paper/U2Fusion_TPAMI.txt",
        "The paper's text; when present, the typed numbers are checked against its tables.",
    )
    flags.DEFINE_integer("max_pairs", 0, "Use only the first N pairs of each set (0: all).")
    flags.DEFINE_list("tables", [str(t) for t in TABLES], "The paper's tables to reproduce.")
    cli.run_main(
        main,
        on_interrupt="fused images already written are complete; run it again",
        reads_images=True,
    )
