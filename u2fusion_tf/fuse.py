"""Fusing image files and folders: the Python API and ``python -m u2fusion_tf.fuse``.

The fusion itself (tiles, batches, colour) is `u2fusion_tf.fusion`; this module reads the
sources, checks the outputs and writes the results, one pair or folders of pairs (in parts,
``--shard``), and runs the command (video files by `u2fusion_tf.video`). TensorFlow is imported
only when a model is loaded, so ``--help`` and usage errors answer at once.

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
from typing import TYPE_CHECKING

import numpy as np
from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.catalogue import PairSet
from u2fusion_tf.cli import log
from u2fusion_tf.errors import FileError, ImageError, U2FusionError
from u2fusion_tf.files import refuse_overwriting_inputs
from u2fusion_tf.fusion import MIN_SIDE, Generator, YCbCr, fuse, fuse_y, fuse_ycbcr, saved_image
from u2fusion_tf.images import (
    OUTPUT_SCALINGS,
    RAW_SUFFIX,
    check_output,
    read_image,
    require_same_size,
    write_image,
)
from u2fusion_tf.shards import check_shard, take_shard

if TYPE_CHECKING:
    from u2fusion_tf.weights import load_model

__all__ = ["fuse", "fuse_y", "load_model"]

FLAGS = flags.FLAGS


def __getattr__(name: str):
    """``load_model`` (from `u2fusion_tf.weights`), imported when first asked for: it brings in
    TensorFlow."""
    if name != "load_model":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from u2fusion_tf.weights import load_model

    return load_model


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


class _CallableModule(types.ModuleType):
    """Lets ``u2fusion_tf.fuse(images, model)`` work: the package's ``fuse`` attribute is this
    module (Python binds a package's submodules so), called as its `fuse` function."""

    def __call__(self, images: Sequence[np.ndarray], model: Generator, tile: int = 0):
        return fuse(images, model, tile)


sys.modules[__name__].__class__ = _CallableModule


MODES = {
    "inputs": "--inputs",
    "folders": "folder mode (--dir1/--dir2/--out_dir)",
    "video": "--video",
}
MODE_FLAGS = {
    "out_ext": ("folders",),
    "shard": ("folders",),
    "num_shards": ("folders",),
    "output_scaling": ("inputs", "folders"),
}
"""Flags that apply only to some modes: given with another, they are refused, not ignored."""


def main(argv: list[str]) -> None:
    from u2fusion_tf.weights import load_model

    extra = argv[1:]  # a space-separated list's later items
    model = functools.partial(load_model, FLAGS.weights, FLAGS.precision)
    folders = bool(FLAGS.dir1 or FLAGS.dir2 or FLAGS.out_dir)
    if folders + bool(FLAGS.inputs) + bool(FLAGS.video) > 1:
        raise U2FusionError("use one of --inputs, --dir1/--dir2/--out_dir or --video")
    mode = "folders" if folders else "video" if FLAGS.video else "inputs"
    for name, modes in MODE_FLAGS.items():
        if FLAGS[name].present and mode not in modes:
            applies = " and ".join(MODES[m] for m in modes)
            raise U2FusionError(f"--{name}: applies only to {applies}, not to {MODES[mode]}")
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
            max_pixels=FLAGS.max_pixels,
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
    fuse_files(inputs, FLAGS.output, model, FLAGS.tile, FLAGS.output_scaling, FLAGS.max_pixels)
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
    from u2fusion_tf.weights import WEIGHTS_HELP

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
