"""Fusion API and `python -m u2fusion_tf.fuse`: tiling, sequences, colour, files and errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from u2fusion_tf.catalogue import PairSet
from u2fusion_tf.errors import FileError, ImageError, U2FusionError
from u2fusion_tf.fuse import fuse, fuse_y
from u2fusion_tf.fusion import fuse_ycbcr
from u2fusion_tf.fusion_files import fuse_files, fuse_folders, read_sources
from u2fusion_tf.images import (
    PIPE_WAIT_SECONDS,
    authors_8bit,
    fuse_chroma,
    read_image,
    rgb_to_ycbcr,
    scale_output,
    write_image,
    ycbcr_to_rgb,
)
from u2fusion_tf.shards import check_shard

RNG = np.random.default_rng(7)


def smooth_random(shape):
    """A random image with some structure (smoothed noise), in [0, 1]."""
    noise = RNG.uniform(0, 1, shape).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def test_tiled_equals_whole_image(random_model):
    y1, y2 = smooth_random((70, 53)), smooth_random((70, 53))
    whole = fuse_y(y1, y2, random_model, tile=0)
    for tile in (16, 25, 64):
        np.testing.assert_allclose(fuse_y(y1, y2, random_model, tile=tile), whole, atol=1e-5)


def test_a_batch_is_fused_like_its_images_whole_or_tiled(random_model):
    batch1, batch2 = smooth_random((3, 30, 41)), smooth_random((3, 30, 41))
    for tile in (0, 16):
        fused = fuse_y(batch1, batch2, random_model, tile)
        for k in range(3):
            np.testing.assert_allclose(
                fused[k], fuse_y(batch1[k], batch2[k], random_model), atol=1e-5
            )


def test_three_inputs_are_fused_in_sequence(random_model):
    a, b, c = (smooth_random((20, 31)) for _ in range(3))
    expected = fuse_y(fuse_y(a, b, random_model), c, random_model)
    np.testing.assert_allclose(fuse([a, b, c], random_model), expected, atol=1e-6)
    assert np.abs(expected - fuse_y(a, b, random_model)).max() > 1e-3


def test_ycbcr_round_trip_and_known_values():
    rgb = RNG.uniform(0, 1, (5, 6, 3)).astype(np.float32)
    y, cb, cr = rgb_to_ycbcr(rgb)
    np.testing.assert_allclose(ycbcr_to_rgb(y, cb, cr), rgb, atol=2e-4)
    y, cb, cr = rgb_to_ycbcr(np.array([[[1.0, 0.0, 0.0]]], np.float32))
    np.testing.assert_allclose([y[0, 0], cb[0, 0], cr[0, 0]], [0.299, 0.5 - 0.1687, 1.0], atol=1e-6)


def test_ycbcr_to_rgb_is_the_jpeg_formulas_in_float32():
    """Element by element, as `make results` has always computed it: a matrix product sums in
    another order and moves an 8-bit level here and there."""
    y, cb, cr = (RNG.uniform(0, 1, (64, 64)).astype(np.float32) for _ in range(3))
    r = y + 1.402 * (cr - 0.5)
    g = y - 0.34414 * (cb - 0.5) - 0.71414 * (cr - 0.5)
    b = y + 1.772 * (cb - 0.5)
    rgb = ycbcr_to_rgb(y, cb, cr)
    assert rgb.dtype == np.float32
    np.testing.assert_array_equal(rgb, np.stack([r, g, b], axis=-1))


def test_chroma_fusion_eq10():
    c1 = np.array([0.5, 0.7, 0.2, 0.5], np.float32)
    c2 = np.array([0.5, 0.4, 0.9, 0.8], np.float32)
    expected = [0.5, (0.7 * 0.2 + 0.4 * 0.1) / 0.3, (0.2 * 0.3 + 0.9 * 0.4) / 0.7, 0.8]
    np.testing.assert_allclose(fuse_chroma(c1, c2), expected, atol=1e-6)


def test_colour_cases(random_model):
    """The colour rules on the unclipped fusion (`fuse_ycbcr`; `fuse` clips what leaves
    [0, 1], as a saved image does)."""

    def unclipped(sources):
        return fuse_ycbcr(sources, random_model).to_image()

    gray1, gray2 = smooth_random((12, 14)), smooth_random((12, 14))
    rgb1, rgb2 = smooth_random((12, 14, 3)), smooth_random((12, 14, 3))
    assert fuse([gray1, gray2], random_model).shape == (12, 14)
    for gray_first in (True, False):
        sources = [gray1, rgb1] if gray_first else [rgb1, gray1]
        fused = unclipped(sources)
        y, cb, cr = rgb_to_ycbcr(fused)
        luminances = [s if s.ndim == 2 else rgb_to_ycbcr(s)[0] for s in sources]
        np.testing.assert_allclose(y, fuse_y(*luminances, random_model), atol=2e-4)
        _, cb1, cr1 = rgb_to_ycbcr(rgb1)
        np.testing.assert_allclose(cb, cb1, atol=2e-4)
        np.testing.assert_allclose(cr, cr1, atol=2e-4)
    _, cb, cr = rgb_to_ycbcr(unclipped([rgb1, rgb2]))
    (_, cb1, cr1), (_, cb2, cr2) = rgb_to_ycbcr(rgb1), rgb_to_ycbcr(rgb2)
    np.testing.assert_allclose(cb, fuse_chroma(cb1, cb2), atol=2e-4)
    np.testing.assert_allclose(cr, fuse_chroma(cr1, cr2), atol=2e-4)


def test_reads_8_and_16_bit_gray_rgb_rgba(tmp_path):
    gray8 = RNG.integers(0, 256, (4, 5), dtype=np.uint8)
    rgb16 = RNG.integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    rgba8 = RNG.integers(0, 256, (4, 5, 4), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), gray8)
    cv2.imwrite(str(tmp_path / "c.png"), rgb16)
    cv2.imwrite(str(tmp_path / "a.png"), rgba8)
    np.testing.assert_allclose(read_image(tmp_path / "g.png"), gray8 / 255.0, atol=1e-7)
    np.testing.assert_allclose(
        read_image(tmp_path / "c.png"), rgb16[:, :, ::-1] / 65535.0, atol=1e-7
    )
    np.testing.assert_allclose(
        read_image(tmp_path / "a.png"), rgba8[:, :, 2::-1] / 255.0, atol=1e-7
    )


def test_writes_8_bit_and_raw(tmp_path):
    image = np.array([[-0.2, 0.5], [1.3, 0.25]], np.float32)
    write_image(tmp_path / "f.png", image)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "f.png"), 0), [[0, 128], [255, 64]])
    write_image(tmp_path / "f.npy", image)
    np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), image)
    assert sorted(os.listdir(tmp_path)) == ["f.npy", "f.png"]


def test_written_files_get_the_usual_permissions(tmp_path, random_model):
    """Atomic writes go through private temporary files; the results must not stay private."""
    from u2fusion_tf.weights import save_weights

    previous = os.umask(0o022)
    try:
        write_image(tmp_path / "f.png", np.zeros((2, 2)))
        save_weights(random_model, tmp_path / "m.weights.h5")
    finally:
        os.umask(previous)
    for name in ("f.png", "m.weights.h5"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_output_folder_not_writable(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ImageError, match="not writable"):
        write_image(tmp_path / "f.png", np.zeros((2, 2)))
    assert os.listdir(tmp_path) == []


# --- the command line -------------------------------------------------------------------


def run_fuse(*args, weights=None):
    command = [sys.executable, "-m", "u2fusion_tf.fuse", *map(str, args)]
    if weights is not None:
        command += ["--weights", str(weights)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


@pytest.fixture
def pair(tmp_path):
    """A gray 8-bit PNG and an RGB 8-bit JPEG of one size."""
    cv2.imwrite(str(tmp_path / "a.png"), np.round(255 * smooth_random((24, 30))).astype(np.uint8))
    cv2.imwrite(
        str(tmp_path / "b.jpg"), np.round(255 * smooth_random((24, 30, 3))).astype(np.uint8)
    )
    return tmp_path / "a.png", tmp_path / "b.jpg"


def test_cli_fuses_to_image_and_raw(pair, tmp_path, random_model, random_weights_file):
    out = tmp_path / "out"
    out.mkdir()
    images = [read_image(p) for p in pair]
    result = run_fuse(
        "--inputs", f"{pair[0]},{pair[1]}", "--output", out / "f.png", weights=random_weights_file
    )
    assert result.returncode == 0, result.stderr
    with_comma = tmp_path / "a,1.png"  # a name with a comma goes after the flags
    with_comma.write_bytes(pair[0].read_bytes())
    result = run_fuse("--output", out / "f.npy", with_comma, pair[1], weights=random_weights_file)
    assert result.returncode == 0, result.stderr
    raw = np.load(out / "f.npy")
    np.testing.assert_allclose(
        raw, fuse_y(images[0], rgb_to_ycbcr(images[1])[0], random_model), atol=1e-5
    )
    written = read_image(out / "f.png")
    assert written.shape == (24, 30, 3)
    expected = np.round(np.clip(fuse(images, random_model), 0, 1) * 255) / 255
    assert np.abs(written - expected).max() <= 1 / 255 + 1e-6
    assert sorted(os.listdir(out)) == ["f.npy", "f.png"]


def make_bad_case(case, tmp_path, pair):
    """Returns the CLI arguments of a bad-input case and the text its error must contain."""
    good = str(pair[0])
    if case == "missing":
        return ["--inputs", good, tmp_path / "nope.png"], "nope.png: no such file"
    if case == "not an image":
        (tmp_path / "text.png").write_text("hello")
        return ["--inputs", good, tmp_path / "text.png"], "text.png: is not an image"
    if case == "sizes":
        cv2.imwrite(str(tmp_path / "small.png"), np.zeros((10, 12), np.uint8))
        return ["--inputs", good, tmp_path / "small.png"], "small.png: is 10x12 but"
    if case == "tiny":
        cv2.imwrite(str(tmp_path / "line.png"), np.zeros((1, 30), np.uint8))
        return ["--inputs", tmp_path / "line.png", tmp_path / "line.png"], "line.png: is 1x30"
    if case == "huge":
        (tmp_path / "huge.pgm").write_bytes(b"P5\n36906 35676\n255\n" + bytes(64))
        return ["--inputs", good, tmp_path / "huge.pgm"], "huge.pgm: declares 36906x35676 pixels"
    if case == "no folder":
        return ["--inputs", *pair], "does not exist"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing", "not an image", "sizes", "tiny", "huge", "no folder"])
def test_cli_bad_input(case, pair, tmp_path, random_weights_file):
    args, message = make_bad_case(case, tmp_path, pair)
    output = tmp_path / ("absent/f.png" if case == "no folder" else "f.png")
    before = set(os.listdir(tmp_path))
    result = run_fuse(*args, "--output", output, weights=random_weights_file)
    assert result.returncode != 0
    assert last_line(result.stderr).startswith("error: ") and message in last_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert set(os.listdir(tmp_path)) == before, "no output or temporary file is left behind"


def test_cli_folder_mode_continues_past_a_bad_pair(tmp_path, random_weights_file):
    dir1, dir2, out = tmp_path / "vis", tmp_path / "ir", tmp_path / "fused"
    dir1.mkdir()
    dir2.mkdir()
    for stem in ("p1", "p2", "p3"):
        cv2.imwrite(
            str(dir1 / f"{stem}.png"), np.round(255 * smooth_random((16, 18, 3))).astype(np.uint8)
        )
        cv2.imwrite(
            str(dir2 / f"{stem}.bmp"), np.round(255 * smooth_random((16, 18))).astype(np.uint8)
        )
    cv2.imwrite(str(dir2 / "p2.bmp"), np.zeros((9, 9), np.uint8))  # wrong size
    (dir1 / "lonely.png").write_bytes((dir1 / "p1.png").read_bytes())
    result = run_fuse("--dir1", dir1, "--dir2", dir2, "--out_dir", out, weights=random_weights_file)
    assert result.returncode == 1
    assert sorted(os.listdir(out)) == ["p1.png", "p3.png"]
    assert "[3/3] p3" in result.stderr
    failures = result.stderr.split("2 failed:")[1]
    assert "lonely.png: has no partner" in failures and "p2.bmp: is 9x9 but" in failures


def test_read_sources_names_both_shapes(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 6), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((6, 4), np.uint8))
    with pytest.raises(ImageError, match=r"b.png: is 6x4 but .*a.png is 4x6"):
        read_sources([tmp_path / "a.png", tmp_path / "b.png"])


def test_an_output_is_never_one_of_the_sources(pair, tmp_path, random_model):
    source = pair[0]
    original = source.read_bytes()
    (tmp_path / "link.png").symlink_to(source)
    os.link(source, tmp_path / "hard.png")
    for output in (source, tmp_path / "link.png", tmp_path / "hard.png"):
        with pytest.raises(FileError, match=f"is the input {source}"):
            fuse_files([source, source], output, random_model)
    assert source.read_bytes() == original


def test_folder_fusion_never_writes_into_a_source_folder(tmp_path, random_model):
    dir1, dir2 = tmp_path / "vis", tmp_path / "ir"
    for folder in (dir1, dir2):
        folder.mkdir()
        cv2.imwrite(str(folder / "p.png"), np.round(255 * smooth_random((8, 9))).astype(np.uint8))
    (tmp_path / "alias").symlink_to(dir2)
    before = {folder: (folder / "p.png").read_bytes() for folder in (dir1, dir2)}
    for out_dir in (dir1, tmp_path / "alias"):
        with pytest.raises(FileError, match="is the input"):
            fuse_folders(PairSet.of(dir1, dir2), str(out_dir), random_model)
    assert {folder: (folder / "p.png").read_bytes() for folder in (dir1, dir2)} == before


def test_cli_output_over_a_source_is_refused(pair, random_weights_file):
    original = pair[0].read_bytes()
    result = run_fuse("--inputs", *pair, "--output", pair[0], weights=random_weights_file)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        last_line(result.stderr)
        == f"error: {pair[0]}: is the input {pair[0]}; choose another output"
    )
    assert pair[0].read_bytes() == original


def test_cli_max_pixels_sets_the_pixel_limit(pair, tmp_path, random_weights_file):
    """The sources are 30x24 = 720 pixels."""
    output = tmp_path / "f.png"
    refused = run_fuse(
        "--inputs", *pair, "--output", output, "--max_pixels", 719, weights=random_weights_file
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert last_line(refused.stderr) == (
        f"error: {pair[0]}: declares 30x24 pixels, more than the limit of 719 "
        "(raise it with --max_pixels or U2FUSION_MAX_PIXELS)"
    )
    assert not output.exists()
    accepted = run_fuse(
        "--inputs", *pair, "--output", output, "--max_pixels", 720, weights=random_weights_file
    )
    assert accepted.returncode == 0, accepted.stderr
    assert output.is_file()


def test_an_image_from_a_pipe_that_pauses_is_read_whole(tmp_path):
    """A pipe's data may come in pieces, with pauses longer than a read waits for it."""
    image = np.round(255 * smooth_random((40, 30))).astype(np.uint8)
    encoded = cv2.imencode(".png", image)[1].tobytes()
    fifo = tmp_path / "slow.png"
    os.mkfifo(fifo)

    def write_slowly():
        with open(fifo, "wb", buffering=0) as stream:
            for start in range(0, len(encoded), 200):
                stream.write(encoded[start : start + 200])
                time.sleep(PIPE_WAIT_SECONDS * 1.5)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    read = read_image(fifo)
    writer.join()
    assert len(encoded) > 400
    np.testing.assert_array_equal(np.round(read * 255).astype(np.uint8), image)


