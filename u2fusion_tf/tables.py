"""How reports show numbers: Markdown and text tables, CSV, and figures (image grids, plots).

Library code for the report commands (`evaluate`, `results`, `paper`, `ablation_report`,
`bench`): they compute data, and this module turns it into text or pictures.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from u2fusion_tf.files import write_atomically
from u2fusion_tf.images import read_image, write_image

FIGURE_TILE = (300, 220)
"""Width and height each image is fitted into in a figure grid."""


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table of strings."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


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
        return markdown_table(header, body)
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


def make_figure(
    examples: Sequence[tuple[str, dict[str, Path]]],
    path: Path,
    columns: Sequence[str],
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


def pyplot():
    """matplotlib's pyplot on a file-only backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(plt, figure) -> bytes:
    """A matplotlib figure as PNG bytes (closed afterwards)."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
