"""`python -m u2fusion_tf.evaluate`: pairing, tables, CSV, split restriction, bad input."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from u2fusion_tf.catalogue import PairSet
from u2fusion_tf.headers import pixel_limit
from u2fusion_tf.images import read_image
from u2fusion_tf.metrics import compute_metrics
from u2fusion_tf.scoring import score_folders, summarize
from u2fusion_tf.tables import format_table

RNG = np.random.default_rng(3)


def random_image(shape):
    return cv2.GaussianBlur(RNG.uniform(0, 255, shape).astype(np.uint8), (0, 0), 1.5)


@pytest.fixture
def folders(tmp_path):
    """Sources a/, b/ with four pairs; methods avg/ (all) and first/ (one missing, one wrong
    size)."""
    paths = {name: tmp_path / name for name in ("a", "b", "avg", "first")}
    for path in paths.values():
        path.mkdir()
    for stem in ("s1", "s2", "s3", "s4"):
        a, b = random_image((48, 52)), random_image((48, 52))
        cv2.imwrite(str(paths["a"] / f"{stem}.png"), a)
        cv2.imwrite(str(paths["b"] / f"{stem}.bmp"), b)
        cv2.imwrite(str(paths["avg"] / f"{stem}.png"), ((a.astype(int) + b) // 2).astype(np.uint8))
        if stem != "s4":
            cv2.imwrite(str(paths["first"] / f"{stem}.png"), a)
    cv2.imwrite(str(paths["first"] / "s3.png"), a[:40])
    return paths


def test_scores_match_compute_metrics_and_skips_are_named(folders):
    rows, skipped = score_folders(
        PairSet.of(folders["a"], folders["b"]),
        [str(folders["avg"]), str(folders["first"])],
        ["SSIM", "CC", "EN"],
        log=lambda _: None,
    )
    assert [(r["method"], r["stem"]) for r in rows] == [
        ("avg", "s1"),
        ("first", "s1"),
        ("avg", "s2"),
        ("first", "s2"),
        ("avg", "s3"),
        ("avg", "s4"),
    ]
    assert any("s3.png: is 40x52 but " in s for s in skipped)
    assert any("s4.*: missing" in s for s in skipped)
    a, b, f = (read_image(folders[k] / "s2.png") for k in ("a", "first", "first"))
    b = read_image(folders["b"] / "s2.bmp")
    expected = compute_metrics(a, b, f, ["SSIM", "CC", "EN"])
    assert rows[3] == {"method": "first", "stem": "s2", **expected}
    summary = summarize(rows, ["SSIM", "CC", "EN"])
    values = [r["SSIM"] for r in rows if r["method"] == "avg"]
    assert summary["avg"]["SSIM"] == pytest.approx((np.mean(values), np.std(values), 4))
    table = format_table(summary, ["SSIM", "CC", "EN"], markdown=True)
    assert table.splitlines()[0] == "| metric | avg (n=4) | first (n=2) |"


def test_constant_image_gives_nan_with_a_warning_not_a_crash(folders):
    cv2.imwrite(str(folders["avg"] / "s1.png"), np.full((48, 52), 7, np.uint8))
    lines = []
    rows, _ = score_folders(
        PairSet.of(folders["a"], folders["b"]),
        [str(folders["avg"])],
        ["CC", "SD"],
        log=lines.append,
    )
    assert np.isnan(rows[0]["CC"]) and rows[0]["SD"] == 0
    assert any(line.startswith("warning: ") and "s1.png" in line and "CC" in line for line in lines)
    assert summarize(rows, ["CC"])["avg"]["CC"][2] == 3


def run_evaluate(*args):
    command = [sys.executable, "-m", "u2fusion_tf.evaluate", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_cli_table_csv_markdown_and_split(folders, tmp_path):
    splits = tmp_path / "splits.json"
    toy = {
        "task": "multi-modal",
        "sources": ["a", "b"],
        "train": ["s1"],
        "test": ["s2", "s3", "s4"],
    }
    splits.write_text(json.dumps({"toy": toy}))
    result = run_evaluate(
        "--sources_a",
        folders["a"],
        "--sources_b",
        folders["b"],
        "--fused",
        folders["avg"],
        "--fused",
        folders["first"],
        "--metrics",
        "SSIM,PSNR",
        "--convention",
        "paper",
        "--csv",
        tmp_path / "rows.csv",
        "--markdown",
        tmp_path / "table.md",
        "--splits",
        splits,
        "--dataset",
        "toy",
    )
    assert result.returncode == 0, result.stderr
    assert "convention: paper" in result.stdout and "avg (n=3)" in result.stdout
    assert "first (n=1)" in result.stdout and "2 file(s) skipped" in result.stderr
    with open(tmp_path / "rows.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert {r["stem"] for r in rows} == {"s2", "s3", "s4"} and len(rows) == 4
    assert 1.5 < float(rows[0]["SSIM"]) <= 2.0
    assert (tmp_path / "table.md").read_text().startswith("Convention: paper")


def test_cli_fuse_with_weights(folders, tmp_path, random_weights_file):
    result = run_evaluate(
        "--sources_a",
        folders["a"],
        "--sources_b",
        folders["b"],
        "--fuse_with",
        random_weights_file,
        "--fuse_dir",
        tmp_path / "fused",
        "--metrics",
        "Qabf",
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "fused").iterdir()) == [
        f"s{i}.png" for i in range(1, 5)
    ]
    assert "fused (n=4)" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metrics", "SSIM,XYZ"], "unknown metric(s) XYZ"),
        (["--splits", "x.json"], "--splits needs --dataset"),
        (["--fused", "/nonexistent/dir"], "/nonexistent/dir: is not a folder"),
        ([], "give --fused folders"),
    ],
)
def test_cli_bad_input(folders, args, message):
    result = run_evaluate("--sources_a", folders["a"], "--sources_b", folders["b"], *args)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("array", "reason"),
    [
        (np.full((48, 52, 2), 0.5), r"holds a \(48, 52, 2\) float64 array"),
        (np.full(48, 0.5), r"holds a \(48,\) float64 array"),
        (np.float64(0.5), r"holds a \(\) float64 array"),
        (np.full((48, 52), np.nan), "has values that are not finite"),
        (np.full((48, 52), 128, np.uint8), r"holds a \(48, 52\) uint8 array"),
        (np.full((48, 52), 0.5 + 0.1j), r"holds a \(48, 52\) complex128 array"),
        (np.full((48, 52), 128.0), "has values from 128 to 128"),
    ],
)
def test_bad_raw_fused_files_are_skipped_with_a_reason(folders, tmp_path, array, reason):
    raw = tmp_path / "raw"
    raw.mkdir()
    np.save(raw / "s1.npy", array)
    np.save(raw / "s2.npy", read_image(folders["avg"] / "s2.png")[..., np.newaxis])  # (H, W, 1)
    rows, skipped = score_folders(
        PairSet.of(folders["a"], folders["b"]), [str(raw)], ["SSIM"], log=lambda _: None
    )
    assert [row["stem"] for row in rows] == ["s2"]
    assert any(re.search(f"s1.npy: {reason}", line) for line in skipped), skipped


def test_an_empty_fused_folder_is_reported_in_the_table(folders, tmp_path):
    (tmp_path / "empty").mkdir()
    fused = [str(folders["avg"]), str(tmp_path / "empty")]
    rows, skipped = score_folders(
        PairSet.of(folders["a"], folders["b"]), fused, ["SSIM"], log=lambda _: None
    )
    assert any("empty: is empty, no fused images" in line for line in skipped)
    table = format_table(summarize(rows, ["SSIM"], ["avg", "empty"]), ["SSIM"], markdown=True)
    assert table.splitlines()[0] == "| metric | avg (n=4) | empty (n=0) |"
    assert table.splitlines()[2].endswith("| no images |")


def assert_refused_before_scoring(folders, report: str, target, message: str) -> None:
    """`evaluate` with `report` written to `target` exits 1 with a one-line error naming the
    target and saying `message`, before any pair is scored."""
    result = run_evaluate(
        "--sources_a", folders["a"], "--sources_b", folders["b"], "--fused", folders["avg"],
        report, target,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {target}: ") and message in last, last
    assert "[1/4]" not in result.stderr, "checked before any scoring"


@pytest.mark.parametrize("report", ["--markdown", "--csv"])
def test_cli_report_that_cannot_be_written_fails_before_scoring(folders, tmp_path, report):
    for target, message in [
        (tmp_path / "absent" / "t", "does not exist"),
        (tmp_path, "is a folder; give a file name"),
    ]:
        assert_refused_before_scoring(folders, report, target, message)


def test_cli_reports_never_replace_what_evaluate_reads(folders, tmp_path):
    """A report over a source or a fused image (by its stem, even one not yet written) is
    refused before scoring; the inputs are untouched."""
    before = {
        path: path.read_bytes() for name in ("a", "b", "avg") for path in folders[name].iterdir()
    }
    for report, target in [
        ("--csv", folders["a"] / "s1.png"),
        ("--markdown", folders["avg"] / "s2.png"),
        ("--csv", folders["avg"] / "s4.csv"),
        ("--markdown", folders["b"] / "s3.bmp"),
    ]:
        assert_refused_before_scoring(folders, report, target, "choose another")
    assert {path: path.read_bytes() for path in before} == before
    assert not (folders["avg"] / "s4.csv").exists()


def npy_declaring(path, shape, payload=b"\0" * 16):
    """A .npy file whose header declares a float64 array of `shape` but holds only `payload`."""
    with open(path, "wb") as stream:
        header = {"descr": "<f8", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(stream, header)  # the magic string, then this
        stream.write(payload)


def test_raw_fused_files_are_held_to_the_pixel_limit_before_they_are_read(folders, tmp_path):
    """A 200-byte .npy declaring 4e10 float64 values once asked NumPy for 298 GiB."""
    raw = tmp_path / "raw"
    raw.mkdir()
    npy_declaring(raw / "s1.npy", (200000, 200000))
    assert (raw / "s1.npy").stat().st_size < 200
    for stem in ("s2", "s3", "s4"):
        np.save(raw / f"{stem}.npy", read_image(folders["avg"] / f"{stem}.png"))
    sources = PairSet.of(folders["a"], folders["b"])
    rows, skipped = score_folders(sources, [str(raw)], ["SSIM"], log=lambda _: None)
    assert [row["stem"] for row in rows] == ["s2", "s3", "s4"]
    assert skipped == [
        f"{raw / 's1.npy'}: declares 200000x200000 pixels, more than the limit of "
        f"{pixel_limit()} (raise it with --max_pixels or U2FUSION_MAX_PIXELS)"
    ]
    npy_declaring(raw / "s1.npy", (48, 52))  # within the limit, but cut short
    _, skipped = score_folders(sources, [str(raw)], ["SSIM"], log=lambda _: None)
    assert len(skipped) == 1 and "s1.npy: cannot be read as a NumPy array" in skipped[0]
    rows, skipped = score_folders(
        sources, [str(raw)], ["SSIM"], log=lambda _: None, max_pixels=2495
    )
    assert rows == [] and len(skipped) == 4  # 52x48 = 2496 pixels: every source refused
    assert all("declares 52x48 pixels, more than the limit of 2495" in line for line in skipped)


def test_cli_max_pixels_reaches_every_image_read(folders):
    result = run_evaluate(
        "--sources_a", folders["a"], "--sources_b", folders["b"], "--fused", folders["avg"],
        "--max_pixels", 2495,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("declares 52x48 pixels, more than the limit of 2495") == 4
    assert result.stderr.strip().splitlines()[-1] == "error: nothing was scored"
