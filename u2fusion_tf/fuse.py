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
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.catalogue import PairSet
from u2fusion_tf.cli import log
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.fusion import Generator, fuse, fuse_y
from u2fusion_tf.fusion_files import fuse_files, fuse_folders
from u2fusion_tf.shards import check_shard

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


if __name__ == "__main__":
    from u2fusion_tf import common_flags

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
    common_flags.define_weights()
    common_flags.define_precision()
    flags.DEFINE_integer(
        "tile",
        0,
        "Tile side in pixels for large images; 0: whole image up to 1024x1024 pixels, else 512.",
    )
    common_flags.define_output_scaling()
    cli.run_main(
        main,
        on_interrupt="outputs already written are complete and no partial file is left",
        reads_images=True,
    )
