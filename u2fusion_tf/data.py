"""Training data: 64x64 two-source patches in HDF5, with the VGG16 information measure precomputed.

``python -m u2fusion_tf.data prepare`` cuts the Y channel (same conversion as the fuse tool) of
each aligned pair into patches and stores, beside every patch, the information measure g of
both sources (paper Eq. 1, `u2fusion_tf.features`), so that training does not run VGG16 at every
step. The preservation degrees (Eq. 2) are derived from g at training time, so the task constant
c can change without preparing the data again.

HDF5 layout (one file per task)::

    /patches      float32 (N, P, P, 2)  sources I1, I2 on the last axis, values in [0, 1]
    /information  float32 (N, 2)        g(I1), g(I2) (Eq. 1)
    /pair         int32   (N,)          index into /pair_names of the pair a patch comes from
    /pair_names   str     (M,)          "<dataset>/<stem>" of every pair used
    attributes:   task, patch_size, stride, scales, flips, vgg_weights, vgg_seed, vgg_precision,
                  datasets, luminance ("Y = 0.299 R + 0.587 G + 0.114 B"), format_version,
                  shard, num_shards

Preparation can be split over processes or machines: ``--shard K --num_shards N`` prepares the
K-th of N consecutive blocks of the pairs into ``<output stem>-0000K-of-0000N.h5`` (`shard_path`).
Wherever a task's file is read (`PatchFiles`), its complete set of shards may stand in for it;
read in order they hold exactly the patches of a single run.

Preparation checks its settings and the output first, streams pair by pair (memory holds one
image and one batch of patches), shows progress, and writes to a temporary file of its own
renamed into place at the end, so an interrupted or failed run (a full disk) never leaves a file
that looks complete, and two runs never share a temporary file. SIGTERM stops it as Ctrl-C does;
the temporary file of a run killed outright (SIGKILL) is removed by the next run on the same
output. Unreadable images, unpaired
stems and size mismatches are reported by name and skipped; a result with no patches is an
error.

Example (task 1, training split only, from the default data root of `u2fusion_tf.catalogue`)::

    python -m u2fusion_tf.data prepare --task multi-modal --output data/multi-modal.h5 \\
        --datasets roadscene,harvard_pet_mri --split train
"""

from __future__ import annotations

import fcntl
import glob
import io
import json
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import h5py
import numpy as np
from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.catalogue import SPLITS, PairSet, resolve_data_root, split_sets
from u2fusion_tf.errors import ImageError, U2FusionError
from u2fusion_tf.files import check_writable, refuse_overwriting_inputs, replaced_atomically
from u2fusion_tf.headers import over_the_limit, pixel_limit
from u2fusion_tf.images import read_encoded, read_image, require_same_size, to_luminance
from u2fusion_tf.shards import check_shard, take_shard

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # TensorFlow is imported where it computes, not by the command line
    import tensorflow as tf

FLAGS = flags.FLAGS

FORMAT_VERSION = 2
"""Version 2: g measured with the VGG16 input resized on TF1's grid (version 1 used TF2's
half-pixel grid, so its stored g differs and it is refused)."""
PATCH_SIZE = 64
MEASURE_BATCH = 32
"""Patches whose information measure is computed together (bounded memory, good VGG speed)."""
FLIPS = {"none": None, "horizontal": 1, "vertical": 0}
"""Flip names and the matching `cv2.flip` codes."""


def cut_patches(image: np.ndarray, size: int = PATCH_SIZE, stride: int = PATCH_SIZE) -> np.ndarray:
    """All size x size patches at the given stride, (n, size, size, ...) in row-major order."""
    height, width = image.shape[:2]
    return (
        np.stack(
            [
                image[top : top + size, left : left + size]
                for top in range(0, height - size + 1, stride)
                for left in range(0, width - size + 1, stride)
            ]
        )
        if height >= size and width >= size
        else np.empty((0, size, size, *image.shape[2:]), image.dtype)
    )


