"""pblf.core.files: atomic byte-stable writes, reads that name the bad file, and the I/O log that provenance is made of."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pblf
from pblf.core.errors import InputError, OutputError
from pblf.core.files import check_can_create, file_digest, read_csv, read_json, track, write_csv, write_json, write_text

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
