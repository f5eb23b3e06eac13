"""Horizontal fusion of a *pack*: K training runs of one seed side by side in one network (HFTA, Wang et al. 2021).

With common random numbers (``pblf.training.train``), every run trained with seed s starts from the same weights and sees the
same batches; the K runs of one seed differ only in their candidate, which acts in the backward pass alone. A small
network such as WRN-16-2 cannot keep a large GPU busy with one run's kernels, so instead of K processes each stepping
one network, a pack steps one *fused* network holding the K models side by side:

* every conv is a grouped conv with ``groups=K`` (group k is model k's conv), the stem excepted: it reads the same
  images for every model, so it is one ordinary conv with K times the output channels, which gives exactly what the
  grouped conv on the K-times repeated input would give, without the copy;
* every BatchNorm runs over K*C channels; BN is per channel, so this is exactly per-model BN (statistics included);
* the classifier is K linear layers in one batched matmul, and the logits have the shape (N, K, classes);
* at each of the four places the meta-network op acts per model: model k's channel slice gets sigma'_{phi_k} in its
  backward pass where bit i of its mode is 1, and the identity otherwise.

Model k's channels are the k-th of K equal slices of every channel dimension, so each of its weights is the k-th
slice along dimension 0 of the fused weight, and moving weights (and momentum buffers) between K standalone
networks and the fused one is a concatenation or a slice. No operation mixes slices: the loss of a pack is the sum of
the K models' own cross-entropies, so the gradient of each model's weights is exactly its own, and SGD (momentum,
Nesterov, weight decay) is elementwise, so one optimiser over the fused weights is K optimisers. What differs from K
separate runs is rounding: a grouped conv, a batched matmul and a BN over more channels may sum in another order than
their standalone counterparts (tests/test_fused.py measures how much).

How a pack of runs is stepped (fused through this network, or exactly, one network after another) is
:mod:`pblf.training.pack`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from typing import Any, Protocol

import torch
from torch import nn

from pblf.training.metanet import MetaDerivative, check_activation, meta_derivative
from pblf.training.model import BasicBlock, WideResNet
from pblf.training.wrn import wrn_layout

#: phi at a place where a member of the pack has no op: sigma'(h) = 0 * a(0 * h + 0) + 1 = 1 exactly for finite h,
#: and grad * 1 is grad, bit for bit (metanet's Standard test). A non-finite h makes that member's loss
#: non-finite, which ends its run anyway; nothing leaves its slice.
IDENTITY_PHI = (0.0, 0.0, 0.0, 1.0)


class Backward(Protocol):
    """What the fused network needs of a member's candidate: phi and the places where it acts
    (a :class:`pblf.core.candidate.Candidate` has both)."""

    @property
    def phi(self) -> tuple[float, float, float, float]: ...

    @property
    def places(self) -> tuple[bool, bool, bool, bool]: ...


@dataclass(frozen=True)
class MemberBackward:
    """A member's backward pass read off a standalone network's ops: phi exactly as the ops hold it (float32 values),
    where a :class:`Candidate` would round it to 6 decimals again."""

    phi: tuple[float, float, float, float]
    places: tuple[bool, bool, bool, bool]


# ------------------------------------------------------------------------------------------------------ the op


class FusedMetaDerivative(nn.Module):
    """The meta-network op at one place of a fused network: member k's channel slice gets sigma'_{phi_k}.

    The op is metanet's own :func:`meta_derivative`, applied to the activation viewed as (N, K, C, H, W) with a phi
    of shape (4, 1, K, 1, 1, 1): ``sigma_prime`` splits phi along its first dimension into w1, w2, b1, b2 of shape
    (1, K, 1, 1, 1), each broadcast over its member's slice. So the formula, its float32 evaluation under autocast and
    the memory format of the gradient are the standalone op's, element for element, and the views cost no copy.
    Members without an op at this place get :data:`IDENTITY_PHI`. phi is a non-persistent buffer, as in
    :class:`MetaDerivative`: it follows ``.to(device)`` and stays out of the state dict.
    """

    phi: torch.Tensor

    def __init__(self, phis: Sequence[tuple[float, float, float, float] | None], activation: str = "relu") -> None:
        super().__init__()
        check_activation(activation)
        self.activation = activation
        self.active = tuple(phi is not None for phi in phis)
        table = torch.tensor([IDENTITY_PHI if phi is None else phi for phi in phis], dtype=torch.float32)
        self.register_buffer("phi", table.t().reshape(4, 1, len(phis), 1, 1, 1).contiguous(), persistent=False)

    @property
    def size(self) -> int:
        return len(self.active)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return meta_derivative(h.unflatten(1, (self.size, -1)), self.phi, self.activation).flatten(1, 2)

    def member_phi(self, k: int) -> tuple[float, float, float, float] | None:
        """Member k's phi (the float32 values as Python floats, which convert back to the same float32), or None."""
        return tuple(self.phi[:, 0, k].flatten().tolist()) if self.active[k] else None  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return f"members={self.size}, active={''.join('1' if a else '0' for a in self.active)}, " \
               f"activation={self.activation}"


