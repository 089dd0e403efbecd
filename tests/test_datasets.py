"""The dataset catalogue (the package's splits, pair sets, the default data root) and getting
the data: fetching from a local web server or a local copy, verifying."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from u2fusion_tf import catalogue, datasets
from u2fusion_tf.catalogue import (
    U2FUSION_TEST,
    PairSet,
    evaluation_sets,
    read_splits,
    resolve_data_root,
    split_sets,
    split_stems,
)
from u2fusion_tf.datasets import ATTEMPTS, DataFile, Fetcher, read_manifest, verify
from u2fusion_tf.errors import U2FusionError


def touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_the_package_splits_hold_every_dataset_with_disjoint_train_and_test():
    splits = read_splits()
    counts = {name: (len(e["train"]), len(e["test"])) for name, e in splits.items()}
    assert counts == {
        "roadscene": (177, 44),
        "harvard_pet_mri": (245, 24),
        "mefb": (66, 30),
        "mfifb": (85, 20),
    }
    assert all(not set(e["train"]) & set(e["test"]) for e in splits.values())
    assert split_stems("mfifb", "test") == {f"lytro_{k:02d}" for k in range(1, 21)}
    assert split_stems("mfifb", "all") is None


def test_a_pair_set_pairs_by_stem_and_names_what_does_not_pair(tmp_path):
    touch(tmp_path / "a", "s1.png", "s2.png", "s3.png", "x.png", ".hidden.png")
    touch(tmp_path / "b", "s1.jpg", "s2.bmp", "y.png")
    everything = PairSet.of(tmp_path / "a", tmp_path / "b")
    pairs, problems = everything.match()
    assert [(p.stem, p.a.name, p.b.name) for p in pairs] == [
        ("s1", "s1.png", "s1.jpg"),
        ("s2", "s2.png", "s2.bmp"),
    ]
    assert problems == [
        f"{tmp_path / 'a' / name}: has no partner with the same stem"
        for name in ("s3.png", "x.png")
    ] + [f"{tmp_path / 'b' / 'y.png'}: has no partner with the same stem"]
    split = PairSet("toy", tmp_path / "a", tmp_path / "b", frozenset({"s2", "s3", "s9"}))
    pairs, problems = split.match()
    assert [p.stem for p in pairs] == ["s2"] and split.pairs() == pairs
    assert problems == [
        f"{tmp_path / 'a' / 's3.png'}: has no partner with the same stem",
        f"{tmp_path / 'a' / 's9'}.*: listed in the split but not found",
    ]


def test_split_sets_place_the_catalogue_under_a_data_root(shared_data):
    sets = evaluation_sets(shared_data)
    assert [s.table for s in sets[:4]] == ["roadscene", "harvard_pet_mri", "mefb", "mfifb"]
    assert [len(s.pairs()) for s in sets] == [44, 24, 30, 20, 10, 10, 4, 5, 3, 3]
    assert all(s.match()[1] == [] for s in sets)
    (train,) = split_sets(shared_data, "train", ["roadscene"])
    assert train.folder_a == shared_data / "roadscene" / "vis"
    assert train.folder_b == shared_data / "roadscene" / "ir"
    assert train.task == "multi-modal" and len(train.pairs()) == 177


def test_missing_data_names_the_command_that_fetches_it(tmp_path):
    with pytest.raises(U2FusionError) as caught:
        split_sets(tmp_path, "train", ["mefb"])
    assert str(caught.value) == (
        f"{tmp_path / 'mefb'}: not found; get the datasets with "
        f"`python -m u2fusion_tf.datasets fetch --root {tmp_path}`"
    )
    with pytest.raises(U2FusionError, match="no dataset 'nope'"):
        split_sets(tmp_path, "train", ["nope"])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "cannot be read as JSON"),
        ("[1, 2]", "expected an object of datasets"),
        (json.dumps({"d": {"task": "x", "sources": ["a"], "train": [], "test": []}}), "'d' needs"),
        (json.dumps({"d": {"task": "x", "sources": ["a", "b"], "train": [1]}}), "'d' needs"),
    ],
)
def test_a_bad_splits_file_is_one_clear_error(tmp_path, text, problem):
    path = tmp_path / "splits.json"
    path.write_text(text)
    with pytest.raises(U2FusionError, match=f"^{path}: .*{problem}"):
        read_splits(path)


def test_the_default_data_root(tmp_path, monkeypatch):
    assert resolve_data_root("given/root") == Path("given/root")
    monkeypatch.setattr(catalogue, "SHARED_DATA_ROOT", tmp_path)
    assert resolve_data_root() == tmp_path
    monkeypatch.setattr(catalogue, "SHARED_DATA_ROOT", tmp_path / "absent")
    assert resolve_data_root() == catalogue.FETCH_ROOT


class Mirror:
    """A web server on 127.0.0.1 serving real dataset files under the raw-URL layout. Per file
    it can misbehave: "bad" (one byte changed), "cut" (half the bytes, then the connection
    closes), "flaky" (HTTP 503 the first time), "stall" (half the bytes, then silence until
    `release` is set), "long" (the bytes twice)."""

    def __init__(self, files: list[DataFile], data_root: Path):
        self.bodies = {file.url(""): (data_root / file.path).read_bytes() for file in files}
        self.behaviour: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        self.stalled, self.release = threading.Event(), threading.Event()
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests[self.path] += 1
                body, how = mirror.bodies.get(self.path), mirror.behaviour.get(self.path)
                if body is None or (how == "flaky" and mirror.requests[self.path] == 1):
                    self.send_error(404 if body is None else 503)
                    return
                if how == "bad":
                    body = bytes([body[0] ^ 1]) + body[1:]
                if how == "long":
                    body = body * 2
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if how in ("cut", "stall") else body)
                if how == "stall":
                    self.wfile.flush()
                    mirror.stalled.set()
                    mirror.release.wait(60)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(shared_data):
    server = Mirror(read_manifest([U2FUSION_TEST]), shared_data)
    yield server
    server.close()


def files_under(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def test_fetch_puts_only_verified_files_in_place_and_a_rerun_gets_only_the_rest(mirror, tmp_path):
    good_1, good_2, bad, cut, flaky = read_manifest([U2FUSION_TEST])[:5]
    mirror.behaviour.update({bad.url(""): "bad", cut.url(""): "cut", flaky.url(""): "flaky"})
    root, lines = tmp_path / "root", []
    files = [good_1, good_2, bad, cut, flaky]
    fetched, failures = Fetcher(root, base_url=mirror.url, backoff=0.01, log=lines.append).fetch(
        files
    )
    assert fetched == 3
    assert failures == sorted(
        [
            f"{bad.path}: SHA-256 differs from the manifest ({bad.url(mirror.url)})",
            f"{cut.path}: cut short: {cut.size // 2} of {cut.size} bytes "
            f"({cut.url(mirror.url)}); tried {ATTEMPTS} times",
        ]
    )
    assert files_under(root) == {good_1.path, good_2.path, flaky.path}
    assert verify(root, [good_1, good_2, flaky]) == []
    assert mirror.requests[cut.url("")] == ATTEMPTS and mirror.requests[flaky.url("")] == 2
    assert lines[-1].startswith("3/5 files, ")

    mirror.behaviour.clear()
    mirror.requests.clear()
    fetched, failures = Fetcher(root, base_url=mirror.url, log=lines.append).fetch(files)
    assert (fetched, failures) == (2, [])
    assert set(mirror.requests) == {bad.url(""), cut.url("")}
    assert files_under(root) == {file.path for file in files} and verify(root, files) == []


def test_a_file_longer_than_the_manifest_says_is_not_read_to_its_end(mirror, tmp_path):
    (file,) = read_manifest([U2FUSION_TEST])[:1]
    mirror.behaviour[file.url("")] = "long"
    root = tmp_path / "root"
    fetched, failures = Fetcher(root, base_url=mirror.url, log=lambda line: None).fetch([file])
    assert fetched == 0 and mirror.requests[file.url("")] == 1
    assert failures == [
        f"{file.path}: longer than the manifest's {file.size} bytes ({file.url(mirror.url)})"
    ]
    assert files_under(root) == set()


def run_datasets(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "u2fusion_tf.datasets", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def start_a_stalled_fetch(mirror, root: Path) -> tuple[subprocess.Popen, DataFile]:
    """`fetch` of u2fusion_test from the mirror, returned once the largest file's download has
    stalled halfway with its partial file written."""
    files = read_manifest([U2FUSION_TEST])
    stalled = max(files, key=lambda file: file.size)
    mirror.behaviour[stalled.url("")] = "stall"
    command = [sys.executable, "-m", "u2fusion_tf.datasets", "fetch", "--datasets"]
    command += [U2FUSION_TEST, "--root", str(root), "--base_url", mirror.url]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = root / Path(stalled.path).with_name(f".{Path(stalled.path).name}.part")
    try:
        assert mirror.stalled.wait(120), "the download of the stalled file never started"
        for _ in range(600):
            if partial.exists():
                break
            time.sleep(0.1)
        assert partial.exists(), "the stalled file is being written under a temporary name"
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process, stalled


def test_a_killed_fetch_leaves_no_file_under_its_final_name_and_a_rerun_completes_it(
    mirror, tmp_path
):
    files = read_manifest([U2FUSION_TEST])
    root = tmp_path / "root"
    process, stalled = start_a_stalled_fetch(mirror, root)
    process.kill()
    process.wait()
    assert not (root / stalled.path).exists()
    in_place = [file for file in files if (root / file.path).exists()]
    assert verify(root, in_place) == []

    mirror.behaviour.clear()
    mirror.requests.clear()
    result = run_datasets(
        "fetch", "--datasets", U2FUSION_TEST, "--root", root, "--base_url", mirror.url
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(files) - len(in_place)} files fetched, {len(in_place)} already in place" in (
        result.stderr
    )
    assert set(mirror.requests) == {file.url("") for file in files if file not in in_place}
    assert files_under(root) == {file.path for file in files} and verify(root, files) == []


def test_ctrl_c_ends_a_stalled_fetch_at_once_and_removes_its_partial_file(mirror, tmp_path):
    root = tmp_path / "root"
    process, stalled = start_a_stalled_fetch(mirror, root)
    process.send_signal(signal.SIGINT)
    try:  # without waiting for the silent server (it would hold the download 60 s)
        stderr = process.communicate(timeout=20)[1].decode()
    finally:
        process.kill()
    assert process.returncode == 130
    assert stderr.splitlines()[-1] == (
        "interrupted; every file in place is verified; run it again to get the rest"
    )
    assert not list(root.rglob("*.part")) and not (root / stalled.path).exists()
    in_place = [file for file in read_manifest([U2FUSION_TEST]) if (root / file.path).exists()]
    assert verify(root, in_place) == []


def test_from_a_local_copy_every_file_is_verified_and_verify_names_what_changed(
    shared_data, tmp_path
):
    root = tmp_path / "root"
    result = run_datasets("fetch", "--from", shared_data, "--root", root)
    assert result.returncode == 0, result.stderr
    assert "1452 files fetched, 0 already in place" in result.stderr
    assert run_datasets("verify", "--root", root).stderr.strip().endswith("all 1452 files verified")
    files = read_manifest()
    (root / files[0].path).write_bytes(b"altered")
    (root / files[-1].path).unlink()
    result = run_datasets("verify", "--root", root)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{root / files[0].path}: altered (its SHA-256 differs from the manifest)",
        f"{root / files[-1].path}: missing",
        f"error: {root}: 2 of 1452 files missing or altered; "
        f"`python -m u2fusion_tf.datasets fetch --root {root}` fetches them again",
    ]
    result = run_datasets("fetch", "--from", shared_data, "--root", root)
    assert "2 files fetched, 1450 already in place" in result.stderr
    assert verify(root, files) == []


def test_verify_of_a_root_that_is_not_there_is_one_line(tmp_path):
    result = run_datasets("verify", "--root", tmp_path / "absent")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'absent'}: not a folder; "
        f"`python -m u2fusion_tf.datasets fetch --root {tmp_path / 'absent'}` fills it"
    ]


def test_fetch_names_every_file_it_could_not_get(shared_data, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(shared_data / U2FUSION_TEST, copy / U2FUSION_TEST)
    lost = read_manifest([U2FUSION_TEST])[3]
    (copy / lost.path).unlink()
    result = run_datasets(
        "fetch", "--from", copy, "--root", tmp_path / "root", "--datasets", U2FUSION_TEST
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"  {lost.path}: No such file or directory ({copy / lost.path})" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "root" / lost.path).exists()
    result = run_datasets("fetch", "--datasets", "nope", "--root", tmp_path / "root")
    assert result.returncode == 1 and result.stderr.strip().endswith(
        "error: unknown dataset(s) nope; known: harvard_pet_mri, mefb, mfifb, roadscene, "
        "u2fusion_test"
    )


def test_without_network_a_fetch_stops_with_one_line_naming_from_and_base_url(free_port, tmp_path):
    lines = []
    fetcher = Fetcher(
        tmp_path / "root", base_url=f"http://127.0.0.1:{free_port()}", backoff=0, log=lines.append
    )
    files = read_manifest([U2FUSION_TEST])
    with pytest.raises(U2FusionError) as raised:
        fetcher.fetch(files)
    message = str(raised.value)
    assert message.startswith(f"no network: {datasets.NO_NETWORK_AFTER} files failed alike (")
    assert "--from DIR" in message and "--base_url URL" in message
    assert len(lines) < 5, "no line per file"
    assert not list((tmp_path / "root").rglob("*.part"))
