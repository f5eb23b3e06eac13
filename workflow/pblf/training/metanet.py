"""The meta-network op of PBLF: identity forward, learned activation derivative backward (thesis Eq. 5.2).

At each active place of the target network the forward pass is the implicit linear activation (the identity), but
the backward pass multiplies the incoming gradient element-wise by

    sigma'_phi(h) = w2 * a(w1 * h + b1) + b2,        phi = (w1, w2, b1, b2),

where h is the tensor at that place. This is deliberately *not* the derivative of the forward pass, which is why the
op is a custom ``torch.autograd.Function`` and why ``gradcheck`` does not apply to it.

phi is searched from outside (Bayesian optimisation or random search), never trained, so no gradient flows to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


#: The activations ``a`` the meta-network may use; the thesis does not name one, so it is configuration.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": _identity,
}


def check_activation(activation: str) -> None:
    """Refuse an unknown activation with a message that lists the allowed ones."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"meta-network activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")


def sigma_prime(h: torch.Tensor, phi: torch.Tensor, activation: str) -> torch.Tensor:
    """sigma'_phi(h), computed in at least float32.

    Under bf16/fp16 autocast h arrives in half precision; evaluating w2 * a(w1 * h + b1) + b2 there would round
    three times and make, e.g., phi = (0, 0, 0, 1) no longer exact for values that bf16 cannot hold. float64 inputs
    stay float64 so that tests can check the op exactly.
    """
    dtype = torch.promote_types(h.dtype, torch.float32)
    w1, w2, b1, b2 = phi.to(dtype).unbind()
    return w2 * ACTIVATIONS[activation](w1 * h.to(dtype) + b1) + b2


class MetaDerivativeFunction(torch.autograd.Function):
    """y = h in the forward pass; dL/dh = dL/dy * sigma'_phi(h) in the backward pass.

    Only h (and the four numbers of phi) is saved. The layer that follows every place in the WRN is a batch norm,
    which keeps the same h for its own backward, so the op costs no activation memory. The forward returns a view of
    h rather than h itself or a copy: a view lets autograd attach this op's backward without duplicating storage,
    and autograd refuses an in-place op on that view, so nothing downstream can silently bypass sigma'.
    """

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, phi: torch.Tensor, activation: str) -> torch.Tensor:
        ctx.save_for_backward(h, phi)
        ctx.activation = activation
        return h.view_as(h)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        h, phi = ctx.saved_tensors
        # grad comes first so that the product keeps grad's memory format (e.g. channels_last) when h's differs.
        grad_h = (grad * sigma_prime(h, phi, ctx.activation)).to(grad.dtype)
        return grad_h, None, None


def meta_derivative(h: torch.Tensor, phi: torch.Tensor, activation: str = "relu") -> torch.Tensor:
    """Apply the op to h; ``phi`` is a tensor of the four numbers (w1, w2, b1, b2)."""
    check_activation(activation)
    return MetaDerivativeFunction.apply(h, phi, activation)


class MetaDerivative(nn.Module):
    """The op at one place of the target network, with its phi and activation fixed at construction.

    phi is a *non-persistent* buffer: it follows ``.to(device)`` but is left out of ``state_dict``. The op does not
    change the forward pass, so a checkpoint of a network trained with any candidate has exactly the keys and values
    a plain WRN needs for evaluation; the candidate itself is recorded with the result, not inside the weights.
    """

    phi: torch.Tensor

    def __init__(self, phi: tuple[float, float, float, float], activation: str = "relu") -> None:
        super().__init__()
        check_activation(activation)
        if len(phi) != 4:
            raise ValueError(f"phi must be the four numbers (w1, w2, b1, b2), not {phi!r}")
        self.activation = activation
        self.register_buffer("phi", torch.tensor(phi, dtype=torch.float32), persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return meta_derivative(h, self.phi, self.activation)

    def extra_repr(self) -> str:
        w1, w2, b1, b2 = self.phi.tolist()
        return f"w1={w1:g}, w2={w2:g}, b1={b1:g}, b2={b2:g}, activation={self.activation}"
