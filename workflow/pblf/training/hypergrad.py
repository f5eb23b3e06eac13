"""PBLF-HG: learn phi and the mode inside one training run, by hypergradients.

The thesis searches phi = (w1, w2, b1, b2) and the 4-bit mode from outside, one full training run per candidate, and
names the alternative as future work: learn them *while* the target network trains, by gradient descent (§6.3.2,
"the continuous parametrization ... presents the opportunity for learning custom gradient update equations with
gradient-based optimization"; §7.1.1, "Single Phase Training"). This module is the mathematical core of that method.

The objective is the one of DARTS (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019,
Eq. 3-7): the validation loss after a one-step look-ahead of the weights,

    L_val(theta'),    theta' = theta - lr * g_alpha(theta),    alpha = (u, gate logits),

where g_alpha(theta) is the parameter gradient of the training loss *as the meta-network op computes it* on a
training mini-batch. Its gradient is

    d L_val(theta') / d alpha = - lr * (d g_alpha / d alpha)^T  grad_theta L_val(theta'),

one forward/backward on a validation mini-batch for v = grad_theta L_val(theta') and one double backward (a
vector-Jacobian product of g_alpha with v); no finite differences (the DARTS reference code approximates this
product by a finite difference of two gradients; autograd gives it exactly). Updating alpha every k training steps,
inside the run, with that gradient is hypergradient descent (Baydin, Cornish, Martinez Rubio, Schmidt & Wood,
"Online Learning Rate Adaptation with Hypergradient Descent", ICLR 2018): a hyperparameter is learned online, in the
same run, from the derivative of a loss at the next iterate through the update rule.

Why the look-ahead is needed at all, and why depth 1 is enough to start with: the op is the identity in the forward
pass, so L_val(theta) does not depend on alpha. DARTS's first-order approximation (xi = 0, Eq. 7 without its second
term) would therefore be *identically zero* here: phi only acts through the update it shapes. One unrolled step is
the cheapest horizon with a non-zero signal; it is DARTS's second-order choice (xi = the network's learning rate) and
Baydin et al.'s greedy one-step horizon. Longer unrolls cost memory and time linear in their depth (every unrolled
step's graph is kept for the double backward). The price of depth 1 is myopia: a one-step objective is biased
towards what helps the next step, not the end of training (short-horizon bias, Wu, Ren, Liao & Grosse, ICLR 2018);
it is the known limitation to measure first, not a property of phi.

The pieces:

* :class:`MetaParameters` holds alpha: ``u`` (phi = bound * tanh(u), see :func:`u_to_phi` for why tanh) and four gate
  logits (g = sigmoid(logit), one per place; see :func:`relaxed_sigma_prime` for the relaxation of the mode's bits).
  It converts a :class:`~pblf.core.candidate.Candidate` to alpha and back.
* :class:`RelaxedMetaDerivative` is the op with sigma'_eff = g * sigma'_phi(h) + (1 - g), built from differentiable
  torch ops, so that ``torch.autograd.grad(..., create_graph=True)`` gives parameter gradients that are functions of
  alpha. It replaces the modules at the four places of :class:`pblf.training.model.WideResNet` (``model.metanet``); the WRN
  itself is reused, not copied.
* :func:`hypergradient` computes the gradient above and leaves the network exactly as it found it (weights, batch
  norm buffers, modules, torch's random state).
* :class:`HypergradientUpdater` runs the method inside a training loop: every ``interval`` steps one hypergradient
  step with Adam on alpha, a trajectory for a figure, the final Candidate, and a ``state_dict`` for checkpoints.
* :class:`ValidationStream` serves the validation mini-batches, reproducibly and resumably.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from pblf.core.candidate import PHI_DECIMALS, Candidate
from pblf.core.names import PHI_NAMES, PLACES
from pblf.training.metanet import ACTIVATIONS, MetaDerivative, check_activation, sigma_prime

#: Table 6.1: every weight of the meta-network lies in the open box |x| < 1 (``search.phi_bound``).
DEFAULT_BOUND = 1.0
#: One hypergradient step every this many training steps (see :class:`HypergradientUpdater`).
DEFAULT_INTERVAL = 10
#: Adam's step size on alpha (see :class:`HypergradientUpdater`).
DEFAULT_HYPER_LR = 1e-3
#: Adam's betas on alpha, as DARTS uses them for its architecture parameters (reference code, cnn/architect.py).
DEFAULT_BETAS = (0.5, 0.999)
DEFAULT_EPS = 1e-8
#: |gate logit| a candidate's mode bit starts at: g = sigmoid(2) = 0.881 for '1', 0.119 for '0' (see
#: :meth:`MetaParameters.from_candidate`).
DEFAULT_GATE_INIT = 2.0
#: Gate logits are kept in [-GATE_LIMIT, GATE_LIMIT]: beyond it g is within 4.6e-5 of 0 or 1 and nothing changes but
#: the distance an Adam step (about hyper_lr per step) would have to travel back to flip the bit.
GATE_LIMIT = 10.0
#: One step of the grid Candidate rounds phi to: a learned phi must stay at least this far inside the bound so that
#: the rounded Candidate is still in the open box (the same margin pblf.search.propose keeps).
PHI_STEP = 10.0**-PHI_DECIMALS
#: The precision alpha is kept in: eight numbers, so float64 costs nothing and makes Candidate -> alpha -> Candidate
#: exact (atanh/tanh in float32 can move phi by an ulp, which can flip the sixth decimal).
HYPER_DTYPE = torch.float64


# ------------------------------------------------------------------------------------------ parametrisation


def learning_start(activation: str = "relu") -> Candidate:
    """Where PBLF-HG starts: Standard backpropagation's sigma' == 1, at a phi whose hypergradient is not zero.

    Standard's own phi = (0, 0, 0, 1) is a fixed point of the method: w2 = 0 zeroes the gradients of w1 and b1,
    a(b1) = relu(0) = 0 zeroes w2's, b2 = 1 lies on the edge of the box where tanh is flat, and with sigma'_phi == 1
    the gates' gradient, proportional to sigma'_phi - 1, is zero too. With w1 = 0, sigma'_phi(h) = w2 * a(b1) + b2 is
    the same for every h, so w2 = b1 = 0.5 and b2 = 1 - w2 * a(b1) (0.75 for relu) give sigma' == 1 exactly as
    Standard does (for relu bit for bit: 0.5 * 0.5 + 0.75 is 1.0 in floating point; for tanh and sigmoid up to the
    rounding of b2 to PHI_DECIMALS), in mode 1111, with w1, w2, b1 and b2 all free to move. The gates start to
    matter as soon as phi has moved."""
    check_activation(activation)
    a_b1 = float(ACTIVATIONS[activation](torch.tensor(0.5, dtype=torch.float64)))
    return Candidate(0.0, 0.5, 0.5, 1.0 - 0.5 * a_b1, "1111")



def u_limit(bound: float) -> float:
    """The largest |u| kept: bound * tanh(u_limit) = bound - PHI_STEP.

    Mathematically tanh keeps phi strictly inside for every u, but in floating point tanh(u) rounds to exactly 1 for
    |u| above about 9 (float32) or 19 (float64), and bound - PHI_STEP is the largest |phi| whose rounded Candidate is
    still inside the open box. At u_limit the Jacobian bound * (1 - tanh(u)^2) is already 2e-6 * bound, so holding u
    there removes nothing the gradient could still use; it only stops Adam's momentum from carrying u to where the way
    back would take |u| / hyper_lr steps. An inward gradient moves u off the limit at the next step (unlike a clip of
    phi itself, whose derivative is zero outside the box, so a coordinate that left it would never come back)."""
    if not bound > PHI_STEP:
        raise ValueError(f"phi bound {bound!r} must be larger than {PHI_STEP}")
    return math.atanh((bound - PHI_STEP) / bound)


def u_to_phi(u: torch.Tensor, bound: float) -> torch.Tensor:
    """phi = bound * tanh(u), differentiable.

    Why a reparametrisation and not a projection: projecting phi onto the box (clipping after each step, or clamping
    in the forward) puts phi *on* the boundary |phi| = bound, which is outside Table 6.1's open box, and the clamp's
    derivative is zero there, so the gradient is cut and a coordinate that reaches the boundary stalls. bound * tanh
    maps all of R onto the open interval, smoothly and with a non-zero derivative everywhere, so plain gradient steps
    on the unconstrained u can never leave the box (the standard change of variables for box constraints; e.g. the
    tanh-space box of Carlini & Wagner, IEEE S&P 2017). Near the boundary the derivative is small, which Adam's
    per-coordinate normalisation compensates (see :class:`HypergradientUpdater`)."""
    return bound * torch.tanh(u)


def phi_to_u(phi: tuple[float, ...] | torch.Tensor, bound: float, dtype: torch.dtype = HYPER_DTYPE) -> torch.Tensor:
    """The inverse, u = atanh(phi / bound), with |phi| first brought to at most bound - PHI_STEP.

    A Candidate's phi is in the open box, except Standard's b2 = 1 = bound (Standard is not a point of the search
    space); such a value starts at bound - PHI_STEP = 0.999999, the closest point the search space has."""
    inner = bound - PHI_STEP
    phi = torch.as_tensor(phi, dtype=dtype).clamp(-inner, inner)
    return torch.atanh(phi / bound)


def mode_to_logits(mode: str, gate_init: float = DEFAULT_GATE_INIT, dtype: torch.dtype = HYPER_DTYPE) -> torch.Tensor:
    """Gate logits +gate_init for a '1' bit, -gate_init for a '0' bit."""
    if not gate_init > 0:
        raise ValueError(f"gate_init {gate_init!r} must be positive, or the bits of the mode would be lost")
    return torch.tensor([gate_init if bit == "1" else -gate_init for bit in mode], dtype=dtype)


def gates_to_mode(gates: torch.Tensor) -> str:
    """The relaxation rounded: g >= 0.5 -> '1' (DARTS's discretisation step: keep the strongest choice)."""
    return "".join("1" if float(g) >= 0.5 else "0" for g in gates)


class MetaParameters:
    """alpha = (u, gate logits): the hyperparameters PBLF-HG learns, as two leaf tensors that require grad.

    A plain object, deliberately not an ``nn.Module``: the :class:`RelaxedMetaDerivative` modules that read it sit
    inside the target network, and a Module or Parameter here would put u and the gates into ``model.parameters()``
    (so the network's SGD, with its weight decay, would train them) and into ``model.state_dict()`` (so checkpoints
    and evaluation would no longer see a plain WRN). Create it on the model's device; ``model.to()`` does not move it.
    """

    def __init__(self, u: torch.Tensor, gate_logits: torch.Tensor, bound: float = DEFAULT_BOUND,
                 activation: str = "relu") -> None:
        check_activation(activation)
        if u.shape != (len(PHI_NAMES),) or gate_logits.shape != (len(PLACES),):
            raise ValueError(f"u must have {len(PHI_NAMES)} entries and gate_logits {len(PLACES)}, "
                             f"not {tuple(u.shape)} and {tuple(gate_logits.shape)}")
        self.bound = float(bound)
        self.u_limit = u_limit(self.bound)
        self.activation = activation
        self.u = u.detach().clone().clamp_(-self.u_limit, self.u_limit).requires_grad_()
        self.gate_logits = gate_logits.detach().clone().clamp_(-GATE_LIMIT, GATE_LIMIT).requires_grad_()

    @classmethod
    def from_candidate(cls, candidate: Candidate, bound: float = DEFAULT_BOUND, activation: str = "relu",
                       gate_init: float = DEFAULT_GATE_INIT, device: torch.device | str = "cpu",
                       dtype: torch.dtype = HYPER_DTYPE) -> "MetaParameters":
        """Start at ``candidate``: u = atanh(phi / bound), gate logits = +-gate_init by the mode's bits.

        Why +-2 by default: the gates must round back to the mode, and sigmoid's slope must leave them learnable.
        DARTS starts its architecture logits at ~0 (all choices equal, 1e-3 * randn), which would forget the
        candidate's mode; saturated logits (|logit| >> 5) would make g exactly 0 or 1 but sigmoid'(logit) ~ 0, so
        the mode could never change. At +-2, g = 0.881 / 0.119 (the candidate's mode, mostly), sigmoid' = 0.105,
        and an Adam step of hyper_lr moves the logit by about hyper_lr, so flipping a bit takes ~2 / hyper_lr
        consistent hypergradient steps: the mode changes only when the evidence persists."""
        u = phi_to_u(candidate.phi, bound, dtype).to(device)
        return cls(u, mode_to_logits(candidate.mode, gate_init, dtype).to(device), bound, activation)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.u, self.gate_logits

    def phi(self) -> torch.Tensor:
        """phi = bound * tanh(u) (differentiable in u)."""
        return u_to_phi(self.u, self.bound)

    def gates(self) -> torch.Tensor:
        """g = sigmoid(gate logits) (differentiable in the logits)."""
        return torch.sigmoid(self.gate_logits)

    def phi_values(self) -> tuple[float, float, float, float]:
        with torch.no_grad():
            return tuple(float(v) for v in self.phi())  # type: ignore[return-value]

    def gate_values(self) -> tuple[float, float, float, float]:
        with torch.no_grad():
            return tuple(float(v) for v in self.gates())  # type: ignore[return-value]

    def candidate(self) -> Candidate:
        """The discrete candidate: phi = bound * tanh(u) kept within bound - PHI_STEP (so that Candidate's rounding to
        PHI_DECIMALS stays strictly inside the box), mode = the gates rounded (g >= 0.5 -> 1)."""
        inner = self.bound - PHI_STEP
        phi = [min(max(v, -inner), inner) for v in self.phi_values()]
        with torch.no_grad():
            mode = gates_to_mode(self.gates())
        return Candidate(*phi, mode=mode)

    @torch.no_grad()
    def keep_inside(self) -> None:
        """After an optimiser step: u within +-u_limit (:func:`u_limit`), logits within +-GATE_LIMIT."""
        self.u.clamp_(-self.u_limit, self.u_limit)
        self.gate_logits.clamp_(-GATE_LIMIT, GATE_LIMIT)


# ------------------------------------------------------------------------------------------------- the op


def relaxed_sigma_prime(h: torch.Tensor, phi: torch.Tensor, gate: torch.Tensor, activation: str) -> torch.Tensor:
    """sigma'_eff(h) = g * sigma'_phi(h) + (1 - g): the continuous relaxation of one bit of the mode.

    A bit chooses between two backward passes at its place, sigma'_phi (bit 1) and the identity's derivative 1
    (bit 0). DARTS (Eq. 2) relaxes a categorical choice among operations into a softmax-weighted mixture of all of
    them; for a choice between two, the softmax of two logits is the sigmoid of their difference, so one logit per
    place is the same relaxation with no redundant parameter. The mixture is linear in g, so g = 1 and g = 0 give
    exactly the two discrete choices. Computed in at least float32 like :func:`pblf.training.metanet.sigma_prime`, which it
    reuses for the formula."""
    dtype = torch.promote_types(h.dtype, torch.float32)
    g = gate.to(dtype)
    return g * sigma_prime(h, phi, activation) + (1 - g)


class RelaxedMetaDerivativeFunction(torch.autograd.Function):
    """y = h forward; dL/dh = dL/dy * sigma'_eff(h) backward, *built from differentiable ops*.

    Unlike :class:`pblf.training.metanet.MetaDerivativeFunction`, the backward is meant to be differentiated: under
    ``create_graph=True`` autograd records it, and phi and the gate are saved *inputs* (with their history back to u
    and the gate logits), so the resulting parameter gradients are differentiable functions of alpha (double
    backward). The first-order backward returns no gradient for phi or the gate (the forward does not depend on
    them), so an ordinary training ``loss.backward()`` leaves ``u.grad`` and the logits' grad untouched."""

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, phi: torch.Tensor, gate: torch.Tensor, activation: str) -> torch.Tensor:
        ctx.save_for_backward(h, phi, gate)
        ctx.activation = activation
        return h.view_as(h)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        h, phi, gate = ctx.saved_tensors
        grad_h = (grad * relaxed_sigma_prime(h, phi, gate, ctx.activation)).to(grad.dtype)
        return grad_h, None, None, None


