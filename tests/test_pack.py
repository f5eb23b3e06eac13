"""Several runs in one job: a pack trains runs of one seed and budget together, and each run ends exactly as it does
alone (exact packs), resumes on its own after a kill, and the DAG's pack shapes cover every run once."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pblf import plan
from pblf.core.candidate import Candidate
from pblf.core.config import load_config, validate
from pblf.core.files import LOCK
from pblf.core.layout import RunId
from pblf.training.fidelity import Fidelity
from pblf.training.train import RunSpec, train_candidate, train_pack, without_timing
from tiny import tiny_config, wait_for

ROOT = Path(__file__).resolve().parents[1]
TINY = tiny_config(subset=300, batch_size=8)
CANDIDATES = [Candidate(0, 0, 0, 1, "1111"), Candidate(0.3, -0.5, 0.1, 0.7, "0110"),
              Candidate(-0.6, 0.4, 0.2, -0.3, "1011")]


def runs(budget: int = 3) -> list[RunId]:
    return [RunId("search", budget, 0, "PBLF-RS", 0, index) for index in range(len(CANDIDATES))]


def comparable(metrics: dict) -> dict:
    return {key: value for key, value in without_timing(metrics).items() if key != "run"}


@pytest.fixture(scope="module")
def alone(tmp_path_factory) -> list[dict]:
    """Each candidate trained alone: the yardstick."""
    tmp = tmp_path_factory.mktemp("alone")
    return [train_candidate(validate(TINY), c, r, tmp / f"c{i}") for i, (c, r) in enumerate(zip(CANDIDATES, runs()))]


def test_an_exact_pack_gives_each_run_exactly_what_it_gives_alone(alone, tmp_path):
    specs = [RunSpec(r, c, tmp_path / f"c{i}") for i, (c, r) in enumerate(zip(CANDIDATES, runs()))]
    packed = train_pack(validate(TINY), specs, kind="exact")
    assert [comparable(m) for m in packed] == [comparable(m) for m in alone]
    for i, metrics in enumerate(packed):  # each run wrote its own files
        assert json.loads((tmp_path / f"c{i}" / "metrics.json").read_text()) == metrics
        assert (tmp_path / f"c{i}" / "checkpoint.pt").is_file()


def test_a_fused_pack_is_equal_up_to_rounding(alone, tmp_path):
    specs = [RunSpec(r, c, tmp_path / f"c{i}") for i, (c, r) in enumerate(zip(CANDIDATES, runs()))]
    packed = train_pack(validate(TINY), specs, kind="fused")
    for fused, single in zip(packed, alone, strict=True):
        for a, b in zip(fused["epochs"], single["epochs"], strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-4)
            assert abs(a["val_top1"] - b["val_top1"]) <= 1.0  # a few predictions may flip after 3 epochs of drift


def test_runs_of_a_pack_stop_on_their_own(alone, tmp_path):
    """A run whose rung comes first leaves the pack; the others train on, as they do alone."""
    specs = [RunSpec(r, c, tmp_path / f"c{i}", Fidelity(until=1) if i == 1 else Fidelity())
             for i, (c, r) in enumerate(zip(CANDIDATES, runs()))]
    packed = train_pack(validate(TINY), specs)
    assert packed[1]["status"] == "stopped" and comparable(packed[1])["epochs"] == comparable(alone[1])["epochs"][:1]
    assert comparable(packed[0]) == comparable(alone[0]) and comparable(packed[2]) == comparable(alone[2])


def test_a_pack_must_share_seed_budget_and_training(tmp_path):
    specs = [RunSpec(RunId("search", 3, 0, "PBLF-RS", 0, 0), CANDIDATES[0], tmp_path / "a"),
             RunSpec(RunId("search", 2, 0, "PBLF-RS", 0, 1), CANDIDATES[1], tmp_path / "b")]
    with pytest.raises(ValueError, match="share their seed, budget and training config"):
        train_pack(validate(TINY), specs)


def test_a_killed_pack_resumes_each_run_exactly(alone, tmp_path):
    command = _train_pack(tmp_path, _repeats(tmp_path))
    proc = subprocess.Popen(command)
    wait_for(tmp_path / "c2" / "checkpoint.pt")
    time.sleep(0.3)  # inside epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "c0" / "metrics.json").exists(), "the pack finished before it could be killed"
    subprocess.run(command, check=True)  # through the lock files the kill left
    _assert_as_alone(alone, tmp_path)


def test_a_run_of_a_training_pack_refuses_a_second_trainer(alone, tmp_path):
    """Every run of a pack is locked while the pack trains: a second pack that shares one run refuses, in one line
    naming that run and the first pack's pid, and the first (paused meanwhile) ends as if alone."""
    entries = _repeats(tmp_path)
    first = subprocess.Popen(_train_pack(tmp_path, entries))
    for i in range(len(entries)):
        wait_for(tmp_path / f"c{i}" / LOCK, f"{first.pid}\n")
    first.send_signal(signal.SIGSTOP)
    try:
        second = subprocess.run(_train_pack(tmp_path, entries[2:]), capture_output=True, text=True)
    finally:
        first.send_signal(signal.SIGCONT)
    shared = tmp_path / "c2"
    assert second.returncode == 2
    refusal = (f"pblf train-pack: error: {shared} is being trained by another process (pid {first.pid}, lock "
               f"file {shared / LOCK}): wait for it to finish or stop it")
    assert second.stderr.splitlines() == [refusal]
    assert first.wait() == 0
    _assert_as_alone(alone, tmp_path)


