"""HDF5 patch preparation: patches, augmentation, the stored information measure, bad data."""

from __future__ import annotations

import fcntl
import os
import resource
import signal
import subprocess
import sys
import threading

import cv2
import h5py
import numpy as np
import pytest

from u2fusion_tf.catalogue import PairSet, split_sets
from u2fusion_tf.data import (
    PatchFiles,
    augmented,
    cut_patches,
    epoch_dataset,
    epoch_plan,
    load_patches,
    parse_scales,
    prepare,
    read_pair,
    shard_path,
    swap_sources,
    task_files,
)
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.features import VGGFeatureHead, information_measure
from u2fusion_tf.headers import pixel_limit

RNG = np.random.default_rng(11)


def write_pair(folder1, folder2, stem, shape, colour=True):
    image = (RNG.uniform(0, 255, (*shape, 3) if colour else shape)).astype(np.uint8)
    cv2.imwrite(str(folder1 / f"{stem}.png"), image)
    cv2.imwrite(str(folder2 / f"{stem}.jpg"), cv2.GaussianBlur(image, (5, 5), 2))


@pytest.fixture
def small_dataset(tmp_path):
    """Three good pairs (RGB/JPEG), plus a size mismatch, an unpaired file and a broken file."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_pair(a, b, "p1", (64, 130))
    write_pair(a, b, "p2", (70, 70), colour=False)
    write_pair(a, b, "p3", (40, 40))  # smaller than a patch: no patches, not an error
    cv2.imwrite(str(b / "p4.png"), np.zeros((64, 64), np.uint8))
    cv2.imwrite(str(a / "p4.png"), np.zeros((64, 65), np.uint8))
    (a / "p5.png").write_bytes(b"broken")
    (b / "p5.png").write_bytes(b"broken")
    cv2.imwrite(str(a / "alone.png"), np.zeros((64, 64), np.uint8))
    return PairSet("small", a, b)


@pytest.fixture(scope="module")
def head():
    return VGGFeatureHead("none", seed=0)


def test_cut_patches_positions():
    image = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    patches = cut_patches(image, size=2, stride=2)
    assert patches.shape == (6, 2, 2)
    np.testing.assert_array_equal(patches[4], image[2:4, 2:4])
    assert cut_patches(image, size=8).shape == (0, 8, 8)


def test_augmentation_enlarges_and_flips():
    pair = RNG.uniform(0, 1, (10, 12, 2)).astype(np.float32)
    views = list(augmented(pair, [1.0, 1.5], ["none", "horizontal", "vertical"]))
    assert [v.shape for v in views] == [(10, 12, 2)] * 3 + [(15, 18, 2)] * 3
    np.testing.assert_array_equal(views[1], pair[:, ::-1])
    np.testing.assert_array_equal(views[2], pair[::-1])
    assert all(v.min() >= 0 and v.max() <= 1 for v in views)


def test_prepare_stores_patches_and_their_information(small_dataset, tmp_path, head):
    output = str(tmp_path / "out" / "task.h5")
    lines = []
    total = prepare([small_dataset], output, "multi-focus", "none", log=lines.append)
    assert total == 2 + 1  # p1: 1x2 patches, p2: 1x1, p3: none
    with h5py.File(output) as file:
        patches, information = file["patches"][...], file["information"][...]
        assert patches.shape == (3, 64, 64, 2) and patches.dtype == np.float32
        assert list(file["pair"][...]) == [0, 0, 1]
        assert [n.decode() for n in file["pair_names"][...]] == ["small/p1", "small/p2", "small/p3"]
        assert file.attrs["task"] == "multi-focus" and file.attrs["vgg_weights"] == "none"
        assert file.attrs["patch_size"] == 64 and file.attrs["stride"] == 64
    expected_pair = read_pair(small_dataset.folder_a / "p1.png", small_dataset.folder_b / "p1.jpg")
    np.testing.assert_array_equal(patches[1], expected_pair[:, 64:128])
    online = [np.asarray(information_measure(head, patches[..., i : i + 1])) for i in (0, 1)]
    np.testing.assert_allclose(information, np.stack(online, axis=-1), rtol=1e-5)
    log = "\n".join(lines)
    assert "alone.png: has no partner" in log
    assert "p4.png: is 64x64 but" in log and "p5.png: is not an image" in log
    assert not (tmp_path / "out" / "task.h5.tmp").exists()


def test_prepare_with_nothing_usable_fails_without_output(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_pair(a, b, "tiny", (20, 20))
    with pytest.raises(U2FusionError, match="no patches"):
        prepare(
            [PairSet("t", a, b)],
            str(tmp_path / "t.h5"),
            "multi-modal",
            "none",
            log=lambda _: None,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_shared_splits_and_real_pairs(shared_data, tmp_path):
    roadscene, harvard = split_sets(shared_data, "train", ["roadscene", "harvard_pet_mri"])
    assert len(roadscene.stems) == 177 and len(harvard.stems) == 245
    assert roadscene.folder_a.name == "vis" and harvard.folder_b.name == "mri"
    two = PairSet(
        "harvard_pet_mri", harvard.folder_a, harvard.folder_b, frozenset(sorted(harvard.stems)[:2])
    )
    output = str(tmp_path / "real.h5")
    assert prepare([two], output, "multi-modal", "none", log=lambda _: None) == 2 * 16
    data = load_patches(output, "multi-modal")
    assert data.patches.min() >= 0 and data.patches.max() <= 1
    assert (data.information > 0).all()
    with pytest.raises(U2FusionError, match="no dataset 'nope'"):
        split_sets(shared_data, "train", ["nope"])


def test_load_patches_rejects_bad_files(tmp_path, small_dataset):
    with pytest.raises(U2FusionError, match=r"missing\.h5: cannot be read"):
        load_patches(str(tmp_path / "missing.h5"))
    (tmp_path / "garbage.h5").write_bytes(b"\x89HDF garbage")
    with pytest.raises(U2FusionError, match=r"garbage\.h5: cannot be read"):
        load_patches(str(tmp_path / "garbage.h5"))
    output = str(tmp_path / "ok.h5")
    prepare([small_dataset], output, "multi-focus", "none", log=lambda _: None)
    with pytest.raises(U2FusionError, match="holds task 'multi-focus', expected 'multi-modal'"):
        load_patches(output, "multi-modal")
    with h5py.File(output, "a") as file:
        file.attrs["format_version"] = 1
    with pytest.raises(U2FusionError, match=r"ok\.h5: prepared by an earlier version \(format 1"):
        load_patches(output)


def test_cli(small_dataset, tmp_path):
    output = tmp_path / "cli.h5"
    command = [
        sys.executable,
        "-m",
        "u2fusion_tf.data",
        "prepare",
        "--task",
        "multi-exposure",
        "--vgg_weights",
        "none",
        "--output",
        str(output),
        "--pair_dirs",
        f"{small_dataset.folder_a}:{small_dataset.folder_b}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (
        "[3/5] a/p3: 0 patches" in result.stderr and load_patches(str(output)).patches.shape[0] == 3
    )
    result = subprocess.run(
        [*command[:4], "--task", "multi-exposure", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].startswith(
        "error: give --datasets"
    )


def test_shards_hold_the_patches_of_one_run(small_dataset, tmp_path):
    """Three shards (the last one empty: its pairs are a size mismatch and a broken file) read
    back, whole or row by row across their boundaries, as the single file of one run."""
    whole = str(tmp_path / "whole" / "task.h5")
    prepare([small_dataset], whole, "multi-focus", "none", log=lambda _: None)
    sharded = str(tmp_path / "sharded" / "task.h5")
    counts = [
        prepare(
            [small_dataset],
            sharded,
            "multi-focus",
            "none",
            shard=k,
            num_shards=3,
            log=lambda _: None,
        )
        for k in range(3)
    ]
    assert counts == [2, 1, 0]
    assert task_files(sharded) == [shard_path(sharded, k, 3) for k in range(3)]
    assert shard_path(sharded, 1, 3).endswith("sharded/task-00001-of-00003.h5")
    one, shards = load_patches(whole, "multi-focus"), load_patches(sharded, "multi-focus")
    np.testing.assert_array_equal(shards.patches, one.patches)
    np.testing.assert_array_equal(shards.information, one.information)
    files = PatchFiles(sharded, "multi-focus")
    patches, information = files.read([1, 2])  # the last row of shard 0, the row of shard 1
    np.testing.assert_array_equal(patches, one.patches[1:3])
    np.testing.assert_array_equal(information, one.information[1:3])
    files.close()
    os.unlink(shard_path(sharded, 1, 3))
    with pytest.raises(
        U2FusionError, match=r"task-00000-of-00003\.h5: shards of 3 expected, missing 1"
    ):
        PatchFiles(sharded)
    with pytest.raises(U2FusionError, match=r"--shard 3: must be in 0 \.\. 2"):
        prepare([small_dataset], sharded, "multi-focus", "none", shard=3, num_shards=3)


def test_the_pipeline_yields_each_epochs_batches_swapped_and_split(small_dataset, tmp_path):
    """epoch_dataset gives the batches of epoch_plan, read from the file with their sources
    swapped as planned; cut for two replicas, the pieces of a step make up its batch; resuming
    at a step gives the rest of the epoch."""
    path = str(tmp_path / "task.h5")
    prepare(
        [small_dataset], path, "multi-focus", "none", patch_size=16, stride=32, log=lambda _: None
    )
    files, whole = PatchFiles(path), load_patches(path)
    rows = np.arange(1, len(files))  # as the training rows, without a held-out one
    batches, swaps = epoch_plan(len(rows), 2, [0, 1, 0])
    assert batches.shape == (len(rows) // 2, 2) and swaps.any() and not swaps.all()
    assert len(np.unique(batches)) == batches.size
    expected = [
        swap_sources(whole.patches[rows[b]], whole.information[rows[b]], swap)
        for b, swap in zip(batches, swaps, strict=True)
    ]
    got = [(s.numpy(), i.numpy()) for s, i in epoch_dataset(files, rows, 2, [0, 1, 0])]
    assert len(got) == len(expected)
    for (sources, information), (want_sources, want_information) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(sources, want_sources)
        np.testing.assert_array_equal(information, want_information)
    pieces = [s.numpy() for s, _ in epoch_dataset(files, rows, 2, [0, 1, 0], 1, parts=2)]
    assert len(pieces) == 2 * (len(expected) - 1) and pieces[0].shape[0] == 1
    np.testing.assert_array_equal(np.concatenate(pieces[:2]), expected[1][0])
    second_worker = epoch_dataset(files, rows, 2, [0, 1, 0], 1, parts=2, pipeline=1, pipelines=2)
    np.testing.assert_array_equal(next(iter(second_worker))[0].numpy(), expected[1][0][1:])
    files.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"patch_size": 0}, "--patch_size 0: must be at least 11"),
        ({"patch_size": -8}, "--patch_size -8: must be at least 11"),
        ({"patch_size": 8}, "--patch_size 8: must be at least 11"),
        ({"stride": -1}, "--stride -1: must be at least 1"),
        ({"scales": [0.0]}, "--scales 0.0: must be positive numbers"),
        ({"flips": ["diagonal"]}, "--flips diagonal: must be among none, horizontal, vertical"),
    ],
)
def test_bad_settings_are_refused_before_any_work(small_dataset, tmp_path, settings, message):
    lines = []
    with pytest.raises(U2FusionError, match=message):
        prepare(
            [small_dataset],
            str(tmp_path / "t.h5"),
            "multi-modal",
            "none",
            **settings,
            log=lines.append,
        )
    assert lines == [] and sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_an_output_that_is_a_folder_is_refused_before_any_work(small_dataset, tmp_path):
    lines = []
    with pytest.raises(U2FusionError, match="is a folder; give a file name"):
        prepare([small_dataset], str(tmp_path / "a"), "multi-modal", "none", log=lines.append)
    assert lines == []


def limited_file_size(limit: int):
    """Files of this process cannot grow past `limit` bytes (as on a full disk) until the returned
    function is called."""
    previous = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, previous[1]))

    def restore():
        resource.setrlimit(resource.RLIMIT_FSIZE, previous)
        signal.signal(signal.SIGXFSZ, handler)

    return restore


def test_a_full_disk_is_a_one_line_error_and_leaves_nothing(small_dataset, tmp_path, head):
    output = tmp_path / "out" / "t.h5"
    restore = limited_file_size(60_000)  # the complete file is about 110 KB
    try:
        with pytest.raises(U2FusionError, match=r"t\.h5: cannot be written \(File too large\)"):
            prepare([small_dataset], str(output), "multi-modal", "none", log=lambda _: None)
    finally:
        restore()
    assert os.listdir(output.parent) == []
    prepare([small_dataset], str(output), "multi-modal", "none", log=lambda _: None)
    assert os.listdir(output.parent) == ["t.h5"] and load_patches(str(output)).patches.shape[0] == 3


def test_ctrl_c_leaves_no_temporary_file(small_dataset, tmp_path):
    def interrupt(line):
        if line.startswith("[2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare([small_dataset], str(tmp_path / "o" / "t.h5"), "multi-modal", "none", log=interrupt)
    assert os.listdir(tmp_path / "o") == []


def test_temporary_files_left_by_killed_runs_are_removed_by_the_next(small_dataset, tmp_path):
    """Those of the same output only, and not one a running preparation holds."""
    folder = tmp_path / "o"
    folder.mkdir()
    stale = [folder / ".tmp-ab12cd_3-t.h5", folder / ".tmp-zz99yy88-t.h5"]
    kept = [folder / ".tmp-ab12cd34-other.h5", folder / ".tmp-in_use00-t.h5"]
    for path in stale + kept:
        path.write_bytes(b"\x89HDF partial")
    lines = []
    with open(kept[1], "rb") as in_use:
        fcntl.flock(in_use.fileno(), fcntl.LOCK_EX)
        prepare([small_dataset], str(folder / "t.h5"), "multi-modal", "none", log=lines.append)
    assert sorted(os.listdir(folder)) == sorted([path.name for path in kept] + ["t.h5"])
    assert [line for line in lines if line.startswith("removed")] == [
        f"removed {path}, left by an interrupted run" for path in sorted(stale)
    ]


def test_sigterm_is_handled_as_ctrl_c(tmp_path):
    """`kill` (SIGTERM) in the middle of a preparation: one line, exit 130, no file left."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for index in range(60):
        write_pair(a, b, f"p{index:02d}", (128, 128))
    output = tmp_path / "o" / "t.h5"
    command = [sys.executable, "-m", "u2fusion_tf.data", "prepare", "--task", "multi-modal"]
    command += ["--vgg_weights", "none", "--output", str(output), "--pair_dirs", f"{a}:{b}"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if line.startswith("[2/60]"):
            process.terminate()
            break
    log = process.stderr.read()
    assert process.wait(timeout=300) == 130, log
    assert log.strip().splitlines()[-1] == (
        "interrupted; no patch file was written; run it again to start over"
    )
    assert os.listdir(output.parent) == []


def test_two_runs_on_one_output_do_not_share_a_temporary_file(small_dataset, tmp_path):
    """Both runs hold their temporary files open at once (they meet at their first progress
    line); each must finish with a complete file."""
    output = str(tmp_path / "t.h5")
    meeting, errors = threading.Barrier(2, timeout=120), []

    def run():
        def log(line):
            if line.startswith("[1/"):
                meeting.wait()

        try:
            prepare([small_dataset], output, "multi-modal", "none", log=log)
        except Exception as error:
            errors.append(error)
            meeting.abort()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "t.h5"]
    assert load_patches(output).patches.shape[0] == 3


