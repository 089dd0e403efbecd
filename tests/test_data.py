"""HDF5 patch preparation: patches, augmentation, the stored information measure, bad data."""

from __future__ import annotations

import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest

from u2fusion_tf.data import (
    PairSource,
    augmented,
    cut_patches,
    load_patches,
    prepare,
    read_pair,
    shared_sources,
)
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.features import VGGFeatureHead, information_measure

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
    return PairSource("small", a, b)


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
    expected_pair = read_pair(small_dataset.folder1 / "p1.png", small_dataset.folder2 / "p1.jpg")
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
            [PairSource("t", a, b)],
            str(tmp_path / "t.h5"),
            "multi-modal",
            "none",
            log=lambda _: None,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_shared_splits_and_real_pairs(shared_data, tmp_path):
    roadscene, harvard = shared_sources(str(shared_data), ["roadscene", "harvard_pet_mri"], "train")
    assert len(roadscene.stems) == 177 and len(harvard.stems) == 245
    assert roadscene.folder1.name == "vis" and harvard.folder2.name == "mri"
    two = PairSource(
        "harvard_pet_mri", harvard.folder1, harvard.folder2, frozenset(sorted(harvard.stems)[:2])
    )
    output = str(tmp_path / "real.h5")
    assert prepare([two], output, "multi-modal", "none", log=lambda _: None) == 2 * 16
    data = load_patches(output, "multi-modal")
    assert data.patches.min() >= 0 and data.patches.max() <= 1
    assert (data.information > 0).all()
    with pytest.raises(U2FusionError, match="no dataset 'nope'"):
        shared_sources(str(shared_data), ["nope"], "train")


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
        f"{small_dataset.folder1}:{small_dataset.folder2}",
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