def relaxed_meta_derivative(h: torch.Tensor, phi: torch.Tensor, gate: torch.Tensor,
                            activation: str = "relu") -> torch.Tensor:
    """Apply the relaxed op to h with phi (four numbers) and one gate value g in [0, 1]."""
    check_activation(activation)
    return RelaxedMetaDerivativeFunction.apply(h, phi, gate, activation)


class RelaxedMetaDerivative(nn.Module):
    """The relaxed op at place ``place`` of the WRN, reading phi and its gate from a shared :class:`MetaParameters`.

    It has no parameters and no buffers (``params`` is a plain attribute), so a WRN with these modules at its four
    places has the same ``parameters()`` and ``state_dict()`` as a plain WRN. phi and g are recomputed from alpha on
    every forward, so an in-place update of alpha takes effect at the next step."""

    def __init__(self, params: MetaParameters, place: int) -> None:
        super().__init__()
        if not 0 <= place < len(PLACES):
            raise ValueError(f"place {place} is not one of 0..{len(PLACES) - 1}")
        self.params = params
        self.place = place

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return relaxed_meta_derivative(h, self.params.phi(), self.params.gates()[self.place], self.params.activation)

    def extra_repr(self) -> str:
        return f"place={self.place} ({PLACES[self.place]}), activation={self.params.activation}"


