"""What the Snakefile needs from the package: result paths, the final outputs, canonical JSON files.

Rules only wire files together; which files exist for a config is decided here, where it can be tested without
Snakemake.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pblf.config import stage_config

__all__ = ["final_outputs", "stage_config", "write_json"]


def write_json(data: Any, path: str | Path) -> Path:
    """Canonical JSON (sorted keys, indent 2, trailing newline), written atomically: same data, same bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True, indent=2) + "\n")
    tmp.replace(path)
    return path


def final_outputs(config: dict[str, Any], results: str = "results") -> list[str]:
    """Every file ``rule all`` asks for under ``config``."""
    return [f"{results}/data/split.json"]
