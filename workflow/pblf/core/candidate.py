"""A candidate: one point of the PBLF search space (Table 6.1), and the files that hold candidates.

A candidate is the meta-network's weights phi = (w1, w2, b1, b2) plus the 4-bit mode that says at which of the four
places of the target network sigma'_phi is active. Every stage passes candidates around (proposer, trainer,
selection, tables), so they have one type, one JSON form, one stable identifier and one parser of each field:
:meth:`Candidate.from_dict` is the only place a mode or a phi value read from a file is interpreted.

Two kinds of file hold candidates: a **proposal** (``search/.../proposal.json``, ``{"candidates": [...]}``, each
entry a candidate plus its ``source``) and a **selection** (``select/b<B>/r<R>/<method>.json``, one ``candidate``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pblf.core.errors import InputError
from pblf.core.files import read_json, write_json
from pblf.core.names import PHI_NAMES

MODE_PATTERN = re.compile(r"^[01]{4}$")
#: Decimal places kept for phi in files: enough to be exact for the search, short enough to read.
PHI_DECIMALS = 6


def parse_mode(value: Any) -> str:
    """A mode as four bits, from a file or a config.

    A string of one to four bits is zero-padded: CSV files hold text, and a spreadsheet that read "0010" as the
    number 10 leaves "10", which is unambiguous for a bit string. A number is refused: in YAML, ``0010`` is the
    octal 8, so only a quoted mode means what it says."""
    if not isinstance(value, str):
        raise ValueError(f"candidate mode {value!r} must be a string such as \"0010\" (quote it in YAML/JSON)")
    text = value.strip()
    if not 1 <= len(text) <= 4 or set(text) - {"0", "1"}:
        raise ValueError(f"candidate mode {value!r} must be four bits such as '0010'")
    return text.zfill(4)


@dataclass(frozen=True)
class Candidate:
    """sigma'_phi(h) = w2 * a(w1 * h + b1) + b2, active at the places whose bit in ``mode`` is 1."""

    w1: float
    w2: float
    b1: float
    b2: float
    mode: str

    def __post_init__(self) -> None:
        if not isinstance(self.mode, str) or not MODE_PATTERN.match(self.mode):
            raise ValueError(f"candidate mode {self.mode!r} must be four bits such as '0010'")
        for name in PHI_NAMES:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
                raise ValueError(f"candidate {name}={value!r} must be a finite number")
            object.__setattr__(self, name, round(float(value), PHI_DECIMALS) + 0.0)

    @property
    def phi(self) -> tuple[float, float, float, float]:
        return (self.w1, self.w2, self.b1, self.b2)

    @property
    def places(self) -> tuple[bool, bool, bool, bool]:
        """Which of the four places (stem, group 1, group 2, group 3) carry the meta-network."""
        return tuple(bit == "1" for bit in self.mode)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): the same candidate always gives the same bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> str:
        """A short stable identifier (12 hex digits of the sha256 of the canonical JSON)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Candidate":
        """Build from a mapping with at least w1, w2, b1, b2, mode (extra keys such as ``source`` are ignored);
        values may be numbers or the strings a CSV holds."""
        if not isinstance(data, dict):
            raise ValueError(f"a candidate must be a JSON object with w1, w2, b1, b2 and mode, not {data!r}")
        missing = [name for name in (*PHI_NAMES, "mode") if name not in data]
        if missing:
            raise ValueError(f"candidate {data!r} lacks {', '.join(missing)}")
        values = []
        for name in PHI_NAMES:
            try:
                values.append(float(data[name]))
            except (TypeError, ValueError) as err:
                raise ValueError(f"candidate {name}={data[name]!r} is not a number") from err
        return cls(*values, mode=parse_mode(data["mode"]))

    @classmethod
    def from_json(cls, text: str) -> "Candidate":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"candidate is not valid JSON: {text!r} ({err})") from err
        return cls.from_dict(data)


def standard_candidate(config: dict[str, Any] | None = None) -> Candidate:
    """Standard backpropagation: phi = (0, 0, 0, 1) in mode 1111, so sigma' == 1 at every place."""
    values = (config or {}).get("standard") or {"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"}
    return Candidate.from_dict(values)


# ---------------------------------------------------------------------------------------------- candidate files


def write_proposal(path: str | Path, candidates: Sequence[dict[str, Any]]) -> Path:
    """``{"candidates": [...]}`` as byte-stable JSON, so that a rerun with the same inputs leaves the file, and
    everything Snakemake derives from it, unchanged. Each entry is a candidate's dict plus its ``source``."""
    return write_json({"candidates": list(candidates)}, path)


def read_proposal(path: str | Path) -> list[dict[str, Any]]:
    """The entries of a proposal, each checked to be a candidate (plus ``source``)."""
    data = read_json(path)
    entries = data.get("candidates") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InputError(f"{path} is not a proposal: it has no list under \"candidates\"")
    for number, entry in enumerate(entries):
        try:
            Candidate.from_dict(entry)
        except ValueError as err:
            raise InputError(f"{path}, candidate {number}: {err}") from None
    return entries


def read_candidate(path: str | Path, index: int | None = None) -> Candidate:
    """Candidate ``index`` of a proposal, or (``index`` None) the candidate of a selection record: the caller knows
    which kind of file it holds (a search run trains a proposal's entry, every other run a selection)."""
    if index is not None:
        entries = read_proposal(path)
        if not 0 <= index < len(entries):
            raise InputError(f"{path} proposes {len(entries)} candidate(s); there is no candidate {index}")
        return Candidate.from_dict(entries[index])
    data = read_json(path)
    try:
        return Candidate.from_dict(data["candidate"])
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path} is not a selection record with a valid \"candidate\": {err}") from None
