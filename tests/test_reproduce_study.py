"""benchmarks/reproduce.py, the reproduction study, on its tiny grid: two synthetic CIFAR-10 copies in the genuine
format stand for the lossy and the exact one, so the code path a GPU runs (pblf split, concurrent pblf train
processes, the paired effects, the JSON) is exercised here in seconds."""

from __future__ import annotations

import json

import pytest
from conftest import benchmark, write_cifar10
from pblf.core.config import validate
from pblf.training.schedule import learning_rate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study():
    return benchmark("reproduce")


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("copies")
    write_cifar10(root / "a", per_batch=40, seed=0)
    write_cifar10(root / "b", per_batch=40, seed=1)
    return ["--data", f"lossy={root / 'a'}", "--data", f"exact={root / 'b'}"]


def test_the_tiny_grid_trains_every_setting_and_pairs_them_by_seed(study, copies, tmp_path):
    out = tmp_path / "study.json"
    assert study.main(["--grid", "tiny", "--out", str(out), *copies, "--verified", "--work", str(tmp_path / "w")]) == 0
    result = json.loads(out.read_text())
    assert result["grid"] == "tiny" and result["budget_epochs"] == 2
    assert len(result["runs"]) == 2 * 2 * 2  # data copies x schedules x seeds
    assert all(run["status"] == "ok" and run["epochs_done"] == 2 for run in result["runs"])
    assert {(g["data"], g["schedule"], g["n"]) for g in result["groups"]} == \
        {(d, s, 2) for d in ("exact", "lossy") for s in ("step", "warmup_cosine")}
    effects = {(e["effect"], e.get("schedule", e.get("data")), e["metric"]): e for e in result["paired_effects"]}
    assert len(effects) == 8 and all(e["n"] == 2 for e in effects.values())
    runs = {(r["data"], r["schedule"], r["seed"]): r for r in result["runs"]}
    by_hand = sum(runs["exact", "step", s]["test_top1"] - runs["lossy", "step", s]["test_top1"] for s in (1, 2)) / 2
    assert effects["exact - lossy", "step", "test_top1"]["diff"] == pytest.approx(by_hand, abs=1e-3)
    # each run followed its schedule: 90 training images in batches of 16 are 6 steps an epoch, 12 in the run
    for (_, schedule, _), run in runs.items():
        train = validate({"train": {"lr_schedule": schedule}})["train"]
        assert [row["lr"] for row in run["curve"]] == pytest.approx([learning_rate(train, 12, 0), learning_rate(train, 12, 6)])
    assert runs["exact", "step", 1]["curve"][1]["lr"] != runs["exact", "warmup_cosine", 1]["curve"][1]["lr"]
    assert result["data"]["exact"]["verify_checksums"] is False


def test_a_deadline_still_writes_the_json(study, copies, tmp_path):
    out = tmp_path / "study.json"
    assert study.main(["--grid", "tiny", "--out", str(out), *copies, "--verified", "--work", str(tmp_path / "w"),
                       "--minutes", "0.0001"]) == 0
    assert {run["status"] for run in json.loads(out.read_text())["runs"]} == {"not started"}


def test_a_copy_that_fails_its_checksums_stops_with_its_name(study, copies, tmp_path):
    with pytest.raises(SystemExit, match="pblf split failed for data copy 'exact'"):
        study.main(["--grid", "tiny", "--out", str(tmp_path / "s.json"), *copies, "--work", str(tmp_path / "w")])
    with pytest.raises(SystemExit):
        study.main(["--grid", "tiny", "--out", str(tmp_path / "s.json"), "--data", f"exact={tmp_path}",
                    "--work", str(tmp_path / "w")])
