"""Fusing images with a trained generator: the Python API and ``python -m u2fusion_tf.fuse``.

The network fuses luminance only (paper Sec. 3.4). Colour follows the authors' test program:
one RGB source lends its Cb/Cr to the result; two RGB sources have each chroma channel fused by
Eq. 10; two gray sources give a gray result. More than two sources are fused in sequence:
the first two, then that result with the third, and so on.

Large images are fused in overlapping tiles. Ten 3x3 layers mean an output pixel depends only on
inputs within `RECEPTIVE_RADIUS` pixels, so tiles that overlap by that margin give the same
result as fusing the whole image at once (up to float rounding).

Command line::

    python -m u2fusion_tf.fuse --inputs vis.png ir.png --output fused.png
    python -m u2fusion_tf.fuse --inputs a.png b.png c.png --output fused.png
    python -m u2fusion_tf.fuse --dir1 vis/ --dir2 ir/ --out_dir fused/
    python -m u2fusion_tf.fuse --inputs vis.png ir.png --output fused.png --output_scaling authors
"""

from __future__ import annotations

import functools
import os
import sys
import time
import types
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.cli import log
from u2fusion_tf.datasets import PairSet
from u2fusion_tf.errors import FileError, ImageError, U2FusionError
from u2fusion_tf.images import (
    OUTPUT_SCALINGS,
    RAW_SUFFIX,
    check_output,
    fuse_chroma,
    read_image,
    refuse_overwriting_inputs,
    require_same_size,
    rgb_to_ycbcr,
    scale_output,
    write_image,
    ycbcr_to_rgb,
)
from u2fusion_tf.model import RECEPTIVE_RADIUS, U2FusionNet
from u2fusion_tf.shards import check_shard, take_shard
from u2fusion_tf.weights import WEIGHTS_HELP, load_model

__all__ = ["fuse", "fuse_y", "load_model"]

FLAGS = flags.FLAGS

MIN_SIDE = 2
"""Reflection padding needs at least two pixels along each side."""
AUTO_TILE = 512
"""Tile side used when an image is larger than `MAX_WHOLE_PIXELS` and no tile size is given."""
MAX_WHOLE_PIXELS = 1024 * 1024
"""Largest image fused in one piece by default: the forward pass peaks at about 4.5 KB of
memory a pixel (4.8 GB measured for 1024x1024, 17 GB for 2048x2048)."""


def fuse_y(y1: np.ndarray, y2: np.ndarray, model: U2FusionNet, tile: int = 0) -> np.ndarray:
    """Fuses two (H, W) luminance images in [0, 1], or two batches (N, H, W) of them; returns
    the float32 fused Y of the same shape.

    `tile` > 0 fuses in tiles of that side (plus a `RECEPTIVE_RADIUS` margin); 0 chooses:
    whole images while the batch holds at most `MAX_WHOLE_PIXELS`, else tiles of `AUTO_TILE`.
    `model` is a `U2FusionNet` or anything with its ``infer`` (e.g. `export.TFLiteFusion`).
    """
    if y1.shape != y2.shape or y1.ndim not in (2, 3):
        raise ValueError(
            f"expected two (H, W) or (N, H, W) images of one size, got {y1.shape} and {y2.shape}"
        )
    if min(y1.shape[-2:]) < MIN_SIDE:
        raise ValueError(f"images must be at least {MIN_SIDE}x{MIN_SIDE}, got {y1.shape}")
    sources = np.stack([y1, y2], axis=-1).astype(np.float32)
    height, width = y1.shape[-2:]
    if tile <= 0:
        tile = 0 if y1.size <= MAX_WHOLE_PIXELS else AUTO_TILE
    if tile == 0 or (height <= tile and width <= tile):
        return _fuse_window(model, sources)
    fused = np.empty(y1.shape, np.float32)
    margin = RECEPTIVE_RADIUS
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            y0, x0 = max(0, top - margin), max(0, left - margin)
            window = _fuse_window(
                model,
                sources[..., y0 : min(height, bottom + margin), x0 : min(width, right + margin), :],
            )
            fused[..., top:bottom, left:right] = window[
                ..., top - y0 : bottom - y0, left - x0 : right - x0
            ]
    return fused