def augmented(
    pair: np.ndarray, scales: Sequence[float], flips: Sequence[str]
) -> Iterator[np.ndarray]:
    """The pair (H, W, 2) enlarged by each scale (bicubic) and flipped each way (paper Sec. 4.1)."""
    for scale in scales:
        resized = (
            pair
            if scale == 1
            else cv2.resize(pair, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        )
        resized = np.clip(resized, 0.0, 1.0)
        for flip in flips:
            code = FLIPS[flip]
            yield resized if code is None else cv2.flip(resized, code)


def read_pair(path1: Path, path2: Path, max_pixels: int | None = None) -> np.ndarray:
    """The Y channels of two aligned images as one (H, W, 2) float32 array."""
    y1, y2 = (to_luminance(read_image(path, max_pixels)) for path in (path1, path2))
    require_same_size(path2, y2, path1, y1)
    return np.stack([y1, y2], axis=-1)


def check_settings(
    patch_size: int, stride: int, scales: Sequence[float], flips: Sequence[str]
) -> None:
    """Refuses patch settings that cannot give training patches, before any work is done."""
    from u2fusion_tf.losses import SSIM_WINDOW

    if patch_size < SSIM_WINDOW:
        raise U2FusionError(
            f"--patch_size {patch_size}: must be at least {SSIM_WINDOW} (the loss's SSIM window)"
        )
    if stride < 1:
        raise U2FusionError(f"--stride {stride}: must be at least 1")
    if not scales or not all(math.isfinite(s) and s > 0 for s in scales):
        raise U2FusionError(f"--scales {','.join(map(str, scales))}: must be positive numbers")
    unknown = [flip for flip in flips if flip not in FLIPS]
    if unknown or not flips:
        raise U2FusionError(f"--flips {','.join(flips)}: must be among {', '.join(FLIPS)}")


def check_scaled_sizes(
    pairs: Sequence[tuple[str, Path, Path]], scales: Sequence[float], max_pixels: int | None
) -> None:
    """Refuses scales that enlarge a pair beyond the pixel limit (`headers.pixel_limit`), from
    the images' headers, before any work is done. A pair that cannot be read is left to be
    reported and skipped when it is prepared."""
    scale, limit = max(scales), pixel_limit(max_pixels)
    if scale <= 1:
        return
    for _, path, _ in pairs:
        try:
            _, (width, height) = read_encoded(str(path), limit)
        except ImageError:
            continue
        scaled_width, scaled_height = round(width * scale), round(height * scale)
        if scaled_width * scaled_height > limit:
            raise U2FusionError(
                f"--scales {scale:g}: enlarges {path} ({width}x{height}) to "
                f"{scaled_width}x{scaled_height} pixels, {over_the_limit(limit)}"
            )


def parse_scales(values: Sequence[str]) -> list[float]:
    """The --scales values as numbers."""
    try:
        return [float(value) for value in values]
    except ValueError as error:
        raise U2FusionError(f"--scales {','.join(values)}: must be positive numbers") from error


class FailureRecordingFile(io.FileIO):
    """The temporary patch file, as HDF5 writes it. HDF5 cannot recover from a failed write (a
    full disk): its cache stays dirty and the interpreter crashes when it is freed. Through this
    file, the first failure is recorded and HDF5 finishes as if it had succeeded; the caller then
    deletes the file and reports `failure`."""

    failure: OSError | None = None

    def write(self, data) -> int:
        if self.failure is None:
            try:
                return super().write(data)
            except OSError as error:
                self.failure = error
        return len(data)

    def truncate(self, size: int | None = None) -> int:
        if self.failure is None:
            try:
                return super().truncate(size)
            except OSError as error:
                self.failure = error
        return self.tell() if size is None else size


class PatchWriter:
    """Appends patches and their information measures to growing HDF5 datasets."""

    def __init__(self, file: h5py.File, patch_size: int):
        self.patches = file.create_dataset(
            "patches",
            (0, patch_size, patch_size, 2),
            np.float32,
            maxshape=(None, patch_size, patch_size, 2),
            chunks=(16, patch_size, patch_size, 2),
        )
        self.information = file.create_dataset(
            "information", (0, 2), np.float32, maxshape=(None, 2)
        )
        self.pair = file.create_dataset("pair", (0,), np.int32, maxshape=(None,))

    def append(self, patches: np.ndarray, information: np.ndarray, pair_index: int) -> None:
        start, count = len(self.patches), len(patches)
        for dataset in (self.patches, self.information, self.pair):
            dataset.resize(start + count, axis=0)
        self.patches[start:] = patches
        self.information[start:] = information
        self.pair[start:] = pair_index


def prepare(
    sources: Sequence[PairSet],
    output: str,
    task: str,
    vgg_weights: str = "imagenet",
    vgg_seed: int = 0,
    vgg_precision: str = "float32",
    patch_size: int = PATCH_SIZE,
    stride: int = PATCH_SIZE,
    scales: Sequence[float] = (1.0,),
    flips: Sequence[str] = ("none",),
    shard: int = 0,
    num_shards: int = 1,
    log: Callable[[str], None] = logger.info,
    max_pixels: int | None = None,
) -> int:
    """Writes the task's HDF5 patch file (with `num_shards` > 1, shard `shard` of it, named by
    `shard_path`); returns the number of patches. Sources above `max_pixels` (default
    `headers.pixel_limit`) are skipped; scales that enlarge one beyond it are refused."""
    from u2fusion_tf.features import VGGFeatureHead

    check_settings(patch_size, stride, scales, flips)
    check_shard(shard, num_shards)
    if num_shards > 1:
        output = shard_path(output, shard, num_shards)
    folder = os.path.dirname(os.path.abspath(output))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise U2FusionError(f"{output}: cannot create its folder ({error.strerror})") from error
    check_writable(output)
    remove_stale_temporaries(output, log)
    pairs, problems = [], []
    for source in sources:
        found, unmatched = source.match()
        problems += unmatched
        pairs += [(f"{source.name}/{stem}", path1, path2) for stem, path1, path2 in found]
    folders = [folder for source in sources for folder in (source.folder_a, source.folder_b)]
    refuse_overwriting_inputs(output, [*folders, *(path for _, *paths in pairs for path in paths)])
    for problem in problems:
        log(f"skipped: {problem}")
    pairs = take_shard(pairs, shard, num_shards)
    check_scaled_sizes(pairs, scales, max_pixels)
    head = VGGFeatureHead(vgg_weights, seed=vgg_seed, precision=vgg_precision)
    started = time.monotonic()
    with replaced_atomically(output) as temporary:
        stream = FailureRecordingFile(temporary, "w+")
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX)  # in use: not stale (`remove_stale_...`)
        try:
            with stream, h5py.File(stream, "w") as file:
                total, names = _write_patches(
                    file, pairs, head, patch_size, stride, scales, flips, started, log, max_pixels
                )
                file.attrs.update(
                    task=task,
                    patch_size=patch_size,
                    stride=stride,
                    scales=list(scales),
                    flips=list(flips),
                    vgg_weights=head.weights_name,
                    vgg_seed=vgg_seed,
                    vgg_precision=head.precision,
                    format_version=FORMAT_VERSION,
                    shard=shard,
                    num_shards=num_shards,
                    datasets=json.dumps([str(s.folder_a.parent) for s in sources]),
                    luminance="Y = 0.299 R + 0.587 G + 0.114 B",
                )
        except OSError as error:  # HDF5's report of a write that failed
            stream.failure = stream.failure or error
        if stream.failure is not None:
            problem = stream.failure.strerror or stream.failure
            raise U2FusionError(f"{output}: cannot be written ({problem})") from stream.failure
        if total == 0 and num_shards == 1:  # a shard may be empty; its set may not (`PatchFiles`)
            raise U2FusionError(
                f"{output}: no patches (no readable pairs of at least {patch_size}x{patch_size})"
            )
    log(
        f"wrote {output}: {total} patches from {len(names)} pairs "
        f"in {time.monotonic() - started:.0f} s"
    )
    return total


