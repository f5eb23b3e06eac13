"""Shared fixtures: a CIFAR-10 folder in the genuine on-disk format, small enough for a test."""

from __future__ import annotations

import importlib
import pickle
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from pblf.core.config import load_config, stage_config
from pblf.core.provenance import write_stage_config
from pblf.training.dataset import CIFAR10_FOLDER, CIFAR10_TRAIN_FILES

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark(name: str) -> ModuleType:
    """A script of ``benchmarks/`` as a module, freshly imported: the benchmarks are scripts, not a package, and
    import their sibling ``common``, so their folder goes on the path."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    sys.modules.pop(name, None)
    return importlib.import_module(name)

LABEL_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def stage_config_in(results: Path, config: Path, stage: str) -> Path:
    """``results/config/<stage>.json`` made from ``config`` with its record, as the workflow's stage_config rule
    makes it: a stage run by hand then reads its config from inside the results folder, where the audit looks."""
    path = results / "config" / f"{stage}.json"
    write_stage_config(stage_config(load_config([config]), stage), path, [config], results.parent / f"{stage}.log")
    return path


def write_cifar10(root: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """Write ``root/cifar-10-batches-py`` as the official python version does: protocol-2 pickles of dicts with bytes
    keys, rows of 3,072 uint8 values (1,024 red, then green, then blue), and ``batches.meta``."""
    rng = np.random.default_rng(seed)
    folder = root / CIFAR10_FOLDER
    folder.mkdir(parents=True)
    for name in (*CIFAR10_TRAIN_FILES, "test_batch"):
        batch = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, per_batch).tolist(),
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)],
        }
        with (folder / name).open("wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    meta = {b"num_cases_per_batch": per_batch, b"label_names": LABEL_NAMES, b"num_vis": 3072}
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    return folder


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    write_cifar10(tmp_path)
    return tmp_path
