"""``pblf propose``: one proposal of one search, made by its method (:mod:`pblf.search.registry`).

Each BO iteration is a Snakemake checkpoint that runs this stage once; its output decides the training runs of the
iteration. How many candidates, the seed and every setting come from the config (``search``), so a rule passes only
what varies per job, and the same inputs always give the same bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pblf.core.candidate import write_proposal
from pblf.core.config import load_config, stage_config
from pblf.core.errors import ConfigError
from pblf.core.layout import PROPOSAL
from pblf.core.provenance import Outcome
from pblf.search.gp import read_history
from pblf.search.method import proposal_seed
from pblf.search.registry import search_method

log = logging.getLogger(__name__)


def stage_propose(config: list[Path], history: Path, budget: int, method: str, iteration: int, out: Path,
                  search: int = 0) -> Outcome:
    """``pblf propose``: the proposal of iteration ``iteration`` of search ``search`` of ``method`` at ``budget``,
    written to ``out/proposal.json``."""
    cfg = load_config(config)
    searcher = search_method(method)
    iterations = searcher.iterations(cfg, budget)
    if not 0 <= iteration < iterations:
        raise ConfigError(f"--iteration {iteration}: {method} at {budget} epochs makes {iterations} proposal(s), "
                          f"iterations 0 to {iterations - 1}")
    if not 0 <= search < cfg["search"]["repeats"]:
        raise ConfigError(f"--search {search}: search.repeats is {cfg['search']['repeats']}, so searches 0 to "
                          f"{cfg['search']['repeats'] - 1}")
    seed = proposal_seed(cfg, budget, method, search, iteration)
    observations = read_history(history)
    candidates = searcher.propose(cfg, observations, budget, iteration, seed)
    path = write_proposal(Path(out) / PROPOSAL, candidates)
    sources = ", ".join(sorted({c["source"] + (" (replaced)" if "replaced" in c else "") for c in candidates}))
    log.info("%s at %d epochs, search %d, iteration %d: %d candidates (%s) from %d evaluated -> %s", method, budget,
             search, iteration, len(candidates), sources or "nothing", len(observations), path)
    return Outcome(stage_config(cfg, "search"), {"proposal": {"budget": budget, "method": method, "search": search,
                                                              "iteration": iteration, "seed": seed}})
