"""What the benchmarks share: the head of the JSON record, printing result tables and writing the record."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch


def record(benchmark: str, argv: list[str] | None, device: torch.device) -> dict[str, Any]:
    """The head of a torch benchmark's record: what ran, on which device, torch, threads and the load at start, and
    the whole environment a pipeline record has (processor and its kernel-selecting features, torch, CUDA and cuDNN,
    the GPU): a number measured on one processor and stack is that processor's and stack's."""
    from pblf.core.provenance import environment

    on_cuda = device.type == "cuda"
    return {
        "benchmark": benchmark,
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "device": torch.cuda.get_device_name(device) if on_cuda else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "environment": environment(device.type),
    }


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
