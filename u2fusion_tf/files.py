"""Writing files whole or not at all, for every file the package writes (images, tables, weights,
patch files): the data goes to a temporary file beside the target, renamed into place when
complete, so a crash or an error never leaves a partial file that looks finished."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from u2fusion_tf.errors import FileError


def check_writable(path: str | os.PathLike) -> None:
    """Fails early (before the work that produces it) when a file cannot be written at `path`:
    its folder is missing or read-only, or `path` is a folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileError(str(path), f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise FileError(str(path), f"output folder {folder} is not writable")
    if os.path.isdir(path):
        raise FileError(str(path), "is a folder; give a file name")


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
    """Copies a folder under a temporary name and renames it, so that a half copy never sits
    under `destination`'s name."""
    temporary = f"{destination}.copying"
    shutil.rmtree(temporary, ignore_errors=True)
    shutil.copytree(source, temporary)
    os.replace(temporary, destination)


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, as hex: how downloaded data and the shipped weights are checked."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
