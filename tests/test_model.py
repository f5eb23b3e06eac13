"""The target network: WRN sizes, and where the meta-network op acts on the gradients.

Gradient tests use a tiny WRN-10-1 (base width 4) on 8x8 grey images, the shape of the demo preset's digits.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pblf.core.candidate import Candidate
from pblf.training.metanet import MetaDerivative
from pblf.training.model import WideResNet, build_model

STANDARD_PHI = (0.0, 0.0, 0.0, 1.0)
#: Parameters below place 1 (after group 1) and above it.
BELOW_GROUP_1 = ("stem.", "group1.")
ABOVE_GROUP_1 = ("group2.", "group3.", "bn.", "fc.")


def tiny_wrn(candidate: Candidate | None, dtype: torch.dtype = torch.float32) -> WideResNet:
    torch.manual_seed(0)
    return WideResNet(10, 1, num_classes=10, in_channels=1, base_width=4, candidate=candidate).to(dtype)


def batch(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(16, 1, 8, 8, generator=generator, dtype=dtype)
    return images, torch.randint(0, 10, (16,), generator=generator)


def gradients(model: WideResNet, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    images, labels = batch(dtype)
    model.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    return {name: parameter.grad.clone() for name, parameter in model.named_parameters()}


def sgd_losses(model: WideResNet, steps: int = 3) -> list[torch.Tensor]:
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    images, labels = batch()
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimiser.step()
        losses.append(loss.detach())
    return losses


@pytest.mark.parametrize("mode", ["1111", "0000"])
def test_standard_candidate_gives_bit_identical_gradients_and_losses(mode: str) -> None:
    plain = tiny_wrn(None)
    standard = tiny_wrn(Candidate(*STANDARD_PHI, mode=mode))
    for name, value in plain.state_dict().items():
        assert torch.equal(standard.state_dict()[name], value), name
    expected = gradients(plain)
    for name, grad in gradients(standard).items():
        assert torch.equal(grad, expected[name]), name
    for got, want in zip(sgd_losses(standard), sgd_losses(plain), strict=True):
        assert torch.equal(got, want)


def test_constant_sigma_prime_scales_only_the_gradients_below_its_place() -> None:
    c = 0.375
    expected = gradients(tiny_wrn(None, torch.float64), torch.float64)
    scaled = gradients(tiny_wrn(Candidate(0.5, 0.0, -0.3, c, mode="0100"), torch.float64), torch.float64)
    assert all(name.startswith(BELOW_GROUP_1 + ABOVE_GROUP_1) for name in scaled)
    for name, grad in scaled.items():
        if name.startswith(BELOW_GROUP_1):
            assert torch.allclose(grad, c * expected[name], rtol=1e-10, atol=1e-14), name
            assert not torch.allclose(grad, expected[name]), name
        else:
            assert torch.equal(grad, expected[name]), name


def test_zero_sigma_prime_at_the_stem_stops_its_gradient() -> None:
    expected = gradients(tiny_wrn(None))
    grads = gradients(tiny_wrn(Candidate(0.0, 0.0, 0.0, 0.0, mode="1000")))
    assert torch.count_nonzero(grads["stem.weight"]) == 0
    assert torch.count_nonzero(expected["stem.weight"]) > 0
    assert torch.equal(grads["fc.weight"], expected["fc.weight"])


@pytest.mark.parametrize("mode", ["0000", "1000", "0110", "1011", "1111"])
def test_one_op_per_active_place(mode: str) -> None:
    model = tiny_wrn(Candidate(0.1, 0.2, 0.3, 0.4, mode=mode))
    ops = [module for module in model.modules() if isinstance(module, MetaDerivative)]
    assert len(ops) == mode.count("1")
    assert [isinstance(place, MetaDerivative) for place in model.metanet] == [bit == "1" for bit in mode]
    assert set(model.state_dict()) == set(tiny_wrn(None).state_dict())


def test_plain_network_has_no_op() -> None:
    assert not any(isinstance(module, MetaDerivative) for module in tiny_wrn(None).modules())


def test_wrn_16_2_has_0_69m_parameters_and_classifies_cifar_images() -> None:
    model = WideResNet(16, 2, num_classes=10)
    assert round(sum(p.numel() for p in model.parameters()) / 1e4) == 69
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_wrn_28_10_has_36_5m_parameters() -> None:
    model = WideResNet(28, 10, num_classes=10)
    assert round(sum(p.numel() for p in model.parameters()) / 1e5) == 365


def test_invalid_depth_is_named() -> None:
    with pytest.raises(ValueError, match="15"):
        WideResNet(15, 2, num_classes=10)


def test_build_model_reads_the_model_config() -> None:
    config = {"depth": 10, "widen_factor": 2, "base_width": 4, "metanet_activation": "tanh"}
    model = build_model(config, num_classes=3, in_channels=1, candidate=Candidate(0.1, 0.2, 0.3, 0.4, mode="0010"))
    assert model.stem.out_channels == 4 and model.fc.in_features == 32
    assert model.metanet[2].activation == "tanh"
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)
