"""The tiny training config the unit tests train with: digits on the CPU and a WRN-10-1 with 2 stem channels, so a
run takes seconds. Each test says only what it needs different (how many images, how big a batch). And
:func:`wait_for`, with which a test lets a training process it started reach a point (a checkpoint, a lock)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def tiny_config(subset: int, batch_size: int, **sections: dict[str, Any]) -> dict[str, Any]:
    """The config, with ``subset`` digits, batches of ``batch_size`` and any other sections (merged over it)."""
    config: dict[str, Any] = {
        "device": "cpu",
        "data": {"dataset": "digits", "subset": subset, "augment": {"crop_padding": 1, "hflip": False}},
        "model": {"depth": 10, "widen_factor": 1, "base_width": 2},
        "train": {"batch_size": batch_size, "eval_batch_size": 256},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    return config


def wait_for(path: Path, text: str | None = None, timeout: float = 300) -> None:
    """Return once ``path`` exists (holding ``text``, when given); fail after ``timeout`` seconds, a bound for a
    process that died or hangs, not a measure of speed."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and (text is None or _text(path) == text)):
        assert time.monotonic() < deadline, f"{path} never appeared" + (f" holding {text!r}" if text else "")
        time.sleep(0.05)


def _text(path: Path) -> str | None:
    """The text of a file that its writer may remove at any moment (None once it has)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
