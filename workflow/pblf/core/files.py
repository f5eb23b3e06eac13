"""Every file a stage reads or writes goes through here: atomic, byte-stable writes, checked reads, and a log of both.

* **Atomic writes.** A result that a killed job left half-written must never look finished, so everything is written
  to a temporary file in the same folder and renamed into place. Each write has a temporary of its own, so two
  writers of one path leave one writer's bytes, never a mix of both.
* **One writer per folder.** A folder that one process fills over a long time (a run folder while it trains) is
  held with :func:`folder_lock`; a second process that wants it refuses at once, naming the holder.
* **Byte-stable writes.** The same data must always give the same bytes (tables and records are compared byte for
  byte across reruns): JSON with sorted keys, CSV with Unix line ends and a fixed column list.
* **Checked reads.** A missing, undecodable or malformed input is an :class:`~pblf.core.errors.InputError` that names the
  file (and line), never a bare ``KeyError`` or ``UnicodeDecodeError`` from deep inside a stage.
* **An I/O log.** Inside :func:`track`, every read is noted as an input and every write as an output. The ``pblf``
  command runs each stage inside :func:`track` and writes the provenance record from that log, so a stage declares
  what it reads and writes simply by reading and writing it: adding an input cannot silently leave it out of the
  record (and so out of ``pblf audit``).
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import errno
import fcntl
import hashlib
import io
import json
import logging
import math
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pblf.core.errors import InputError, OutputError

log = logging.getLogger(__name__)


@dataclass
class IOLog:
    """The files one stage read and wrote, in first-touch order, without repeats."""

    inputs: dict[Path, None] = field(default_factory=dict)
    outputs: dict[Path, None] = field(default_factory=dict)


_LOG: contextvars.ContextVar[IOLog | None] = contextvars.ContextVar("pblf_io_log", default=None)


@contextlib.contextmanager
def track() -> Iterator[IOLog]:
    """Log every read and write made through this module until the block ends."""
    log = IOLog()
    token = _LOG.set(log)
    try:
        yield log
    finally:
        _LOG.reset(token)


def note_input(path: str | Path) -> None:
    """Record ``path`` as read by the current stage (for readers that cannot go through :func:`read_text`, such as
    a checkpoint loaded by torch). Files the stage itself wrote first are its outputs, not its inputs."""
    log = _LOG.get()
    if log is not None and Path(path) not in log.outputs:
        log.inputs.setdefault(Path(path), None)


def note_output(path: str | Path) -> None:
    log = _LOG.get()
    if log is not None:
        log.outputs.setdefault(Path(path), None)


# ------------------------------------------------------------------------------------------------------- writing

#: How the temporary files of :func:`write_bytes` end (they are hidden: ``.<name>.<random>.tmp``).
TEMPORARY = ".tmp"


def write_bytes(data: bytes, path: str | Path) -> Path:
    """Write ``data`` atomically: a temporary file in the same folder, flushed to disk, then renamed into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _replace(path, data)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None
    note_output(path)
    return path


