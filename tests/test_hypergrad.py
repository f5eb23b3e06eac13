"""PBLF-HG's core: the hypergradient is the derivative of the look-ahead validation loss, it leaves no trace, and the
updater it drives is exact at hyper_lr = 0, keeps phi inside the box and resumes bit for bit.

Everything runs a tiny WRN-10-1 (base width 2) on 8x8 grey images with batches of 8, on the CPU, in one thread:
for tensors this small a second thread only adds synchronisation (10x slower on a busy machine).
"""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F

from pblf.core.candidate import Candidate
from pblf.training.data import DeviceSplit, ImageSet, Normalisation
from pblf.training.hypergrad import (
    GATE_LIMIT,
    PHI_STEP,
    TRAJECTORY_FIELDS,
    HypergradientUpdater,
    MetaParameters,
    RelaxedMetaDerivative,
    ValidationStream,
    hypergradient,
    lookahead_val_loss,
    relaxed_meta_derivative,
    u_limit,
)
from pblf.training.metanet import MetaDerivative, meta_derivative
from pblf.training.model import WideResNet

CANDIDATE = Candidate(0.7, -0.4, -0.2, 0.3, mode="1010")
BATCH = 8
LR = 0.1
#: Central differences in float64: the truncation error is O(step^2) ~ 1e-12 and the rounding error
#: ~ 1e-16 * L / step ~ 1e-10, against hypergradient entries of 1e-4..1e-2.
FD_STEP = 1e-6
FD_RTOL, FD_ATOL = 1e-5, 1e-9


def tiny_wrn(candidate: Candidate | None, dtype: torch.dtype = torch.float32, activation: str = "relu") -> WideResNet:
    torch.manual_seed(0)
    return WideResNet(10, 1, num_classes=10, in_channels=1, base_width=2, candidate=candidate,
                      activation=activation).to(dtype)


def batches(count: int, seed: int, dtype: torch.dtype = torch.float32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(BATCH, 1, 8, 8, generator=generator, dtype=dtype),
             torch.randint(0, 10, (BATCH,), generator=generator)) for _ in range(count)]


def validation_split(size: int = 20) -> DeviceSplit:
    generator = torch.Generator().manual_seed(7)
    images = ImageSet(torch.randint(0, 256, (size, 1, 8, 8), generator=generator, dtype=torch.uint8),
                      torch.randint(0, 10, (size,), generator=generator))
    return DeviceSplit(images, Normalisation((0.5,), (0.25,)), None, torch.device("cpu"))


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------- (a)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_hypergradient_equals_central_differences_of_the_lookahead_validation_loss(activation: str) -> None:
    model = tiny_wrn(None, torch.float64, activation)
    params = MetaParameters.from_candidate(CANDIDATE, activation=activation)
    (train,), (val,) = batches(1, 1, torch.float64), batches(1, 2, torch.float64)
    result = hypergradient(model, params, train, val, LR)
    assert result.val_loss == lookahead_val_loss(model, params, train, val, LR)
    for tensor, analytic in zip(params.tensors(), (result.u, result.gate_logits)):
        numeric = torch.empty_like(analytic)
        for i in range(len(tensor)):
            with torch.no_grad():
                tensor[i] += FD_STEP
            plus = lookahead_val_loss(model, params, train, val, LR)
            with torch.no_grad():
                tensor[i] -= 2 * FD_STEP
            minus = lookahead_val_loss(model, params, train, val, LR)
            with torch.no_grad():
                tensor[i] += FD_STEP
            numeric[i] = (plus - minus) / (2 * FD_STEP)
        torch.testing.assert_close(analytic, numeric, rtol=FD_RTOL, atol=FD_ATOL)
        assert analytic.abs().max() > 1e-4  # a real signal, not 0 == 0


def test_relaxed_op_is_grad_times_the_gate_mixture_and_exact_at_the_ends() -> None:
    generator = torch.Generator().manual_seed(3)
    h = 3 * torch.randn(2, 3, 4, 4, generator=generator)
    grad = torch.randn(h.shape, generator=generator)
    phi = torch.tensor(CANDIDATE.phi)

    def backward(gate: float) -> torch.Tensor:
        x = h.clone().requires_grad_()
        return torch.autograd.grad(relaxed_meta_derivative(x, phi, torch.tensor(gate), "relu"), x, grad)[0]

    x = h.clone().requires_grad_()
    ordinary = torch.autograd.grad(meta_derivative(x, phi, "relu"), x, grad)[0]
    assert torch.equal(backward(1.0), ordinary)
    assert torch.equal(backward(0.0), grad)
    w1, w2, b1, b2 = CANDIDATE.phi
    expected = grad * (0.3 * (w2 * torch.relu(w1 * h + b1) + b2) + 0.7)
    torch.testing.assert_close(backward(0.3), expected)


# ------------------------------------------------------------------------------------------------- (b)


