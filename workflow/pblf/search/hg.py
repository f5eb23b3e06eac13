"""PBLF-HG (beyond the thesis, its §7.1.1 future work): one training run learns phi and the mode by hypergradients.

Its search is a single proposal of a single run, which starts at Standard's sigma' and learns while it trains
(:mod:`pblf.training.hypergrad`); the candidate it learned is its choice. It samples nothing from the search space.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pblf.core.candidate import standard_candidate
from pblf.search.method import PackClass, SearchCost, SearchMethod


class Hypergradient(SearchMethod):
    name = "PBLF-HG"
    section = "hg"
    samples = False
    learns = True
    salt = 3

    def iterations(self, config: dict[str, Any], budget: int) -> int:
        return 1

    def cost(self, config: dict[str, Any], budget: int) -> SearchCost:
        # one run; each hypergradient step costs a few steps more, which Table 6.2's time measures
        return SearchCost(1, budget, budget, budget)

    def pack_classes(self, config: dict[str, Any]) -> list[PackClass]:
        return [PackClass("hg", 0, 1)]  # the learning run trains alone (pblf.training.train)

    def propose(self, config: dict[str, Any], history: Sequence[Any], budget: int, iteration: int,
                seed: int) -> list[dict[str, Any]]:
        """Standard, to start from, and under ``learn`` how to learn from it (the settings of ``search.hg`` and the
        box, carried in the proposal because the training job reads no search config)."""
        search = config["search"]
        return [{**standard_candidate(config).to_dict(), "source": "hypergradient",
                 "learn": {**search["hg"], "phi_bound": search["phi_bound"]}}]