def test_scales_that_are_not_numbers():
    assert parse_scales(["1", "1.5"]) == [1.0, 1.5]
    with pytest.raises(U2FusionError, match="--scales 1,abc: must be positive numbers"):
        parse_scales(["1", "abc"])


def patch_file(path, patches, information):
    """A patch file with the given datasets and the attributes of a complete one."""
    from u2fusion_tf.data import FORMAT_VERSION

    with h5py.File(path, "w") as file:
        file["patches"] = patches
        file["information"] = information
        file.attrs.update(task="multi-modal", format_version=FORMAT_VERSION, patch_size=16)


@pytest.mark.parametrize(
    ("patches", "information", "message"),
    [
        (np.full((4, 16, 16, 3), 0.5, np.float32), np.ones((4, 2), np.float32), "/patches is"),
        (np.full((4, 8, 8, 2), 0.5, np.float32), np.ones((4, 2), np.float32), "P >= 11"),
        (np.full((4, 16, 16, 2), 128, np.uint8), np.ones((4, 2), np.float32), "uint8"),
        (np.full((4, 16, 16, 2), 0.5, np.float32), np.ones(4, np.float32), "/information is"),
        (np.full((4, 16, 16, 2), np.nan, np.float32), np.ones((4, 2), np.float32), "finite"),
        (np.full((4, 16, 16, 2), 2.0, np.float32), np.ones((4, 2), np.float32), r"in \[0, 1\]"),
    ],
)
def test_patch_files_with_the_wrong_layout_are_refused(tmp_path, patches, information, message):
    path = str(tmp_path / "t.h5")
    patch_file(path, patches, information)
    with pytest.raises(U2FusionError, match=message):
        load_patches(path, "multi-modal")


