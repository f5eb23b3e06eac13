"""PBLF-HG in the pipeline: where it starts, what its learning run writes, that a learning run with the
hyper-learning-rate at 0 is Standard's run bit for bit, and that a killed learning run resumes exactly.

The hypergradient itself (finite differences, the relaxation, the updater's state) is tested in test_hypergrad.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from pblf.core.candidate import Candidate, write_proposal
from pblf.core.config import validate
from pblf.core.errors import InputError
from pblf.results import figures_hg
from pblf.search.collect import collect_search
from pblf.search.hg import Hypergradient
from pblf.training.hypergrad import TRAJECTORY_FIELDS, MetaParameters, hypergradient, learning_start
from pblf.training.metanet import sigma_prime
from pblf.training.model import build_model
from pblf.training.train import without_timing
from tiny import tiny_config

# 540 training images in batches of 8: 68 steps per epoch, a hypergradient step every 4
TINY = tiny_config(subset=600, batch_size=8, search={"hg": {"hyper_lr": 0.05, "interval": 4, "val_batch_size": 32}})
STANDARD = Candidate(0, 0, 0, 1, "1111")


def write_config(tmp_path: Path, **hg) -> Path:
    cfg = {**TINY, "search": {"hg": {**TINY["search"]["hg"], **hg}}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def learning_cmd(config: Path, out: Path, budget: int = 2) -> list[str]:
    """``pblf train`` of PBLF-HG's learning run, as the pipeline runs it: from its proposal."""
    proposal = config.parent / "proposal.json"
    if not proposal.exists():
        cfg = validate(yaml.safe_load(config.read_text()))
        write_proposal(proposal, Hypergradient().propose(cfg, [], budget, 0, 0))
    return [sys.executable, "-m", "pblf.cli", "-q", "train", "--config", str(config), "--candidate-file",
            str(proposal), "--kind", "search", "--method", "PBLF-HG", "--iteration", "0", "--index", "0",
            "--budget", str(budget), "--seed", "0", "--out", str(out)]


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def learned(tmp_path_factory) -> tuple[Path, dict]:
    """An uninterrupted learning run: (its folder, its metrics)."""
    tmp = tmp_path_factory.mktemp("learned")
    subprocess.run(learning_cmd(write_config(tmp), tmp / "run"), check=True)
    return tmp / "run", metrics(tmp / "run")


def test_standard_is_a_fixed_point_and_the_start_has_standards_derivative():
    """At Standard's phi = (0, 0, 0, 1) the hypergradient of w1, w2 and b1 is exactly 0 and the gates' vanishes (so
    PBLF-HG could never leave it); the start has sigma' == 1 exactly (relu) and a non-zero hypergradient in w1, w2 and b1."""
    h = torch.randn(1000, dtype=torch.float64)
    start = learning_start("relu")
    assert torch.equal(sigma_prime(h, torch.tensor(start.phi, dtype=torch.float64), "relu"), torch.ones_like(h))
    torch.manual_seed(0)
    model = build_model({"depth": 10, "widen_factor": 1, "base_width": 2, "metanet_activation": "relu"}, 10, 1, None)
    batch = (torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,)))
    val = (torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,)))
    at_standard = hypergradient(model, MetaParameters.from_candidate(STANDARD), batch, val, lr=0.1)
    assert torch.equal(at_standard.u[:3], torch.zeros(3, dtype=at_standard.u.dtype))
    # b2 starts at 0.999999 (the box is open), so the gates see sigma'_phi - 1 = -1e-6: a vanishing gradient
    assert float(at_standard.gate_logits.abs().max()) < 1e-8
    at_start = hypergradient(model, MetaParameters.from_candidate(start), batch, val, lr=0.1)
    assert bool((at_start.u[:3] != 0).all())


