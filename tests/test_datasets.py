"""The dataset catalogue: the package's splits, pair sets, the default data root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from u2fusion_tf import datasets
from u2fusion_tf.datasets import (
    PairSet,
    evaluation_sets,
    read_splits,
    resolve_data_root,
    split_sets,
    split_stems,
)
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
    monkeypatch.setattr(datasets, "SHARED_DATA_ROOT", tmp_path)
    assert resolve_data_root() == tmp_path
    monkeypatch.setattr(datasets, "SHARED_DATA_ROOT", tmp_path / "absent")
    assert resolve_data_root() == datasets.FETCH_ROOT
