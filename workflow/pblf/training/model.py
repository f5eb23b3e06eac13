"""The target network: a Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016) with the meta-network op at four places.

The architecture follows the reference WRN code: pre-activation basic blocks, no dropout, widths
base | base*k | 2*base*k | 4*base*k, strides 1, 2, 2, then BN-ReLU, global average pooling and a linear classifier.
The thesis's four places (Section 2 of SPEC.md), in the bit order of a candidate's mode, are: after the stem conv,
after group 1, after group 2 and after group 3. The global average pool is a mean over the spatial dimensions, so
the same network runs on 32x32 CIFAR-10 images and on the 8x8 digits of the demo preset, and its backward pass is
deterministic on CUDA (adaptive_avg_pool2d's CUDA backward is not, and deterministic mode refuses it).
"""

from __future__ import annotations

from dataclasses import astuple
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pblf.core.candidate import Candidate
from pblf.core.names import PLACES
from pblf.training.metanet import MetaDerivative, check_activation
from pblf.training.wrn import wrn_layout



class BasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3-BN-ReLU-conv3x3, plus a shortcut.

    When the shape changes, a 1x1 conv shortcut is needed, and, as in the reference WRN code, it reads the
    *activated* input BN-ReLU(x) that the residual branch also reads; otherwise the shortcut is x itself.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.shortcut = (
            nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)
            if stride != 1 or in_planes != out_planes
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x), inplace=True)
        out = self.conv2(F.relu(self.bn2(self.conv1(activated)), inplace=True))
        return out + (x if self.shortcut is None else self.shortcut(activated))


def _group(in_planes: int, out_planes: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` basic blocks; only the first one changes width and resolution."""
    return nn.Sequential(
        *(BasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1) for i in range(blocks))
    )


class WideResNet(nn.Module):
    """WRN-``depth``-``widen_factor``, with the meta-network op at the places that ``candidate.mode`` turns on.

    ``candidate=None`` builds a plain WRN with no op at all. Otherwise every place whose mode bit is '1' gets its own
    :class:`MetaDerivative` holding the candidate's (shared) phi, and the other places get ``nn.Identity``. Neither
    has parameters, and the op's phi is not in the state dict, so every candidate gives the same ``state_dict`` keys
    and, from the same seed, the same initial weights as the plain network.
    """

    def __init__(
        self,
        depth: int,
        widen_factor: int,
        num_classes: int,
        in_channels: int = 3,
        base_width: int = 16,
        candidate: Candidate | None = None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        blocks, widths = astuple(wrn_layout(depth, widen_factor, base_width))
        check_activation(activation)

        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.group1 = _group(widths[0], widths[1], blocks, stride=1)
        self.group2 = _group(widths[1], widths[2], blocks, stride=2)
        self.group3 = _group(widths[2], widths[3], blocks, stride=2)
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        places = candidate.places if candidate is not None else (False,) * len(PLACES)
        #: metanet[i] sits at place i (pblf.core.names.PLACES): after the stem, group 1, group 2, group 3.
        self.metanet = nn.ModuleList(
            MetaDerivative(candidate.phi, activation) if candidate is not None and active else nn.Identity()
            for active in places
        )
        self._init_weights()

    def _init_weights(self) -> None:
        """The WRN paper's initialisation: He-normal convs (fan_out), BN as the identity, zero classifier bias."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.metanet[0](self.stem(x))
        x = self.metanet[1](self.group1(x))
        x = self.metanet[2](self.group2(x))
        x = self.metanet[3](self.group3(x))
        x = F.relu(self.bn(x), inplace=True).mean(dim=(2, 3))
        return self.fc(x)


def build_model(
    model_cfg: dict[str, Any], num_classes: int, in_channels: int, candidate: Candidate | None
) -> WideResNet:
    """The target network described by the ``model`` section of a validated config (which has every key filled)."""
    return WideResNet(
        depth=model_cfg["depth"],
        widen_factor=model_cfg["widen_factor"],
        num_classes=num_classes,
        in_channels=in_channels,
        base_width=model_cfg["base_width"],
        candidate=candidate,
        activation=model_cfg["metanet_activation"],
    )