def remove_stale_temporaries(output: str, log: Callable[[str], None]) -> None:
    """Deletes the temporary files of `output` that earlier runs left when they were killed
    (SIGKILL, a power cut): those no running preparation holds locked."""
    folder, name = os.path.split(os.path.abspath(output))
    pattern = os.path.join(glob.escape(folder), f".tmp-{'?' * 8}-{glob.escape(name)}")
    for path in glob.glob(pattern):  # `replaced_atomically`'s names: 8 random characters
        try:
            with open(path, "rb") as stream:
                fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(path)
        except OSError:  # locked by a run still writing it, or already gone
            continue
        log(f"removed {path}, left by an interrupted run")


SETTINGS = ("task", "patch_size", "stride", "scales", "flips", "vgg_weights", "vgg_seed")
"""Attributes that every shard of a task must share (vgg_precision may differ: g is the same to
about 1e-3)."""


def shard_path(output: str, shard: int, num_shards: int) -> str:
    """Where shard K of N of a task file goes: data/t.h5 -> data/t-0000K-of-0000N.h5."""
    stem, extension = os.path.splitext(output)
    return f"{stem}-{shard:05d}-of-{num_shards:05d}{extension}"


def task_files(path: str) -> list[str]:
    """The files holding a task's patches: `path` itself, or else its shards when there are."""
    if os.path.exists(path):
        return [path]
    stem, extension = os.path.splitext(path)
    return sorted(glob.glob(f"{glob.escape(stem)}-[0-9]*-of-[0-9]*{extension}")) or [path]


