"""Each stage reads only the config keys it is given (pblf.core.config.STAGE_KEYS).

A stage's job receives ``results/config/<stage>.json``, its subset of the config, and validation fills every other
key with its default. A stage that read a key outside its subset would silently run with the default instead of the
user's value: ``resources.pack: exact`` became ``auto`` in the training job this way. Here every stage runs with a
config that records each key it reads, and the test fails on any key outside the stage's subset.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pblf.core.config import STAGE_KEYS, load_config, stage_config, validate
from pblf.core.files import write_csv
from pblf.core.names import HISTORY_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
SMOKE = [ROOT / "config.yaml", ROOT / "presets/smoke.yaml"]
STANDARD = '{"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"}'


class Recording(dict):
    """A config that notes the path of every key read through it (its copies too)."""

    def __init__(self, data: dict[str, Any], seen: set[tuple[str, ...]], path: tuple[str, ...] = ()) -> None:
        super().__init__({key: Recording(value, seen, (*path, key)) if isinstance(value, dict) else value
                          for key, value in data.items()})
        self.seen, self.path = seen, path

    def __getitem__(self, key: str) -> Any:
        self.seen.add((*self.path, key))
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def items(self):
        return [(key, self[key]) for key in self]

    def values(self):
        return [self[key] for key in self]

    def __deepcopy__(self, memo: dict) -> "Recording":
        return Recording(copy.deepcopy(dict(super().items()), memo), self.seen, self.path)


def outside(seen: set[tuple[str, ...]], stage: str) -> list[str]:
    """The keys read that lie outside the stage's subset (reading the way to an allowed key is not reading)."""
    allowed = [tuple(key.split(".")) for key in STAGE_KEYS[stage]]
    return sorted(".".join(path) for path in seen
                  if not any(path[:len(key)] == key or key[:len(path)] == path for key in allowed))


@pytest.fixture
def recorded(monkeypatch):
    """Patch ``load_config`` in the given stage modules to hand out a recording config; returns what was read."""
    seen: set[tuple[str, ...]] = set()

    def patch(*modules):
        for module in modules:
            monkeypatch.setattr(module, "load_config", lambda paths: Recording(load_config(paths), seen))
        return seen

    return patch


def config_file(tmp_path: Path, **override) -> Path:
    path = tmp_path / "config.yaml"
    merged = load_config(SMOKE)
    for section, values in override.items():
        merged[section] = {**merged[section], **values}
    path.write_text(yaml.safe_dump(merged))
    return path


def test_the_data_stage(recorded, tmp_path):
    from pblf.training import data

    seen = recorded(data)
    data.stage_split([config_file(tmp_path)], tmp_path / "split")
    assert outside(seen, "data") == []


def test_the_training_stage_and_packs(recorded, tmp_path):
    import json

    from pblf.core.layout import RunId
    from pblf.training import train

    config = config_file(tmp_path, resources={"pack": "fused"})
    selection = tmp_path / "standard.json"
    selection.write_text(json.dumps({"candidate": json.loads(STANDARD)}))
    seen = recorded(train)
    train.stage_train([config], tmp_path / "run", RunId("manual", 1, 1), candidate=STANDARD)
    runs = [{"run": {"kind": "repeat", "budget": 1, "seed": 1, "method": method},
             "candidate_file": str(selection), "out": str(tmp_path / method)} for method in ("Standard", "PBLF-BO")]
    train.stage_train_pack([config], json.dumps(runs))
    assert ("resources", "pack") in seen  # the pack's kind is read from the config: it must be in the subset
    assert outside(seen, "train") == []


def test_the_search_stages(recorded, tmp_path):
    from pblf.search import propose, select

    seen = recorded(propose, select)
    config = config_file(tmp_path, search={"pruning": {"enabled": True}})
    history = write_csv([], HISTORY_COLUMNS, tmp_path / "history.csv")
    for method in ("PBLF-BO", "PBLF-RS", "PBLF-HG"):
        propose.stage_propose([config], history, 2, method, 0, tmp_path / method)
    search = set(seen)
    seen.clear()
    select.stage_select_standard([config], 2, tmp_path / "select")
    assert outside(search, "search") == [] and outside(seen, "select") == []


def test_appendix_c(recorded, tmp_path):
    from pblf.results import figures, figures_c, trajectories

    seen = recorded(trajectories, figures_c, figures)
    config = config_file(tmp_path)
    trajectories.stage_trajectories([config], tmp_path / "trajectories")
    figures.stage_figure("C.1", [tmp_path / "trajectories" / "figure_C_1.csv"], tmp_path / "figures", [config])
    assert outside(seen, "appendix_c") == []


def test_resources_pack_reaches_the_training_job():
    """What the training job is given (the train stage's subset, validated) keeps the user's pack kind."""
    from pblf.training.train import pack_kind

    chosen = validate({"device": "cpu", "resources": {"pack": "fused"}})
    assert pack_kind(validate(stage_config(chosen, "train"))) == "fused"
