"""Fusing two aligned videos frame by frame:
``python -m u2fusion_tf.fuse --video vis.mp4 ir.mp4 --output fused.mp4``.

Frames are read with OpenCV, fused in batches (as many frames as fit in
`fusion.MAX_WHOLE_PIXELS`, at least one) with the images' colour rules (a batch whose three
channels are equal counts as gray, as an infrared camera records), and written at the first
video's frame rate. The shorter video sets the length (with a warning); videos of different
frame sizes are refused before anything is written, and so are frames smaller than fusion takes
(`fusion.MIN_SIDE`). The output is written whole or not at all (`files.replaced_atomically`), so
an interrupted or failed run leaves nothing under the final name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from u2fusion_tf.cli import log
from u2fusion_tf.errors import ImageError
from u2fusion_tf.files import check_writable, refuse_overwriting_inputs, replaced_atomically
from u2fusion_tf.fusion import MAX_WHOLE_PIXELS, MIN_SIDE, Generator, YCbCr, fuse_two, fuse_y
from u2fusion_tf.images import rgb_to_ycbcr

CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "FFV1"}
"""Output containers and the OpenCV FourCC written into each (``.mkv``: lossless FFV1)."""
DEFAULT_FPS = 25.0
"""Frame rate written when the first video does not declare one."""
MAX_BATCH = 8
PROGRESS_SECONDS = 2.0


class VideoSource:
    """One input video: its frames as uint8 BGR batches, its size, rate and declared length."""

    def __init__(self, path: str):
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise ImageError(self.path, "no such file")
        self.capture = cv2.VideoCapture(self.path)
        ok, self.first = self.capture.read() if self.capture.isOpened() else (False, None)
        if not ok:
            raise ImageError(self.path, "is not a video OpenCV can read")
        self.height, self.width = self.first.shape[:2]
        if min(self.height, self.width) < MIN_SIDE:
            raise ImageError(
                self.path,
                f"frames are {self.width}x{self.height}; fusion needs at least "
                f"{MIN_SIDE}x{MIN_SIDE}",
            )
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
        self.frames = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        """Declared length (0 when unknown); the stream may still end sooner."""

    def read(self, count: int) -> list[np.ndarray]:
        """Up to `count` next frames (fewer at the end of the stream)."""
        frames = [self.first] if self.first is not None else []
        self.first = None
        while len(frames) < count:
            ok, frame = self.capture.read()
            if not ok:
                break
            if frame.shape[:2] != (self.height, self.width):
                raise ImageError(
                    self.path, f"frame size changes to {frame.shape[1]}x{frame.shape[0]}"
                )
            frames.append(frame)
        return frames

    def close(self) -> None:
        self.capture.release()


def frames_to_ycbcr(frames: np.ndarray) -> YCbCr:
    """A (N, H, W, 3) uint8 BGR batch as the fusion sees it: gray if its channels are equal."""
    if np.array_equal(frames[..., 0], frames[..., 1]) and np.array_equal(
        frames[..., 0], frames[..., 2]
    ):
        return YCbCr(frames[..., 0].astype(np.float32) / 255.0, None)
    y, cb, cr = rgb_to_ycbcr(frames[..., ::-1].astype(np.float32) / 255.0)
    return YCbCr(y, (cb, cr))


def to_bgr_frames(fused: YCbCr) -> np.ndarray:
    """The fused batch as uint8 BGR frames (gray repeated in the three channels)."""
    image = fused.to_image()
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(pixels[..., None], 3, -1) if pixels.ndim == 3 else pixels[..., ::-1]


def check_video_output(output: str, inputs: list[str]) -> None:
    """Fails before any work when `output` is not a video type written here, cannot be
    written, or is one of the input videos."""
    suffix = Path(output).suffix.lower()
    if suffix not in CODECS:
        raise ImageError(
            output, f"unsupported video type {suffix or '(none)'}; use {', '.join(CODECS)}"
        )
    check_writable(output)
    refuse_overwriting_inputs(output, inputs)


def fuse_video(
    path1: str,
    path2: str,
    output: str,
    model: Generator,
    tile: int = 0,
    log: Callable[[str], None] = log,
) -> int:
    """Fuses two videos into `output` (``.mp4`` or ``.avi``); returns the frames written."""
    check_video_output(output, [path1, path2])
    first, second = VideoSource(path1), VideoSource(path2)
    try:
        if (first.width, first.height) != (second.width, second.height):
            raise ImageError(
                second.path,
                f"frames are {second.width}x{second.height} but {first.path}'s are "
                f"{first.width}x{first.height}; videos must be the same size",
            )
        if first.frames and second.frames and first.frames != second.frames:
            shorter = min(first, second, key=lambda source: source.frames)
            log(
                f"warning: {first.path} has {first.frames} frames, {second.path} {second.frames}: "
                f"fusing the first {shorter.frames} ({shorter.path} sets the length)"
            )
        total = min(first.frames, second.frames)
        batch = min(MAX_BATCH, max(1, MAX_WHOLE_PIXELS // (first.width * first.height)))
        return _write_fused(first, second, output, model, tile, batch, total, log)
    finally:
        first.close()
        second.close()


def _write_fused(first, second, output, model, tile, batch, total, log) -> int:
    with replaced_atomically(output) as temporary:
        writer = cv2.VideoWriter(
            temporary,
            cv2.VideoWriter_fourcc(*CODECS[Path(output).suffix.lower()]),
            first.fps,
            (first.width, first.height),
        )
        try:
            if not writer.isOpened():
                raise ImageError(output, "OpenCV cannot write this video type here")
            written, started, reported = 0, time.perf_counter(), 0.0
            while True:
                frames1, frames2 = first.read(batch), second.read(batch)
                count = min(len(frames1), len(frames2))
                if count == 0:
                    break
                fused = fuse_two(
                    frames_to_ycbcr(np.stack(frames1[:count])),
                    frames_to_ycbcr(np.stack(frames2[:count])),
                    lambda y1, y2: fuse_y(y1, y2, model, tile),
                )
                for frame in to_bgr_frames(fused):
                    writer.write(frame)
                written += count
                elapsed = time.perf_counter() - started
                if elapsed - reported >= PROGRESS_SECONDS or count < batch:
                    reported = elapsed
                    log(_progress(written, total, elapsed))
                if len(frames1) != len(frames2):
                    break
        finally:
            writer.release()
    if total and written < total:
        log(f"warning: the videos ended after {written} frames, not the {total} declared")
    return written


def _progress(written: int, total: int, elapsed: float) -> str:
    rate = written / elapsed if elapsed > 0 else 0.0
    line = f"frame {written}" + (f"/{total}" if total else "") + f", {rate:.2f} frames/s"
    if total and rate > 0:
        line += f", ETA {time.strftime('%H:%M:%S', time.gmtime(max(0, total - written) / rate))}"
    return line