class PatchFiles:
    """A task's prepared patches in one file or in its shards, read without loading them.

    The information measures (8 bytes a patch) are read at once and checked; the patches are
    read on demand by row (`read`), rows numbered across the files in shard order, so that a
    task larger than memory can be trained on and the reading can overlap the steps."""

    def __init__(self, path: str, task: str | None = None):
        self.paths = task_files(path)
        self.files: list[h5py.File] = []
        try:
            information = [self._open(file_path, task) for file_path in self.paths]
        except BaseException:
            self.close()
            raise
        self.attrs = dict(self.files[0].attrs)
        self._check_shards()
        self.information = np.concatenate(information)
        self.starts = np.cumsum([0] + [len(i) for i in information])
        if len(self.information) == 0 or not np.isfinite(self.information).all():
            raise U2FusionError(f"{path}: patch file is empty or inconsistent")

    def _open(self, path: str, task: str | None) -> np.ndarray:
        if not os.path.isfile(path):
            raise U2FusionError(
                f"{path}: cannot be read: no such file (prepare it with `make data`)"
            )
        try:
            file = h5py.File(path, "r")
        except OSError as error:
            raise U2FusionError(f"{path}: cannot be read as a patch file ({error})") from error
        self.files.append(file)
        version = file.attrs.get("format_version")
        if version is not None and version < FORMAT_VERSION:
            raise U2FusionError(
                f"{path}: prepared by an earlier version (format {version}, this one reads "
                f"{FORMAT_VERSION}: its information measure differs); prepare it again "
                "(delete it and run `make data`)"
            )
        if version != FORMAT_VERSION:
            raise U2FusionError(f"{path}: not a u2fusion_tf patch file (format_version {version})")
        if task is not None and file.attrs.get("task") != task:
            raise U2FusionError(f"{path}: holds task {file.attrs.get('task')!r}, expected {task!r}")
        try:
            information = file["information"][...]
            patches = file["patches"]
        except KeyError as error:
            raise U2FusionError(f"{path}: cannot be read as a patch file ({error})") from error
        if len(patches) != len(information):
            raise U2FusionError(f"{path}: patch file is empty or inconsistent")
        _check_layout(path, patches, information)
        return information

    def _check_shards(self) -> None:
        """The files are one task's shards 0 .. N-1, all of them, prepared with one setting."""
        for path, file in zip(self.paths, self.files, strict=True):
            for key in SETTINGS:
                if not np.array_equal(file.attrs.get(key), self.attrs.get(key)):
                    raise U2FusionError(
                        f"{path}: prepared with {key} {file.attrs.get(key)!r}, but "
                        f"{self.paths[0]} with {self.attrs.get(key)!r}; prepare them alike"
                    )
        counts = {int(file.attrs.get("num_shards", 1)) for file in self.files}
        shards = [int(file.attrs.get("shard", 0)) for file in self.files]
        if len(counts) > 1 or shards != list(range(len(self.files))) or counts != {len(shards)}:
            expected = max(counts)
            missing = sorted(set(range(expected)) - set(shards))
            raise U2FusionError(
                f"{self.paths[0]}: shards of {expected} expected, "
                + (f"missing {', '.join(map(str, missing))}" if missing else "of different sets")
            )

    def __len__(self) -> int:
        return len(self.information)

    def read(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The patches (n, P, P, 2) and information (n, 2) of the row numbers `rows`."""
        unique, order = np.unique(np.asarray(rows, np.int64), return_inverse=True)
        which = np.searchsorted(self.starts, unique, side="right") - 1
        size = int(self.attrs["patch_size"])
        patches = [np.empty((0, size, size, 2), np.float32)] + [
            self.files[k]["patches"][unique[which == k] - self.starts[k]] for k in np.unique(which)
        ]
        return np.concatenate(patches)[order], self.information[unique][order]

    def require_valid_values(self, block: int = 1024) -> None:
        """Refuses patches that are not finite values in [0, 1] (one pass over the files, a
        block of patches at a time)."""
        for path, file in zip(self.paths, self.files, strict=True):
            patches = file["patches"]
            for start in range(0, len(patches), block):
                values = patches[start : start + block]
                if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
                    raise U2FusionError(f"{path}: patches must be finite values in [0, 1]")

    def close(self) -> None:
        for file in self.files:
            file.close()


def _check_layout(path: str, patches: h5py.Dataset, information: np.ndarray) -> None:
    """Refuses datasets that are not the layout above: float32 (N, P, P, 2) patches with P at
    least the loss's SSIM window, float32 (N, 2) information."""
    from u2fusion_tf.losses import SSIM_WINDOW

    shape = patches.shape
    square_pairs = len(shape) == 4 and shape[1] == shape[2] and shape[3] == 2
    if not square_pairs or patches.dtype != np.float32 or shape[1] < SSIM_WINDOW:
        raise U2FusionError(
            f"{path}: /patches is {shape} {patches.dtype}; expected float32 (N, P, P, 2) with "
            f"P >= {SSIM_WINDOW}"
        )
    if information.shape != (len(information), 2) or information.dtype != np.float32:
        raise U2FusionError(
            f"{path}: /information is {information.shape} {information.dtype}; expected "
            "float32 (N, 2)"
        )


def swap_sources(
    sources: np.ndarray, information: np.ndarray, swap: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Exchanges I1 and I2 of a batch together with their information measures, so every source
    keeps its own weight."""
    if not swap:
        return sources, information
    return sources[..., ::-1], information[..., ::-1]


def epoch_plan(count: int, batch_size: int, seed: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """One epoch over `count` patches: the batches (steps, batch_size) of a random permutation,
    each sorted, the remainder dropped as the authors did, and which batches have their sources
    swapped (at random, half of them)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(count)
    steps = count // batch_size
    swaps = rng.random(steps) < 0.5
    return np.sort(order[: steps * batch_size].reshape(steps, batch_size), axis=1), swaps


def epoch_dataset(
    files: PatchFiles,
    rows: np.ndarray,
    batch_size: int,
    seed: Sequence[int],
    first_step: int = 0,
    parts: int = 1,
    pipeline: int = 0,
    pipelines: int = 1,
) -> tf.data.Dataset:
    """The batches of one epoch (`epoch_plan` over `rows` of `files`) from `first_step` on, as a
    `tf.data.Dataset` of (sources, information) that reads and swaps ahead of the training step.

    For `parts` replicas, every batch is cut into `parts` equal pieces, and this input pipeline
    (of `pipelines`, one per worker) yields its consecutive share of them, batch after batch,
    which is how `tf.distribute` hands pieces to a worker's replicas: together the replicas of a
    step see exactly the batch a single device would."""
    import tensorflow as tf

    batches, swaps = epoch_plan(len(rows), batch_size, seed)
    piece, mine = batch_size // parts, parts // pipelines

    def load(element: np.int64) -> tuple[np.ndarray, np.ndarray]:
        step, part = divmod(int(element), mine)
        start = (pipeline * mine + part) * piece
        sources, information = files.read(rows[batches[step, start : start + piece]])
        sources, information = swap_sources(sources, information, swaps[step])
        return np.ascontiguousarray(sources), np.ascontiguousarray(information)

    size = int(files.attrs["patch_size"])

    def read(element):
        sources, information = tf.numpy_function(load, [element], [tf.float32, tf.float32])
        return (
            tf.ensure_shape(sources, (piece, size, size, 2)),
            tf.ensure_shape(information, (piece, 2)),
        )

    elements = tf.data.Dataset.range(first_step * mine, len(batches) * mine)
    return elements.map(read, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _write_patches(
    file: h5py.File,
    pairs: Sequence[tuple[str, Path, Path]],
    head,
    patch_size: int,
    stride: int,
    scales: Sequence[float],
    flips: Sequence[str],
    started: float,
    log,
    max_pixels: int | None,
) -> tuple[int, list[str]]:
    """Cuts and measures the patches of every pair into `file`; returns the patch count and the
    names of the pairs used."""
    from u2fusion_tf.features import information_measure

    writer, names = PatchWriter(file, patch_size), []
    for index, (name, path1, path2) in enumerate(pairs, 1):
        try:
            pair = read_pair(path1, path2, max_pixels)
        except ImageError as error:
            log(f"skipped: {error}")
            continue
        patches = np.concatenate(
            [cut_patches(view, patch_size, stride) for view in augmented(pair, scales, flips)]
        )
        if len(patches):
            g1 = information_measure(head, patches[..., :1], MEASURE_BATCH)
            g2 = information_measure(head, patches[..., 1:], MEASURE_BATCH)
            writer.append(patches, np.stack([g1, g2], axis=-1), len(names))
        names.append(name)
        rate = len(writer.patches) / max(time.monotonic() - started, 1e-9)
        log(
            f"[{index}/{len(pairs)}] {name}: {len(patches)} patches "
            f"({len(writer.patches)} total, {rate:.1f} patches/s)"
        )
    file.create_dataset("pair_names", data=np.array(names, dtype=h5py.string_dtype()))
    return len(writer.patches), names


@dataclass
class PatchSet:
    """A task's patches all in memory."""

    patches: np.ndarray
    information: np.ndarray
    attrs: dict


def load_patches(path: str, task: str | None = None) -> PatchSet:
    """Reads a task's file, or its shards, whole, checking them as `PatchFiles` does."""
    files = PatchFiles(path, task)
    try:
        files.require_valid_values()
        patches = np.concatenate([file["patches"][...] for file in files.files])
    finally:
        files.close()
    return PatchSet(patches, files.information, files.attrs)


def interrupt(signal_number: int, frame: object) -> None:
    """SIGTERM (a scheduler's or `kill`'s stop) handled as Ctrl-C: the temporary file removed,
    one line, exit 130."""
    raise KeyboardInterrupt


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGTERM, interrupt)
    if argv[1:] != ["prepare"]:
        raise U2FusionError(
            "usage: python -m u2fusion_tf.data prepare --task ... --output ... (see --help)"
        )
    sources = []
    if FLAGS.datasets:
        sources += split_sets(resolve_data_root(FLAGS.data_root), FLAGS.split, FLAGS.datasets)
    for spec in FLAGS.pair_dirs or []:
        folder1, _, folder2 = spec.partition(":")
        if not folder2:
            raise U2FusionError(f"--pair_dirs {spec}: expected DIR1:DIR2")
        sources.append(PairSet.of(folder1, folder2))
    if not sources:
        raise U2FusionError("give --datasets (with --data_root) or --pair_dirs DIR1:DIR2")
    if FLAGS.max_pairs:
        sources = [source.first(FLAGS.max_pairs) for source in sources]
    prepare(
        sources,
        FLAGS.output,
        FLAGS.task,
        FLAGS.vgg_weights,
        FLAGS.vgg_seed,
        FLAGS.vgg_precision,
        FLAGS.patch_size,
        FLAGS.stride or FLAGS.patch_size,
        parse_scales(FLAGS.scales),
        FLAGS.flips,
        FLAGS.shard,
        FLAGS.num_shards,
        log=cli.log,
        max_pixels=FLAGS.max_pixels,
    )


if __name__ == "__main__":
    from u2fusion_tf import common_flags
    from u2fusion_tf.catalogue import TASKS

    flags.DEFINE_enum("task", None, list(TASKS), "Task the patches are for.")
    flags.DEFINE_string("output", None, "HDF5 file to write.")
    common_flags.define_data_root()
    flags.DEFINE_list("datasets", None, "Datasets to use (of the package's splits.json).")
    flags.DEFINE_enum("split", "train", list(SPLITS), "Which pairs of --datasets to use.")
    flags.DEFINE_multi_string("pair_dirs", None, "Other pairs: DIR1:DIR2 (paired by file stem).")
    common_flags.define_max_pairs()
    flags.DEFINE_integer("patch_size", PATCH_SIZE, "Patch side in pixels.")
    flags.DEFINE_integer("stride", None, "Patch stride (default: the patch size).")
    flags.DEFINE_list("scales", ["1"], "Enlargement factors of each pair (multi-focus: 1,1.5).")
    flags.DEFINE_list("flips", ["none"], "Flips of each pair: none, horizontal, vertical.")
    flags.DEFINE_string(
        "vgg_weights", "imagenet", "VGG16 weights: imagenet, a local .h5 file, or none."
    )
    flags.DEFINE_integer("vgg_seed", 0, "Seed of the untrained VGG16 head (--vgg_weights none).")
    flags.DEFINE(
        cli.PrecisionParser(), "vgg_precision", "float32", "VGG16 precision (bf16: ~4x faster)."
    )
    flags.DEFINE_integer(
        "shard", 0, "Prepare this block of the pairs (0 .. num_shards - 1).", lower_bound=0
    )
    flags.DEFINE_integer(
        "num_shards",
        1,
        "Split the pairs into this many blocks, one file each, for parallel runs.",
        lower_bound=1,
    )
    flags.mark_flags_as_required(["task", "output"])
    cli.run_main(
        main,
        on_interrupt="no patch file was written; run it again to start over",
        reads_images=True,
    )