def train_loop(model: WideResNet, data: list, updater: HypergradientUpdater | None = None,
               optimizer: torch.optim.Optimizer | None = None) -> tuple[list[float], torch.optim.Optimizer]:
    """train.py's step, in miniature: the updater before the forward, then SGD with Nesterov and weight decay."""
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True,
                                             weight_decay=5e-4)
    losses = []
    for images, labels in data:
        if updater is not None:
            updater.before_step(model, images, labels, LR)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, optimizer


def test_zero_hyper_lr_trains_bit_for_bit_like_the_fixed_candidate() -> None:
    data = batches(7, 4)
    fixed = tiny_wrn(CANDIDATE)
    expected, _ = train_loop(fixed, data)

    model = tiny_wrn(CANDIDATE)
    updater = HypergradientUpdater(CANDIDATE, ValidationStream(validation_split(), BATCH, seed=5), hyper_lr=0.0,
                                   interval=2)
    updater.attach(model)
    assert all(isinstance(m, (MetaDerivative, torch.nn.Identity)) for m in model.metanet)
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    losses, _ = train_loop(model, data, updater)

    assert updater.hyper_steps == 3  # before steps 2, 4 and 6: the hypergradient was really taken, and followed by 0
    assert [row["step"] for row in updater.trajectory] == [0, 2, 4, 6]
    assert losses == expected
    assert_same_state(snapshot(model), snapshot(fixed))
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert updater.candidate() == CANDIDATE


def test_positive_hyper_lr_trains_with_the_relaxation_and_moves_phi() -> None:
    model = tiny_wrn(CANDIDATE)
    updater = HypergradientUpdater(CANDIDATE, ValidationStream(validation_split(), BATCH, seed=5), hyper_lr=0.05,
                                   interval=1)
    updater.attach(model)
    assert all(isinstance(m, RelaxedMetaDerivative) for m in model.metanet)
    assert list(snapshot(model)) == list(tiny_wrn(None).state_dict())
    train_loop(model, batches(3, 4), updater)
    assert updater.params.u.grad is None and updater.params.gate_logits.grad is None
    rows = updater.trajectory
    assert [row["step"] for row in rows] == [0, 1, 2] and list(rows[0]) == list(TRAJECTORY_FIELDS)
    assert rows[-1] != rows[0]
    assert updater.last is not None and math.isfinite(updater.last["hypergradient_norm"])


def test_a_non_finite_hypergradient_is_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    import pblf.training.hypergrad as hg

    model = tiny_wrn(None)
    updater = HypergradientUpdater(CANDIDATE, hyper_lr=0.05, interval=1)
    updater.attach(model)
    nan = torch.full((4,), float("nan"), dtype=torch.float64)
    monkeypatch.setattr(hg, "hypergradient", lambda *args: hg.Hypergradient(nan, nan.clone(), 1.0, float("nan")))
    start = updater.params.u.detach().clone()
    (images, labels), val = batches(1, 14)[0], batches(1, 15)[0]
    updater.before_step(model, images, labels, LR)
    record = updater.before_step(model, images, labels, LR, val_batch=val)
    assert record is not None and record["skipped"]
    assert torch.equal(updater.params.u, start) and torch.isfinite(updater.params.gate_logits).all()


# ------------------------------------------------------------------------------------------------- (c)


def test_hypergradient_leaves_weights_buffers_modules_and_random_state_unchanged() -> None:
    model = tiny_wrn(CANDIDATE)
    train_loop(model, batches(2, 8))  # non-trivial running statistics and momentum
    model.zero_grad(set_to_none=True)
    model.bn.eval()  # a mixed train/eval state must come back as it was
    before = snapshot(model)
    modules = list(model.metanet)
    flags = [m.training for m in model.modules()]
    torch.manual_seed(99)
    rng = torch.get_rng_state()
    params = MetaParameters.from_candidate(CANDIDATE)
    (train,), (val,) = batches(1, 9), batches(1, 10)
    hypergradient(model, params, train, val, LR)
    assert_same_state(snapshot(model), before)
    assert all(p.grad is None for p in model.parameters())
    assert list(model.metanet) == modules
    assert [m.training for m in model.modules()] == flags
    assert torch.equal(torch.get_rng_state(), rng)
    assert params.u.grad is None and params.gate_logits.grad is None


# ------------------------------------------------------------------------------------------------- (d)