def _unwrap(model: nn.Module) -> nn.Module:
    """The module behind a ``torch.compile`` wrapper (its ``_orig_mod``), or ``model`` itself."""
    return getattr(model, "_orig_mod", model)


def _places(model: nn.Module) -> nn.ModuleList:
    places = getattr(_unwrap(model), "metanet", None)
    if not isinstance(places, nn.ModuleList) or len(places) != len(PLACES):
        raise TypeError("the model must be a pblf.training.model.WideResNet (with its four places in model.metanet), not "
                        f"{type(model).__name__}; pass the model itself, not a DDP wrapper")
    return places


@contextmanager
def swapped_places(model: nn.Module, make: Callable[[int], nn.Module]) -> Iterator[None]:
    """Temporarily put ``make(i)`` at place i of the WRN; the original module objects are put back afterwards."""
    places = _places(model)
    originals = list(places)
    try:
        for i in range(len(PLACES)):
            places[i] = make(i)
        yield
    finally:
        for i, module in enumerate(originals):
            places[i] = module


def install(model: nn.Module, params: MetaParameters) -> None:
    """Put :class:`RelaxedMetaDerivative` modules reading ``params`` at all four places, for good (the gates say how
    active each place is). Do it before ``torch.compile``; the state dict is unchanged."""
    places = _places(model)
    for i in range(len(PLACES)):
        places[i] = RelaxedMetaDerivative(params, i)