def test_a_learning_run_writes_what_it_learned_and_its_trajectory(learned):
    out, result = learned
    hg = result["hypergrad"]
    steps = 2 * 68  # two epochs of 68 steps: a hypergradient step before steps 4, 8, ..., 132
    assert hg["hyper_steps"] == (steps - 1) // 4 and len(hg["trajectory"]) == hg["hyper_steps"] + 1
    assert [row["step"] for row in hg["trajectory"]] == [0, *range(4, steps, 4)]
    assert hg["start"] == learning_start("relu").to_dict() and result["candidate"] == STANDARD.to_dict()
    learned_candidate = Candidate.from_dict(result["learned"])
    assert learned_candidate.phi != learning_start("relu").phi, "phi never moved"
    assert all(abs(x) < 1 for x in learned_candidate.phi)
    (row,) = collect_search([out.parent / "proposal.json"], [out / "metrics.json"])
    assert Candidate.from_dict(row) == learned_candidate and row["source"] == "hypergradient"
    assert row["seconds"] > 0


def test_zero_hyper_lr_learns_nothing_and_trains_exactly_like_standard(tmp_path):
    """With the hyper-learning-rate at 0 the learning run is Standard's run bit for bit (its start has sigma' == 1
    exactly), while the hypergradient is still computed and logged."""
    config = write_config(tmp_path, hyper_lr=0.0)
    subprocess.run(learning_cmd(config, tmp_path / "learning"), check=True)
    subprocess.run([sys.executable, "-m", "pblf.cli", "-q", "train", "--config", str(config), "--candidate",
                    STANDARD.to_json(), "--budget", "2", "--seed", "0", "--out", str(tmp_path / "standard")],
                   check=True)
    learning, standard = metrics(tmp_path / "learning"), metrics(tmp_path / "standard")
    assert without_timing(learning)["epochs"] == without_timing(standard)["epochs"]
    assert (learning["val_top1"], learning["test_top1"]) == (standard["val_top1"], standard["test_top1"])
    assert learning["learned"] == learning_start("relu").to_dict() and learning["hypergrad"]["hyper_steps"] > 0


def test_a_killed_learning_run_resumes_to_the_same_metrics(tmp_path):
    """SIGKILL inside the second of four epochs, then the same command: the same epochs, trajectory and learned
    candidate as an uninterrupted run (the updater's state, Adam's moments and the validation stream travel in the
    checkpoint). Four epochs, so that the run cannot end between its first checkpoint and the kill (two tiny epochs
    once did, on a busy machine)."""
    config, out, reference = write_config(tmp_path), tmp_path / "run", tmp_path / "reference"
    subprocess.run(learning_cmd(config, reference, budget=4), check=True)
    proc = subprocess.Popen(learning_cmd(config, out, budget=4))
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists():
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists(), "the run finished before it could be killed"
    subprocess.run(learning_cmd(config, out, budget=4), check=True)
    resumed, expected = without_timing(metrics(out)), without_timing(metrics(reference))
    assert resumed["epochs"] == expected["epochs"] and len(resumed["epochs"]) == 4
    assert resumed["hypergrad"] == expected["hypergrad"] and resumed["learned"] == expected["learned"]


def test_the_trajectory_figure_draws_the_learning_runs(learned, tmp_path):
    """figure_hypergradient reads each budget's learning run: phi and the gates per hypergradient step, ending at
    what the run learned; a run that did not learn is refused by name."""
    _, result = learned
    ((budget, (rows, candidate)),) = figures_hg.trajectories([result]).items()
    trajectory = result["hypergrad"]["trajectory"]
    assert budget == 2 and rows.shape == (len(trajectory), len(TRAJECTORY_FIELDS))
    assert list(rows[:, 0]) == [row["step"] for row in trajectory]
    assert candidate == Candidate.from_dict(result["learned"])
    assert tuple(round(x, 6) for x in rows[-1, 1:5]) == pytest.approx(candidate.phi, abs=1e-5)
    with pytest.raises(InputError, match="is not a learning run of PBLF-HG"):
        figures_hg.trajectories([{"run": {"kind": "repeat", "method": "PBLF-HG", "budget": 2}}])
    data = figures_hg.HypergradientFigure(figures_hg.trajectories([result]), ["PBLF-HG"])
    written = figures_hg.draw(data, tmp_path / "figure_hypergradient", "hypergradient")
    assert sorted(path.suffix for path in written) == [".pdf", ".png"] and all(p.stat().st_size > 0 for p in written)
