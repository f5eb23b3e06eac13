"""Seeds derived from the config's base seed, so that every random stream of the pipeline is reproducible and
independent of the others (and of the order in which jobs happen to run)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any JSON-able parts, e.g. (base seed, candidate, repeat seed, "init")."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") & (2**63 - 1)
