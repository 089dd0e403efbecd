"""What the paper publishes, typed from its text: U2Fusion's rows of Tables 1-4 (mean ± std per
test set), Table 5 (the training orders) and the claims of its ablations (Sec. 5).

`check_published` and `check_table_5` hold the typed numbers against the paper's text, so a typo
here is caught by a test rather than carried into a report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from u2fusion_tf.errors import U2FusionError

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
    """Names of our test sets (`u2fusion_tf.catalogue.PairSet`) scored against it."""


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
TABLE5_SETS = {published.dataset: published.compared_with[0] for published in PUBLISHED}
"""The paper's test sets (those of its Tables 1-4, `PUBLISHED`) and our copies of their pairs."""
PAPER_TABLE_5 = {
    # Typed from the paper's Table 5 (CC / MG, means over each test set in the order of
    # TABLE5_SETS, no std given).
    order: dict(zip(TABLE5_SETS, scores, strict=True))
    for order, scores in (
        (
            ("multi-modal", "multi-exposure", "multi-focus"),
            [
                (0.5370, 0.0467),
                (0.6347, 0.0594),
                (0.8442, 0.0933),
                (0.8378, 0.0647),
                (0.8158, 0.0597),
                (0.9723, 0.0677),
            ],
        ),
        (
            ("multi-exposure", "multi-modal", "multi-focus"),
            [
                (0.5359, 0.0480),
                (0.6242, 0.0592),
                (0.8335, 0.0950),
                (0.8191, 0.0672),
                (0.8065, 0.0639),
                (0.9724, 0.0700),
            ],
        ),
        (
            ("multi-focus", "multi-modal", "multi-exposure"),
            [
                (0.5319, 0.0383),
                (0.6613, 0.0516),
                (0.8406, 0.0873),
                (0.8322, 0.0611),
                (0.8081, 0.0572),
                (0.9803, 0.0563),
            ],
        ),
    )
}
"""The paper's Table 5: training order -> its test set -> (CC, MG)."""

CLAIMS = {
    "fig18": "when training DenseNet on task 3 without EWC, the loss on the validation dataset "
    "of task 2 increases evidently [...] With EWC, the similarity losses of previous tasks are "
    "basically the same as those when they were trained.",
    "fig19": "Without EWC, not much difference is observed among the three distributions of "
    "μ_i obtained after three tasks [...] However, with EWC, the proportion of larger μ_i has "
    "increased significantly. [...] the decreased proportion of small values also shows that "
    "the redundancy of the network is decreasing.",
    "fig22": "When ω_1 and ω_2 are directly set to 0.5, the network fails to distinguish "
    "between focused and defocused regions. Therefore, the results suffer from blurred edges, "
    "while U2Fusion generates a much sharper appearance.",
    "table5": "the exchange of the training orders of multi-modal and multi-exposure image "
    "fusion has little effect on fusing multi-focus images [...] the results of the original "
    "training order maintain a higher correlation with the source images. [...] the mean "
    "gradient [...] drops from 0.0677 or 0.0700 to 0.0563 [when multi-focus comes first] [...] "
    "the order of multi-modal→multi-exposure→multi-focus shows the best performance.",
}
"""The paper's claim behind each ablation (Sec. 5.1, 5.3, 5.4), quoted above its table."""


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


def parse_table_5(text: str) -> dict[tuple[str, ...], dict[str, tuple[float, float]]]:
    """The paper's Table 5 from its text: training order -> test set -> (CC, MG).

    ``TABLE 5``, its caption, a ``Training Order`` header (task groups), a line of test sets,
    and one row per order: ``modal→exposure →focus`` then ``CC/MG`` cells up to a blank line.
    """
    lines = text.splitlines()
    try:
        start = lines.index("TABLE 5")
        header = next(i for i in range(start, len(lines)) if lines[i].startswith("Training Order"))
    except (ValueError, StopIteration) as error:
        raise U2FusionError("the paper's text has no TABLE 5 with a Training Order row") from error
    datasets = [_plain(label) for label in lines[header + 1].split("\t")[1:]]
    table: dict[tuple[str, ...], dict[str, tuple[float, float]]] = {}
    for line in lines[header + 2 :]:
        if not line.strip():
            break
        order, *cells = line.split("\t")
        if len(cells) != len(datasets):
            raise U2FusionError(f"TABLE 5: row {order!r} has {len(cells)} cells")
        tasks = tuple(f"multi-{task.strip()}" for task in order.split("→"))
        table[tasks] = {
            dataset: tuple(float(value) for value in cell.split("/"))
            for dataset, cell in zip(datasets, cells, strict=True)
        }
    return table


def check_table_5(text: str) -> list[str]:
    """Where `PAPER_TABLE_5` differs from the paper's text (empty: nowhere)."""
    printed = parse_table_5(text)
    return [
        f"Table 5 {'→'.join(order)}: typed {typed}, printed {printed.get(order)}"
        for order, typed in PAPER_TABLE_5.items()
        if printed.get(order) != typed
    ]
