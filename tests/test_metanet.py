"""The meta-network op: identity forward, grad * sigma'_phi(h) backward, in every dtype and memory format we train in.

gradcheck does not apply: the op is deliberately not the derivative of its forward pass. Its backward is compared
with sigma'_phi computed by hand instead.
"""

from __future__ import annotations

import pytest
import torch

from pblf.training.metanet import MetaDerivative, meta_derivative

PHI = (0.7, -0.4, -0.2, 0.3)

HAND_ACTIVATIONS = {
    "relu": lambda z: torch.where(z > 0, z, torch.zeros_like(z)),
    "tanh": lambda z: (torch.exp(2 * z) - 1) / (torch.exp(2 * z) + 1),
    "sigmoid": lambda z: 1 / (1 + torch.exp(-z)),
    "identity": lambda z: z,
}


def hand_sigma_prime(h: torch.Tensor, phi: tuple[float, float, float, float], activation: str) -> torch.Tensor:
    w1, w2, b1, b2 = phi
    return w2 * HAND_ACTIVATIONS[activation](w1 * h + b1) + b2


def backward_through_op(
    h: torch.Tensor, g: torch.Tensor, phi: tuple[float, float, float, float], activation: str
) -> torch.Tensor:
    h = h.detach().requires_grad_()
    (meta_derivative(h, torch.tensor(phi, dtype=torch.float64), activation) * g).sum().backward()
    return h.grad


def test_forward_is_the_identity_and_shares_storage() -> None:
    h = torch.randn(2, 3, 4, 4, requires_grad=True)
    y = meta_derivative(h, torch.tensor(PHI), "tanh")
    assert torch.equal(y, h)
    assert y.data_ptr() == h.data_ptr()


@pytest.mark.parametrize("activation", sorted(HAND_ACTIVATIONS))
def test_backward_is_grad_times_hand_computed_sigma_prime(activation: str) -> None:
    generator = torch.Generator().manual_seed(0)
    h = 3 * torch.randn(4, 5, 6, 6, generator=generator, dtype=torch.float64)
    g = torch.randn(h.shape, generator=generator, dtype=torch.float64)
    expected = g * hand_sigma_prime(h, PHI, activation)
    assert torch.allclose(backward_through_op(h, g, PHI, activation), expected, rtol=1e-12, atol=1e-14)
    assert not torch.allclose(expected, g)


@pytest.mark.parametrize("activation", sorted(HAND_ACTIVATIONS))
def test_standard_phi_passes_the_gradient_through_bit_for_bit(activation: str) -> None:
    h, g = torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)
    assert torch.equal(backward_through_op(h, g, (0.0, 0.0, 0.0, 1.0), activation), g)


def test_no_gradient_reaches_phi() -> None:
    h = torch.randn(3, 4, requires_grad=True)
    phi = torch.tensor(PHI, requires_grad=True)
    meta_derivative(h, phi, "relu").sum().backward()
    assert phi.grad is None
    assert h.grad is not None


def test_bf16_autocast_computes_sigma_prime_in_float32() -> None:
    generator = torch.Generator().manual_seed(1)
    h = (3 * torch.randn(4, 8, 6, 6, generator=generator)).bfloat16().requires_grad_()
    g = torch.randn(h.shape, generator=generator).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = meta_derivative(h, torch.tensor(PHI), "relu")
    (y * g).sum().backward()
    assert h.grad.dtype == torch.bfloat16
    in_float32 = (g.float() * hand_sigma_prime(h.detach().float(), PHI, "relu")).bfloat16()
    in_bfloat16 = g * hand_sigma_prime(h.detach(), PHI, "relu")
    assert torch.equal(h.grad, in_float32)
    assert not torch.equal(h.grad, in_bfloat16)


@pytest.mark.parametrize("h_format", [torch.contiguous_format, torch.channels_last])
def test_channels_last_gives_the_same_values_and_keeps_the_gradient_format(h_format: torch.memory_format) -> None:
    generator = torch.Generator().manual_seed(2)
    h = torch.randn(2, 6, 5, 5, generator=generator)
    g = torch.randn(h.shape, generator=generator)
    phi = torch.tensor(PHI)
    reference = torch.autograd.grad(meta_derivative(h.requires_grad_(), phi, "relu"), h, g)[0]
    h_cl = h.detach().to(memory_format=h_format).requires_grad_()
    g_cl = g.to(memory_format=torch.channels_last)
    grad = torch.autograd.grad(meta_derivative(h_cl, phi, "relu"), h_cl, g_cl)[0]
    assert torch.equal(grad, reference)
    assert grad.is_contiguous(memory_format=torch.channels_last)


def test_module_keeps_phi_out_of_the_state_dict_and_refuses_unknown_activations() -> None:
    op = MetaDerivative(PHI, "sigmoid")
    assert op.state_dict() == {}
    assert op.phi.dtype == torch.float32 and torch.allclose(op.phi, torch.tensor(PHI))
    with pytest.raises(ValueError, match="softplus"):
        MetaDerivative(PHI, "softplus")


def test_module_captures_in_one_graph_under_torch_compile() -> None:
    op = MetaDerivative(PHI, "tanh")
    compiled = torch.compile(op, backend="aot_eager", fullgraph=True)
    h = torch.randn(2, 3, 4, 4, requires_grad=True)
    g = torch.randn(h.shape)
    eager = torch.autograd.grad(op(h), h, g)[0]
    assert torch.equal(torch.autograd.grad(compiled(h), h, g)[0], eager)
