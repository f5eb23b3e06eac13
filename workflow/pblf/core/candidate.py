"""A candidate: one point of the PBLF search space (Table 6.1), and the files that hold candidates.

A candidate is the meta-network's weights phi = (w1, w2, b1, b2) plus the 4-bit mode that says at which of the four
places of the target network sigma'_phi is active. Every stage passes candidates around (proposer, trainer,
selection, tables), so they have one type, one JSON form, one stable identifier and one parser of each field:
:meth:`Candidate.from_dict` is the only place a mode or a phi value read from a file is interpreted.

Two kinds of file hold candidates: a **proposal** (``search/.../proposal.json``, ``{"candidates": [...]}``, each
entry a candidate plus its ``source`` and what its training run needs to know) and a **selection**
(``select/b<B>/r<R>/<method>.json``, one ``candidate``). Both are checked in full when read, as a config is: a value a
training job would otherwise take on trust (``b1: 1e308``, ``until: -1``) is one line naming the file, the entry and
the field.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jsonschema

from pblf.core.config import load_schema, shown
from pblf.core.errors import InputError
from pblf.core.files import read_json, write_json
from pblf.core.names import PHI_NAMES

MODE_PATTERN = re.compile(r"^[01]{4}$")
#: Decimal places kept for phi in files: enough to be exact for the search, short enough to read.
PHI_DECIMALS = 6
#: Table 6.1 bounds every weight of the meta-network by |x| < 1, and ``search.phi_bound`` may only shrink that box, so
#: no candidate read from a file or a config lies beyond 1. On it is allowed: Standard's b2 = 1 (sigma' == 1) sits
#: there on purpose, and PBLF-HG starts from Standard whatever the search's bound.
PHI_LIMIT = 1.0


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
            if math.isfinite(values[-1]) and abs(values[-1]) > PHI_LIMIT:  # NaN and infinity: __post_init__ says so
                raise ValueError(f"candidate {name}={data[name]!r} lies outside Table 6.1's box: |{name}| <= "
                                 f"{PHI_LIMIT:g}")
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


def _whole(value: Any, least: int) -> bool:
    """An integer of JSON (not a bool, not 3.0) of at least ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _finite_number(value: Any) -> bool:
    """A JSON number that is not NaN or infinite (Python's json reads both), which every comparison would pass."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_text(value: Any) -> str | None:
    """Where a candidate came from (``source``, ``replaced``): only shown in tables and figures, but text."""
    return None if isinstance(value, str) else "must be text"


def _check_until(value: Any) -> str | None:
    """Successive halving's rung (:func:`pblf.search.prune.rung_limits`); 0 or less trained nothing and called it a
    divergence. Beyond the budget is harmless: a run stops at its budget first."""
    return None if _whole(value, 1) else "must be a whole number of epochs, at least 1 (the rung the run stops at)"


def _check_stop_below(value: Any) -> str | None:
    """The median stopping rule's thresholds (:func:`pblf.search.prune.median_stops`): rung epoch -> Top-1 %."""
    if isinstance(value, dict) and all(isinstance(epoch, str) and re.fullmatch(r"[1-9][0-9]*", epoch)
                                       and _finite_number(threshold) and 0 <= threshold <= 100
                                       for epoch, threshold in value.items()):
        return None
    return 'must map rung epochs (whole numbers from 1, as text: "3") to Top-1 thresholds in percent, 0 to 100'


def _check_resume(value: Any) -> str | None:
    """The run a promoted candidate continues (:func:`pblf.search.prune.promote`)."""
    if isinstance(value, dict) and set(value) == {"iteration", "index"} and all(_whole(v, 0) for v in value.values()):
        return None
    return 'must name the run it continues, {"iteration": I, "index": J}, both whole numbers from 0'


@functools.cache
def _learn_schema() -> jsonschema.Draft202012Validator:
    """PBLF-HG's settings as its proposal carries them (:meth:`pblf.search.hg.Hypergradient.propose`): the
    config's ``search.hg`` and ``search.phi_bound``, each under the schema's own rule, every one present."""
    search = load_schema()["properties"]["search"]["properties"]
    settings = {**search["hg"]["properties"], "phi_bound": search["phi_bound"]}
    return jsonschema.Draft202012Validator({"type": "object", "additionalProperties": False,
                                            "required": sorted(settings), "properties": settings})


def _check_learn(value: Any) -> str | None:
    """PBLF-HG's settings, checked against the schema (:func:`_learn_schema`) and for NaN and infinity, which pass
    every comparison a schema makes."""
    what = "is not PBLF-HG's settings (search.hg's keys and phi_bound)"
    error = jsonschema.exceptions.best_match(_learn_schema().iter_errors(value))
    if error is not None:
        return f"{what}: {'.'.join(['learn', *map(str, error.absolute_path)])}: {error.message}"
    infinite = [key for key, setting in value.items() if not _finite_number(setting)]
    return f"{what}: learn.{infinite[0]}: {value[infinite[0]]} is not a finite number" if infinite else None


#: What a proposal entry may hold beside its candidate (:meth:`pblf.search.method.SearchMethod.propose`), each with
#: the check of its value, which returns what is wrong or None.
ENTRY_FIELDS: dict[str, Callable[[Any], str | None]] = {
    "source": _check_text, "replaced": _check_text, "until": _check_until, "stop_below": _check_stop_below,
    "resume": _check_resume, "learn": _check_learn,
}


def _json_candidate(data: Any) -> Candidate:
    """The candidate a JSON file holds: :meth:`Candidate.from_dict`, with the mode written as four bits (a CSV cell
    may have lost its leading zeros in a spreadsheet; JSON has no such excuse)."""
    candidate = Candidate.from_dict(data)
    if data["mode"] != candidate.mode:
        raise ValueError(f"candidate mode {data['mode']!r} must be written as four bits, such as '{candidate.mode}'")
    return candidate


def _check_entry(entry: Any) -> None:
    """Check one proposal entry in full: its candidate (:func:`_json_candidate`) and every other field, none unknown.
    Raises ValueError naming the field."""
    _json_candidate(entry)
    unknown = sorted(set(entry) - {*PHI_NAMES, "mode", *ENTRY_FIELDS})
    if unknown:
        raise ValueError(f"unknown field {', '.join(unknown)}; an entry holds {', '.join((*PHI_NAMES, 'mode'))} and "
                         f"may hold {', '.join(ENTRY_FIELDS)}")
    for name, check in ENTRY_FIELDS.items():
        problem = check(entry[name]) if name in entry else None
        if problem:
            raise ValueError(f"{name} {shown(entry[name])} {problem}")


def read_proposal(path: str | Path) -> list[dict[str, Any]]:
    """The entries of a proposal, each checked in full (:func:`_check_entry`) before a training run trusts it."""
    data = read_json(path)
    entries = data.get("candidates") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InputError(f"{path} is not a proposal: it has no list under \"candidates\"")
    for number, entry in enumerate(entries):
        try:
            _check_entry(entry)
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
        return _json_candidate(data["candidate"])
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path} is not a selection record with a valid \"candidate\": {err}") from None
