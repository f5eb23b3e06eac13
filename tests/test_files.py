"""pblf.core.files: atomic byte-stable writes, reads that name the bad file, and the I/O log that provenance is made of."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pblf
from pblf.core.errors import InputError, OutputError
from pblf.core.files import (LOCK, check_can_create, file_digest, folder_lock, read_csv, read_json, track, write_bytes,
                             write_csv, write_json, write_text)

PACKAGE = Path(pblf.__file__).parent


def test_track_logs_reads_as_inputs_and_writes_as_outputs(tmp_path):
    source = write_json({"a": 1}, tmp_path / "in.json")
    with track() as io:
        read_json(source)
        out = write_text("x\n", tmp_path / "sub" / "out.txt")
        read_json(source)  # read twice, listed once
        write_text("y\n", out)
    assert list(io.inputs) == [source] and list(io.outputs) == [out]
    with track() as io:
        written = write_json({}, tmp_path / "own.json")
        read_json(written)  # reading back what the stage wrote does not make it an input
    assert list(io.inputs) == [] and list(io.outputs) == [written]


def test_writes_are_atomic_and_byte_stable(tmp_path):
    path = write_json({"b": 2, "a": [1.5, "x"]}, tmp_path / "f.json")
    assert path.read_text() == '{\n  "a": [\n    1.5,\n    "x"\n  ],\n  "b": 2\n}\n'
    assert not list(tmp_path.glob("*.tmp"))
    write_csv([{"x": 1, "y": 0.1, "extra": "ignored"}], ("x", "y"), tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_bytes() == b"x,y\n1,0.1\n"


#: A process that writes one payload (``fill`` repeated) to one path again and again, as a second `pblf train` on a
#: run folder rewrites its checkpoint.
WRITER = """
import sys
from pblf.core.files import write_bytes
path, fill, size, times = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4])
for _ in range(times):
    write_bytes(fill * size, path)
"""


def test_two_writers_of_one_path_leave_one_writers_bytes(tmp_path):
    """Two processes rewrite one file while this one reads it: every read and the end are exactly one writer's
    payload, neither writer fails, and no temporary is left (with one shared temporary name, writes mixed payloads
    or failed with "No such file or directory")."""
    size = 256 * 1024
    path = write_bytes(b"a" * size, tmp_path / "checkpoint.pt")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), fill, str(size), "100"]) for fill in "ab"]
    seen = set()
    while any(writer.poll() is None for writer in writers):
        seen.add(path.read_bytes())
    seen.add(path.read_bytes())
    assert [writer.returncode for writer in writers] == [0, 0]
    assert seen <= {b"a" * size, b"b" * size}
    assert [child.name for child in tmp_path.iterdir()] == ["checkpoint.pt"]


def a_folder_in_the_way(path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path.mkdir()
    return "Is a directory"


def a_full_disk(path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", full)
    return os.strerror(errno.ENOSPC)


@pytest.mark.parametrize("failure", [a_folder_in_the_way, a_full_disk])
def test_a_failed_write_names_the_path_and_leaves_no_temporary(tmp_path, monkeypatch, failure):
    path = tmp_path / "metrics.json"
    reason = failure(path, monkeypatch)
    with pytest.raises(OutputError, match=rf"^cannot write {re.escape(str(path))}: {reason}$"):
        write_json({"a": 1}, path)
    assert [child.name for child in tmp_path.iterdir()] == (["metrics.json"] if path.is_dir() else [])


def test_a_written_file_has_the_mode_open_gives(tmp_path):
    """The temporary is created 0666 less the umask, as open() creates a file (mkstemp's 0600 would hide results
    from a group that shares them)."""
    previous = os.umask(0o027)
    try:
        written = write_text("x\n", tmp_path / "written.txt")
        (tmp_path / "opened.txt").touch()
    finally:
        os.umask(previous)
    assert oct(written.stat().st_mode & 0o777) == oct((tmp_path / "opened.txt").stat().st_mode & 0o777) == "0o640"


def test_a_locked_folder_is_refused_with_the_holders_pid_and_released_after(tmp_path):
    folder = tmp_path / "run"
    with track() as io, folder_lock(folder, "trained") as lock:
        assert lock == folder / LOCK and lock.read_text() == f"{os.getpid()}\n"
        assert not io.outputs  # the lock file is no output: no record lists it
        refusal = (rf"^{re.escape(str(folder))} is being trained by another process \(pid {os.getpid()}, lock file "
                   rf"{re.escape(str(lock))}\): wait for it to finish or stop it$")
        with pytest.raises(OutputError, match=refusal), folder_lock(folder, "trained"):
            pass  # refused on entry
        write_text("x\n", folder / "metrics.json")
    assert [child.name for child in folder.iterdir()] == ["metrics.json"]  # the lock file goes with the lock
    with folder_lock(folder, "trained"):
        pass  # and it can be taken again


def test_a_lock_a_killed_holder_left_is_taken_and_its_temporaries_removed(tmp_path):
    """A SIGKILL leaves the lock file (unlocked: the kernel drops the flock) and perhaps a half-written temporary."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK).write_text("999999\n")
    (folder / ".checkpoint.pt.0123456789abcdef.tmp").write_bytes(b"half a checkpoint")
    (folder / "checkpoint.pt").write_bytes(b"the last whole one")
    with folder_lock(folder, "trained") as lock:
        assert lock.read_text() == f"{os.getpid()}\n"
        assert sorted(child.name for child in folder.iterdir()) == [LOCK, "checkpoint.pt"]


