"""A candidate: one point of the PBLF search space (Table 6.1).

A candidate is the meta-network's weights phi = (w1, w2, b1, b2) plus the 4-bit mode that says at which of the four
places of the target network sigma'_phi is active. Every stage passes candidates around (proposer, trainer,
selection, tables), so they have one type, one JSON form and one stable identifier.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

PHI_NAMES: tuple[str, ...] = ("w1", "w2", "b1", "b2")
MODE_PATTERN = re.compile(r"^[01]{4}$")
#: Decimal places kept for phi in files: enough to be exact for the search, short enough to read.
PHI_DECIMALS = 6


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
        """Build from a mapping with at least w1, w2, b1, b2, mode (extra keys such as ``source`` are ignored)."""
        missing = [name for name in (*PHI_NAMES, "mode") if name not in data]
        if missing:
            raise ValueError(f"candidate {data!r} lacks {', '.join(missing)}")
        mode = data["mode"]
        if isinstance(mode, int):
            raise ValueError(f"candidate mode {mode!r} must be a string such as \"0010\" (quote it in YAML/JSON)")
        values = []
        for name in PHI_NAMES:
            try:
                values.append(float(data[name]))
            except (TypeError, ValueError) as err:
                raise ValueError(f"candidate {name}={data[name]!r} is not a number") from err
        return cls(*values, mode=str(mode))

    @classmethod
    def from_json(cls, text: str) -> "Candidate":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"candidate is not valid JSON: {text!r} ({err})") from err
        if not isinstance(data, dict):
            raise ValueError(f"candidate must be a JSON object, not {text!r}")
        return cls.from_dict(data)


def standard_candidate(config: dict[str, Any] | None = None) -> Candidate:
    """Standard backpropagation: phi = (0, 0, 0, 1) in mode 1111, so sigma' == 1 at every place."""
    values = (config or {}).get("standard") or {"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"}
    return Candidate.from_dict(values)
