"""The catalogue: the three tasks and the datasets, each fact once.

A task has the paper's constant c (Eq. 2), its epochs, the datasets it trains on and how their
pairs are augmented. A dataset (``splits.json``, shipped with the package) has its task, its two
source folders **in the order the authors fuse them** (the network's input channels are fixed:
visible, infrared; PET, MRI; over-, under-exposed; far-, near-focused), and the stems of its
train and test pairs; the paper's own test pairs (``u2fusion_test``) are listed here in the same
order. Every command that fuses, trains or scores takes its pairs from here.

A data root holds one folder per dataset (``roadscene/vis/FLIR_00006.jpg`` pairs with
``roadscene/ir/FLIR_00006.jpg``: files pair by stem, extensions may differ). Every command uses
the same data root: the one given (``--data_root``), else ``data`` in `SHARED` when it exists,
else `FETCH_ROOT`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from u2fusion_tf.errors import ImageError, U2FusionError


@dataclass(frozen=True)
class Task:
    """A fusion task as the paper trains it."""

    name: str
    c: float
    """Eq. 2's constant, as the authors' code sets it."""
    epochs: int
    datasets: tuple[str, ...]
    """The datasets of ``splits.json`` whose train pairs it learns from."""
    scales: tuple[float, ...] = (1.0,)
    flips: tuple[str, ...] = ("none",)
    """The augmentation of its training pairs (data preparation's defaults)."""


TASK_CATALOGUE = (
    Task("multi-modal", 3200.0, 3, ("roadscene", "harvard_pet_mri")),
    Task("multi-exposure", 3500.0, 2, ("mefb",)),
    Task("multi-focus", 100.0, 2, ("mfifb",), scales=(1.0, 1.5), flips=("none", "horizontal")),
)
"""The three tasks in the order the paper learns them. c: the paper's text gives 3e3 for the
multi-modal task; the released code (and this default) use 3200. The multi-focus pairs are
"enlarged and flipped" in the paper; scales 1 and 1.5 with horizontal flips is our reading."""
TASKS = tuple(task.name for task in TASK_CATALOGUE)
TASK_C = {task.name: task.c for task in TASK_CATALOGUE}
PAPER_EPOCHS = {task.name: task.epochs for task in TASK_CATALOGUE}


def task(name: str) -> Task:
    for entry in TASK_CATALOGUE:
        if entry.name == name:
            return entry
    raise U2FusionError(f"unknown task {name!r}; known: {', '.join(TASKS)}")


SHARED = Path(os.environ.get("U2FUSION_SHARED", Path(__file__).resolve().parents[2] / "shared"))
"""``../shared`` beside the checkout (or ``$U2FUSION_SHARED``): the datasets, the authors'
checkpoint and the paper's text, where a checkout has them at hand."""

SPLITS_FILE = "splits.json"
SPLITS = ("train", "test", "all")
"""The pairs of a dataset a command can ask for; "all" ignores the split."""
SHARED_DATA_ROOT = SHARED / "data"
"""The datasets in `SHARED`, used when they exist."""
FETCH_ROOT = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "u2fusion_tf" / "data"
"""Where ``python -m u2fusion_tf.datasets fetch`` puts the data by default (the Keras cache)."""
DATA_ROOT_HELP = (
    "Folder of the datasets (default: ../shared/data beside the checkout if it exists, else "
    f"{FETCH_ROOT}, where `python -m u2fusion_tf.datasets fetch` puts them)."
)

U2FUSION_TEST = "u2fusion_test"
U2FUSION_TEST_FOLDERS = (
    # table, task, first and second source folders under u2fusion_test/ (the authors' order)
    ("vis-ir", "multi-modal", "vis-ir/TNO/vis", "vis-ir/TNO/ir"),
    ("vis-ir", "multi-modal", "vis-ir/RoadScene/vis", "vis-ir/RoadScene/ir"),
    ("medical", "multi-modal", "medical/pet", "medical/mri"),
    (
        "multi-exposure",
        "multi-exposure",
        "multi-exposure/dataset1/oe",
        "multi-exposure/dataset1/ue",
    ),
    (
        "multi-exposure",
        "multi-exposure",
        "multi-exposure/dataset2/oe",
        "multi-exposure/dataset2/ue",
    ),
    ("multi-focus", "multi-focus", "multi-focus/far", "multi-focus/near"),
)
"""The paper's own test pairs, grouped into one results table per task."""


class Pair(NamedTuple):
    """Two aligned source images of one scene."""

    stem: str
    a: Path
    b: Path


def pair_by_stem(
    folder_a: str | os.PathLike, folder_b: str | os.PathLike
) -> tuple[list[Pair], list[Path]]:
    """Pairs the files of two folders by file stem (extensions may differ).

    Returns the pairs in stem order and the files that have no partner. Hidden files are ignored.
    """
    by_stem = []
    for folder in (folder_a, folder_b):
        if not os.path.isdir(folder):
            raise ImageError(str(folder), "is not a folder")
        files = [p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")]
        stems: dict[str, Path] = {}
        for file in sorted(files):
            stems.setdefault(file.stem, file)
        by_stem.append(stems)
    first, second = by_stem
    pairs = [Pair(stem, first[stem], second[stem]) for stem in sorted(first.keys() & second.keys())]
    unpaired = sorted(
        [first[s] for s in first.keys() - second.keys()]
        + [second[s] for s in second.keys() - first.keys()]
    )
    return pairs, unpaired


@dataclass(frozen=True)
class PairSet:
    """Source pairs used together: two folders whose files pair by stem, optionally only the
    stems of a split. Catalogued sets also know their task and the results table they go in."""

    name: str
    folder_a: Path
    folder_b: Path
    stems: frozenset[str] | None = None
    task: str | None = None
    table: str | None = None

    @classmethod
    def of(
        cls,
        folder_a: str | os.PathLike,
        folder_b: str | os.PathLike,
        stems: frozenset[str] | None = None,
    ) -> PairSet:
        """Two folders given by a user, named after the first."""
        return cls(Path(folder_a).name, Path(folder_a), Path(folder_b), stems)

    def match(self) -> tuple[list[Pair], list[str]]:
        """The pairs (in stem order) and, one line each, what keeps other files or listed stems
        from pairing: a file without a partner, a stem of the split found in neither folder."""
        pairs, unpaired = pair_by_stem(self.folder_a, self.folder_b)
        if self.stems is not None:
            pairs = [pair for pair in pairs if pair.stem in self.stems]
            unpaired = [path for path in unpaired if path.stem in self.stems]
        problems = [f"{path}: has no partner with the same stem" for path in unpaired]
        if self.stems is not None:
            found = {pair.stem for pair in pairs} | {path.stem for path in unpaired}
            problems += [
                f"{self.folder_a / stem}.*: listed in the split but not found"
                for stem in sorted(self.stems - found)
            ]
        return pairs, problems

    def pairs(self) -> list[Pair]:
        """The pairs of the set, in stem order."""
        return self.match()[0]

    def first(self, count: int) -> PairSet:
        """The set cut to its first `count` pairs in stem order (a quick try of training)."""
        return dataclasses.replace(self, stems=frozenset(p.stem for p in self.pairs()[:count]))


def read_splits(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """A splits file (the package's ``splits.json`` unless `path` is given), checked: per
    dataset {"task": str, "sources": [folder, folder], "train": [stem...], "test": [stem...]}."""
    origin = path or SPLITS_FILE
    try:
        text = (
            Path(path).read_text(encoding="utf-8")
            if path
            else resources.files(__package__).joinpath(SPLITS_FILE).read_text(encoding="utf-8")
        )
        splits = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise U2FusionError(f"{origin}: cannot be read as JSON ({error})") from error
    if not isinstance(splits, dict):
        raise U2FusionError(f"{origin}: expected an object of datasets")
    for name, entry in splits.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("task"), str)
            and _strings(entry.get("sources"))
            and len(entry["sources"]) == 2
            and all(_strings(entry.get(split)) for split in ("train", "test"))
        ):
            raise U2FusionError(
                f"{origin}: dataset {name!r} needs a task, two source folders and train and "
                "test lists of stems"
            )
    return splits


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _dataset(splits: dict[str, dict], name: str, origin: str | os.PathLike | None) -> dict:
    if name not in splits:
        raise U2FusionError(
            f"{origin or SPLITS_FILE}: no dataset {name!r} (has {', '.join(splits)})"
        )
    return splits[name]


def split_stems(
    name: str, split: str, splits_path: str | os.PathLike | None = None
) -> frozenset[str] | None:
    """The stems of a dataset's split ("train" or "test"); None for "all"."""
    entry = _dataset(read_splits(splits_path), name, splits_path)
    return None if split == "all" else frozenset(entry[split])


def split_sets(
    data_root: str | os.PathLike,
    split: str,
    names: Sequence[str] | None = None,
    splits_path: str | os.PathLike | None = None,
) -> list[PairSet]:
    """The `split` pairs ("train", "test" or "all") of the named datasets (default: every one)
    under `data_root`."""
    splits = read_splits(splits_path)
    sets = []
    for name in names or list(splits):
        entry = _dataset(splits, name, splits_path)
        folder = _data_folder(data_root, name)
        sets.append(
            PairSet(
                name,
                *(folder / source for source in entry["sources"]),
                stems=None if split == "all" else frozenset(entry[split]),
                task=entry["task"],
                table=name,
            )
        )
    return sets


def u2fusion_test_sets(data_root: str | os.PathLike) -> list[PairSet]:
    """The paper's own test pairs, in `data_root`/u2fusion_test."""
    root = _data_folder(data_root, U2FUSION_TEST)
    return [
        PairSet(
            f"{U2FUSION_TEST}-{Path(first).parent.as_posix().replace('/', '-')}",
            root / first,
            root / second,
            task=task,
            table=f"{U2FUSION_TEST}/{table}",
        )
        for table, task, first, second in U2FUSION_TEST_FOLDERS
    ]


def evaluation_sets(data_root: str | os.PathLike) -> list[PairSet]:
    """Everything results are reported on: every dataset's test split, then u2fusion_test."""
    return split_sets(data_root, "test") + u2fusion_test_sets(data_root)


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """The data root of every command: `data_root` if given, else ``../shared/data`` beside the
    checkout when it exists, else `FETCH_ROOT`."""
    if data_root:
        return Path(data_root)
    return SHARED_DATA_ROOT if SHARED_DATA_ROOT.is_dir() else FETCH_ROOT


def fetch_command(data_root: str | os.PathLike) -> str:
    """The command that fills `data_root` with the datasets."""
    root = "" if Path(data_root) == FETCH_ROOT else f" --root {data_root}"
    return f"python -m u2fusion_tf.datasets fetch{root}"


def _data_folder(data_root: str | os.PathLike, name: str) -> Path:
    folder = Path(data_root) / name
    if not folder.is_dir():
        raise U2FusionError(
            f"{folder}: not found; get the datasets with `{fetch_command(data_root)}`"
        )
    return folder