def test_prepare_never_writes_over_a_source(small_dataset, tmp_path):
    sources = [small_dataset.folder_a / "p1.png", small_dataset.folder_b / "p1.jpg"]
    originals = [source.read_bytes() for source in sources]
    for output in sources:
        with pytest.raises(U2FusionError, match=f"^{output}: is the input"):
            prepare([small_dataset], str(output), "multi-focus", "none")
    assert [source.read_bytes() for source in sources] == originals
    assert not list(small_dataset.folder_a.glob(".*")), "no temporary file is left"


def test_scales_beyond_the_pixel_limit_are_refused_before_any_work(
    small_dataset, tmp_path, monkeypatch
):
    """p1 is 130x64 = 8320 pixels: enlarged twice, 33280, more than a limit of 30000."""

    def no_vgg(*args, **kwargs):
        raise AssertionError("VGG16 was loaded before the settings were checked")

    monkeypatch.setattr("u2fusion_tf.features.VGGFeatureHead", no_vgg)
    output = tmp_path / "t.h5"
    with pytest.raises(U2FusionError) as refused:
        prepare(
            [small_dataset], str(output), "multi-focus", "none", scales=[1, 2], max_pixels=30000
        )
    assert str(refused.value) == (
        f"--scales 2: enlarges {small_dataset.folder_a / 'p1.png'} (130x64) to 260x128 pixels, "
        "more than the limit of 30000 (raise it with --max_pixels or U2FUSION_MAX_PIXELS)"
    )
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_cli_scales_of_1000_are_one_line_before_vgg16(small_dataset, tmp_path):
    """Once a traceback (cv2.error: Insufficient memory) after VGG16 had loaded."""
    command = [sys.executable, "-m", "u2fusion_tf.data", "prepare", "--task", "multi-focus"]
    command += ["--vgg_weights", "none", "--output", str(tmp_path / "t.h5"), "--scales", "1000"]
    command += ["--pair_dirs", f"{small_dataset.folder_a}:{small_dataset.folder_b}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --scales 1000: enlarges {small_dataset.folder_a / 'p1.png'} (130x64) to "
        "130000x64000 pixels, more than the limit of "
        f"{pixel_limit()} (raise it with --max_pixels or U2FUSION_MAX_PIXELS)"
    )
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]
