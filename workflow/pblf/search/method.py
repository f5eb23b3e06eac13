"""What a search method is: the one interface every way of choosing a candidate implements.

A method (PBLF-BO, PBLF-RS, PBLF-HG, or one a researcher adds) is a :class:`SearchMethod` registered in
:mod:`pblf.search.registry`. Everything that depends on which method it is lives in its own module and is reached
through this interface: how many proposals its search makes, how many training runs and epochs they cost, which of
its runs train together in a pack, and what each proposal holds (with how far each run trains, for low-fidelity
search). The plan, the proposer stage, the tables and the figures ask the registry and never branch on a method's
name, so a new method is its module, its section of the config schema, one line of the registry and the caption of
its figures (docs/development.md, "Adding a search method"). This is the shape of optuna's samplers: one small
interface, one shared test run against every implementation (``tests/test_search_methods.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pblf.core.seeding import derive_seed


@dataclass(frozen=True)
class SearchCost:
    """What one search trains: its training runs, the epochs they train at most, the epochs to expect (fewer with
    pruning), and the longest chain of epochs that must run one after another."""

    runs: int
    epochs: int
    expected: float
    chain: int


@dataclass(frozen=True)
class PackClass:
    """Runs of one search that may train together in a pack: those of ``iteration`` (an iteration number, or the
    wildcard ``{iteration}`` for every iteration that ``constraints`` admit), ``count`` of them; ``name`` names the
    pack rule (``train_<name>_<part>``)."""

    name: str
    iteration: int | str
    count: int
    constraints: tuple[tuple[str, str], ...] = ()


class SearchMethod(ABC):
    """One way of choosing a candidate for a budget (Algorithm 2's outer loop, or what replaces it)."""

    #: The method's name in tables, figures, files and the config ("PBLF-BO").
    name: ClassVar[str]
    #: Its section of the config's ``search`` (``search.bo``), or None for a method without settings.
    section: ClassVar[str | None] = None
    #: The thesis compares it: tables and figures list the thesis's methods first, then Standard, then the others.
    in_thesis: ClassVar[bool] = False
    #: It samples candidates from the search space (Figure 6.3 draws what it sampled).
    samples: ClassVar[bool] = True
    #: Its search run learns its candidate while it trains (PBLF-HG): the hypergradient figure draws such runs.
    learns: ClassVar[bool] = False
    #: Salts the proposer's seed, so that two methods given the same seed do not draw the same candidates.
    salt: ClassVar[int]

    @abstractmethod
    def iterations(self, config: dict[str, Any], budget: int) -> int:
        """How many proposals the search at ``budget`` makes (iteration 0, 1, ...)."""

    @abstractmethod
    def cost(self, config: dict[str, Any], budget: int) -> SearchCost:
        """What the search at ``budget`` trains."""

    @abstractmethod
    def pack_classes(self, config: dict[str, Any]) -> list[PackClass]:
        """Which of its runs may train together, for packs (``resources.runs_per_job`` > 1)."""

    @abstractmethod
    def propose(self, config: dict[str, Any], history: Sequence[Any], budget: int, iteration: int,
                seed: int) -> list[dict[str, Any]]:
        """The proposal of ``iteration``: entries of ``candidate.to_dict()`` plus ``source``, and what a training
        run needs to know (``until``, ``stop_below``, ``resume``, ``learn``), given the evaluated candidates so
        far (``history``, :class:`pblf.search.gp.Observation`) and the proposal's ``seed``."""


def proposal_seed(config: dict[str, Any], budget: int, method: str, search: int, iteration: int) -> int:
    """The proposer's seed: distinct per search (budget, method and which of its ``search.repeats``) and iteration,
    32-bit for scikit-learn's random_state. Search 0 is seeded as the thesis's single search always was."""
    return derive_seed(config["seed"], "propose", budget, method, iteration, *([search] if search else [])) % 2**32
