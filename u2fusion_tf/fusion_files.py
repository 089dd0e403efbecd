"""Fusing image files and folders: the sources read and checked, the outputs checked and written
whole, folders of pairs fused with read-ahead, in parts (``--shard``) if asked.

Library code of the fuse command, `evaluate --fuse_with` and the bench; the fusion itself
(tiles, batches, colour) is `u2fusion_tf.fusion`.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from u2fusion_tf import cli
from u2fusion_tf.catalogue import PairSet
from u2fusion_tf.cli import log
from u2fusion_tf.errors import FileError, ImageError, U2FusionError
from u2fusion_tf.files import refuse_overwriting_inputs
from u2fusion_tf.fusion import MIN_SIDE, Generator, YCbCr, fuse_ycbcr, saved_image
from u2fusion_tf.images import (
    RAW_SUFFIX,
    check_output,
    read_image,
    require_same_size,
    write_image,
)
from u2fusion_tf.shards import take_shard


def read_sources(
    paths: Sequence[str | os.PathLike], max_pixels: int | None = None
) -> list[np.ndarray]:
    """Reads the sources of one fusion and checks they can be fused together."""
    images = [read_image(path, max_pixels) for path in paths]
    for path, image in zip(paths, images, strict=True):
        if min(image.shape[:2]) < MIN_SIDE:
            raise ImageError(
                str(path),
                f"is {image.shape[0]}x{image.shape[1]}; "
                f"fusion needs at least {MIN_SIDE}x{MIN_SIDE}",
            )
        require_same_size(path, image, paths[0], images[0])
    return images


def checked_sources(
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    scaling: str = "none",
    max_pixels: int | None = None,
) -> list[np.ndarray]:
    """Checks that `output` can be written with the output scaling and is none of the sources,
    then reads the sources."""
    check_output(output, scaling)
    refuse_overwriting_inputs(output, paths)
    return read_sources(paths, max_pixels)


def write_fused(output: str | os.PathLike, fused: YCbCr, scaling: str = "none") -> None:
    """Writes a fusion as an image with `scaling` (`OUTPUT_SCALINGS`), or its raw luminance for
    ``.npy``."""
    check_output(output, scaling)
    raw = str(output).lower().endswith(RAW_SUFFIX)
    write_image(output, fused.y if raw else saved_image(fused, scaling))


def fuse_files(
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    model: Generator | Callable[[], Generator],
    tile: int = 0,
    scaling: str = "none",
    max_pixels: int | None = None,
) -> None:
    """Fuses image files into `output` (an image, or ``.npy`` for the raw fused Y).

    `model` may be a function that loads it: it is called only once the output and the sources
    have been checked, so bad input fails before a model is loaded (or downloaded).
    """
    sources = checked_sources(paths, output, scaling, max_pixels)
    if not hasattr(model, "infer"):
        model = model()
    write_fused(output, fuse_ycbcr(sources, model, tile), scaling)


READ_AHEAD = 2
"""Pairs read and decoded (and fused pairs encoded and written) in threads while the network
fuses the current one; OpenCV and TensorFlow release the GIL, so I/O overlaps compute."""


def fuse_folders(
    sources: PairSet,
    out_dir: str,
    model: Generator,
    suffix: str = ".png",
    tile: int = 0,
    scaling: str = "none",
    shard: int = 0,
    num_shards: int = 1,
    read_ahead: int = READ_AHEAD,
    log: Callable[[str], None] = log,
    max_pixels: int | None = None,
) -> list[str]:
    """Fuses the pairs of a set into `out_dir`, one file per stem.

    Only part `shard` of `num_shards` of the pairs is fused (`shards.take_shard`), so that
    processes or machines can share the work (part 0 reports the files that do not pair; a part
    may be empty when there are fewer pairs than parts).
    `read_ahead` > 0 reads that many pairs ahead and writes in the background; 0 does one thing
    at a time. Logs progress and carries on past a bad pair; returns the failures, one line each.
    """
    matched, failures = sources.match()
    if not matched:
        raise U2FusionError(
            f"{sources.folder_a} and {sources.folder_b}: no files with matching stems"
        )
    pairs = take_shard(matched, shard, num_shards)
    failures = failures if shard == 0 else []
    refuse_overwriting_inputs(out_dir, [sources.folder_a, sources.folder_b])
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise ImageError(out_dir, f"cannot create the output folder ({error.strerror})") from error
    check_output(os.path.join(out_dir, "probe" + suffix), scaling)
    if not pairs:
        log(f"part {shard} of {num_shards} is empty ({len(matched)} pairs); nothing to fuse")

    def fail(error: FileError) -> None:
        failures.append(str(error))
        log(f"  failed: {error}")

    outputs = [os.path.join(out_dir, pair.stem + suffix) for pair in pairs]
    started = time.monotonic()
    with ThreadPoolExecutor(max(1, read_ahead)) as pool:
        reads, writes = deque(), []
        for index, output in enumerate(outputs):
            while index + len(reads) < min(len(pairs), index + 1 + read_ahead):
                ahead = index + len(reads)
                reads.append(
                    pool.submit(
                        checked_sources, pairs[ahead][1:], outputs[ahead], scaling, max_pixels
                    )
                )
            progress = cli.rate_and_eta(index, len(pairs), time.monotonic() - started, "pairs")
            log(f"[{index + 1}/{len(pairs)}] {pairs[index].stem} -> {output}{progress}")
            try:
                fused = fuse_ycbcr(cli.result_of(reads.popleft()), model, tile)
            except FileError as error:
                fail(error)
                continue
            writes.append(pool.submit(write_fused, output, fused, scaling))
            if read_ahead == 0:
                cli.result_of(writes.pop())
        for write in writes:
            try:
                cli.result_of(write)
            except FileError as error:
                fail(error)
    return failures
