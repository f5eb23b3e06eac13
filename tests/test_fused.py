"""A pack of K runs in one fused network (pblf.training.fused) against K separate runs from the same weights and batches.

Tiny WRN-10-1 (base width 2) on 16x16 grey images, batch 8, three members: Standard (phi = (0, 0, 0, 1), mode 1111),
a candidate in mode 0000 (a plain network) and a non-trivial phi in mode 1011.

Fused and separate runs compute the same sums in different orders: a grouped conv and a BatchNorm over K*C channels
round differently from their standalone counterparts (the stem conv, the batched classifier and the meta-network op
give the same bits). Measured on a 2-core x86 CPU, torch 2.14, 1 and 2 threads, largest absolute differences:

    quantity                              float32              float64
    logits, train / eval mode             1.2e-7 / 1.8e-7      4.4e-16
    losses over 5 SGD steps (20 steps)    2.4e-7 (4.8e-7)      4.4e-16 (8.9e-16)
    weights after 5 steps (20 steps)      1.2e-7 (3.6e-7)      4.4e-16 (6.7e-16)
    momentum buffers after 5 steps        1.4e-7               1.2e-16

i.e. one to a few ulps, and float64 shrinks them by 2^29 as float32's rounding does: rounding, not a bug. The
tolerances below leave a factor of 40 to 100 for other machines and thread counts; a bug (a member reading another's
slice, a wrong sigma') gives differences of order 1e-3 and more (the non-trivial candidate's losses differ from
Standard's by more than that after a few steps).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pblf.core.candidate import Candidate
from pblf.training.fused import FusedMetaDerivative, FusedWideResNet, fuse_state_dicts, load_model_weights, model_state_dict
from pblf.training.metanet import meta_derivative
from pblf.training.model import WideResNet
from pblf.training.pack import ExactPack, FusedPack, make_pack, pack_losses

STANDARD = Candidate(0.0, 0.0, 0.0, 1.0, mode="1111")
PLAIN_MODE = Candidate(0.3, -0.5, 0.1, 0.7, mode="0000")
NONTRIVIAL = Candidate(0.7, -0.4, -0.2, 0.3, mode="1011")
STEM_ZERO = Candidate(0.0, 0.0, 0.0, 0.0, mode="1000")
CANDIDATES = [STANDARD, PLAIN_MODE, NONTRIVIAL]
SGD = dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
#: absolute tolerance for fused vs separate runs, per dtype (measured worst cases in the module docstring)
TOLERANCE = {torch.float32: 2e-5, torch.float64: 1e-13}


def tiny_models(candidates: list[Candidate | None], dtype: torch.dtype = torch.float32) -> list[WideResNet]:
    """One network per candidate, all with the initial weights of one seed (common random numbers)."""
    models = []
    for candidate in candidates:
        torch.manual_seed(0)
        models.append(WideResNet(10, 1, num_classes=10, in_channels=1, base_width=2, candidate=candidate).to(dtype))
    return models


def batches(steps: int, dtype: torch.dtype = torch.float32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 1, 16, 16, generator=generator, dtype=dtype),
             torch.randint(0, 10, (8,), generator=generator)) for _ in range(steps)]


def separate_runs(candidates: list[Candidate | None], data: list[tuple[torch.Tensor, torch.Tensor]],
                  dtype: torch.dtype = torch.float32) -> tuple[list[WideResNet], list[torch.optim.SGD], torch.Tensor]:
    """K runs, each on its own, stepped as pblf.training.train._train_epoch steps; losses of shape (steps, K)."""
    models = tiny_models(candidates, dtype)
    optimizers = [torch.optim.SGD(model.parameters(), **SGD) for model in models]
    losses = torch.zeros(len(data), len(models), dtype=dtype)
    for k, (model, optimizer) in enumerate(zip(models, optimizers, strict=True)):
        for step, (images, labels) in enumerate(data):
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses[step, k] = loss.detach()
    return models, optimizers, losses


def max_weight_difference(pack: FusedPack | ExactPack, models: list[WideResNet]) -> float:
    worst = 0.0
    for k, model in enumerate(models):
        got = pack.model_state_dict(k)
        for name, value in model.state_dict().items():
            worst = max(worst, float((got[name].double() - value.double()).abs().max()))
    return worst


# ------------------------------------------------------------------------------------------------------ the op


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_fused_op_gives_each_slice_its_own_sigma_prime_bit_for_bit(memory_format: torch.memory_format) -> None:
    phis = [STANDARD.phi, None, NONTRIVIAL.phi]
    op = FusedMetaDerivative(phis, "tanh")
    generator = torch.Generator().manual_seed(0)
    h = (3 * torch.randn(4, 3 * 5, 6, 6, generator=generator)).to(memory_format=memory_format).requires_grad_()
    g = torch.randn(h.shape, generator=generator)
    y = op(h)
    assert torch.equal(y, h)
    grad = torch.autograd.grad(y, h, g)[0]
    for k, (h_k, g_k, grad_k) in enumerate(zip(h.detach().chunk(3, 1), g.chunk(3, 1), grad.chunk(3, 1))):
        if phis[k] is None:
            assert torch.equal(grad_k, g_k)
        else:
            h_k = h_k.clone().requires_grad_()
            expected = torch.autograd.grad(meta_derivative(h_k, torch.tensor(phis[k]), "tanh"), h_k, g_k)[0]
            assert torch.equal(grad_k, expected), k
    assert op.state_dict() == {}


def test_fused_op_computes_sigma_prime_in_float32_under_bf16_autocast() -> None:
    generator = torch.Generator().manual_seed(1)
    h = (3 * torch.randn(2, 2 * 4, 5, 5, generator=generator)).bfloat16().requires_grad_()
    g = torch.randn(h.shape, generator=generator).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = FusedMetaDerivative([NONTRIVIAL.phi, PLAIN_MODE.phi], "relu")(h)
    grad = torch.autograd.grad(y, h, g)[0]
    assert grad.dtype == torch.bfloat16
    for k in range(2):
        h_k = h.detach().chunk(2, 1)[k].clone().requires_grad_()
        phi = torch.tensor((NONTRIVIAL, PLAIN_MODE)[k].phi)
        expected = torch.autograd.grad(meta_derivative(h_k, phi, "relu"), h_k, g.chunk(2, 1)[k])[0]
        assert torch.equal(grad.chunk(2, 1)[k], expected)


# ------------------------------------------------------------------------------------------ (a) the forward pass


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_forward_gives_each_models_logits(dtype: torch.dtype) -> None:
    models = tiny_models([STANDARD, PLAIN_MODE, NONTRIVIAL, None], dtype)
    fused = FusedWideResNet.from_models(models)
    images, _ = batches(1, dtype)[0]
    for mode in (True, False):  # batch statistics, then the running statistics
        fused.train(mode)
        for model in models:
            model.train(mode)
        with torch.no_grad():
            logits = fused(images)
            assert logits.shape == (8, 4, 10)
            for k, model in enumerate(models):
                assert torch.allclose(logits[:, k], model(images), rtol=0, atol=TOLERANCE[dtype]), k


# ----------------------------------------------------------------------------------------------- (b) SGD steps


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_sgd_steps_equal_separate_runs(dtype: torch.dtype) -> None:
    data = batches(5, dtype)
    models, optimizers, losses = separate_runs(CANDIDATES, data, dtype)
    pack = make_pack("fused", tiny_models(CANDIDATES, dtype), **SGD)
    for step, (images, labels) in enumerate(data):
        result = pack.step(images, labels)
        assert result.diverged == [] and result.logits.shape == (8, 3, 10)
        assert torch.allclose(result.losses, losses[step], rtol=0, atol=TOLERANCE[dtype]), step
    assert max_weight_difference(pack, models) < TOLERANCE[dtype]
    # Standard is the plain network bit for bit; the non-trivial phi trains differently
    assert torch.equal(losses[:, 0], losses[:, 1])
    assert float((losses[:, 2] - losses[:, 0]).abs().max()) > 1e-3
    for k, optimizer in enumerate(optimizers):
        got = pack.optimizer_state_dict(k)
        want = optimizer.state_dict()
        assert got["param_groups"] == want["param_groups"]
        for index, entry in want["state"].items():
            assert torch.allclose(got["state"][index]["momentum_buffer"], entry["momentum_buffer"], rtol=0,
                                  atol=TOLERANCE[dtype])


# ---------------------------------------------------------------------------------------------- (c) exact mode


def test_exact_pack_is_bit_identical_to_separate_runs() -> None:
    data = batches(4)
    models, optimizers, losses = separate_runs(CANDIDATES, data)
    pack = make_pack("exact", tiny_models(CANDIDATES), **SGD)
    for step, (images, labels) in enumerate(data):
        assert torch.equal(pack.step(images, labels).losses, losses[step])
    for k, (model, optimizer) in enumerate(zip(models, optimizers, strict=True)):
        for name, value in model.state_dict().items():
            assert torch.equal(pack.model_state_dict(k)[name], value), (k, name)
        for index, entry in optimizer.state_dict()["state"].items():
            assert torch.equal(pack.optimizer_state_dict(k)["state"][index]["momentum_buffer"],
                               entry["momentum_buffer"])


def test_fused_and_exact_packs_share_one_interface() -> None:
    data = batches(2)
    packs = {kind: make_pack(kind, tiny_models(CANDIDATES), **SGD) for kind in ("fused", "exact")}
    for pack in packs.values():
        pack.set_lr(0.05)
        for images, labels in data:
            pack.step(images, labels)
    accuracies = {kind: pack.accuracy(data) for kind, pack in packs.items()}
    assert accuracies["fused"] == accuracies["exact"]
    assert all(0 <= a <= 100 for a in accuracies["fused"])
    exact_models = [packs["exact"].standalone(k) for k in range(3)]
    assert max_weight_difference(packs["fused"], exact_models) < TOLERANCE[torch.float32]
    assert all(group["lr"] == 0.05 for group in packs["fused"].optimizer_state_dict(0)["param_groups"])
    with pytest.raises(ValueError, match="unknown pack kind"):
        make_pack("sideways", tiny_models(CANDIDATES), **SGD)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- (d) state round trips


def test_model_state_dict_round_trips_and_loads_into_a_standalone_network() -> None:
    models = tiny_models(CANDIDATES + [None])
    for model, (images, _) in zip(models, batches(4), strict=True):
        model(images)  # different running statistics for each member
    fused = FusedWideResNet.from_models(models)
    assert set(fused.state_dict()) == set(models[0].state_dict())
    for k, model in enumerate(models):
        state = model_state_dict(fused, k)
        assert list(state) == list(model.state_dict())
        for name, value in model.state_dict().items():
            assert torch.equal(state[name], value), name
            assert state[name].untyped_storage().nbytes() == value.untyped_storage().nbytes(), name  # a copy
        fresh = WideResNet(10, 1, num_classes=10, in_channels=1, base_width=2)
        fresh.load_state_dict(state)
        member = fused.member(k)
        assert [type(op) for op in member.metanet] == [type(op) for op in model.metanet]
        for mine, theirs in zip(member.metanet, model.metanet, strict=True):
            assert torch.equal(getattr(mine, "phi", torch.zeros(1)), getattr(theirs, "phi", torch.zeros(1)))
    load_model_weights(fused, [model.state_dict() for model in reversed(models)])
    assert torch.equal(model_state_dict(fused, 0)["fc.weight"], models[-1].state_dict()["fc.weight"])


def test_members_must_have_taken_the_same_steps() -> None:
    models = tiny_models([STANDARD, NONTRIVIAL])
    models[1](batches(1)[0][0])  # one more forward pass in train mode: num_batches_tracked 1 against 0
    with pytest.raises(ValueError, match="num_batches_tracked"):
        fuse_state_dicts([model.state_dict() for model in models])
    other = WideResNet(10, 2, num_classes=10, in_channels=1, base_width=2)
    with pytest.raises(ValueError, match="one architecture"):
        FusedWideResNet.from_models([models[0], other])


def test_a_pack_resumed_from_per_run_checkpoints_continues_bit_for_bit() -> None:
    data = batches(6)
    pack = make_pack("fused", tiny_models(CANDIDATES), **SGD)
    for images, labels in data[:3]:
        pack.step(images, labels)
    # each run writes its own checkpoint; a new process builds the pack from the K checkpoints
    checkpoints = [(pack.model_state_dict(k), pack.optimizer_state_dict(k)) for k in range(3)]
    models = tiny_models(CANDIDATES)
    for model, (state, _) in zip(models, checkpoints, strict=True):
        model.load_state_dict(state)
    resumed = make_pack("fused", models, [optimizer for _, optimizer in checkpoints], **SGD)
    for images, labels in data[3:]:
        assert torch.equal(resumed.step(images, labels).losses, pack.step(images, labels).losses)
    for k in range(3):
        for name, value in pack.model_state_dict(k).items():
            assert torch.equal(resumed.model_state_dict(k)[name], value), name
    # and a member's checkpoint is a standalone run's checkpoint: a standalone optimiser loads it
    standalone = tiny_models([NONTRIVIAL])[0]
    standalone.load_state_dict(pack.model_state_dict(2))
    torch.optim.SGD(standalone.parameters(), **SGD).load_state_dict(pack.optimizer_state_dict(2))


# ------------------------------------------------------------------------------------------- (e) isolation


def member_gradients(pack: FusedPack, images: torch.Tensor, labels: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    pack.network.zero_grad()
    pack_losses(pack.network(images), labels).sum().backward()
    grads = {name: p.grad for name, p in pack.network.named_parameters()}
    return [{name: g.chunk(pack.size)[k] for name, g in grads.items()} for k in range(pack.size)]


def test_phi_of_one_member_never_changes_another_members_gradients() -> None:
    images, labels = batches(1, torch.float64)[0]
    pack = FusedPack(tiny_models([STANDARD, STEM_ZERO, NONTRIVIAL], torch.float64), **SGD)
    grads = member_gradients(pack, images, labels)
    assert torch.count_nonzero(grads[1]["stem.weight"]) == 0
    assert torch.count_nonzero(grads[0]["stem.weight"]) > 0 and torch.count_nonzero(grads[2]["stem.weight"]) > 0
    # each member's gradients are those of its own network alone ...
    for k, model in enumerate(tiny_models([STANDARD, STEM_ZERO, NONTRIVIAL], torch.float64)):
        F.cross_entropy(model(images), labels).backward()
        for name, p in model.named_parameters():
            assert torch.allclose(grads[k][name], p.grad, rtol=0, atol=1e-13), (k, name)
    # ... and do not move, not by one bit, when the other members' candidates change
    other = FusedPack(tiny_models([STANDARD, NONTRIVIAL, PLAIN_MODE], torch.float64), **SGD)
    for name, grad in member_gradients(other, images, labels)[0].items():
        assert torch.equal(grad, grads[0][name]), name


def test_a_diverging_member_stops_like_its_single_run_and_leaves_the_others_alone() -> None:
    data = batches(4)
    packs = {kind: make_pack(kind, tiny_models(CANDIDATES), **SGD) for kind in ("fused", "exact")}
    for pack in packs.values():
        pack.step(*data[0])
        with torch.no_grad():  # member 1's classifier overflows: its next loss is NaN
            if isinstance(pack, FusedPack):
                pack.network.fc.bias[10] = float("inf")
            else:
                pack.standalone(1).fc.bias[0] = float("inf")
    before = packs["exact"].model_state_dict(1)["stem.weight"].clone()
    results = {kind: pack.step(*data[1]) for kind, pack in packs.items()}
    assert results["fused"].diverged == results["exact"].diverged == [1]
    assert torch.equal(packs["exact"].model_state_dict(1)["stem.weight"], before)  # not updated, as a single run
    for name, value in packs["exact"].model_state_dict(1).items():
        assert torch.allclose(packs["fused"].model_state_dict(1)[name], value, rtol=0, atol=TOLERANCE[torch.float32],
                              equal_nan=True), name
    for images, labels in data[2:]:
        results = {kind: pack.step(images, labels) for kind, pack in packs.items()}
        assert results["fused"].diverged == [] and torch.isnan(results["fused"].losses[1])
        assert torch.isfinite(results["fused"].losses[[0, 2]]).all()
        assert torch.allclose(results["fused"].losses, results["exact"].losses, rtol=0,
                              atol=TOLERANCE[torch.float32], equal_nan=True)
    assert all(torch.isfinite(p).all() for p in packs["fused"].network.parameters())
    assert packs["fused"].accuracy(data) == packs["exact"].accuracy(data)
    live = packs["fused"].select([0, 2])
    assert live.size == 2 and live.live == [True, True]
    for k, member in enumerate((0, 2)):
        for name, value in packs["fused"].model_state_dict(member).items():
            assert torch.equal(live.model_state_dict(k)[name], value), name
