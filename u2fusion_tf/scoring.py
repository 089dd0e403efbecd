"""Scoring fused images: reading them, scoring folders and test sets, summarising the scores.

Library code shared by the report commands (`evaluate`, `results`, `paper`, `ablation_report`,
`bench`): every function returns data (rows of per-image scores, summaries), never text.
A row is ``{"method", "stem", <metric>: value}``; a summary is method -> metric -> (mean,
population std, images with a defined value).
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from u2fusion_tf.catalogue import PairSet
from u2fusion_tf.errors import ImageError, U2FusionError
from u2fusion_tf.files import sha256_of
from u2fusion_tf.fusion import fuse_y, fuse_ycbcr, saved_image
from u2fusion_tf.fusion_files import read_sources
from u2fusion_tf.headers import pixel_limit, require_within_limit
from u2fusion_tf.images import (
    RAW_SUFFIX,
    read_image,
    require_same_size,
    to_luminance,
    write_image,
)
from u2fusion_tf.metrics import METRIC_NAMES, MetricWarning, compute_metrics
from u2fusion_tf.weights import OFFICIAL, is_shipped

if TYPE_CHECKING:
    from u2fusion_tf.model import U2FusionNet

logger = logging.getLogger(__name__)


Fusion = Callable[[Sequence[np.ndarray]], np.ndarray]
"""A method: same-sized source images in [0, 1] -> fused image (gray or RGB)."""


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
    log: Callable[[str], None] = logger.info,
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


def network_fusion(model: U2FusionNet, scaling: str = "none") -> Fusion:
    """A network as a method, its images written with an output scaling (`OUTPUT_SCALINGS`)."""
    return lambda images: saved_image(fuse_ycbcr(images, model), scaling)


def fuse_set(
    evaluation_set: PairSet,
    fusions: dict[str, Fusion],
    out_dir: Path,
    max_pairs: int = 0,
    log: Callable[[str], None] = logger.info,
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
    log: Callable[[str], None] = logger.info,
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


def describe_weights(weights: str) -> str:
    """Names the reported model in ``results.md``, so a report of other weights says so."""
    if weights == OFFICIAL:
        return "the authors' checkpoint"
    name = "the shipped model" if is_shipped(weights) else "the model"
    return f"{name} `{Path(weights).name}` (SHA-256 {sha256_of(weights)[:12]})"
