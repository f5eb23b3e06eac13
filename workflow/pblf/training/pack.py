"""Packs: K training runs of one seed stepped together, each its own run in every other respect.

With common random numbers every run trained with seed s starts from the same weights and sees the same batches, so
a pack's runs differ only in their candidate. A :class:`Pack` takes their K standalone networks and optimiser states,
steps all of them on one batch, and gives each member's weights and optimiser state back in standalone form for its
own checkpoint. Two kinds:

* :class:`FusedPack`: one fused network (:mod:`pblf.training.fused`, HFTA) holds the K models side by side and one
  step trains all of them; equal to K separate runs up to float rounding, and what keeps a large GPU busy;
* :class:`ExactPack`: the K standalone networks stepped one after another in one process, bit for bit K separate
  runs; it saves the process start, the imports and the data loading of every run but one.

A caller that must reproduce single runs exactly chooses exact, one that wants throughput chooses fused
(``resources.pack``; ``auto`` is fused on CUDA). The loss of a pack is the sum of its members' own cross-entropies
(:func:`pack_losses`), so each member's gradient is exactly its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from pblf.core.config import allowed
from pblf.training.fused import FusedWideResNet, fuse_optimizer_states, model_state_dict, split_optimizer_state
from pblf.training.model import WideResNet

PackKind = Literal["fused", "exact"]
#: The kinds of pack (``resources.pack`` allows them, and ``auto``).
PACK_KINDS: tuple[str, ...] = tuple(kind for kind in allowed("resources.pack") if kind != "auto")


def pack_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The K members' cross-entropies, shape (K,). Each is the very call ``pblf.training.train`` makes on one network's logits
    (member k's logits ``logits[:, k]``, a contiguous block): a pack's loss is their sum, whose gradient with respect
    to each member's logits is 1 times its own."""
    return torch.stack([F.cross_entropy(logits[:, k], labels) for k in range(logits.shape[1])])