# ---------------------------------------------------------------------------------------------- the network


class FusedBlock(nn.Module):
    """K :class:`BasicBlock` side by side: BNs over K*C channels, grouped convs. The forward is BasicBlock's own."""

    def __init__(self, size: int, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        k = size
        self.bn1 = nn.BatchNorm2d(k * in_planes)
        self.conv1 = nn.Conv2d(k * in_planes, k * out_planes, 3, stride=stride, padding=1, bias=False, groups=k)
        self.bn2 = nn.BatchNorm2d(k * out_planes)
        self.conv2 = nn.Conv2d(k * out_planes, k * out_planes, 3, stride=1, padding=1, bias=False, groups=k)
        self.shortcut = (
            nn.Conv2d(k * in_planes, k * out_planes, 1, stride=stride, bias=False, groups=k)
            if stride != 1 or in_planes != out_planes
            else None
        )

    forward = BasicBlock.forward


class FusedLinear(nn.Module):
    """K linear layers ``in_features -> out_features`` in one batched matmul: (N, K * in) -> (N, K, out).

    The weight is (K * out, in) and the bias (K * out): member k's rows are the k-th slice along dimension 0, as for
    every other fused weight, so one rule (concatenate, slice) moves all weights between fused and standalone form."""

    def __init__(self, size: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.size, self.in_features, self.out_features = size, in_features, out_features
        self.weight = nn.Parameter(torch.empty(size * out_features, in_features))
        self.bias = nn.Parameter(torch.empty(size * out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.size
        x = x.unflatten(1, (k, self.in_features)).transpose(0, 1)  # (K, N, in)
        weight = self.weight.view(k, self.out_features, self.in_features).transpose(1, 2)  # (K, in, out)
        return torch.baddbmm(self.bias.view(k, 1, self.out_features), x, weight).transpose(0, 1)  # (N, K, out)


def _group(size: int, in_planes: int, out_planes: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(*(FusedBlock(size, in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1)
                           for i in range(blocks)))


class FusedWideResNet(nn.Module):
    """K WRN-``depth``-``widen_factor`` networks side by side; member k has ``candidates[k]``'s backward pass.

    The modules, their order and the state-dict keys are :class:`WideResNet`'s (the forward is WideResNet's own), each
    tensor K times longer along dimension 0, so :func:`load_model_weights` and :func:`model_state_dict` move weights
    between the two forms by concatenating and slicing. ``None`` as a candidate is a plain network. The constructor
    draws every member's weights with WideResNet's initialisation, but not the numbers K WideResNets built one after
    another would get: build a pack with :meth:`from_models` from the standalone networks (``pblf.training.train.initial_model``
    or a run's checkpoint), which also checks that the architectures agree.
    """

    def __init__(
        self,
        depth: int,
        widen_factor: int,
        num_classes: int,
        in_channels: int = 3,
        base_width: int = 16,
        candidates: Sequence[Backward | None] = (None,),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        blocks, widths = astuple(wrn_layout(depth, widen_factor, base_width))
        if not candidates:
            raise ValueError("a fused network needs at least one member")
        check_activation(activation)
        self.size = k = len(candidates)
        self.config = dict(depth=depth, widen_factor=widen_factor, num_classes=num_classes, in_channels=in_channels,
                           base_width=base_width)
        self.activation = activation

        # Every member reads the same images: one plain conv with K * width outputs is the grouped conv on the input
        # repeated K times, with the same weight layout, without the repeat.
        self.stem = nn.Conv2d(in_channels, k * widths[0], 3, padding=1, bias=False)
        self.group1 = _group(k, widths[0], widths[1], blocks, stride=1)
        self.group2 = _group(k, widths[1], widths[2], blocks, stride=2)
        self.group3 = _group(k, widths[2], widths[3], blocks, stride=2)
        self.bn = nn.BatchNorm2d(k * widths[3])
        self.fc = FusedLinear(k, widths[3], num_classes)
        phis = [[c.phi if c is not None and c.places[i] else None for c in candidates] for i in range(4)]
        #: metanet[i] sits at place i (pblf.core.names.PLACES); nn.Identity where no member has an op there.
        self.metanet = nn.ModuleList(
            FusedMetaDerivative(place, activation) if any(phi is not None for phi in place) else nn.Identity()
            for place in phis
        )
        self._init_weights()

    def _init_weights(self) -> None:
        """WideResNet's initialisation, member by member: a grouped conv's fan would count all K members."""
        k = self.size
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                for part in module.weight.data.chunk(k):
                    nn.init.kaiming_normal_(part, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, FusedLinear):
                for part in module.weight.data.chunk(k):
                    nn.init.kaiming_uniform_(part, a=math.sqrt(5))  # nn.Linear's default
                nn.init.zeros_(module.bias)

    forward = WideResNet.forward  # logits of shape (N, K, num_classes), from FusedLinear

    def member_backward(self, k: int) -> MemberBackward | None:
        """Member k's backward pass as the ops hold it (None for a plain network)."""
        phis = [op.member_phi(k) if isinstance(op, FusedMetaDerivative) else None for op in self.metanet]
        active = tuple(phi is not None for phi in phis)
        if not any(active):
            return None
        return MemberBackward(next(phi for phi in phis if phi is not None), active)  # type: ignore[arg-type]

    def member(self, k: int) -> WideResNet:
        """A standalone :class:`WideResNet` with member k's weights and backward pass, on this network's device.

        It is built with the global RNG state saved and restored (``pblf.training.train`` checkpoints that state, and a run's
        checkpoint must not depend on whether it trained in a pack)."""
        parameter = next(self.parameters())
        with torch.random.fork_rng(devices=[]):
            model = standalone_model(self.config, self.member_backward(k), self.activation)
        model = model.to(device=parameter.device, dtype=parameter.dtype)
        model.load_state_dict(model_state_dict(self, k))
        return model

    @classmethod
    def from_models(cls, models: Sequence[WideResNet]) -> "FusedWideResNet":
        """The fused network of K standalone networks: their architecture, their ops' phi (bit for bit) and their
        weights, on the first network's device and dtype."""
        if not models:
            raise ValueError("a pack needs at least one network")
        configs = [_architecture(model) for model in models]
        if any(config != configs[0] for config in configs):
            raise ValueError(f"the networks of a pack must have one architecture, not {configs}")
        activations = {op.activation for model in models for op in model.metanet if isinstance(op, MetaDerivative)}
        if len(activations) > 1:
            raise ValueError(f"the networks of a pack must share one meta-network activation, "
                             f"not {sorted(activations)}")
        parameter = next(models[0].parameters())
        with torch.random.fork_rng(devices=[]):  # the weights are overwritten: do not consume the global RNG
            fused = cls(**configs[0], candidates=[_backward_of(model) for model in models],
                        activation=activations.pop() if activations else "relu")
        fused = fused.to(device=parameter.device, dtype=parameter.dtype)
        load_model_weights(fused, [model.state_dict() for model in models])
        return fused


def _architecture(model: WideResNet) -> dict[str, int]:
    """The constructor arguments of a WideResNet, read off its modules."""
    base = model.stem.out_channels
    return dict(depth=6 * len(model.group1) + 4, widen_factor=model.group1[0].conv1.out_channels // base,
                num_classes=model.fc.out_features, in_channels=model.stem.in_channels, base_width=base)


def _backward_of(model: WideResNet) -> MemberBackward | None:
    ops = [op if isinstance(op, MetaDerivative) else None for op in model.metanet]
    if not any(ops):
        return None
    phis = {tuple(op.phi.tolist()) for op in ops if op is not None}
    if len(phis) != 1:
        raise ValueError(f"a WideResNet's ops share one phi; this one has {sorted(phis)}")
    return MemberBackward(phis.pop(), tuple(op is not None for op in ops))  # type: ignore[arg-type]


def standalone_model(config: Mapping[str, int], backward: Backward | None, activation: str = "relu") -> WideResNet:
    """A WideResNet of ``config`` (as :attr:`FusedWideResNet.config`) with ``backward``'s ops (freshly initialised)."""
    model = WideResNet(**config, candidate=None, activation=activation)
    if backward is not None:
        for i, active in enumerate(backward.places):
            if active:
                model.metanet[i] = MetaDerivative(backward.phi, activation)
    return model


# --------------------------------------------------------------------------------------- weights and optimiser


def fuse_state_dicts(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """K standalone state dicts -> one fused state dict: every tensor concatenated along dimension 0.

    A 0-dim tensor (BN's ``num_batches_tracked``) is one number for all members; the members of a pack have taken
    the same steps, so it must agree."""
    keys = list(states[0])
    for number, state in enumerate(states):
        if list(state) != keys:
            raise ValueError(f"state dict {number} has other keys than state dict 0: {sorted(set(state) ^ set(keys))}")
    fused = {}
    for key in keys:
        tensors = [state[key] for state in states]
        if tensors[0].dim() == 0:
            if any(not torch.equal(t, tensors[0]) for t in tensors):
                raise ValueError(f"{key} differs between the members ({[t.item() for t in tensors]}): they have not "
                                 "taken the same steps and cannot train as one pack")
            fused[key] = tensors[0].clone()
        else:
            fused[key] = torch.cat(tensors, 0)
    return fused


def split_state_dict(state: Mapping[str, torch.Tensor], size: int, k: int) -> dict[str, torch.Tensor]:
    """Member k's part of a fused state dict, as copies (a slice would make ``torch.save`` write the whole tensor)."""
    return {key: (value.chunk(size)[k] if value.dim() else value).clone() for key, value in state.items()}


def load_model_weights(fused: FusedWideResNet, states: Sequence[Mapping[str, torch.Tensor]]) -> None:
    """Copy K standalone WideResNet state dicts (member k = ``states[k]``) into ``fused``."""
    if len(states) != fused.size:
        raise ValueError(f"the fused network has {fused.size} members, not {len(states)}")
    fused.load_state_dict(fuse_state_dicts(states))


def model_state_dict(fused: FusedWideResNet, k: int) -> dict[str, torch.Tensor]:
    """Member k's weights and BN statistics as a state dict a standalone :class:`WideResNet` loads."""
    if not 0 <= k < fused.size:
        raise IndexError(f"the fused network has {fused.size} members; there is no member {k}")
    return split_state_dict(fused.state_dict(), fused.size, k)


def fuse_optimizer_states(states: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """K standalone optimiser state dicts (one parameter group over a WideResNet's parameters) -> the state dict of
    one optimiser over the fused parameters (same order). Per-parameter tensors (SGD's momentum buffers) are
    concatenated along dimension 0; everything else must agree between the members."""
    groups = [[{key: value for key, value in group.items() if key != "params"} for group in state["param_groups"]]
              for state in states]
    if any(g != groups[0] for g in groups):
        raise ValueError(f"the members' optimisers have different settings: {groups}")
    indices = set(states[0]["state"])
    if any(set(state["state"]) != indices for state in states):
        raise ValueError("some members' optimisers have momentum buffers and others not: they have not taken the "
                         "same steps and cannot train as one pack")
    fused_state: dict[int, dict[str, Any]] = {}
    for index in sorted(indices):
        entries = [state["state"][index] for state in states]
        fused_state[index] = {}
        for name, value in entries[0].items():
            values = [entry[name] for entry in entries]
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                fused_state[index][name] = torch.cat(values, 0)
            elif any(not _same(v, value) for v in values):
                raise ValueError(f"optimiser state {name} of parameter {index} differs between the members")
            else:
                fused_state[index][name] = value.clone() if isinstance(value, torch.Tensor) else value
    return {"state": fused_state, "param_groups": [dict(group) for group in states[0]["param_groups"]]}


def split_optimizer_state(state: Mapping[str, Any], size: int, k: int) -> dict[str, Any]:
    """Member k's optimiser state dict from a fused optimiser's ``state_dict()``: what a standalone optimiser over
    a WideResNet's parameters gives (and loads), so each run can write its own checkpoint."""
    return {
        "state": {index: {name: (value.chunk(size)[k].clone() if isinstance(value, torch.Tensor) and value.dim() > 0
                                 else value.clone() if isinstance(value, torch.Tensor) else value)
                          for name, value in entry.items()}
                  for index, entry in state["state"].items()},
        "param_groups": [dict(group) for group in state["param_groups"]],
    }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.equal(a, b)
    return a == b
