"""Byte-stable, atomic file writing shared by every stage.

A result that a killed job left half-written must never look finished, and the same data must always give the
same bytes (tables and records are compared byte for byte across reruns). So everything is written to a temporary
file in the same folder and renamed into place, with sorted keys and fixed float formatting.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def write_text(text: str, path: str | Path) -> Path:
    """Write ``text`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json(data: Any, path: str | Path) -> Path:
    """Canonical JSON (sorted keys, indent 2, trailing newline), written atomically: same data, same bytes."""
    return write_text(json.dumps(data, sort_keys=True, indent=2) + "\n", path)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def sha256_of_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
