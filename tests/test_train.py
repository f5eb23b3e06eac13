"""One training job: determinism, kill-and-resume (SIGKILL between and during epochs, SIGTERM), divergence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from pblf.cli import main
from pblf.core.candidate import Candidate
from pblf.core.config import validate
from pblf.core.files import LOCK
from pblf.core.layout import RunId
from pblf.training.train import EXIT_PREEMPTED, initial_model, train_candidate, without_timing
from tiny import tiny_config, wait_for

ROOT = Path(__file__).resolve().parents[1]
CANDIDATE = {"w1": 0.3, "w2": -0.5, "b1": 0.1, "b2": 0.7, "mode": "0110"}
STANDARD = {"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"}
# 540 training images in batches of 4: ~135 steps per epoch, long enough that a kill lands inside an epoch
TINY = tiny_config(subset=600, batch_size=4)


def write_config(tmp_path: Path, **train) -> Path:
    cfg = {**TINY, "train": {**TINY["train"], **train}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def train_cmd(config: Path, out: Path, budget: int = 3) -> list[str]:
    return [sys.executable, "-m", "pblf.cli", "-q", "train", "--config", str(config),
            "--candidate", json.dumps(CANDIDATE), "--budget", str(budget), "--seed", "1", "--out", str(out)]


def metrics(out: Path) -> dict:
    return without_timing(json.loads((out / "metrics.json").read_text()))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """An uninterrupted run, the yardstick of every resume test."""
    tmp = tmp_path_factory.mktemp("reference")
    subprocess.run(train_cmd(write_config(tmp), tmp / "run"), check=True)
    return metrics(tmp / "run")


def test_metrics_have_every_field(reference):
    assert reference["status"] == "ok"
    assert reference["run"] == {"kind": "manual", "budget": 3, "seed": 1}
    assert reference["candidate"] == CANDIDATE and reference["activation"] == "relu"
    assert [row["epoch"] for row in reference["epochs"]] == [1, 2, 3]
    assert set(reference["epochs"][0]) == {"epoch", "lr", "train_loss", "train_top1", "val_top1", "test_top1"}
    assert reference["val_top1"] == reference["epochs"][-1]["val_top1"]
    assert 0 <= reference["test_top1"] <= 100


def test_same_command_gives_the_same_metrics(reference, tmp_path):
    subprocess.run(train_cmd(write_config(tmp_path), tmp_path / "run"), check=True)
    assert metrics(tmp_path / "run") == reference
    raw = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert all(row["seconds"] > 0 and row["images_per_second"] > 0 for row in raw["epochs"])


def test_standard_through_the_op_trains_exactly_like_a_plain_network(tmp_path):
    """Common random numbers: phi = (0, 0, 0, 1) at all four places, and mode 0000 (no op anywhere, whatever phi),
    train the same network from the same weights on the same batches, so their metrics are identical (timings
    aside), on the smoke preset."""
    config = [str(ROOT / "config.yaml"), str(ROOT / "presets/smoke.yaml")]
    results = []
    for name, candidate in (("standard", STANDARD), ("plain", {**STANDARD, "mode": "0000"}),
                            ("inactive", {**CANDIDATE, "mode": "0000"})):
        out = tmp_path / name
        assert main(["-q", "train", "--config", *config, "--candidate", json.dumps(candidate), "--budget", "2",
                     "--seed", "1", "--out", str(out)]) == 0
        result = metrics(out)
        del result["candidate"]
        results.append(result)
    assert results[0] == results[1] == results[2]
    assert results[0]["epochs"][0]["train_loss"] != results[0]["epochs"][1]["train_loss"]  # it did train


def test_different_candidates_start_from_identical_weights():
    cfg = validate(TINY)
    first = initial_model(cfg, Candidate.from_dict(CANDIDATE), 3, 10, 1).state_dict()
    second = initial_model(cfg, Candidate.from_dict({**STANDARD, "mode": "1010"}), 3, 10, 1).state_dict()
    other_seed = initial_model(cfg, Candidate.from_dict(CANDIDATE), 4, 10, 1).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not all(torch.equal(first[key], other_seed[key]) for key in first)


def test_a_repeat_with_the_search_seed_reproduces_the_search_run(tmp_path):
    """What the old overlap of search and repeat seeds gave for free: a run's result depends only on its candidate,
    budget and seed, not on what it is for, so rerunning a search's winner with the search's seed reproduces it."""
    cfg, candidate = validate(TINY), Candidate.from_dict(CANDIDATE)
    search = train_candidate(cfg, candidate, RunId("search", 1, 0, "PBLF-BO", 2, 1), tmp_path / "search")
    repeat = train_candidate(cfg, candidate, RunId("repeat", 1, 0, "PBLF-BO"), tmp_path / "repeat")
    assert {**without_timing(search), "run": None} == {**without_timing(repeat), "run": None}


def test_seed_and_candidate_change_the_run(tmp_path):
    cfg = validate(TINY)
    a = train_candidate(cfg, Candidate.from_dict(CANDIDATE), RunId("manual", 1, 0), tmp_path / "a")
    b = train_candidate(cfg, Candidate.from_dict(CANDIDATE), RunId("manual", 1, 1), tmp_path / "b")
    c = train_candidate(cfg, Candidate.from_dict({**CANDIDATE, "mode": "0000"}), RunId("manual", 1, 0), tmp_path / "c")
    assert without_timing(a)["epochs"] != without_timing(b)["epochs"]
    assert without_timing(a)["epochs"] != without_timing(c)["epochs"]


@pytest.mark.parametrize("delay", [0.0, 0.25], ids=["between-epochs", "during-epoch"])
def test_sigkill_then_rerun_gives_the_uninterrupted_metrics(reference, tmp_path, delay):
    config, out = write_config(tmp_path), tmp_path / "run"
    proc = subprocess.Popen(train_cmd(config, out))
    wait_for(out / "checkpoint.pt")  # epoch 1 finished
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists(), "the run finished before it could be killed"
    subprocess.run(train_cmd(config, out), check=True)
    assert metrics(out) == reference


def test_sigterm_saves_mid_epoch_and_resumes_exactly(reference, tmp_path):
    config, out = write_config(tmp_path), tmp_path / "run"
    proc = subprocess.Popen(train_cmd(config, out), stderr=subprocess.PIPE, text=True)
    wait_for(out / "checkpoint.pt")
    mtime = os.stat(out / "checkpoint.pt").st_mtime_ns
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PREEMPTED, stderr
    assert "preempted" in stderr
    assert os.stat(out / "checkpoint.pt").st_mtime_ns != mtime, "no checkpoint was written on SIGTERM"
    subprocess.run(train_cmd(config, out), check=True)
    assert metrics(out) == reference


def test_a_second_train_of_a_run_folder_refuses_while_the_first_trains_on(reference, tmp_path):
    """Two `pblf train` on one run folder: the second refuses at once, in one line naming the first's pid, with exit
    status 2; the first (paused meanwhile, so that it cannot end first) then ends as if alone, and leaves neither
    its lock file nor a temporary in the folder."""
    config, out = write_config(tmp_path), tmp_path / "run"
    first = subprocess.Popen(train_cmd(config, out))
    wait_for(out / LOCK, f"{first.pid}\n")
    first.send_signal(signal.SIGSTOP)
    try:
        second = subprocess.run(train_cmd(config, out), capture_output=True, text=True)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2
    refusal = (f"pblf train: error: {out} is being trained by another process (pid {first.pid}, lock file "
               f"{out / LOCK}): wait for it to finish or stop it")
    assert second.stderr.splitlines() == [refusal]
    assert first.wait() == 0
    assert metrics(out) == reference
    assert [child.name for child in out.iterdir() if child.name.startswith(".")] == []  # no lock, no temporary


def test_diverging_candidate_ends_with_status_diverged_and_exit_0(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(train_cmd(write_config(tmp_path, lr=1e12), out), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "metrics.json").read_text())
    assert result["status"] == "diverged"
    assert result["diverged_at"]["epoch"] == 1
    assert 0 <= result["val_top1"] <= 100 and 0 <= result["test_top1"] <= 100


def test_stale_checkpoint_of_another_candidate_is_ignored(reference, tmp_path):
    config, out = write_config(tmp_path), tmp_path / "run"
    other = train_cmd(config, out, budget=1)
    other[other.index("--candidate") + 1] = json.dumps({**CANDIDATE, "w1": 0.9})
    subprocess.run(other, check=True)
    (out / "metrics.json").unlink()
    subprocess.run(train_cmd(config, out), check=True)
    assert metrics(out) == reference


def test_bad_candidate_is_a_clear_error(tmp_path):
    cmd = train_cmd(write_config(tmp_path), tmp_path / "run")
    cmd[cmd.index("--candidate") + 1] = '{"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "12"}'
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "mode '12' must be four bits" in proc.stderr


@pytest.mark.parametrize("compiled", [False, True])
def test_determinism_is_set_without_importing_inductor_unless_compiling(compiled):
    """An eager job skips the ~2.7 s import of torch._inductor that torch.use_deterministic_algorithms costs, and
    still gets deterministic kernels; a compiled one sets Inductor's flag too (run in a fresh interpreter)."""
    code = ("import sys, torch; from pblf.training.train import set_determinism; "
            f"set_determinism(True, compiled={compiled}); "
            "print(torch.are_deterministic_algorithms_enabled(), 'torch._inductor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", str(compiled)]