def _replace(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` through a temporary that no other writer can share (a random name, created
    exclusively), so that two writers of one path each rename a whole file of their own: a shared name let one
    truncate, mix or rename away the other's bytes. It is created with mode 0666 less the umask, as ``open()`` would
    create ``path`` (no umask to read), and removed if anything fails."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}{TEMPORARY}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def ensure_writable(folder: str | Path) -> None:
    """Fail now, naming ``folder``, if files cannot be created in it, rather than after a stage has done its work."""
    probe = Path(folder) / f".pblf-write-test-{os.getpid()}"
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise OutputError(f"cannot write into {folder}: {err.strerror or err}") from None


def check_can_create(folder: str | Path) -> None:
    """Fail, naming ``folder``, if files could not be created in it, without creating anything: the check a dry
    run can make. The nearest part of the path that exists must be a folder this process may write to."""
    path = Path(folder).absolute()
    existing = next(part for part in (path, *path.parents) if part.exists())
    if not existing.is_dir():
        raise OutputError(f"cannot write into {folder}: {existing} is a file, not a folder; move it away")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into {folder}: {existing} is not writable by this user")


def write_text(text: str, path: str | Path) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return write_bytes(text.encode("utf-8"), path)


def write_json(data: Any, path: str | Path) -> Path:
    """Canonical JSON (sorted keys, indent 2, trailing newline), written atomically: same data, same bytes."""
    return write_text(json.dumps(data, sort_keys=True, indent=2) + "\n", path)


def write_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str], path: str | Path) -> Path:
    """A CSV with exactly ``columns`` (extra keys of a row are ignored), Unix line ends, floats in Python's shortest
    round-trip form."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(buffer.getvalue(), path)


# ------------------------------------------------------------------------------------------------------- locking

#: The lock file of a folder held by :func:`folder_lock`: hidden, holding the holder's pid, and never an output (it is
#: not written through :func:`write_bytes`, so no provenance record lists it).
LOCK = ".pblf.lock"
#: What flock raises where the file system has no file locks (Lustre mounted with noflock, some NFS set-ups).
NO_LOCKS = (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK)


@contextlib.contextmanager
def folder_lock(folder: str | Path, activity: str) -> Iterator[Path | None]:
    """Hold ``folder`` for this process alone until the block ends (creating it), or refuse at once with an
    OutputError naming the holder's pid; ``activity`` is what the holder does there, for the message ("trained").

    Refusing rather than waiting: a second writer is a mistake (one command started twice, two workflows on one
    results folder) that should be seen at once, and a waiting job would hold its slot and GPU idle for as long as
    the first trains (hours), only to find the work done. An flock, not a pid file, because the kernel releases it
    whenever the holder ends, SIGKILL included, so a lock file a killed process left is no obstacle. The lock file is
    removed on release while still held (:func:`_take` copes), so a finished folder holds only its results. Where
    the file system has no file locks the block runs unlocked, with a warning, and gets None: a safeguard against a
    rare mistake must not stop every job."""
    folder = Path(folder)
    lock = folder / LOCK
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = _take(lock)
    except BlockingIOError:
        raise OutputError(f"{folder} is being {activity} by another process (pid {_holder(lock)}, lock file {lock}): "
                          "wait for it to finish or stop it") from None
    except OSError as err:
        if err.errno not in NO_LOCKS:
            raise OutputError(f"cannot lock {folder} ({lock}): {err.strerror or err}") from None
        log.warning("%s cannot be locked (%s: the file system has no file locks), so nothing stops a second process "
                    "from writing into it too", folder, err.strerror)
        lock.unlink(missing_ok=True)
        yield None
        return
    try:
        _claim(folder, descriptor)
        yield lock
    finally:
        with contextlib.suppress(OSError):  # a lock file left behind is harmless: the next holder takes it over
            lock.unlink()
        os.close(descriptor)


def _claim(folder: Path, descriptor: int) -> None:
    """Write this process's pid into the lock file it holds (the refusal of a second process names it), and remove
    the temporary files a killed writer left in ``folder`` (while the lock is held, no one else writes there)."""
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    for leftover in folder.glob(f".*{TEMPORARY}"):
        leftover.unlink(missing_ok=True)


def _take(lock: Path) -> int:
    """A descriptor of ``lock`` that holds its flock; BlockingIOError while another process holds it.

    A releasing holder removes the file, so the flock may land on a file that has just left the folder: a lock on
    it would exclude nobody who opens the path now, so open the path again until the lock is on the file it names."""
    while True:
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _names(lock, descriptor):
                return descriptor
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)


def _names(path: Path, descriptor: int) -> bool:
    """Whether ``path`` is (still) the file open as ``descriptor``."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino)


def _holder(lock: Path) -> str:
    """The pid the holder of ``lock`` wrote into it, for the refusal ("unknown" in the instant before it writes)."""
    try:
        return lock.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


# ------------------------------------------------------------------------------------------------------- reading


def read_bytes(path: str | Path) -> bytes:
    """The bytes of an input file (a checkpoint a run continues from, say); a missing file is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file {path} does not exist")
    note_input(path)
    return path.read_bytes()


def read_text(path: str | Path) -> str:
    """The text of an input file; a missing or undecodable file is an InputError that names it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"input file {path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    note_input(path)
    return text


def read_json(path: str | Path) -> Any:
    """A JSON input; text that does not parse is an InputError naming the file, line and column."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"input file {path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") \
            from None


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """The rows of a CSV with a header, as dicts of strings; a row with more or fewer fields than the header is an
    InputError naming the file and line (csv would otherwise fill in None and move values between columns)."""
    text = read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    for row in reader:
        if None in row or None in row.values():
            raise InputError(f"{path}, line {reader.line_num}: the row has {_count(row)} fields, the header "
                             f"{len(reader.fieldnames or [])}")
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Field:
    """How one column of a CSV file is read: ``parse`` (which raises ValueError on a bad cell) and what a good cell
    is, for the message (``"an integer"``). A column that is not ``required`` may be absent; ``empty`` is what an
    empty cell reads as, and without it an empty cell is refused like any other bad one."""

    parse: Callable[[str], Any]
    what: str
    required: bool = True
    empty: Any = field(default=Ellipsis)

    def optional(self, empty: Any = None) -> "Field":
        """The same column, which may be absent or empty (then ``empty``)."""
        return Field(self.parse, self.what, required=False, empty=empty)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _at_least_zero(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def checked(text: str) -> Any:
        value = parse(text)
        if value < 0:
            raise ValueError(text)
        return value
    return checked


def _percent(text: str) -> float:
    value = _finite(text)
    if not 0.0 <= value <= 100.0:
        raise ValueError(text)
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


INTEGER = Field(int, "an integer")
COUNT = Field(_at_least_zero(int), "a non-negative integer")
EPOCHS = Field(_positive, "a positive number of epochs")
NUMBER = Field(_finite, "a finite number")
AMOUNT = Field(_at_least_zero(_finite), "a finite non-negative number")
ACCURACY = Field(_percent, "an accuracy in percent (0 to 100)")


def read_typed_csv(path: str | Path, fields: dict[str, Field], what: str,
                   finish: Callable[[dict[str, str], dict[str, Any]], dict[str, Any]] | None = None
                   ) -> list[tuple[int, dict[str, Any]]]:
    """The rows of a CSV with the columns of ``fields`` typed, each with its line number (the header is line 1).

    Every bad cell is an InputError naming the file, the line, the column and what the cell should be; a missing
    required column names the file and ``what`` the file is. ``finish(raw, row)`` may add what needs several
    columns (a candidate); its ValueError names the file and line. Columns ``fields`` does not name stay text."""
    path = Path(path)
    raw_rows = read_csv(path)
    missing = [name for name, spec in fields.items() if spec.required and raw_rows and name not in raw_rows[0]]
    if missing:
        raise InputError(f"{path}, line 1: {what} lacks column(s) {', '.join(missing)} "
                         f"(has {', '.join(raw_rows[0])})")
    rows = []
    for line, raw in enumerate(raw_rows, start=2):
        row: dict[str, Any] = dict(raw)
        for name, spec in fields.items():
            text = raw.get(name, "")
            if text == "" and spec.empty is not Ellipsis:
                row[name] = spec.empty
                continue
            try:
                row[name] = spec.parse(text)
            except ValueError:
                raise InputError(f"{path}, line {line}, column {name}: {text!r} is not {spec.what}") from None
        if finish is not None:
            try:
                row = finish(raw, row)
            except ValueError as err:
                raise InputError(f"{path}, line {line}: {err}") from None
        rows.append((line, row))
    return rows


def _count(row: dict[str | None, Any]) -> int:
    extra = row.get(None) or []
    return sum(1 for key, value in row.items() if key is not None and value is not None) + len(extra)


# ------------------------------------------------------------------------------------------------------ checksums


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (sha256 for provenance, md5 for the canonical CIFAR-10 checksums)."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()