def _fuse_window(model: U2FusionNet, sources: np.ndarray) -> np.ndarray:
    """(H, W, 2) or (N, H, W, 2) sources -> (H, W) or (N, H, W) fused Y, in one pass."""
    batch = sources if sources.ndim == 4 else sources[np.newaxis]
    fused = np.asarray(model.infer(batch))[..., 0]
    return fused if sources.ndim == 4 else fused[0]


@dataclass
class YCbCr:
    """An image as the fusion sees it: luminance, and chroma (Cb, Cr) when it has colour."""

    y: np.ndarray
    chroma: tuple[np.ndarray, np.ndarray] | None

    @classmethod
    def of(cls, image: np.ndarray) -> YCbCr:
        if image.ndim == 3:
            y, cb, cr = rgb_to_ycbcr(image)
            return cls(y, (cb, cr))
        return cls(image.astype(np.float32), None)

    def to_image(self) -> np.ndarray:
        return self.y if self.chroma is None else ycbcr_to_rgb(self.y, *self.chroma)


def fuse_two(
    first: YCbCr, second: YCbCr, fuse_luminance: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> YCbCr:
    """Fuses two images (or two batches of frames) with any luminance fusion, handling colour
    as described above."""
    if first.chroma is None or second.chroma is None:
        chroma = first.chroma or second.chroma
    else:
        chroma = tuple(
            fuse_chroma(c1, c2) for c1, c2 in zip(first.chroma, second.chroma, strict=True)
        )
    return YCbCr(fuse_luminance(first.y, second.y), chroma)


def fuse_ycbcr_with(
    images: Sequence[np.ndarray], fuse_luminance: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> YCbCr:
    """Fuses two or more images in sequence with any luminance fusion (the network or a
    classic method), handling colour as described above; returns luminance and chroma."""
    if len(images) < 2:
        raise ValueError(f"fusion needs at least two images, got {len(images)}")
    fused = YCbCr.of(images[0])
    for image in images[1:]:
        fused = fuse_two(fused, YCbCr.of(image), fuse_luminance)
    return fused


def fuse_ycbcr(images: Sequence[np.ndarray], model: U2FusionNet, tile: int = 0) -> YCbCr:
    """Fuses two or more images in sequence with the network, returning luminance and chroma."""
    return fuse_ycbcr_with(images, lambda y1, y2: fuse_y(y1, y2, model, tile))


def fuse(images: Sequence[np.ndarray], model: U2FusionNet, tile: int = 0) -> np.ndarray:
    """Fuses two or more same-sized images (gray (H, W) or RGB (H, W, 3), in [0, 1]).

    Returns gray (H, W) if all sources are gray, else RGB (H, W, 3). The fused Y lies in
    [0, 1] (the network ends in tanh(x) / 2 + 0.5), but RGB from Y and fused chroma can leave
    it (e.g. -0.4 to 1.4 on PET + MRI); it is not clipped because the authors' output scaling
    (`images.scale_output`) stretches by the unclipped maximum. `images.write_image` clips to
    [0, 1], so ``np.clip(fused, 0, 1)`` is what a saved image holds (before 8-bit rounding).
    """
    return fuse_ycbcr(images, model, tile).to_image()


def read_sources(paths: Sequence[str | os.PathLike]) -> list[np.ndarray]:
    """Reads the sources of one fusion and checks they can be fused together."""
    images = [read_image(path) for path in paths]
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
    paths: Sequence[str | os.PathLike], output: str | os.PathLike, scaling: str = "none"
) -> list[np.ndarray]:
    """Checks that `output` can be written with the output scaling and is none of the sources,
    then reads the sources."""
    check_output(output, scaling)
    refuse_overwriting_inputs(output, paths)
    return read_sources(paths)


def write_fused(output: str | os.PathLike, fused: YCbCr, scaling: str = "none") -> None:
    """Writes a fusion as an image with `scaling` (`OUTPUT_SCALINGS`), or its raw luminance for
    ``.npy``."""
    check_output(output, scaling)
    raw = str(output).lower().endswith(RAW_SUFFIX)
    write_image(output, fused.y if raw else scale_output(fused.to_image(), scaling))


def fuse_files(
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    model: U2FusionNet | Callable[[], U2FusionNet],
    tile: int = 0,
    scaling: str = "none",
) -> None:
    """Fuses image files into `output` (an image, or ``.npy`` for the raw fused Y).

    `model` may be a function that loads it: it is called only once the output and the sources
    have been checked, so bad input fails before a model is loaded (or downloaded).
    """
    sources = checked_sources(paths, output, scaling)
    if not isinstance(model, U2FusionNet):
        model = model()
    write_fused(output, fuse_ycbcr(sources, model, tile), scaling)


READ_AHEAD = 2
"""Pairs read and decoded (and fused pairs encoded and written) in threads while the network
fuses the current one; OpenCV and TensorFlow release the GIL, so I/O overlaps compute."""


def fuse_folders(
    sources: PairSet,
    out_dir: str,
    model: U2FusionNet,
    suffix: str = ".png",
    tile: int = 0,
    scaling: str = "none",
    shard: int = 0,
    num_shards: int = 1,
    read_ahead: int = READ_AHEAD,
    log: Callable[[str], None] = log,
) -> list[str]:
    """Fuses the pairs of a set into `out_dir`, one file per stem.

    Only part `shard` of `num_shards` of the pairs is fused (`shards.take_shard`), so that
    processes or machines can share the work (part 0 reports the files that do not pair).
    `read_ahead` > 0 reads that many pairs ahead and writes in the background; 0 does one thing
    at a time. Logs progress and carries on past a bad pair; returns the failures, one line each.
    """
    pairs, failures = sources.match()
    pairs = take_shard(pairs, shard, num_shards)
    failures = failures if shard == 0 else []
    if not pairs:
        raise U2FusionError(
            f"{sources.folder_a} and {sources.folder_b}: no files with matching stems"
        )
    refuse_overwriting_inputs(out_dir, [sources.folder_a, sources.folder_b])
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise ImageError(out_dir, f"cannot create the output folder ({error.strerror})") from error
    check_output(os.path.join(out_dir, "probe" + suffix), scaling)

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
                    pool.submit(checked_sources, pairs[ahead][1:], outputs[ahead], scaling)
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


class _CallableModule(types.ModuleType):
    """Lets ``u2fusion_tf.fuse(images, model)`` work: the package's ``fuse`` attribute is this
    module (Python binds a package's submodules so), called as its `fuse` function."""

    def __call__(self, images: Sequence[np.ndarray], model: U2FusionNet, tile: int = 0):
        return fuse(images, model, tile)


sys.modules[__name__].__class__ = _CallableModule


def main(argv: list[str]) -> None:
    extra = argv[1:]  # a space-separated list's later items
    model = functools.partial(load_model, FLAGS.weights, FLAGS.precision)
    folders = bool(FLAGS.dir1 or FLAGS.dir2 or FLAGS.out_dir)
    if folders + bool(FLAGS.inputs) + bool(FLAGS.video) > 1:
        raise U2FusionError("use one of --inputs, --dir1/--dir2/--out_dir or --video")
    if (FLAGS.shard, FLAGS.num_shards) != (0, 1) and not folders:
        raise U2FusionError("--shard and --num_shards split folder mode (--dir1/--dir2/--out_dir)")
    if folders:
        if extra or FLAGS.output:
            raise U2FusionError("use either --inputs/--output or --dir1/--dir2/--out_dir, not both")
        if not (FLAGS.dir1 and FLAGS.dir2 and FLAGS.out_dir):
            raise U2FusionError("folder mode needs all of --dir1, --dir2 and --out_dir")
        check_shard(FLAGS.shard, FLAGS.num_shards)
        suffix = FLAGS.out_ext if FLAGS.out_ext.startswith(".") else "." + FLAGS.out_ext
        sources = PairSet.of(FLAGS.dir1, FLAGS.dir2)
        failures = fuse_folders(
            sources,
            FLAGS.out_dir,
            model(),
            suffix,
            FLAGS.tile,
            FLAGS.output_scaling,
            FLAGS.shard,
            FLAGS.num_shards,
        )
        if failures:
            print(f"{len(failures)} failed:", *failures, sep="\n  ", file=sys.stderr)
            sys.exit(1)
        return
    if FLAGS.video:
        from u2fusion_tf.video import check_video_output, fuse_video

        videos = [*FLAGS.video, *extra]
        if len(videos) != 2 or not FLAGS.output:
            raise U2FusionError("give --video with two videos and --output fused.mp4")
        check_video_output(FLAGS.output, videos)  # before loading the model
        frames = fuse_video(*videos, FLAGS.output, model(), FLAGS.tile)
        log(f"wrote {FLAGS.output} ({frames} frames)")
        return
    inputs = [*(FLAGS.inputs or []), *extra]
    if len(inputs) < 2 or not FLAGS.output:
        raise U2FusionError("give --inputs with two or more images and --output (see --help)")
    fuse_files(inputs, FLAGS.output, model, FLAGS.tile, FLAGS.output_scaling)
    log(f"wrote {FLAGS.output}")


def define_output_scaling_flag() -> None:
    """``--output_scaling``, shared by the commands that write fused images."""
    flags.DEFINE_enum(
        "output_scaling",
        "none",
        list(OUTPUT_SCALINGS),
        "none: the network output as it is; authors: each fused image stretched by 1 / its "
        "maximum before 8 bits, as the authors' test program saves it (their tables' images).",
    )


if __name__ == "__main__":
    flags.DEFINE_list("inputs", None, "Source images (two or more; more are fused in sequence).")
    flags.DEFINE_string(
        "output",
        None,
        "Fused image (.png/.jpg/.bmp/.tif), .npy for the raw fused Y, or video (.mp4/.avi/.mkv).",
    )
    flags.DEFINE_string("dir1", None, "Folder of first sources (folder mode).")
    flags.DEFINE_string("dir2", None, "Folder of second sources, paired with --dir1 by file stem.")
    flags.DEFINE_string("out_dir", None, "Folder for the fused pairs (folder mode).")
    flags.DEFINE_string("out_ext", ".png", "File type of the fused pairs in folder mode.")
    flags.DEFINE_integer(
        "shard", 0, "Folder mode: fuse only this part (0-based) of the --num_shards parts."
    )
    flags.DEFINE_integer(
        "num_shards", 1, "Folder mode: split the pairs, in stem order, into this many parts."
    )
    flags.DEFINE_list("video", None, "Two videos to fuse frame by frame.")
    flags.DEFINE_string("weights", None, WEIGHTS_HELP)
    flags.DEFINE(
        cli.PrecisionParser(),
        "precision",
        "float32",
        "Compute precision; bf16 is about 3.5x faster on CPUs with bf16 units "
        "(fused Y within 0.005).",
    )
    flags.DEFINE_integer(
        "tile",
        0,
        "Tile side in pixels for large images; 0: whole image up to 1024x1024 pixels, else 512.",
    )
    define_output_scaling_flag()
    cli.run_main(
        main,
        on_interrupt="outputs already written are complete and no partial file is left",
        reads_images=True,
    )