def test_phi_stays_strictly_inside_the_bound_after_many_large_steps() -> None:
    bound = 1.0
    start = Candidate(0.999999, -0.999999, 0.5, 1.0, mode="1111")  # b2 = 1 is Standard's, on the boundary
    model = tiny_wrn(None)
    updater = HypergradientUpdater(start, hyper_lr=20.0, interval=1, bound=bound)
    updater.attach(model)
    val = batches(1, 11)[0]
    for images, labels in batches(25, 12):
        updater.before_step(model, images, labels, 1.0, val_batch=val)
        phi = updater.params.phi().detach()
        assert (phi.abs() < bound).all() and (phi.float().abs() < bound).all()
        assert all(abs(v) < bound for v in updater.candidate().phi)
        assert (updater.params.u.abs() <= u_limit(bound)).all()
        assert (updater.params.gate_logits.abs() <= GATE_LIMIT).all()
    assert max(abs(v) for v in updater.phi) > 0.99  # the steps were large enough to reach the edge
    # however far u is pushed, phi is not rounded onto the bound
    far = MetaParameters(torch.tensor([1e6, -1e6, 40.0, -40.0], dtype=torch.float64), torch.zeros(4), bound)
    assert far.candidate().phi == (bound - PHI_STEP, -(bound - PHI_STEP), bound - PHI_STEP, -(bound - PHI_STEP))
    assert (far.phi().float().abs() < bound).all()


def test_candidate_converts_to_alpha_and_back() -> None:
    for candidate in (CANDIDATE, Candidate(-0.123456, 0.999999, 0.0, -0.5, mode="0001")):
        params = MetaParameters.from_candidate(candidate)
        assert params.candidate() == candidate
        assert [g > 0.5 for g in params.gate_values()] == [bit == "1" for bit in candidate.mode]
    standard = MetaParameters.from_candidate(Candidate(0, 0, 0, 1, mode="1111")).candidate()
    assert standard == Candidate(0, 0, 0, 1 - PHI_STEP, mode="1111")


# ------------------------------------------------------------------------------------------------- (e)


def checkpoint(model, optimizer, updater) -> dict:
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "updater": updater.state_dict()}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def fresh(hyper_lr: float) -> tuple[WideResNet, HypergradientUpdater]:
    model = tiny_wrn(CANDIDATE)
    updater = HypergradientUpdater(CANDIDATE, ValidationStream(validation_split(), BATCH, seed=5),
                                   hyper_lr=hyper_lr, interval=2)
    updater.attach(model)
    return model, updater


def test_save_and_restore_round_trips_exactly_and_a_resumed_run_continues_bit_for_bit() -> None:
    data = batches(10, 13)
    model, updater = fresh(0.05)
    losses, _ = train_loop(model, data, updater)

    first_model, first = fresh(0.05)
    first_losses, optimizer = train_loop(first_model, data[:5], first)  # a kill after step 5, mid-way between updates
    saved = checkpoint(first_model, optimizer, first)
    resumed_model, resumed = fresh(0.05)
    resumed_optimizer = torch.optim.SGD(resumed_model.parameters(), lr=LR, momentum=0.9, nesterov=True,
                                        weight_decay=5e-4)
    resumed_model.load_state_dict(saved["model"])
    resumed_optimizer.load_state_dict(saved["optimizer"])
    resumed.load_state_dict(saved["updater"])

    again = resumed.state_dict()
    for key, value in first.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(again[key], value), key
        elif key not in ("optimizer", "validation"):
            assert again[key] == value, key
    assert str(again["optimizer"]) == str(first.state_dict()["optimizer"])

    rest, _ = train_loop(resumed_model, data[5:], resumed, resumed_optimizer)
    assert first_losses + rest == losses
    assert_same_state(snapshot(resumed_model), snapshot(model))
    assert resumed.trajectory == updater.trajectory and resumed.candidate() == updater.candidate()
    assert torch.equal(resumed.params.u, updater.params.u)
    assert torch.equal(resumed.params.gate_logits, updater.params.gate_logits)


def test_zero_hyper_lr_refuses_a_model_built_for_another_candidate() -> None:
    updater = HypergradientUpdater(CANDIDATE, hyper_lr=0.0)
    for candidate in (None, Candidate(0.7, -0.4, -0.2, 0.3, mode="1011"), Candidate(0.7, -0.4, -0.2, 0.31, "1010")):
        with pytest.raises(ValueError, match="start candidate"):
            updater.attach(tiny_wrn(candidate))


def test_restore_refuses_other_settings() -> None:
    _, updater = fresh(0.05)
    _, other = fresh(0.01)
    with pytest.raises(ValueError, match="settings"):
        other.load_state_dict(updater.state_dict())


def test_validation_stream_skips_partial_batches_and_resumes_mid_pass() -> None:
    stream = ValidationStream(validation_split(20), BATCH, seed=1)
    served = [stream.next() for _ in range(3)]  # 20 images: two full batches per pass, the 4 left over skipped
    assert all(len(labels) == BATCH for _, labels in served)
    state = stream.state_dict()
    copy = ValidationStream(validation_split(20), BATCH, seed=1)
    copy.load_state_dict(state)
    for _ in range(4):
        (a, la), (b, lb) = stream.next(), copy.next()
        assert torch.equal(a, b) and torch.equal(la, lb)