def _repeats(tmp_path: Path) -> list[dict]:
    """The runs of CANDIDATES as `pblf train-pack --runs` lists them: repeats (a selection file holds a repeat's
    candidate), run i in ``tmp_path/c<i>``."""
    entries = [{"run": r.to_dict(), "candidate_file": str(_selection(tmp_path, c, i)), "out": str(tmp_path / f"c{i}"),
                "resume_from": None} for i, (c, r) in enumerate(zip(CANDIDATES, runs()))]
    for entry in entries:
        entry["run"] = {**entry["run"], "kind": "repeat"}
        del entry["run"]["iteration"], entry["run"]["index"]
    return entries


def _train_pack(tmp_path: Path, entries: list[dict]) -> list[str]:
    """The command that trains ``entries`` as one pack with the tiny config."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(TINY))
    return [sys.executable, "-m", "pblf.cli", "-q", "train-pack", "--config", str(config), "--runs",
            json.dumps(entries)]


def _assert_as_alone(alone: list[dict], tmp_path: Path) -> None:
    """Each run in ``tmp_path/c<i>`` ended as it does trained alone."""
    for i, single in enumerate(alone):
        ended = json.loads((tmp_path / f"c{i}" / "metrics.json").read_text())
        assert comparable(ended) == comparable(single), f"run {i}"


def _selection(tmp_path: Path, candidate: Candidate, i: int) -> Path:
    path = tmp_path / f"selection{i}.json"
    path.write_text(json.dumps({"candidate": candidate.to_dict()}))
    return path


# ------------------------------------------------------------------------------------------------- the DAG


def _matcher(pattern: str) -> re.Pattern:
    """A regex for a member pattern with Snakemake wildcards."""
    return re.compile(re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(pattern)))


def _all_runs(config: dict) -> list[RunId]:
    """Every run of a config, the search runs from the proposal sizes the config implies."""
    from pblf.search.prune import rs_batch_sizes, rs_rungs

    found = []
    for budget in config["budgets"]:
        seed = config["search"]["train_seed"]
        bo = config["search"]["bo"]
        sizes = [bo["initial"]] + [bo["n_acq"] + bo["n_random"]] * bo["iterations"]
        rungs = rs_rungs(budget, config["search"]["pruning"])
        rs = rs_batch_sizes(config["search"]["rs"]["samples"], config["search"]["pruning"]["eta"], len(rungs))
        for method, counts in (("PBLF-BO", sizes), ("PBLF-RS", rs), ("PBLF-HG", [1])):  # HG: one learning run
            found += [RunId("search", budget, seed + 1000 * r, method, it, i, r)
                      for r in range(config["search"]["repeats"]) for it, n in enumerate(counts) for i in range(n)]
    return found + plan.repeat_runs(config) + plan.convergence_runs(config) + plan.generalisation_runs(config)


@pytest.mark.parametrize("preset", [None, "demo", "smoke"])
@pytest.mark.parametrize("size", [2, 3, 7])
@pytest.mark.parametrize("pruning", [False, True])
@pytest.mark.parametrize("searches", [1, 3])
def test_pack_shapes_cover_every_run_exactly_once(preset, size, pruning, searches):
    files = [ROOT / "config.yaml"] + ([ROOT / "presets" / f"{preset}.yaml"] if preset else [])
    config = load_config(files)
    config = validate({**config, "resources": {**config["resources"], "runs_per_job": size},
                       "search": {**config["search"], "repeats": searches,
                                  "pruning": {**config["search"]["pruning"], "enabled": pruning}}})
    assert len({run.folder for run in _all_runs(config)}) == len(_all_runs(config))
    shapes = plan.pack_shapes(config)
    for run in _all_runs(config):
        owners = []
        for shape in shapes:
            constraints = dict(shape.constraints)
            for member in shape.members:
                if _matcher(member).fullmatch(run.folder) and all(
                        re.fullmatch(regex, str(getattr(run, key) if key != "iteration" else f"{run.iteration:03d}"))
                        for key, regex in constraints.items()):
                    owners.append((shape.name, member))
        assert len(owners) == 1, f"{run.folder}: {owners}"
    assert all(len(shape.members) <= size for shape in shapes)