def sgd_options(train_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The SGD settings ``pblf.training.train`` uses, from the config's ``train`` section."""
    return {"lr": train_cfg["lr"], "momentum": train_cfg["momentum"], "nesterov": train_cfg["nesterov"],
            "weight_decay": train_cfg["weight_decay"]}


@dataclass
class PackStep:
    """What one training step of a pack gives back.

    ``losses[k]`` and ``logits[:, k]`` are member k's, as one run's step gives them (a member that diverged in an
    earlier step has NaN there: it was not trained). ``diverged`` lists the members whose loss became non-finite in
    this step: like a single run, which returns before its backward pass, they were left as they were before the step
    (their BN statistics have seen the batch, as in a single run), and the pack trains them no more."""

    losses: torch.Tensor
    logits: torch.Tensor
    diverged: list[int]


class Pack(ABC):
    """K runs of one seed (the same weights and batches) that differ only in their candidate, trained together.

    Both kinds take the K standalone networks (``pblf.training.train.initial_model`` or loaded from checkpoints) and optional
    optimiser state dicts (from checkpoints; all members at the same step), give each member's weights and optimiser
    state back in standalone form for its own checkpoint, and step all members on one batch."""

    kind: PackKind

    def __init__(self, size: int) -> None:
        self.live = [True] * size

    @property
    def size(self) -> int:
        return len(self.live)

    @abstractmethod
    def set_lr(self, lr: float) -> None:
        """Set every member's learning rate (``pblf.training.train.learning_rate`` is a function of the epoch alone)."""

    @abstractmethod
    def train(self, mode: bool = True) -> None: ...

    def eval(self) -> None:
        self.train(False)

    @abstractmethod
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, K, classes), in the current mode."""

    @abstractmethod
    def step(self, images: torch.Tensor, labels: torch.Tensor,
             autocast: Mapping[str, Any] | None = None) -> PackStep:
        """One SGD step of every live member on (images, labels), as ``pblf.training.train._train_epoch`` steps one network:
        forward and loss under ``autocast`` (torch.autocast's arguments), a finiteness check, zero_grad,
        backward, step."""

    @abstractmethod
    def model_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weights as a standalone WideResNet state dict (at its divergence, for a diverged member)."""

    @abstractmethod
    def optimizer_state_dict(self, k: int) -> dict[str, Any]:
        """Member k's optimiser state as a standalone SGD state dict."""

    @abstractmethod
    def standalone(self, k: int) -> WideResNet:
        """Member k as a standalone network (e.g. to evaluate a diverged member, whose run ends there)."""

    def select(self, members: Sequence[int]) -> "Pack":
        """A pack of the same kind holding only ``members`` (e.g. the live ones after a divergence, so that a dead
        member costs no compute), with their weights and optimiser states; member i of the new pack is
        ``members[i]`` of this one."""
        chosen = self._select(members)
        chosen.live = [self.live[k] for k in members]
        return chosen

    @abstractmethod
    def _select(self, members: Sequence[int]) -> "Pack": ...

    @torch.no_grad()
    def accuracy(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                 autocast: Mapping[str, Any] | None = None) -> list[float]:
        """Top-1 accuracy in percent of every member on ``batches`` in eval mode (``pblf.training.train.evaluate`` for K
        networks; pass ``part.batches(eval_batch_size)``). A diverged member is evaluated as it was when it diverged,
        as its single run does."""
        self.eval()
        correct = torch.zeros(self.size, dtype=torch.long)
        seen = 0
        try:
            for images, labels in batches:
                with _autocast(autocast):
                    logits = self.forward(images)
                correct += (logits.argmax(2) == labels[:, None]).sum(0).cpu()
                seen += len(labels)
        finally:
            self.train()
        return [100.0 * int(c) / max(seen, 1) for c in correct]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward(images)


def _autocast(autocast: Mapping[str, Any] | None) -> Any:
    return torch.autocast(**autocast) if autocast else nullcontext()


class FusedPack(Pack):
    """The K members in one :class:`FusedWideResNet` with one SGD optimiser: one forward and one backward per step.

    A member whose loss becomes non-finite is saved (weights and optimiser state, as before the step) and its slice of
    every weight, buffer and momentum buffer is set to zero, which stays zero (zero weights give zero activations,
    finite losses and zero gradients) so that it cannot send NaN through later steps; :meth:`model_state_dict` and
    :meth:`optimizer_state_dict` return the saved state, :meth:`select` drops it."""

    kind: PackKind = "fused"

    def __init__(self, models: Sequence[WideResNet], optimizer_states: Sequence[Mapping[str, Any]] | None = None,
                 *, channels_last: bool = False, compile: str | None = None, **sgd: Any) -> None:
        super().__init__(len(models))
        self.network = FusedWideResNet.from_models(models)
        if channels_last:
            self.network = self.network.to(memory_format=torch.channels_last)
        self.network.train(models[0].training)
        self.sgd = dict(sgd)
        self.channels_last, self.compile = channels_last, compile
        self.optimizer = torch.optim.SGD(self.network.parameters(), **sgd)
        if optimizer_states is not None:
            if len(optimizer_states) != self.size:
                raise ValueError(f"{self.size} networks but {len(optimizer_states)} optimiser states")
            self.optimizer.load_state_dict(fuse_optimizer_states(optimizer_states))
        self._forward = torch.compile(self.network, mode=compile) if compile else self.network
        #: member -> (weights, optimiser state) when it diverged
        self._frozen: dict[int, tuple[dict[str, torch.Tensor], dict[str, Any]]] = {}
        self._frozen_models: dict[int, WideResNet] = {}

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def train(self, mode: bool = True) -> None:
        self.network.train(mode)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self._forward(images)
        if self._frozen and not self.network.training:  # a dead member's slice holds zeros: ask its saved network
            logits = logits.clone()
            for k in self._frozen:
                logits[:, k] = self._frozen_model(k)(images).to(logits.dtype)
        return logits

    def step(self, images: torch.Tensor, labels: torch.Tensor,
             autocast: Mapping[str, Any] | None = None) -> PackStep:
        with _autocast(autocast):
            logits = self._forward(images)
            member_losses = [F.cross_entropy(logits[:, k], labels) for k in range(self.size)]  # = pack_losses
        losses = torch.stack(member_losses).detach()
        finite = torch.isfinite(losses).tolist()
        diverged = [k for k in range(self.size) if self.live[k] and not finite[k]]
        for k in diverged:
            self._frozen[k] = (model_state_dict(self.network, k),
                               split_optimizer_state(self.optimizer.state_dict(), self.size, k))
            self.live[k] = False
        training = [k for k in range(self.size) if self.live[k]]
        if training:
            self.optimizer.zero_grad(set_to_none=True)
            # the dead members' losses are left out of the sum: no gradient reaches their slices from them
            torch.stack([member_losses[k] for k in training]).sum().backward()
            self.optimizer.step()
        for k in diverged:
            self._zero_member(k)
        dead_before = [k for k in range(self.size) if k not in training and k not in diverged]
        if dead_before:
            losses[dead_before] = float("nan")
        return PackStep(losses, logits.detach(), diverged)

    @torch.no_grad()
    def _zero_member(self, k: int) -> None:
        for tensor in self.network.state_dict(keep_vars=True).values():  # weights and BN buffers, not phi
            if tensor.dim():
                tensor.chunk(self.size)[k].zero_()
        for state in self.optimizer.state.values():
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.dim():
                    value.chunk(self.size)[k].zero_()

    def model_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        return self._frozen[k][0] if k in self._frozen else model_state_dict(self.network, k)

    def optimizer_state_dict(self, k: int) -> dict[str, Any]:
        if k in self._frozen:
            return self._frozen[k][1]
        return split_optimizer_state(self.optimizer.state_dict(), self.size, k)

    def standalone(self, k: int) -> WideResNet:
        model = self.network.member(k)
        if k in self._frozen:
            model.load_state_dict(self._frozen[k][0])
        return model

    def _frozen_model(self, k: int) -> WideResNet:
        """The diverged member k as a standalone network, built once, in eval mode (only evaluation asks for it)."""
        if k not in self._frozen_models:
            self._frozen_models[k] = self.standalone(k).eval()
        return self._frozen_models[k]

    def _select(self, members: Sequence[int]) -> "FusedPack":
        models = [self.standalone(k) for k in members]
        for model in models:
            model.train(self.network.training)
        return FusedPack(models, [self.optimizer_state_dict(k) for k in members], channels_last=self.channels_last,
                         compile=self.compile, **self.sgd)


class ExactPack(Pack):
    """The K standalone networks and their optimisers, stepped one after another on the same batch: no fusion, and
    by construction bit for bit K separate runs (the same calls on the same numbers). Same interface as
    :class:`FusedPack`."""

    kind: PackKind = "exact"

    def __init__(self, models: Sequence[WideResNet], optimizer_states: Sequence[Mapping[str, Any]] | None = None,
                 *, channels_last: bool = False, compile: str | None = None, **sgd: Any) -> None:
        super().__init__(len(models))
        self.models = list(models)
        if channels_last:
            self.models = [model.to(memory_format=torch.channels_last) for model in self.models]
        self.sgd = dict(sgd)
        self.channels_last, self.compile = channels_last, compile
        self.optimizers = [torch.optim.SGD(model.parameters(), **sgd) for model in self.models]
        if optimizer_states is not None:
            if len(optimizer_states) != self.size:
                raise ValueError(f"{self.size} networks but {len(optimizer_states)} optimiser states")
            for optimizer, state in zip(self.optimizers, optimizer_states, strict=True):
                optimizer.load_state_dict(state)
        self._forwards = [torch.compile(model, mode=compile) if compile else model for model in self.models]

    def set_lr(self, lr: float) -> None:
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = lr

    def train(self, mode: bool = True) -> None:
        for model in self.models:
            model.train(mode)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([forward(images) for forward in self._forwards], 1)

    def step(self, images: torch.Tensor, labels: torch.Tensor,
             autocast: Mapping[str, Any] | None = None) -> PackStep:
        losses: list[torch.Tensor | None] = []
        logits: list[torch.Tensor | None] = []
        diverged = []
        for k, (forward, optimizer) in enumerate(zip(self._forwards, self.optimizers, strict=True)):
            if not self.live[k]:
                losses.append(None)
                logits.append(None)
                continue
            with _autocast(autocast):
                member_logits = forward(images)
                loss = F.cross_entropy(member_logits, labels)
            losses.append(loss.detach())
            logits.append(member_logits.detach())
            if not torch.isfinite(loss):
                diverged.append(k)
                self.live[k] = False
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return PackStep(_stack_or_nan(losses, ()), _stack_or_nan(logits, (len(labels), self._classes)), diverged)

    @property
    def _classes(self) -> int:
        return self.models[0].fc.out_features

    def model_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        return self.models[k].state_dict()

    def optimizer_state_dict(self, k: int) -> dict[str, Any]:
        return self.optimizers[k].state_dict()

    def standalone(self, k: int) -> WideResNet:
        return self.models[k]

    def _select(self, members: Sequence[int]) -> "ExactPack":
        chosen = ExactPack.__new__(ExactPack)
        Pack.__init__(chosen, len(members))
        chosen.models = [self.models[k] for k in members]
        chosen.optimizers = [self.optimizers[k] for k in members]
        chosen._forwards = [self._forwards[k] for k in members]
        chosen.sgd, chosen.channels_last, chosen.compile = self.sgd, self.channels_last, self.compile
        return chosen


def _stack_or_nan(tensors: Sequence[torch.Tensor | None], shape: tuple[int, ...]) -> torch.Tensor:
    """Stack members' tensors along dimension ``len(shape) > 0`` (the member axis of logits) or 0 (losses), with NaN
    for the members that were not trained."""
    like = next((t for t in tensors if t is not None), None)
    if like is None:
        like = torch.empty(shape)
    filled = [t if t is not None else torch.full_like(like, float("nan")) for t in tensors]
    return torch.stack(filled, 1 if like.dim() else 0)


def make_pack(kind: PackKind, models: Sequence[WideResNet],
              optimizer_states: Sequence[Mapping[str, Any]] | None = None, *, channels_last: bool = False,
              compile: str | None = None, **sgd: Any) -> Pack:
    """A pack of ``kind`` ("fused": throughput; "exact": bit for bit K separate runs) over ``models``, with one SGD
    per member of settings ``sgd`` (:func:`sgd_options`) and, when resuming, the members' optimiser states.
    ``compile`` is a ``torch.compile`` mode ("default", "reduce-overhead": CUDA graphs, ...) or None for eager."""
    if kind == "fused":
        return FusedPack(models, optimizer_states, channels_last=channels_last, compile=compile, **sgd)
    if kind == "exact":
        return ExactPack(models, optimizer_states, channels_last=channels_last, compile=compile, **sgd)
    raise ValueError(f"unknown pack kind {kind!r}; allowed: {', '.join(PACK_KINDS)}")
