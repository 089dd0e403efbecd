"""Video fusion: a short synthetic video made of real test pairs, fused frame by frame."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from u2fusion_tf import video
from u2fusion_tf.errors import FileError, ImageError
from u2fusion_tf.fuse import fuse
from u2fusion_tf.video import fuse_video

PAIR = ("harvard_pet_mri/pet/25057.png", "harvard_pet_mri/mri/25057.png")
"""An RGB source and a gray one, 256x256: colour comes from the first."""


def write_video(path, frames, fps=10.0):
    """A lossless (FFV1) video, so the test can compare pixels exactly."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    for frame in frames:
        writer.write(frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()


def read_video(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


@pytest.fixture
def videos(shared_data, tmp_path):
    """vis.mkv (6 frames) and ir.mkv (4 frames): the real pair, panned one pixel a frame."""
    paths = [shared_data / name for name in PAIR]
    if not all(path.is_file() for path in paths):
        pytest.skip(f"{paths} not found in the shared data")
    pet, mri = (cv2.imread(str(path), cv2.IMREAD_UNCHANGED) for path in paths)
    write_video(tmp_path / "vis.mkv", [np.roll(pet, k, axis=1) for k in range(6)])
    write_video(tmp_path / "ir.mkv", [np.roll(mri, k, axis=1) for k in range(4)])
    return tmp_path / "vis.mkv", tmp_path / "ir.mkv"


def run_fuse(*args, weights):
    command = [sys.executable, "-m", "u2fusion_tf.fuse", *map(str, args), "--weights", weights]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def test_video_frames_are_fused_like_images(videos, tmp_path, random_model, random_weights_file):
    output = tmp_path / "fused.mkv"
    result = run_fuse("--video", *videos, "--output", output, weights=random_weights_file)
    assert result.returncode == 0, result.stderr
    assert "has 6 frames" in result.stderr and "fusing the first 4" in result.stderr
    assert "frame 4/4" in result.stderr and "frames/s" in result.stderr
    fused = read_video(output)
    assert len(fused) == 4
    for frame, vis, ir in zip(fused, read_video(videos[0]), read_video(videos[1]), strict=False):
        rgb = fuse([vis[:, :, ::-1] / 255.0, ir[:, :, 0] / 255.0], random_model)
        expected = np.round(np.clip(rgb, 0, 1) * 255)[:, :, ::-1]
        assert np.abs(frame - expected).max() <= 1  # float rounding at .5 only
    assert sorted(os.listdir(tmp_path)) == ["fused.mkv", "ir.mkv", "vis.mkv"]


def test_videos_of_different_sizes_are_refused(videos, tmp_path, random_weights_file):
    write_video(tmp_path / "small.mkv", [np.zeros((40, 50, 3), np.uint8)] * 2)
    result = run_fuse(
        "--video",
        videos[0],
        tmp_path / "small.mkv",
        "--output",
        tmp_path / "fused.mp4",
        weights=random_weights_file,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "small.mkv: frames are 50x40 but" in last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "fused.mp4").exists()


def test_an_interrupted_run_leaves_no_file(videos, tmp_path, random_model, monkeypatch):
    """Ctrl-C during the second batch: neither the output nor its temporary file remains."""

    class InterruptedModel:
        calls = 0

        def infer(self, sources):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            return random_model.infer(sources)

    monkeypatch.setattr(video, "MAX_BATCH", 2)
    with pytest.raises(KeyboardInterrupt):
        fuse_video(*map(str, videos), str(tmp_path / "fused.mp4"), InterruptedModel())
    assert sorted(os.listdir(tmp_path)) == ["ir.mkv", "vis.mkv"]


def test_frames_too_small_to_fuse_are_a_one_line_error(tmp_path, random_model):
    """A real MJPG AVI of 64x1 frames: refused when opened, naming the video, nothing written."""
    path = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 1))
    for k in range(3):
        writer.write(np.full((1, 64, 3), 40 * k, np.uint8))
    writer.release()
    with pytest.raises(ImageError, match=rf"^{path}: frames are 64x1; fusion needs at least 2x2$"):
        fuse_video(str(path), str(path), str(tmp_path / "fused.mkv"), random_model)
    assert os.listdir(tmp_path) == ["line.avi"]


def test_output_errors_name_the_output(videos, tmp_path, random_model, monkeypatch):
    """Not a temporary file beside it: a folder named like a video, a folder not writable."""
    (tmp_path / "folder.mkv").mkdir()
    with pytest.raises(FileError, match=rf"^{tmp_path / 'folder.mkv'}: is a folder"):
        fuse_video(*map(str, videos), str(tmp_path / "folder.mkv"), random_model)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(FileError, match=rf"^{tmp_path / 'fused.mkv'}: output folder .* writable"):
        fuse_video(*map(str, videos), str(tmp_path / "fused.mkv"), random_model)
    assert sorted(os.listdir(tmp_path)) == ["folder.mkv", "ir.mkv", "vis.mkv"]
