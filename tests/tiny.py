"""The tiny training config the unit tests train with: digits on the CPU and a WRN-10-1 with 2 stem channels, so a
run takes seconds. Each test says only what it needs different (how many images, how big a batch)."""

from __future__ import annotations

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
