"""Learning-rate schedules: hand-worked values, PyTorch's OneCycleLR step for step, shape properties, and the
schedule a training run actually follows."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pblf.core.candidate import Candidate
from pblf.core.config import allowed, validate
from pblf.core.layout import RunId
from pblf.training.schedule import SCHEDULES, learning_rate
from pblf.training.train import train_candidate


def train_cfg(**keys) -> dict:
    return validate({"train": keys})["train"]


def test_step_decays_at_the_wrn_milestones():
    cfg = train_cfg()
    lrs = [learning_rate(cfg, 100, step) for step in (0, 29, 30, 59, 60, 79, 80, 99)]
    assert lrs == pytest.approx([0.1, 0.1, 0.02, 0.02, 0.004, 0.004, 0.0008, 0.0008])


def test_warmup_then_cosine_or_linear_by_hand():
    """20 steps, a quarter of them warm-up: 0.02, 0.04, ..., 0.1, then from 0.1 over the 15 steps left; at step 10
    a third of the decay is done: cosine 0.1 * (1 + cos(pi / 3)) / 2 = 0.075, linear 0.1 * 2 / 3."""
    cosine, linear = train_cfg(lr_schedule="warmup_cosine", lr_warmup=0.25), \
        train_cfg(lr_schedule="warmup_linear", lr_warmup=0.25)
    for cfg in (cosine, linear):
        assert [learning_rate(cfg, 20, step) for step in range(6)] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1, 0.1])
    assert learning_rate(cosine, 20, 10) == pytest.approx(0.075)
    assert learning_rate(linear, 20, 10) == pytest.approx(0.1 * 2 / 3)
    assert learning_rate(linear, 20, 19) == pytest.approx(0.1 / 15)  # one step short of zero
    no_warmup = train_cfg(lr_schedule="warmup_cosine", lr_warmup=0)
    assert learning_rate(no_warmup, 20, 0) == pytest.approx(0.1)


def test_a_gradual_warmup_scales_any_schedule_by_hand():
    """Over 4 of 16 steps from a quarter of the schedule's rate to all of it: factors 0.25, 0.4375, 0.625, 0.8125,
    then 1; on the step schedule (0.4 until its first milestone at step 4.8) that is 0.1, 0.175, 0.25, 0.325, 0.4."""
    cfg = train_cfg(lr=0.4, gradual_warmup={"fraction": 0.25, "start_factor": 0.25})
    assert [learning_rate(cfg, 16, step) for step in range(6)] == pytest.approx([0.1, 0.175, 0.25, 0.325, 0.4, 0.08])
    cosine = train_cfg(lr=0.4, lr_schedule="warmup_cosine", lr_warmup=0.25,
                       gradual_warmup={"fraction": 0.25, "start_factor": 0.25})
    assert learning_rate(cosine, 16, 1) == pytest.approx(0.2 * 0.4375)  # the schedule's own warm-up, times 0.4375
    assert learning_rate(train_cfg(lr=0.4), 16, 0) == pytest.approx(0.4)  # off by default


@pytest.mark.parametrize("total", [4, 20, 351])
@pytest.mark.parametrize("rise", [0.3, 0.5, 0.9])
def test_onecycle_is_pytorchs_onecyclelr_step_for_step(total, rise):
    cfg = train_cfg(lr_schedule="onecycle", lr=0.4, onecycle_rise=rise, onecycle_div=10, onecycle_final_div=100)
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.4, momentum=0.9)
    reference = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.4, total_steps=total, pct_start=rise,
                                                    div_factor=10, final_div_factor=100, cycle_momentum=False)
    expected = [optimizer.param_groups[0]["lr"]]
    for _ in range(total - 1):
        optimizer.step()
        reference.step()
        expected.append(optimizer.param_groups[0]["lr"])
    assert [learning_rate(cfg, total, step) for step in range(total)] == pytest.approx(expected, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(schedule=st.sampled_from(SCHEDULES), total=st.integers(1, 5000), fraction=st.floats(0.01, 0.9))
def test_every_schedule_stays_within_zero_and_lr_and_rises_then_falls(schedule, total, fraction):
    cfg = train_cfg(lr_schedule=schedule, lr=0.1, lr_warmup=fraction, onecycle_rise=fraction)
    lrs = [learning_rate(cfg, total, step) for step in range(total)]
    assert all(0 < lr <= 0.1 * (1 + 1e-12) and math.isfinite(lr) for lr in lrs)
    peak = lrs.index(max(lrs))
    assert all(a <= b * (1 + 1e-12) for a, b in zip(lrs[:peak], lrs[1:peak + 1]))  # never falls before the peak
    assert all(a >= b * (1 - 1e-12) for a, b in zip(lrs[peak:], lrs[peak + 1:]))  # never rises after it


def test_every_schedule_the_schema_allows_is_implemented():
    assert SCHEDULES == allowed("train.lr_schedule") and validate({})["train"]["lr_schedule"] == "step"
    for schedule in SCHEDULES:
        assert learning_rate(train_cfg(lr_schedule=schedule), 10, 3) > 0
    with pytest.raises(ValueError, match="train.lr_schedule 'cyclic' must be one of step"):
        learning_rate({**train_cfg(), "lr_schedule": "cyclic"}, 10, 3)


def test_a_run_follows_its_schedule(tmp_path):
    """Each epoch row records the learning rate of its first step: the schedule's, at that step."""
    cfg = validate({
        "device": "cpu",
        "data": {"dataset": "digits", "subset": 200, "augment": {"crop_padding": 1, "hflip": False}},
        "model": {"depth": 10, "widen_factor": 1, "base_width": 2},
        "train": {"batch_size": 32, "eval_batch_size": 256, "lr_schedule": "warmup_cosine", "lr_warmup": 0.4},
    })
    standard = Candidate.from_dict({"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"})
    metrics = train_candidate(cfg, standard, RunId("manual", 3, 1), tmp_path / "run")
    steps = math.ceil(180 / 32)  # 200 images less the 10 % validation split, in batches of 32
    assert [row["lr"] for row in metrics["epochs"]] == pytest.approx(
        [learning_rate(cfg["train"], 3 * steps, epoch * steps) for epoch in range(3)])
    assert metrics["epochs"][0]["lr"] < metrics["epochs"][1]["lr"]  # still warming up at the first epoch's start