# --------------------------------------------------------------------------------------------- hypergradient


@dataclass
class Hypergradient:
    """d L_val(theta') / d alpha, and the two losses it came from."""

    u: torch.Tensor
    gate_logits: torch.Tensor
    train_loss: float
    val_loss: float

    def norm(self) -> float:
        return float(torch.cat([self.u, self.gate_logits]).norm())


@contextmanager
def untouched(model: nn.Module) -> Iterator[None]:
    """Whatever runs inside leaves no trace in ``model``'s buffers (batch norm running means, variances, batch
    counts), in the training flags of its modules, or in torch's CPU and CUDA random states.

    The look-ahead runs the network in training mode twice (see :func:`hypergradient`), which would update the
    running statistics twice with batches the training step never took, and the training loop's common random
    numbers must not depend on whether, or how often, hypergradients are taken."""
    saved = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]
    flags = [(module, module.training) for module in model.modules()]
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
        for module, flag in flags:
            module.training = flag
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


@contextmanager
def _native_kernels() -> Iterator[None]:
    """Convolutions by PyTorch's native CPU kernels instead of oneDNN's (no effect on CUDA), for the look-ahead.

    Measured on the project's CPU build (torch 2.14.1): with oneDNN, the double backward through the network's
    convolutions corrupts the heap ("double free or corruption", SIGABRT, with one thread) or reads garbage (with
    two: two identical learning runs took different hypergradients from their first one). The native kernels give
    the same hypergradient in every process and at any thread count; the cost is a slower hyper-step, once every
    ``interval`` training steps. The training steps themselves keep oneDNN. (Not ``torch.backends.mkldnn.flags``:
    it also sets oneDNN's TF32 flag, which warns on every call on a build without Intel GPU support.)"""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = enabled


