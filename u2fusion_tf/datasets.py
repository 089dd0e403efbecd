"""Getting the datasets, by the files listed in ``MANIFEST.tsv`` (shipped with the package):
every file of the datasets, with the public repository, commit and path it comes from, its
SHA-256 and its size. Which pairs they hold and how they split is `u2fusion_tf.catalogue`.

Getting the data (standard library only)::

    python -m u2fusion_tf.datasets fetch [--datasets roadscene,...] [--root DIR] [--from DIR]
    python -m u2fusion_tf.datasets verify [--datasets ...] [--root DIR]

``fetch`` downloads every file of the manifest not yet in the root from its repository at the
pinned commit (``--from`` copies it from a local data root instead), a few at a time, retrying
failed transfers with growing pauses. A file is written as ``.<name>.part`` beside its place and
renamed only once its size and SHA-256 match the manifest, so nothing unverified ever sits under
a dataset file's name; files already in place and verified are kept. ``verify`` names every
missing or altered file.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import BinaryIO, NamedTuple
from urllib.parse import quote

from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.catalogue import FETCH_ROOT, fetch_command, resolve_data_root
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.files import move_into_place, sha256_of

logger = logging.getLogger(__name__)

FLAGS = flags.FLAGS

MANIFEST_FILE = "MANIFEST.tsv"
MANIFEST_COLUMNS = ("path", "repository", "commit", "source_path", "sha256", "bytes")
RAW_URL = "https://raw.githubusercontent.com"
"""Files are fetched from ``<RAW_URL>/<repository>/<commit>/<source_path>``."""
WORKERS = 4
"""Files downloaded at a time."""
ATTEMPTS = 4
"""Tries per file when a transfer fails on the way (waiting 1, 2, 4 s between them)."""
GIVE_UP_AFTER = 12
"""Consecutive failed files after which the rest is not tried (the network is likely down)."""
NO_NETWORK_AFTER = 3
"""Consecutive files failing with one and the same network error (no HTTP answer at all) after
which the fetch stops with one line: the machine is offline or the host unreachable."""
TIMEOUT = 60
"""Seconds a connection may stay silent."""
RETRY_HTTP_CODES = frozenset({408, 429, 500, 502, 503, 504})
CHUNK = 1 << 20


class DataFile(NamedTuple):
    """One file of the datasets, as ``MANIFEST.tsv`` lists it."""

    path: str
    repository: str
    commit: str
    source_path: str
    sha256: str
    size: int
    """In bytes."""

    @property
    def dataset(self) -> str:
        return self.path.split("/", 1)[0]

    def url(self, base_url: str = RAW_URL) -> str:
        return f"{base_url}/{self.repository}/{self.commit}/{quote(self.source_path)}"


def read_manifest(names: Sequence[str] | None = None) -> list[DataFile]:
    """The files of the named datasets (default: all) in the package's ``MANIFEST.tsv``."""
    text = resources.files(__package__).joinpath(MANIFEST_FILE).read_text(encoding="utf-8")
    header, *lines = text.splitlines()
    if tuple(header.split("\t")) != MANIFEST_COLUMNS:
        raise U2FusionError(f"{MANIFEST_FILE}: expected the columns {', '.join(MANIFEST_COLUMNS)}")
    files = [
        DataFile(*fields[:5], int(fields[5])) for fields in (line.split("\t") for line in lines)
    ]
    known = list(dict.fromkeys(file.dataset for file in files))
    unknown = [name for name in names or [] if name not in known]
    if unknown:
        raise U2FusionError(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [file for file in files if not names or file.dataset in names]


def check_file(root: Path, file: DataFile) -> str | None:
    """What is wrong with the root's copy of `file` (missing, altered), or None."""
    path = root / file.path
    if not path.is_file():
        return "missing"
    try:
        if path.stat().st_size != file.size or sha256_of(path) != file.sha256:
            return "altered (its SHA-256 differs from the manifest)"
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    return None


def verify(root: Path, files: Sequence[DataFile]) -> list[str]:
    """One line per missing or altered file under `root`."""
    return [
        f"{root / file.path}: {problem}" for file in files if (problem := check_file(root, file))
    ]


class TransientError(Exception):
    """A transfer that failed on the way and may work when tried again."""


class NetworkError(TransientError):
    """No answer from the server at all (no network, unknown host, connection refused): its
    `reason` is the same for every file while the network is down."""

    def __init__(self, reason: str, origin: str):
        super().__init__(f"{reason} ({origin})")
        self.reason = reason


class UnreachableError(U2FusionError):
    """A file not fetched because its server never answered (`NetworkError`, every try)."""

    def __init__(self, error: NetworkError, attempts: int):
        super().__init__(f"{error}; tried {attempts} times")
        self.reason = error.reason


class StoppedError(Exception):
    """The fetch was stopped (interrupted, or given up) before this file."""


class Progress:
    """Files and megabytes done, download rate and time left, on stderr: one line updated in
    place on a terminal, a line every few seconds otherwise."""

    def __init__(self, files: Sequence[DataFile], log: Callable[[str], None]):
        self.total_files, self.total_bytes = len(files), sum(file.size for file in files)
        self.files = self.bytes = self.transferred = 0
        self.started = self.shown = time.monotonic()
        self.terminal = sys.stderr.isatty()
        self.log = log
        self.lock = threading.Lock()

    def received(self, count: int) -> None:
        with self.lock:
            self.transferred += count
        self.show()

    def done(self, file: DataFile) -> None:
        with self.lock:
            self.files += 1
            self.bytes += file.size
        self.show()

    def show(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.shown < (0.5 if self.terminal else 5.0):
            return
        self.shown = now
        rate = self.transferred / max(now - self.started, 1e-9)
        left = self.total_bytes - self.bytes
        line = (
            f"{self.files}/{self.total_files} files, {self.bytes / 1e6:.1f}/"
            f"{self.total_bytes / 1e6:.1f} MB, {rate / 1e6:.2f} MB/s"
            + (f", {left / rate:.0f} s left" if rate > 0 and left > 0 else "")
        )
        if self.terminal:
            print(f"\r{line}\033[K", end="\n" if final else "", file=sys.stderr, flush=True)
        else:
            self.log(line)


class Fetcher:
    """Fills a data root with verified files, a few at a time, from the repositories (or a
    mirror with the same layout) or from a local copy of a data root."""

    def __init__(
        self,
        root: str | os.PathLike,
        source: str | os.PathLike | None = None,
        base_url: str = RAW_URL,
        workers: int = WORKERS,
        backoff: float = 1.0,
        log: Callable[[str], None] = logger.info,
    ):
        self.root, self.source, self.base_url = Path(root), source, base_url.rstrip("/")
        self.workers, self.backoff, self.log = workers, backoff, log
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.partials: set[Path] = set()
        """The `.part` files being written, removed by `abandon`."""

    def origin(self, file: DataFile) -> str:
        return str(Path(self.source) / file.path) if self.source else file.url(self.base_url)

    def open(self, file: DataFile) -> BinaryIO:
        """The file's bytes at their origin; raises `TransientError` for failures worth retrying."""
        if self.source:
            try:
                return open(self.origin(file), "rb")
            except OSError as error:
                raise U2FusionError(f"{error.strerror} ({self.origin(file)})") from error
        request = urllib.request.Request(self.origin(file), headers={"User-Agent": "u2fusion_tf"})
        try:
            return urllib.request.urlopen(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as error:
            problem = f"HTTP {error.code} {error.reason} ({self.origin(file)})"
            raise (TransientError if error.code in RETRY_HTTP_CODES else U2FusionError)(
                problem
            ) from error
        except urllib.error.URLError as error:  # no HTTP answer
            raise NetworkError(str(error.reason), self.origin(file)) from error
        except (OSError, http.client.HTTPException) as error:
            raise TransientError(f"{error} ({self.origin(file)})") from error

    def download(self, file: DataFile, partial: Path, progress: Progress) -> str:
        """Copies the file's bytes into `partial`; returns their SHA-256."""
        digest, size = hashlib.sha256(), 0
        try:
            with self.open(file) as stream, self.create(partial) as out:
                while block := self.read(stream, file):
                    if self.stop.is_set():
                        raise StoppedError
                    if size + len(block) > file.size:  # never more than the manifest's bytes
                        raise U2FusionError(
                            f"longer than the manifest's {file.size} bytes ({self.origin(file)})"
                        )
                    out.write(block)
                    digest.update(block)
                    size += len(block)
                    progress.received(len(block))
        except OSError as error:  # reading fails as TransientError: this is writing
            raise U2FusionError(f"{partial}: cannot be written ({error.strerror})") from error
        if size != file.size:
            raise TransientError(f"cut short: {size} of {file.size} bytes ({self.origin(file)})")
        return digest.hexdigest()

    def create(self, partial: Path) -> BinaryIO:
        """Opens `partial` for writing unless the fetch was stopped (both under the lock, so
        `abandon` sees every partial file that exists)."""
        with self.lock:
            if self.stop.is_set():
                raise StoppedError
            out = open(partial, "wb")  # noqa: SIM115 (closed by the caller's with)
            self.partials.add(partial)
        return out

    def abandon(self) -> None:
        """Stops the fetch and removes the partial files of the downloads under way, without
        waiting for them (a silent server can hold a download for `TIMEOUT` seconds)."""
        with self.lock:
            self.stop.set()
            partials = list(self.partials)
        for partial in partials:
            partial.unlink(missing_ok=True)

    def read(self, stream: BinaryIO, file: DataFile) -> bytes:
        try:
            return stream.read(CHUNK)
        except (OSError, http.client.HTTPException) as error:
            raise TransientError(f"{error} ({self.origin(file)})") from error

    def fetch_file(self, file: DataFile, progress: Progress) -> bool:
        """Puts a verified copy of `file` under the root unless one is there; True if fetched."""
        if self.stop.is_set():
            raise StoppedError
        target = self.root / file.path
        if check_file(self.root, file) is None:
            progress.done(file)
            return False
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise U2FusionError(f"{target.parent}: cannot be created ({error.strerror})") from error
        partial = target.with_name(f".{target.name}.part")
        try:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    digest = self.download(file, partial, progress)
                    break
                except TransientError as error:
                    if attempt == ATTEMPTS and isinstance(error, NetworkError):
                        raise UnreachableError(error, ATTEMPTS) from error
                    if attempt == ATTEMPTS:
                        raise U2FusionError(f"{error}; tried {ATTEMPTS} times") from error
                    if self.stop.wait(self.backoff * 2 ** (attempt - 1)):
                        raise StoppedError from error
            if digest != file.sha256:
                raise U2FusionError(f"SHA-256 differs from the manifest ({self.origin(file)})")
            move_into_place(str(partial), str(target))
        finally:
            partial.unlink(missing_ok=True)
            with self.lock:
                self.partials.discard(partial)
        progress.done(file)
        return True

    def fetch(self, files: Sequence[DataFile]) -> tuple[int, list[str]]:
        """Fetches every file not yet verified under the root; returns how many were fetched
        and, one line each, the files it could not get."""
        if self.source and not Path(self.source).is_dir():
            raise U2FusionError(f"{self.source}: not a folder (--from names a data root)")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise U2FusionError(f"{self.root}: cannot be created ({error.strerror})") from error
        progress = Progress(files, self.log)
        pending, outcomes = queue.SimpleQueue(), queue.SimpleQueue()
        for file in files:
            pending.put(file)

        def work() -> None:
            while True:
                try:
                    file = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    outcomes.put((file, self.fetch_file(file, progress)))
                except Exception as error:  # reported by the main thread
                    outcomes.put((file, error))

        for _ in range(min(self.workers, len(files))):
            # daemons: a Ctrl-C ends the command without waiting for a silent server
            threading.Thread(target=work, daemon=True).start()
        fetched, failures, failed_in_a_row = 0, [], 0
        unreachable, alike = None, 0  # the last network error, and how many files in a row
        try:
            for _ in files:
                file, outcome = self.next_outcome(outcomes)
                if isinstance(outcome, UnreachableError):
                    alike = alike + 1 if outcome.reason == unreachable else 1
                    unreachable = outcome.reason
                    if alike == NO_NETWORK_AFTER:
                        raise U2FusionError(
                            f"no network: {alike} files failed alike ({unreachable}); fetch "
                            "from a local copy of the data with --from DIR, or from a mirror "
                            "with --base_url URL"
                        )
                elif not isinstance(outcome, StoppedError):
                    alike = 0
                if isinstance(outcome, StoppedError):
                    failures.append(
                        f"{file.path}: not tried (stopped after {GIVE_UP_AFTER} failures)"
                    )
                elif isinstance(outcome, U2FusionError):
                    failures.append(f"{file.path}: {outcome}")
                    failed_in_a_row += 1
                    if failed_in_a_row == GIVE_UP_AFTER:
                        self.log(f"{GIVE_UP_AFTER} files failed in a row: not trying the rest")
                        self.stop.set()
                elif isinstance(outcome, Exception):
                    raise outcome
                else:
                    fetched += outcome
                    failed_in_a_row = 0
        except BaseException:
            self.abandon()
            raise
        progress.show(final=True)
        return fetched, sorted(failures)

    @staticmethod
    def next_outcome(outcomes: queue.SimpleQueue) -> tuple[DataFile, object]:
        """The next finished file, waiting in slices of `cli.WAIT_SECONDS`: a wait without a
        timeout is not interrupted by a Ctrl-C that another thread received."""
        while True:
            try:
                return outcomes.get(timeout=cli.WAIT_SECONDS)
            except queue.Empty:
                continue


def main(argv: list[str]) -> None:
    if argv[1:] not in (["fetch"], ["verify"]):
        raise U2FusionError("usage: python -m u2fusion_tf.datasets fetch|verify (see --help)")
    root = Path(FLAGS.root)
    files = read_manifest(FLAGS.datasets)
    log = cli.log
    if argv[1] == "verify":
        if not root.is_dir():
            raise U2FusionError(f"{root}: not a folder; `{fetch_command(root)}` fills it")
        problems = verify(root, files)
        for problem in problems:
            log(problem)
        if problems:
            raise U2FusionError(
                f"{root}: {len(problems)} of {len(files)} files missing or altered; "
                f"`{fetch_command(root)}` fetches them again"
            )
        log(f"{root}: all {len(files)} files verified")
        return
    fetcher = Fetcher(root, FLAGS["from"].value, FLAGS.base_url, FLAGS.workers, log=log)
    log(f"fetching {len(files)} files into {root} from {fetcher.source or fetcher.base_url}")
    fetched, failures = fetcher.fetch(files)
    present = len(files) - fetched - len(failures)
    log(f"{fetched} files fetched, {present} already in place")
    if failures:
        log(f"could not get {len(failures)} files:")
        for failure in failures:
            log(f"  {failure}")
        raise U2FusionError(f"{root}: {len(failures)} files missing; run the command again")
    if root != resolve_data_root():
        log(f"commands use this data root with --data_root {root} (make: DATA_ROOT={root})")


if __name__ == "__main__":
    flags.DEFINE_list("datasets", None, "Datasets to fetch or verify (default: all).")
    flags.DEFINE_string("root", str(FETCH_ROOT), "The data root to fill or check.")
    flags.DEFINE_string("from", None, "Copy from this local data root instead of downloading.")
    flags.DEFINE_string("base_url", RAW_URL, "Download from this mirror of the repositories.")
    flags.DEFINE_integer("workers", WORKERS, "Files downloaded at a time.", lower_bound=1)
    cli.run_main(
        main,
        on_interrupt="every file in place is verified; run it again to get the rest",
        computes=False,
    )
