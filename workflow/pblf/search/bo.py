"""PBLF-BO (Section 6.1): a random initial batch, then a Gaussian-process surrogate proposes each iteration.

Iteration 0 draws ``search.bo.initial`` random candidates; each of the ``search.bo.iterations`` iterations after it
proposes ``n_acq`` maximisers of the acquisition (UCB or EI, :mod:`pblf.search.gp`) and ``n_random`` random
candidates. Each iteration is a Snakemake checkpoint, so the search is a chain of ``1 + iterations`` budgets. With
pruning on, every proposal carries the median stopping rule's thresholds (:mod:`pblf.search.prune`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pblf.search.method import PackClass, SearchCost, SearchMethod
from pblf.search.prune import expected_median_rule, median_stops, rung_epochs


class BayesianOptimisation(SearchMethod):
    name = "PBLF-BO"
    section = "bo"
    in_thesis = True
    salt = 1

    def iterations(self, config: dict[str, Any], budget: int) -> int:
        return 1 + config["search"]["bo"]["iterations"]

    @staticmethod
    def proposal_sizes(config: dict[str, Any], iteration: int) -> tuple[int, int]:
        """(acquisition candidates, random candidates) of one proposal: the initial batch is random."""
        bo = config["search"]["bo"]
        return (0, bo["initial"]) if iteration == 0 else (bo["n_acq"], bo["n_random"])

    def cost(self, config: dict[str, Any], budget: int) -> SearchCost:
        bo, pruning = config["search"]["bo"], config["search"]["pruning"]
        rungs = rung_epochs(budget, pruning["rungs"]) if pruning["enabled"] else []
        initial, later = bo["initial"], bo["iterations"] * (bo["n_acq"] + bo["n_random"])
        expected = initial * budget + later * (expected_median_rule(budget, rungs) if rungs else budget)
        return SearchCost(initial + later, (initial + later) * budget, expected, (1 + bo["iterations"]) * budget)

    def pack_classes(self, config: dict[str, Any]) -> list[PackClass]:
        bo = config["search"]["bo"]
        later = [PackClass("bo", "{iteration}", bo["n_acq"] + bo["n_random"], (("iteration", r"(?!000)\d{3}"),))]
        return [PackClass("bo_initial", 0, bo["initial"]), *(later if bo["iterations"] else [])]

    def propose(self, config: dict[str, Any], history: Sequence[Any], budget: int, iteration: int,
                seed: int) -> list[dict[str, Any]]:
        from pblf.search.gp import propose  # scikit-learn's import is paid only where a proposal is made

        search, bo = config["search"], config["search"]["bo"]
        n_acq, n_random = self.proposal_sizes(config, iteration)
        entries = propose(history, n_acq, n_random, seed, salt=self.salt, beta=bo["beta"],
                          acquisition=bo["acquisition"], xi=bo["xi"], phi_bound=search["phi_bound"],
                          min_distance=bo["min_distance"])
        return median_stops(entries, budget, search["pruning"], history) if search["pruning"]["enabled"] \
            else entries