def test_a_folder_on_a_file_system_without_locks_is_used_unlocked_with_a_warning(tmp_path, monkeypatch, caplog):
    """Lustre mounted with noflock refuses every flock: training goes on there, as before locks, and says so."""
    def no_locks(descriptor: int, operation: int) -> None:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
    monkeypatch.setattr(fcntl, "flock", no_locks)
    folder = tmp_path / "run"
    with folder_lock(folder, "trained") as lock:
        assert lock is None and list(folder.iterdir()) == []
    assert f"{folder} cannot be locked ({os.strerror(errno.ENOSYS)}: the file system has no file locks)" in caplog.text


def test_reads_name_the_file_and_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match=r"input file .*absent\.json does not exist"):
        read_json(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text('{"a": 1}\n{"b": 2}\n')
    with pytest.raises(InputError, match=r"bad\.json is not valid JSON: Extra data at line 2, column 1"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "bin.csv").write_bytes(b"a,b\n\xff\xff\n")
    with pytest.raises(InputError, match=r"bin\.csv is not UTF-8 text"):
        read_csv(tmp_path / "bin.csv")


@pytest.mark.parametrize("row, fields", [("1,2,3", 3), ("1", 1)])
def test_a_ragged_csv_row_is_named_by_line(tmp_path, row, fields):
    (tmp_path / "r.csv").write_text(f"a,b\n1,2\n{row}\n")
    with pytest.raises(InputError, match=rf"r\.csv, line 3: the row has {fields} fields, the header 2"):
        read_csv(tmp_path / "r.csv")


def test_file_digest_is_hashlib(tmp_path):
    path = write_text("abc", tmp_path / "abc.txt")
    assert file_digest(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_digest(path, "md5") == "900150983cd24fb0d6963f7d28e17f72"


def test_no_module_writes_a_file_around_pblf_files():
    """Every output must reach the I/O log (or a provenance record would silently miss it): no module but
    pblf.core.files opens a file for writing, or lets pathlib, matplotlib, pandas or torch write to a path."""
    writers = re.compile(r"\.write_(text|bytes)\(|open\([^)]*[\"'][wa]b?[\"']|\.savefig\((?!buffer)|\.to_csv\(|"
                         r"torch\.save\((?!payload, buffer)")
    offenders = [f"{path.name}:{number}: {line.strip()}"
                 for path in sorted(PACKAGE.glob("*.py")) if path.name != "files.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1) if writers.search(line)]
    assert offenders == []


def test_a_folder_that_could_not_be_created_is_named_without_creating_anything(tmp_path):
    check_can_create(tmp_path / "results" / "deeper")  # missing folders under a writable one: fine
    assert not (tmp_path / "results").exists()
    (tmp_path / "results").write_text("a file in the way")
    with pytest.raises(OutputError, match=r"cannot write into .*results/deeper: .*results is a file, not a folder"):
        check_can_create(tmp_path / "results" / "deeper")
