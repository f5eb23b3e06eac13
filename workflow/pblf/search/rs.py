"""PBLF-RS: ``search.rs.samples`` random candidates in one batch (Section 6.2).

With pruning on, successive halving (:mod:`pblf.search.prune`): the batch trains to the first rung, and each later
iteration promotes the best 1/eta of the one before to the next rung, the last to the full budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pblf.search.method import PackClass, SearchCost, SearchMethod
from pblf.search.prune import promote, rs_batch_sizes, rs_rungs, rung_limits


class RandomSearch(SearchMethod):
    name = "PBLF-RS"
    section = "rs"
    in_thesis = True
    salt = 2

    def iterations(self, config: dict[str, Any], budget: int) -> int:
        return 1 + len(rs_rungs(budget, config["search"]["pruning"]))

    def _batch_sizes(self, config: dict[str, Any], n_rungs: int) -> list[int]:
        return rs_batch_sizes(config["search"]["rs"]["samples"], config["search"]["pruning"]["eta"], n_rungs)

    def cost(self, config: dict[str, Any], budget: int) -> SearchCost:
        rungs = rs_rungs(budget, config["search"]["pruning"])
        sizes, ends = self._batch_sizes(config, len(rungs)), [*rungs, budget]
        epochs = sum((sizes[k] - (sizes[k + 1] if k + 1 < len(sizes) else 0)) * ends[k] for k in range(len(sizes)))
        return SearchCost(sum(sizes), epochs, epochs, budget)

    def pack_classes(self, config: dict[str, Any]) -> list[PackClass]:
        ladder = max((len(rs_rungs(budget, config["search"]["pruning"])) for budget in config["budgets"]), default=0)
        return [PackClass(f"rs_{rung}", rung, count) for rung, count in enumerate(self._batch_sizes(config, ladder))]

    def propose(self, config: dict[str, Any], history: Sequence[Any], budget: int, iteration: int,
                seed: int) -> list[dict[str, Any]]:
        from pblf.search.gp import draw  # scikit-learn's import is paid only where a proposal is made

        search, pruning = config["search"], config["search"]["pruning"]
        if iteration == 0:
            entries = draw(history, search["rs"]["samples"], seed, salt=self.salt, phi_bound=search["phi_bound"])
        else:
            entries = promote(history, iteration, pruning["eta"])
        return rung_limits(entries, iteration, budget, pruning) if pruning["enabled"] else entries
