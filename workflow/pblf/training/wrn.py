"""The Wide ResNet's layout, the one place its rule is written: how many blocks a depth gives and how wide each part
is (Zagoruyko & Komodakis 2016). The plain network (:mod:`pblf.training.model`), the fused one
(:mod:`pblf.training.fused`) and the config check (:func:`pblf.plan.check`) all ask here; it imports no torch, so the
check costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pblf.core.errors import ConfigError


@dataclass(frozen=True)
class WRNLayout:
    """WRN-depth-k: ``blocks`` pre-activation basic blocks per group, and the widths of the stem and of groups 1-3."""

    blocks: int
    widths: tuple[int, int, int, int]


def wrn_layout(depth: int, widen_factor: int, base_width: int = 16) -> WRNLayout:
    """The layout of WRN-``depth``-``widen_factor`` with ``base_width`` stem channels (16 in the WRN paper): widths
    base, base*k, 2*base*k, 4*base*k. A depth that is not 4 plus a positive multiple of 6 is refused, naming the
    config key (a :class:`~pblf.core.errors.ConfigError`, also a ValueError)."""
    if depth < 10 or (depth - 4) % 6 != 0:
        raise ConfigError(f"config key model.depth: WRN depth {depth} is not valid: (depth - 4) must be a positive "
                          "multiple of 6 (10, 16, 22, 28, 40, ...)")
    k = widen_factor
    return WRNLayout((depth - 4) // 6, (base_width, base_width * k, 2 * base_width * k, 4 * base_width * k))