@contextmanager
def _lookahead(
    model: nn.Module,
    params: MetaParameters,
    train_batch: tuple[torch.Tensor, torch.Tensor],
    lr: float,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    create_graph: bool,
) -> Iterator[tuple[torch.Tensor, tuple[torch.Tensor, ...], dict[str, torch.Tensor]]]:
    """The one-step look-ahead :func:`hypergradient` and :func:`lookahead_val_loss` share, so that both take the
    same objective: yields (the training loss, g_alpha(theta) with the relaxed op at the places, theta' = theta - lr
    * g_alpha(theta) by parameter name, detached) with the *plain* network's places (``nn.Identity``) installed for the
    validation pass. Everything runs under :func:`untouched` and :func:`_native_kernels`, in training mode;
    ``create_graph`` keeps g_alpha a function of alpha, for the double backward."""
    model = _unwrap(model)
    names, theta = zip(*((name, p) for name, p in model.named_parameters() if p.requires_grad))
    with untouched(model), torch.enable_grad(), _native_kernels():
        model.train()
        with swapped_places(model, lambda i: RelaxedMetaDerivative(params, i)):
            train_loss = loss_fn(model(train_batch[0]), train_batch[1])
            grads = torch.autograd.grad(train_loss, theta, create_graph=create_graph)
        ahead = {name: (p - lr * g).detach() for name, p, g in zip(names, theta, grads)}
        with swapped_places(model, lambda i: nn.Identity()):
            yield train_loss, grads, ahead


