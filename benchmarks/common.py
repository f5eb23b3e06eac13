"""What both benchmarks share: printing result tables and writing the JSON record."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([title, line(header), line(["-" * w for w in widths]), *map(line, cells[1:]), ""])


def finish(result: dict[str, Any], printed: list[str], out: Path) -> int:
    """Note the load the numbers were taken under, write ``out`` (JSON) and print the tables."""
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(printed))
    print(f"wrote {out}")
    return 0
