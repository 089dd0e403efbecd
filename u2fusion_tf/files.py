"""Writing files whole or not at all, for every file and folder the package writes (images,
tables, weights, patch files, videos, exported models, copied run folders): the data goes to a
temporary file or folder beside the target, renamed into place when complete, so a crash or an
error never leaves a partial output that looks finished. And the checks of an output before the
work: that it can be written, and that it is none of what the command reads."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from u2fusion_tf.errors import FileError


def check_writable(path: str | os.PathLike, folder: bool = False) -> None:
    """Fails early (before the work that produces it) when a file (or with `folder`, a folder
    written whole) cannot be written at `path`: its parent folder is missing or read-only, or
    `path` is a folder where a file is wanted."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileError(str(path), f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise FileError(str(path), f"output folder {parent} is not writable")
    if not folder and os.path.isdir(path):
        raise FileError(str(path), "is a folder; give a file name")


def refuse_overwriting_inputs(
    output: str | os.PathLike,
    inputs: Iterable[str | os.PathLike],
    replaces_folder: bool = False,
) -> None:
    """Refuses an output (file or folder) that is one of the files or folders the command reads,
    by path, through a symbolic link or as a hard link, so that a result never replaces a
    source. An output folder that is `replaces_folder` (removed and written anew) must not hold
    one either."""
    target = os.path.realpath(output)
    for source in inputs:
        origin = os.path.realpath(source)
        same = target == origin
        if not same and os.path.exists(output) and os.path.exists(source):
            same = os.path.samefile(output, source)
        if same:
            raise FileError(str(output), f"is the input {source}; choose another output")
        if replaces_folder and os.path.commonpath([target, origin]) == target:
            raise FileError(
                str(output), f"holds the input {source}, and would be replaced; choose another"
            )


@contextmanager
def replaced_atomically(path: str | os.PathLike) -> Iterator[str]:
    """A temporary path beside `path` for the block to write; renamed to `path` when the block
    ends normally, deleted when it fails. Its name ends with the target's name, so writers that
    check suffixes (Keras' ``.weights.h5``) accept it; it is hidden (``.tmp-``)."""
    path = str(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(
            dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path)
        )
    except OSError as error:
        raise FileError(path, f"cannot write in {folder} ({error.strerror or error})") from error
    os.close(handle)
    try:
        yield temporary
        move_into_place(temporary, path)
    except OSError as error:
        raise FileError(path, f"cannot be written ({error.strerror or error})") from error
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextmanager
def folder_replaced_atomically(path: str | os.PathLike) -> Iterator[str]:
    """A path beside `path` (not yet existing) for the block to build a folder at; it replaces
    `path` (a folder, which is then removed) when the block ends normally, and is deleted when
    it fails. Between the two renames `path` is briefly absent, never partly written."""
    path = str(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        work = tempfile.mkdtemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
    except OSError as error:
        raise FileError(path, f"cannot write in {folder} ({error.strerror or error})") from error
    building, old = os.path.join(work, "new"), os.path.join(work, "old")
    try:
        yield building
        if os.path.lexists(path):
            os.rename(path, old)
        try:
            os.rename(building, path)
        except OSError:
            if os.path.lexists(old):
                os.rename(old, path)
            raise
    except OSError as error:
        raise FileError(path, f"cannot be written ({error.strerror or error})") from error
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_atomically(path: str | os.PathLike, payload: bytes) -> None:
    """Writes a whole file or nothing."""
    with replaced_atomically(path) as temporary:
        Path(temporary).write_bytes(payload)


def move_into_place(temporary: str, path: str) -> None:
    """Renames a finished temporary file to `path`, with the permissions a newly created file
    gets (temporary files are private to their owner)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    os.replace(temporary, path)


def copy_folder(source: str | os.PathLike, destination: str | os.PathLike) -> None:
    """Copies a folder whole or not at all (over any folder at `destination`), so that a half
    copy never counts."""
    with folder_replaced_atomically(destination) as temporary:
        shutil.copytree(source, temporary)


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, as hex: how downloaded data and the shipped weights are checked."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