def hypergradient(
    model: nn.Module,
    params: MetaParameters,
    train_batch: tuple[torch.Tensor, torch.Tensor],
    val_batch: tuple[torch.Tensor, torch.Tensor],
    lr: float,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> Hypergradient:
    """d L_val(theta - lr * g_alpha(theta)) / d alpha at the model's current weights theta, exactly, by autograd.

    1. g_alpha(theta): the parameter gradient of ``loss_fn`` on ``train_batch`` with the relaxed op at the four
       places, with ``create_graph=True`` (so it is a function of alpha).
    2. theta' = theta - lr * g_alpha(theta), and v = grad_theta L_val(theta') on ``val_batch``: one forward and
       backward of the network at theta' (``torch.func.functional_call``; the model's weights are never written)
       with the *plain* network's true gradient (the places hold ``nn.Identity``): L_val is a function of the
       weights, and the op only changes how the training gradient is computed, not what the validation loss is.
    3. d L_val(theta') / d alpha = -lr * (d g_alpha / d alpha)^T v: one double backward, a vector-Jacobian product of
       the training gradient with v. There is no direct term: the forward pass, so L_val, does not depend on alpha.

    Choices, with their sources:

    * ``lr`` is the network's current learning rate: DARTS sets the look-ahead step xi to the weights' learning rate
      (§2.3), and Baydin et al.'s hypergradient is taken through the actual update with its actual step size.
    * The look-ahead is *plain SGD*, as in DARTS's Eq. 6 (w - xi * grad L_train): neither momentum nor weight decay
      enter it. (The DARTS reference code, cnn/architect.py, adds its momentum buffer and weight decay to the
      unrolled step; we do not.) Both are independent of alpha: they only shift the point theta' where v is taken,
      by -lr * (mu * buffer + wd * theta), and Nesterov momentum multiplies d theta' / d alpha by the constant
      (1 + mu), which Adam's scale invariance removes. Leaving them out keeps this function independent of the
      optimiser's internal state (any optimiser, no momentum buffers to read) and makes it checkable against finite
      differences of the stated objective.
    * Batch norm: both forwards run in training mode, with the batch's own statistics, as the real training step
      does and as DARTS evaluates its look-ahead loss (its search network stays in train mode). The running
      statistics those forwards update are restored afterwards (:func:`untouched`), as are the modules at the places
      and torch's random state, so a training run that takes hypergradients is bit-for-bit the run that does not
      (given the same alpha).
    * Precision: no autocast; the hypergradient is taken in the model's dtype (float32 in training) once every k
      steps, so its cost is amortised and a bf16 double backward's rounding does not enter alpha.

    ``model`` is the :class:`pblf.training.model.WideResNet` (a ``torch.compile`` wrapper is unwrapped: the look-ahead runs
    eagerly); its parameters' ``.grad`` are not touched. Costs about one training step's forward, one double
    backward (~2 backwards) and one forward/backward on the validation batch.
    """
    u, logits = params.tensors()
    x_val, y_val = val_batch
    with _lookahead(model, params, train_batch, lr, loss_fn, create_graph=True) as (train_loss, grads, ahead):
        ahead = {name: weight.requires_grad_() for name, weight in ahead.items()}
        val_loss = loss_fn(functional_call(_unwrap(model), ahead, (x_val,)), y_val)
        v = torch.autograd.grad(val_loss, list(ahead.values()), allow_unused=True)
        pairs = [(g, w) for g, w in zip(grads, v) if w is not None and g.requires_grad]
        hyper = torch.autograd.grad([g for g, _ in pairs], (u, logits), [w for _, w in pairs], allow_unused=True)
    grad_u, grad_logits = (torch.zeros_like(t) if h is None else -lr * h.detach() for h, t in zip(hyper, (u, logits)))
    return Hypergradient(grad_u, grad_logits, float(train_loss.detach()), float(val_loss.detach()))


def lookahead_val_loss(
    model: nn.Module,
    params: MetaParameters,
    train_batch: tuple[torch.Tensor, torch.Tensor],
    val_batch: tuple[torch.Tensor, torch.Tensor],
    lr: float,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> float:
    """L_val(theta - lr * g_alpha(theta)) itself, with first-order autograd only: the objective whose derivative
    :func:`hypergradient` computes (for checks by finite differences, and for logging). Leaves no trace either."""
    with _lookahead(model, params, train_batch, lr, loss_fn, create_graph=False) as (_, _, ahead), torch.no_grad():
        return float(loss_fn(functional_call(_unwrap(model), ahead, (val_batch[0],)), val_batch[1]))


# ------------------------------------------------------------------------------------------ validation batches


class ValidationStream:
    """Validation mini-batches for the hypergradient, reshuffled each pass from a seeded generator, resumable.

    The validation part has no augmentation, so the generator only draws each pass's permutation. A pass's last
    partial batch is skipped (unless the part is smaller than one batch): a hypergradient from a handful of images
    would be far noisier than the others. The state is the generator's state at the start of the current pass and
    the number of batches served in it; restoring replays the permutation and skips what was served, exactly.
    Seed it from the run's seeds (e.g. ``derive_seed(cfg["seed"], seed, "hypergradient")``), never the candidate,
    to keep common random numbers."""

    def __init__(self, split: Any, batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size {batch_size} must be positive")
        self.split = split
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self._pass_rng: torch.Tensor | None = None
        self._position = 0
        self._iterator: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None

    def _full(self) -> int:
        return self.batch_size if len(self.split) >= self.batch_size else len(self.split)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        for _ in range(2):
            if self._iterator is None:
                self._pass_rng = self.generator.get_state()
                self._position = 0
                self._iterator = self.split.batches(self.batch_size, self.generator, shuffle=True)
            batch = next(self._iterator, None)
            if batch is not None and len(batch[1]) == self._full():
                self._position += 1
                return batch
            self._iterator = None  # end of the pass (or its partial last batch): start the next one
        raise ValueError("the validation part is empty")

    def state_dict(self) -> dict[str, Any]:
        return {"pass_rng": None if self._pass_rng is None else self._pass_rng.clone(), "position": self._position,
                "generator": self.generator.get_state(), "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["batch_size"] != self.batch_size:
            raise ValueError(f"the saved validation stream used batches of {state['batch_size']}, "
                             f"not {self.batch_size}")
        if state["pass_rng"] is None:
            self.generator.set_state(state["generator"])
            self._pass_rng, self._position, self._iterator = None, 0, None
            return
        self.generator.set_state(state["pass_rng"])
        self._pass_rng = state["pass_rng"].clone()
        self._iterator = self.split.batches(self.batch_size, self.generator, shuffle=True)
        for _ in range(state["position"]):
            next(self._iterator)
        self._position = state["position"]


# -------------------------------------------------------------------------------------------------- updater


#: The columns of a trajectory row, in order.
TRAJECTORY_FIELDS: tuple[str, ...] = ("step", *PHI_NAMES, *(f"g{i + 1}" for i in range(len(PLACES))))


class HypergradientUpdater:
    """PBLF-HG inside one training loop: alpha = (u, gate logits), one Adam step on it every ``interval`` steps.

    Choices, with their sources:

    * **Adam, not plain SGD, on alpha** (DARTS optimises its architecture parameters with Adam, betas (0.5, 0.999),
      reference code cnn/architect.py; Baydin et al. derive hypergradient descent for SGD and Adam alike). Plain SGD
      on alpha (Baydin's SGD-HD form) would need its step size retuned as the hypergradient's scale drifts: it is
      proportional to the network's learning rate (x0.2 at each of the three milestones, so 125x smaller at the end),
      and bound * (1 - tanh(u)^2) shrinks it further near the box's edge. Adam's update is invariant to a rescaling
      of each coordinate's gradient, so one hyper-learning-rate is a step of about ``hyper_lr`` in u or logit units
      throughout the run, for all eight coordinates (after a milestone's sudden x0.2 the second-moment estimate,
      with a memory of ~1 / (1 - 0.999) = 1,000 hyper steps, lags, so steps are smaller for a while). DARTS's
      betas: beta1 = 0.5 follows the hypergradient more quickly than 0.9 as the weights (so the landscape in alpha)
      change under it. No weight decay on alpha (DARTS uses 1e-3): it would pull phi towards 0, i.e. sigma' towards
      b2 = 0, the vanishing gradient.
    * **hyper_lr = 1e-3** (DARTS: 3e-4 with one step per training step): with k = 10 the run takes 10x fewer steps,
      so a larger step; ~3,500 hyper steps of a 100-epoch CIFAR-10 run can move u by up to ~3.5, enough to cross
      most of tanh's range, and a gate by ~2 / 1e-3 = 2,000 consistent steps before a bit flips. A hyperparameter of
      the method to tune, not a constant of the thesis.
    * **k = interval = 10**: Baydin et al. and DARTS update every step (k = 1); a hypergradient costs a forward, a
      double backward (~2 backwards) and a validation forward/backward, i.e. the arithmetic of 3-4 training steps
      (6 measured on the tiny CPU test network, where overheads dominate), so k = 1 would make one run 4-7x as
      expensive, against the purpose of §7.1.1 (single-phase training to save cost). k = 10 bounds the overhead to
      roughly 30-60% while the weights move little between updates. A cost/quality knob, to be measured.
    * **The first hypergradient step is before training step k, not step 0**: the weights are random at step 0;
      every step s = k, 2k, ... the update comes before that step's forward (DARTS's order: the architecture step
      on the same training batch the weights then use), so the look-ahead is the very update about to be taken.
    * **hyper_lr = 0 trains exactly the candidate**: :meth:`attach` then leaves the model's own ops
      (``pblf.training.metanet.MetaDerivative`` with the candidate's phi, at the places its mode turns on) untouched, and the
      hypergradient is still computed and logged every k steps (a "measure, do not follow" run; it is taken for the
      relaxation at the initial gates, whose soft values the training does not use) with no trace in the training
      (:func:`untouched`). With hyper_lr > 0 the training itself uses the relaxation (soft gates), as DARTS trains
      its weights on the mixed operations; the mode is only rounded at the end (:meth:`candidate`).

    Resuming: :meth:`state_dict` holds alpha, Adam's state, the step counter, the trajectory and the validation
    stream, so a run restored from a checkpoint written after a training step continues bit for bit.
    """

    def __init__(
        self,
        candidate: Candidate,
        validation: ValidationStream | None = None,
        *,
        hyper_lr: float = DEFAULT_HYPER_LR,
        interval: int = DEFAULT_INTERVAL,
        bound: float = DEFAULT_BOUND,
        activation: str = "relu",
        gate_init: float = DEFAULT_GATE_INIT,
        betas: tuple[float, float] = DEFAULT_BETAS,
        eps: float = DEFAULT_EPS,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = HYPER_DTYPE,
    ) -> None:
        if not (hyper_lr >= 0 and math.isfinite(hyper_lr)):
            raise ValueError(f"hyper_lr {hyper_lr!r} must be a finite number >= 0")
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f"interval {interval!r} must be a positive integer")
        self.start = candidate
        self.validation = validation
        self.hyper_lr = float(hyper_lr)
        self.interval = interval
        self.config = {"hyper_lr": self.hyper_lr, "interval": interval, "bound": float(bound),
                       "activation": activation, "gate_init": float(gate_init), "betas": tuple(betas),
                       "eps": float(eps), "start": candidate.to_dict()}
        self.params = MetaParameters.from_candidate(candidate, bound, activation, gate_init, device, dtype)
        self.optimizer = torch.optim.Adam(self.params.tensors(), lr=self.hyper_lr, betas=betas, eps=eps,
                                          foreach=False)
        #: training steps seen (calls of :meth:`before_step`)
        self.steps = 0
        #: hypergradient steps taken
        self.hyper_steps = 0
        self.trajectory: list[dict[str, float | int]] = [self._row(0)]
        self.last: dict[str, Any] | None = None

    # --- what the training loop reads -------------------------------------------------------------------------

    @property
    def phi(self) -> tuple[float, float, float, float]:
        """The current phi = bound * tanh(u), unrounded."""
        return self.params.phi_values()

    @property
    def gates(self) -> tuple[float, float, float, float]:
        """The current gates g1..g4 in [0, 1] (place order of pblf.core.names.PLACES)."""
        return self.params.gate_values()

    def candidate(self) -> Candidate:
        """The current (at the end: the learned) candidate: phi rounded as Candidate rounds, gates rounded."""
        return self.params.candidate()

    def _row(self, step: int) -> dict[str, float | int]:
        return dict(zip(TRAJECTORY_FIELDS, (step, *self.phi, *self.gates)))

    # --- what the training loop calls -------------------------------------------------------------------------

    def attach(self, model: nn.Module) -> None:
        """Before training (and before ``torch.compile``): with hyper_lr > 0, the relaxed op at all four places;
        with hyper_lr = 0, nothing (the model keeps the candidate's ops, so training is exactly the candidate's)."""
        places = _places(model)
        device = next(model.parameters()).device
        if self.params.u.device != device:
            raise ValueError(f"the updater's parameters are on {self.params.u.device}, the model on {device}; "
                             "construct the updater with device=<the model's device>")
        if self.hyper_lr > 0:
            install(model, self.params)
            return
        phi = torch.tensor(self.start.phi, dtype=torch.float32)
        for active, module in zip(self.start.places, places):
            fits = (isinstance(module, MetaDerivative) and module.activation == self.params.activation
                    and torch.equal(module.phi.cpu(), phi)) if active else isinstance(module, nn.Identity)
            if not fits:
                raise ValueError(f"hyper_lr is 0, so the model must carry the start candidate's own ops "
                                 f"({self.start.to_json()}, activation {self.params.activation}); build it with "
                                 "pblf.training.model.build_model(..., candidate=<that candidate>)")

    def due(self) -> bool:
        """Whether the next training step is preceded by a hypergradient step."""
        return self.steps > 0 and self.steps % self.interval == 0

    def before_step(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, lr: float,
                    val_batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, Any] | None:
        """Call once per training step, before its forward, with that step's (augmented) batch and learning rate.
        Every ``interval``-th call takes one hypergradient step (drawing a validation batch from the stream unless
        ``val_batch`` is given) and returns its record; the others return None. Then count the step."""
        record = None
        if self.due():
            if val_batch is None:
                if self.validation is None:
                    raise ValueError("no validation stream: pass val_batch or construct with validation=")
                val_batch = self.validation.next()
            record = self.step(model, (images, labels), val_batch, lr)
        self.steps += 1
        return record

    def step(self, model: nn.Module, train_batch: tuple[torch.Tensor, torch.Tensor],
             val_batch: tuple[torch.Tensor, torch.Tensor], lr: float) -> dict[str, Any]:
        """One hypergradient step now (normally called by :meth:`before_step`); appends a trajectory row.

        A non-finite hypergradient (an overflow in the double backward of a network about to diverge) is not
        followed: one NaN in Adam's moments would make alpha NaN for the rest of the run. The step is counted, the
        record says ``skipped``, and the training loop's own check of the loss decides whether the run diverged."""
        result = hypergradient(model, self.params, train_batch, val_batch, lr)
        finite = bool(torch.isfinite(result.u).all() and torch.isfinite(result.gate_logits).all())
        if self.hyper_lr > 0 and finite:
            u, logits = self.params.tensors()
            u.grad, logits.grad = result.u.to(u.dtype), result.gate_logits.to(logits.dtype)
            self.optimizer.step()
            u.grad = logits.grad = None
            self.params.keep_inside()
        self.hyper_steps += 1
        row = self._row(self.steps)
        self.trajectory.append(row)
        self.last = {**row, "train_loss": result.train_loss, "lookahead_val_loss": result.val_loss,
                     "hypergradient_norm": result.norm(), "skipped": not finite}
        return self.last

    # --- checkpoints ------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (tensors, numbers, strings, lists and dicts: loads with
        ``torch.load(weights_only=True)``)."""
        return {
            "format": 1,
            "config": {**self.config, "betas": list(self.config["betas"])},
            "u": self.params.u.detach().clone(),
            "gate_logits": self.params.gate_logits.detach().clone(),
            "optimizer": self.optimizer.state_dict(),
            "steps": self.steps,
            "hyper_steps": self.hyper_steps,
            "trajectory": [dict(row) for row in self.trajectory],
            "validation": None if self.validation is None else self.validation.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; refuses one written with other settings (its alpha would mean another run)."""
        if state.get("format") != 1:
            raise ValueError(f"unknown hypergradient updater state format {state.get('format')!r}")
        mine = {**self.config, "betas": list(self.config["betas"])}
        if state["config"] != mine:
            raise ValueError(f"the saved hypergradient updater had settings {state['config']}, not {mine}")
        with torch.no_grad():
            self.params.u.copy_(state["u"])
            self.params.gate_logits.copy_(state["gate_logits"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = int(state["steps"])
        self.hyper_steps = int(state["hyper_steps"])
        self.trajectory = [dict(row) for row in state["trajectory"]]
        self.last = None
        if (state["validation"] is None) != (self.validation is None):
            raise ValueError("the saved updater and this one differ in having a validation stream")
        if self.validation is not None:
            self.validation.load_state_dict(state["validation"])