def test_cli_ctrl_c_is_one_line_and_exit_130(pair, tmp_path, random_weights_file):
    """The second source is a pipe that never ends, so the command is caught reading it."""
    fifo = tmp_path / "endless.png"
    os.mkfifo(fifo)
    command = [sys.executable, "-m", "u2fusion_tf.fuse", "--inputs", str(pair[0]), str(fifo)]
    process = subprocess.Popen(
        [*command, "--output", str(tmp_path / "f.png"), "--weights", str(random_weights_file)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while True:  # opening the writing end succeeds once the command reads the pipe
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    os.close(writer)
    assert process.returncode == 130, stderr
    assert last_line(stderr).startswith("interrupted; ") and "Traceback" not in stderr
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.jpg", "endless.png"]


def scipy_toimage_bytes(output: np.ndarray) -> np.ndarray:
    """The bytes of ``scipy.misc.toimage(output, cmin=0, cmax=output.max())``, written out from
    SciPy 1.1's ``bytescale`` line by line (an independent check of `authors_8bit`)."""
    cmin, cmax, high, low = 0, output.max(), 255, 0
    cscale = cmax - cmin
    if cscale == 0:
        cscale = 1
    scale = float(high - low) / cscale
    bytedata = (output - cmin) * scale + low
    return (bytedata.clip(low, high) + 0.5).astype(np.uint8)


def test_authors_scaling_rounds_halves_up_and_stretches_by_the_maximum():
    # max 255/256 makes the scale exactly 256, so k.5 / 256 lands exactly on a half
    gray = np.array([[126.5 / 256, 127.5 / 256, 0.1], [255 / 256, -0.01, 0.0]], np.float32)
    expected = [[127, 128, 26], [255, 0, 0]]  # np.round would give 126 and 128 (half to even)
    np.testing.assert_array_equal(authors_8bit(gray), expected)
    np.testing.assert_array_equal(scipy_toimage_bytes(gray), expected)
    rgb = np.stack([gray, gray / 2, gray / 4], axis=-1)  # one maximum over all channels
    np.testing.assert_array_equal(authors_8bit(rgb)[..., 0], expected)
    np.testing.assert_array_equal(authors_8bit(rgb), scipy_toimage_bytes(rgb))
    np.testing.assert_array_equal(scale_output(gray, "authors") * 255, expected)
    assert scale_output(gray, "none") is gray


def test_authors_scaling_of_a_real_pair_matches_toimage(official_env, shared_data, tmp_path):
    """The authors' model on one of their test pairs, saved by the fuse tool with
    --output_scaling authors: exactly the bytes their test program's toimage writes."""
    from u2fusion_tf.weights import load_model

    folder = shared_data / "u2fusion_test" / "medical"
    sources = [folder / "pet" / "1.png", folder / "mri" / "1.png"]
    output = fuse([read_image(path) for path in sources], load_model("official"))
    assert output.dtype == np.float32 and output.ndim == 2
    assert 1 / output.max() > 1.05, "the stretch matters on this pair"
    expected = scipy_toimage_bytes(output)
    np.testing.assert_array_equal(authors_8bit(output), expected)
    result = run_fuse(
        *("--inputs", *sources, "--output", tmp_path / "f.png", "--output_scaling", "authors"),
        weights="official",
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(
        cv2.imread(str(tmp_path / "f.png"), cv2.IMREAD_UNCHANGED), expected
    )
    unscaled = np.round(np.clip(output, 0, 1) * 255)
    assert expected.max() == 255 and unscaled.max() < 240


def test_cli_refuses_authors_scaling_of_raw_output(pair, tmp_path, random_weights_file):
    result = run_fuse(
        "--inputs",
        *pair,
        "--output",
        tmp_path / "f.npy",
        "--output_scaling",
        "authors",
        weights=random_weights_file,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert last_line(result.stderr) == (
        f"error: {tmp_path / 'f.npy'}: --output_scaling authors scales 8-bit images; "
        ".npy holds the raw fused Y"
    )
    assert not (tmp_path / "f.npy").exists()


def make_folders(tmp_path, stems):
    dir1, dir2 = tmp_path / "vis", tmp_path / "ir"
    dir1.mkdir()
    dir2.mkdir()
    for stem in stems:
        cv2.imwrite(
            str(dir1 / f"{stem}.png"), np.round(255 * smooth_random((12, 10, 3))).astype(np.uint8)
        )
        cv2.imwrite(
            str(dir2 / f"{stem}.png"), np.round(255 * smooth_random((12, 10))).astype(np.uint8)
        )
    return dir1, dir2


def test_folder_shards_fuse_each_pair_once_and_read_ahead_changes_nothing(tmp_path, random_model):
    dir1, dir2 = make_folders(tmp_path, ["p1", "p2", "p3", "p4", "p5"])
    (dir1 / "lonely.png").write_bytes((dir1 / "p1.png").read_bytes())
    outputs, failures = [], []
    for index in range(2):
        out = tmp_path / f"shard{index}"
        failures += fuse_folders(
            PairSet.of(dir1, dir2), str(out), random_model, shard=index, num_shards=2, log=print
        )
        outputs.append(sorted(os.listdir(out)))
    assert outputs == [["p1.png", "p2.png"], ["p3.png", "p4.png", "p5.png"]]  # lonely is 0th
    assert len(failures) == 1 and "lonely.png: has no partner" in failures[0]
    sequential = tmp_path / "sequential"
    fuse_folders(PairSet.of(dir1, dir2), str(sequential), random_model, read_ahead=0, log=print)
    for name in ("p1.png", "p4.png"):
        shard = tmp_path / ("shard0" if name == "p1.png" else "shard1")
        assert (sequential / name).read_bytes() == (shard / name).read_bytes()
    with pytest.raises(U2FusionError, match=r"--shard 2: must be in 0 \.\. 1"):
        fuse_folders(PairSet.of(dir1, dir2), str(sequential), random_model, shard=2, num_shards=2)


def test_a_part_without_pairs_is_a_normal_outcome_and_part_0_reports_unpaired_files(
    tmp_path, random_model
):
    dir1, dir2 = make_folders(tmp_path, ["p1", "p2", "p3"])
    (dir1 / "lonely.png").write_bytes((dir1 / "p1.png").read_bytes())
    lines = []
    failures = fuse_folders(
        PairSet.of(dir1, dir2), str(tmp_path / "out"), random_model, num_shards=4, log=lines.append
    )
    assert len(failures) == 1 and "lonely.png: has no partner" in failures[0]
    assert lines == ["part 0 of 4 is empty (3 pairs); nothing to fuse"]
    assert os.listdir(tmp_path / "out") == []
    fuse_folders(PairSet.of(dir1, dir2), str(tmp_path / "out"), random_model, shard=1, num_shards=4)
    assert os.listdir(tmp_path / "out") == ["p1.png"]
    with pytest.raises(U2FusionError, match=r"^--num_shards 0: must be at least 1$"):
        check_shard(0, 0)


def test_cli_options_that_do_not_apply_to_the_mode_are_refused_by_name(pair, tmp_path):
    for args, message in [
        (
            ["--video", "a.mkv", "b.mkv", "--output", tmp_path / "f.mkv", "--output_scaling=none"],
            "--output_scaling: applies only to --inputs and folder mode "
            "(--dir1/--dir2/--out_dir), not to --video",
        ),
        (
            ["--inputs", *pair, "--output", tmp_path / "f.png", "--out_ext", ".jpg"],
            "--out_ext: applies only to folder mode (--dir1/--dir2/--out_dir), not to --inputs",
        ),
    ]:
        result = run_fuse(*args)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert last_line(result.stderr) == f"error: {message}"
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.jpg"]


@pytest.mark.parametrize(("command", "flag"), [("fuse", "--tile"), ("export", "--tflite_weights")])
def test_the_fuse_and_export_commands_read_their_flags_without_tensorflow(command, flag):
    """The commands' modules and flags (``--help`` shows them) import no TensorFlow: it is
    imported when a model is loaded. `fusion` needs it only for a model's ``infer``."""
    code = (
        "import runpy, sys\n"
        "import u2fusion_tf.fusion\n"
        f"sys.argv = [{command!r}, '--help']\n"
        "try:\n"
        f"    runpy.run_module('u2fusion_tf.{command}', run_name='__main__')\n"
        "finally:\n"
        "    print('tensorflow imported:', 'tensorflow' in sys.modules, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert flag in result.stdout, result.stderr
    assert result.stderr.splitlines()[-1] == "tensorflow imported: False", result.stderr


def authors_ycbcr2rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """The authors' test program's ``ycbcr2rgb``, written out."""
    r = y + 1.402 * (cr - 128 / 255.0)
    g = y - 0.34414 * (cb - 128 / 255.0) - 0.71414 * (cr - 128 / 255.0)
    b = y + 1.772 * (cb - 128 / 255.0)
    return np.stack([r, g, b], axis=-1)


def authors_rgb2ycbcr(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The authors' test program's ``rgb2ycbcr``, written out."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.1687 * r - 0.3313 * g + 0.5 * b + 128 / 255.0
    cr = 0.5 * r - 0.4187 * g - 0.0813 * b + 128 / 255.0
    return y, cb, cr


@pytest.mark.parametrize("colour", ["gray+gray", "rgb+gray", "gray+rgb", "rgb+rgb"])
def test_authors_scaling_saves_what_their_program_saves(colour, random_model, tmp_path):
    """Per colour case, the file `--output_scaling authors` writes against the authors' test
    program written out: gray Y stretched; one RGB source: its Cb, Cr with the fused Y,
    stretched over all channels; two RGB sources: no colour at all, the gray Y stretched."""
    rng = np.random.default_rng(7)
    images = {
        "gray": rng.uniform(0.1, 0.9, (24, 20)).astype(np.float32),
        "rgb": rng.uniform(0.1, 0.9, (24, 20, 3)).astype(np.float32),
    }
    first, second = (images[kind] for kind in colour.split("+"))
    paths = [tmp_path / "first.png", tmp_path / "second.png"]
    for path, image in zip(paths, (first, second), strict=True):
        write_image(path, image)
    first, second = (read_image(path) for path in paths)
    y1, y2 = (authors_rgb2ycbcr(i)[0] if i.ndim == 3 else i for i in (first, second))
    y = fuse_y(y1.astype(np.float32), y2.astype(np.float32), random_model)
    if colour == "rgb+gray":
        expected = scipy_toimage_bytes(authors_ycbcr2rgb(y, *authors_rgb2ycbcr(first)[1:]))
    elif colour == "gray+rgb":
        expected = scipy_toimage_bytes(authors_ycbcr2rgb(y, *authors_rgb2ycbcr(second)[1:]))
    else:
        expected = scipy_toimage_bytes(y)
    fuse_files(paths, tmp_path / "out.png", random_model, scaling="authors")
    saved = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    saved = saved[..., ::-1] if saved.ndim == 3 else saved
    assert saved.shape == expected.shape
    assert np.abs(saved.astype(int) - expected).max() <= 1, "float rounding of a level at most"
    assert np.mean(saved == expected) > 0.99


def test_folder_progress_shows_rate_and_time_left(tmp_path, random_model):
    dir1, dir2 = make_folders(tmp_path, ["p1", "p2", "p3"])
    lines = []
    fuse_folders(PairSet.of(dir1, dir2), str(tmp_path / "out"), random_model, log=lines.append)
    assert lines[0] == f"[1/3] p1 -> {tmp_path / 'out' / 'p1.png'}"  # nothing measured yet
    for line in lines[1:]:
        assert re.search(r"\.png, \d+\.\d\d pairs/s, ETA \d+:\d\d:\d\d$", line), line
    assert lines[2].startswith("[3/3] p3 -> ")


def test_the_api_returns_what_the_saved_image_holds(official_env, shared_data, tmp_path):
    """On a PET + MRI pair the RGB rebuilt from the fused Y and chroma leaves [0, 1] (it once
    came back from -0.40 to 1.42): `fuse` returns it clipped, as the file holds it."""
    from u2fusion_tf.fusion import fuse_ycbcr
    from u2fusion_tf.weights import load_model

    folder = shared_data / "harvard_pet_mri"
    stem = sorted(p.stem for p in (folder / "pet").iterdir())[0]
    images = [read_image(next((folder / d).glob(f"{stem}.*"))) for d in ("pet", "mri")]
    model = load_model("official")
    unclipped = fuse_ycbcr(images, model).to_image()
    assert unclipped.min() < 0 or unclipped.max() > 1, "this pair leaves [0, 1]"
    fused = fuse(images, model)
    assert fused.dtype == np.float32 and fused.min() >= 0 and fused.max() <= 1
    write_image(tmp_path / "f.png", fused)
    np.testing.assert_allclose(read_image(tmp_path / "f.png"), fused, atol=0.5 / 255 + 1e-6)
