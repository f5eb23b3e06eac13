"""Tests of the proposer PBLF-BO and PBLF-RS share (pblf.search.gp): the GP, its acquisition, random draws."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pblf.core.candidate import Candidate, write_proposal
from pblf.core.config import validate
from pblf.search.bo import BayesianOptimisation
from pblf.search.gp import propose as propose_with
from pblf.search.gp import (
    MODES,
    Observation,
    Surrogate,
    acquisition_function,
    draw,
    encode,
    expected_improvement,
    fit_surrogate,
    random_candidates,
    rank_acquisition,
    read_history,
    ucb,
)
from pblf.search.rs import RandomSearch

#: The search settings of the schema's defaults, the only place a default is written.
SEARCH = validate({})["search"]
DEFAULTS = dict(beta=SEARCH["bo"]["beta"], acquisition=SEARCH["bo"]["acquisition"], xi=SEARCH["bo"]["xi"],
                phi_bound=SEARCH["phi_bound"], min_distance=SEARCH["bo"]["min_distance"])


def propose(method, history, n_acq, n_random, seed, **settings):
    """A proposal as PBLF-BO ("bo": pblf.search.gp.propose) or PBLF-RS ("rs": pblf.search.gp.draw, every slot
    random) makes it, with the schema's defaults for every setting a test does not name."""
    settings = {**DEFAULTS, **settings}
    if method == "rs":
        return draw(history, n_acq + n_random, seed, salt=RandomSearch.salt, phi_bound=settings["phi_bound"])
    return propose_with(history, n_acq, n_random, seed, salt=BayesianOptimisation.salt, **settings)

#: Smaller optimiser settings where a test is about behaviour, not about the quality of the optimum.
FAST = dict(pool_size=512, n_restarts=1, n_polish=2)
OPTIMUM_PHI = np.array([0.35, -0.4, 0.2, 0.55])
PHI_WEIGHTS = np.array([1.0, 0.6, 0.3, 0.8])


def synthetic_top1(candidate: Candidate) -> float:
    """A smooth stand-in for Top-1 validation over the mixed space: a quadratic bowl in phi plus a mode-dependent
    offset with one interaction; its maximum, 71, is at OPTIMUM_PHI in mode 1011."""
    bits = [int(b) for b in candidate.mode]
    bowl = float(np.sum(PHI_WEIGHTS * (np.array(candidate.phi) - OPTIMUM_PHI) ** 2))
    return 60.0 - 15.0 * bowl + 6 * bits[0] - 4 * bits[1] + 3 * bits[2] + 2 * bits[2] * bits[3]


def observe(candidates: list[Candidate]) -> list[Observation]:
    return [Observation(c, synthetic_top1(c)) for c in candidates]


def random_history(n: int, seed: int = 0) -> list[Observation]:
    return observe(random_candidates(n, np.random.default_rng(seed), 1.0))


def as_candidates(proposals: list[dict]) -> list[Candidate]:
    return [Candidate.from_dict(p) for p in proposals]


def assert_valid(proposals: list[dict], history: list[Observation], phi_bound: float) -> None:
    """Inside the open box, a valid mode, never an evaluated candidate, no duplicates in the batch."""
    candidates = as_candidates(proposals)
    for c in candidates:
        assert all(abs(v) < phi_bound for v in c.phi), c
        assert c.mode in MODES
    assert len(set(candidates)) == len(candidates)
    assert not set(candidates) & {o.candidate for o in history}


# --- random candidates and bounds --------------------------------------------------------------------------------


@pytest.mark.parametrize("phi_bound", [1.0, 0.5, 0.001])
def test_random_candidates_stay_inside_the_open_box(phi_bound):
    candidates = random_candidates(400, np.random.default_rng(1), phi_bound)
    assert len(set(candidates)) == 400
    assert all(abs(v) < phi_bound for c in candidates for v in c.phi)
    assert {c.mode for c in candidates} == set(MODES)


def test_an_exhausted_box_is_an_error_not_an_endless_loop():
    # |phi| < 1.0000001e-6 rounds every phi to 0: 16 candidates, one per mode.
    assert len(random_candidates(16, np.random.default_rng(0), 1.0000001e-6)) == 16
    with pytest.raises(ValueError, match="exhausted"):
        random_candidates(17, np.random.default_rng(0), 1.0000001e-6)


def test_random_candidates_skip_excluded():
    first = random_candidates(5, np.random.default_rng(3), 1.0)
    again = random_candidates(5, np.random.default_rng(3), 1.0, exclude=first[:2])
    assert not set(again) & set(first[:2])
    assert again[:3] == first[2:]


def test_rs_proposes_only_random_candidates_in_bounds():
    history = random_history(10)
    proposals = propose("rs", history, n_acq=3, n_random=4, seed=7, phi_bound=0.5)
    assert len(proposals) == 7
    assert {p["source"] for p in proposals} == {"random"}
    assert_valid(proposals, history, 0.5)


@pytest.mark.parametrize("acquisition", ["ucb", "ei"])
def test_bo_proposes_acquisition_then_random_in_bounds(acquisition):
    history = random_history(15)
    proposals = propose("bo", history, n_acq=2, n_random=2, seed=3, acquisition=acquisition, phi_bound=0.5, **FAST)
    assert [p["source"] for p in proposals] == [acquisition, acquisition, "random", "random"]
    assert_valid(proposals, history, 0.5)
    assert set(proposals[0]) == {"w1", "w2", "b1", "b2", "mode", "source"}


# --- determinism -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["bo", "rs"])
def test_same_inputs_give_byte_identical_proposals_and_seeds_matter(method, tmp_path):
    history = random_history(12)
    paths = []
    for run, seed in enumerate([5, 5, 6]):
        paths.append(tmp_path / f"proposal_{run}.json")
        write_proposal(paths[-1], propose(method, history, n_acq=2, n_random=1, seed=seed))
    texts = [p.read_bytes() for p in paths]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]
    assert texts[0].endswith(b"}\n")
    assert texts[0].decode() == json.dumps(json.loads(texts[0]), sort_keys=True, indent=2) + "\n"
    assert len(json.loads(texts[0])["candidates"]) == 3


def test_bo_and_rs_with_the_same_seed_draw_different_random_candidates():
    bo = propose("bo", [], n_acq=0, n_random=3, seed=0)
    rs = propose("rs", [], n_acq=0, n_random=3, seed=0)
    assert as_candidates(bo) != as_candidates(rs)


# --- awkward histories -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_points", [0, 1])
def test_bo_without_two_observations_proposes_random(n_points):
    history = random_history(n_points)
    proposals = propose("bo", history, n_acq=2, n_random=1, seed=0)
    assert [p["source"] for p in proposals] == ["random"] * 3
    assert_valid(proposals, history, 1.0)


def test_fewer_points_than_inputs():
    history = random_history(3)
    proposals = propose("bo", history, n_acq=1, n_random=1, seed=0, **FAST)
    assert [p["source"] for p in proposals] == ["ucb", "random"]
    assert_valid(proposals, history, 1.0)


def test_duplicate_inputs():
    history = random_history(6)
    history += [Observation(history[0].candidate, history[0].val_top1 + 1.0), history[1], history[1]]
    proposals = propose("bo", history, n_acq=2, n_random=0, seed=0, **FAST)
    assert [p["source"] for p in proposals] == ["ucb", "ucb"]
    assert_valid(proposals, history, 1.0)


@pytest.mark.parametrize("acquisition", ["ucb", "ei"])
def test_constant_targets(acquisition):
    history = [Observation(o.candidate, 42.0) for o in random_history(8)]
    proposals = propose("bo", history, n_acq=2, n_random=1, seed=0, acquisition=acquisition, **FAST)
    assert [p["source"] for p in proposals] == [acquisition, acquisition, "random"]
    assert_valid(proposals, history, 1.0)


def test_diverged_candidate_with_chance_level_top1_is_fitted_like_any_other():
    history = random_history(10)
    history.append(Observation(Candidate(0.9, -0.9, 0.9, -0.9, "1111"), 10.0))
    proposals = propose("bo", history, n_acq=1, n_random=1, seed=0, **FAST)
    assert proposals[0]["source"] == "ucb"
    assert_valid(proposals, history, 1.0)


def test_non_finite_targets_are_dropped_with_a_warning_but_never_proposed_again():
    history = random_history(6)
    history += [Observation(Candidate(0.1, 0.1, 0.1, 0.1, "0000"), math.nan)]
    history += [Observation(Candidate(0.2, 0.2, 0.2, 0.2, "0000"), None)]  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="2 observation"):
        proposals = propose("bo", history, n_acq=1, n_random=1, seed=0, **FAST)
    assert_valid(proposals, history, 1.0)


def test_only_one_finite_target_means_random():
    history = [Observation(c, math.nan) for c in random_candidates(4, np.random.default_rng(0), 1.0)]
    history[0] = Observation(history[0].candidate, 50.0)
    with pytest.warns(UserWarning):
        proposals = propose("bo", history, n_acq=1, n_random=0, seed=0)
    assert proposals[0]["source"] == "random"


def corner_history() -> list[Observation]:
    """Top-1 rising along the diagonal of mode 1111 towards the corner, far higher at the corner itself, and low
    elsewhere."""
    rng = np.random.default_rng(2)
    history = [
        Observation(Candidate(t, t, t, t, "1111"), 50.0 + 20.0 * t) for t in np.linspace(-0.8, 0.9, 8).round(3)
    ]
    history += [Observation(c, 30.0 + 5.0 * rng.random()) for c in random_candidates(6, rng, 1.0)]
    history.append(Observation(Candidate(0.999999, 0.999999, 0.999999, 0.999999, "1111"), 95.0))
    return history


def test_acquisition_optimum_at_an_evaluated_candidate_is_not_proposed_again():
    history = corner_history()
    best = history[-1].candidate
    surrogate = fit_surrogate(history, seed=0, phi_bound=1.0, n_restarts=1)
    y = np.array([o.val_top1 for o in history])
    score = acquisition_function(surrogate, y, "ucb", beta=0.0, xi=0.0)
    starts = encode([best], 1.0)
    ranked = rank_acquisition(score, np.random.default_rng(0), 1.0, starts, pool_size=512, n_polish=2)
    assert ranked[0][1] == best  # the test bites: the acquisition's maximiser is the evaluated corner
    proposals = propose("bo", history, n_acq=3, n_random=0, seed=0, beta=0.0, **FAST)
    assert_valid(proposals, history, 1.0)
    assert [p["source"] for p in proposals] == ["ucb"] * 3
    assert proposals[0]["replaced"] == "next-best"  # the maximiser was the evaluated corner: the next distinct one
    X = encode(as_candidates(proposals), 1.0)
    taken = encode([o.candidate for o in history], 1.0)
    for i, x in enumerate(X):  # no proposal is within min_distance of an evaluated candidate or of the batch
        others = np.vstack([taken, np.delete(X, i, axis=0)])
        assert np.linalg.norm(others - x, axis=1).min() >= DEFAULTS["min_distance"]


def test_a_proposal_next_to_an_observation_is_replaced_and_says_so():
    """The maximiser that sits *near* (not on) the best observation is replaced too, within min_distance."""
    history = corner_history()
    plain = propose("bo", history, n_acq=1, n_random=0, seed=0, beta=0.0, min_distance=0.0, **FAST)
    near = Candidate.from_dict(plain[0])
    gap = np.linalg.norm(encode([near], 1.0) - encode([o.candidate for o in history], 1.0), axis=1).min()
    wide = propose("bo", history, n_acq=1, n_random=0, seed=0, beta=0.0, min_distance=gap + 0.05, **FAST)
    assert "replaced" not in plain[0] or plain[0]["replaced"] == "next-best"
    assert wide[0]["replaced"] == "next-best" and Candidate.from_dict(wide[0]) != near
    assert np.linalg.norm(encode(as_candidates(wide), 1.0) - encode([o.candidate for o in history], 1.0),
                          axis=1).min() >= gap + 0.05


# --- the acquisition ---------------------------------------------------------------------------------------------


def test_ucb_with_beta_zero_maximises_the_posterior_mean():
    history = random_history(40, seed=5)
    surrogate = fit_surrogate(history, seed=11, phi_bound=1.0, n_restarts=2)
    proposal = as_candidates(propose("bo", history, n_acq=1, n_random=0, seed=11, beta=0.0, n_restarts=2))[0]
    dense = np.vstack([encode(random_candidates(20000, np.random.default_rng(9), 1.0), 1.0), encode(
        [o.candidate for o in history], 1.0)])
    dense_max = surrogate.predict(dense)[0].max()
    proposed_mu = surrogate.predict(encode([proposal], 1.0))[0][0]
    spread = np.ptp([o.val_top1 for o in history])
    assert proposed_mu >= dense_max - 1e-3 * spread


def test_kriging_believer_gives_distinct_candidates_that_spread_out():
    history = random_history(20)
    proposals = propose("bo", history, n_acq=4, n_random=2, seed=1, **FAST)
    assert [p["source"] for p in proposals] == ["ucb"] * 4 + ["random"] * 2
    assert_valid(proposals, history, 1.0)
    X = encode(as_candidates(proposals[:4]), 1.0)
    distances = np.linalg.norm(X[:, None] - X[None], axis=-1)[np.triu_indices(4, 1)]
    assert distances.min() > 1e-3


def test_expected_improvement_closed_form():
    sigma = np.array([1.0, 2.0, 1e-15])
    mu = np.array([0.0, 0.0, 1.0])
    ei = expected_improvement(mu, sigma, best=0.0, xi=0.0)
    assert ei[0] == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert ei[1] == pytest.approx(2 / math.sqrt(2 * math.pi))
    assert ei[2] == pytest.approx(1.0)
    assert np.all(expected_improvement(mu - 5, sigma, 0.0, 0.01) >= 0)
    assert ucb(mu, sigma, 0.5) == pytest.approx([0.5, 1.0, 1.0])


def test_surrogate_interpolates_and_is_uncertain_far_away():
    history = random_history(30)
    X = encode([o.candidate for o in history], 1.0)
    y = np.array([o.val_top1 for o in history])
    surrogate = Surrogate(seed=0, n_restarts=1).fit(X, y)
    mu, sigma = surrogate.predict(X)
    assert np.abs(mu - y).max() < 0.05 * np.ptp(y)
    far = encode([Candidate(0.999, 0.999, -0.999, -0.999, "0101")], 1.0)
    assert surrogate.predict(far)[1][0] > 5 * sigma.mean()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(acquisition="pi"), "acquisition"),
        (dict(n_acq=-1), "n_acq"),
        (dict(beta=-0.1), "beta"),
        (dict(min_distance=-1.0), "min_distance"),
        (dict(phi_bound=0.0), "phi_bound"),
    ],
)
def test_invalid_arguments_are_refused(kwargs, message):
    arguments = dict(method="bo", history=[], n_acq=1, n_random=1, seed=0) | kwargs
    with pytest.raises(ValueError, match=message):
        propose(**arguments)


# --- history files -----------------------------------------------------------------------------------------------


def test_read_history_empty_and_header_only(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header = tmp_path / "header.csv"
    header.write_text("w1,w2,b1,b2,mode,val_top1\n")
    assert read_history(empty) == []
    assert read_history(header) == []


def test_read_history_keeps_mode_a_string(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(
        "method,w1,w2,b1,b2,mode,val_top1\n"
        "PBLF-BO,0.1,-0.2,0.3,-0.4,0010,55.5\n"
        "PBLF-BO,0.5,0.5,0.5,0.5,10,40\n"
        "PBLF-BO,0.5,0.5,0.5,-0.5,1111,\n"
    )
    history = read_history(path)
    assert history[0] == Observation(Candidate(0.1, -0.2, 0.3, -0.4, "0010"), 55.5)
    assert history[1].candidate.mode == "0010"
    assert math.isnan(history[2].val_top1)


@pytest.mark.parametrize(
    "row, column",
    [("0.1,abc,0.3,0.4,0010,50", "w2"), ("0.1,0.2,0.3,0.4,0012,50", "mode"), ("0.1,0.2,0.3,inf,0010,50", "b2"),
     ("0.1,0.2,0.3,0.4,0010,high", "val_top1")],
)  # fmt: skip
def test_read_history_names_file_line_and_column_of_a_bad_row(tmp_path, row, column):
    path = tmp_path / "history.csv"
    path.write_text(f"w1,w2,b1,b2,mode,val_top1\n0,0,0,0,0000,50\n{row}\n")
    with pytest.raises(ValueError, match=rf"history\.csv, line 3\b.*\b{column}\b"):
        read_history(path)


def test_read_history_names_missing_columns(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("w1,w2,b1,mode\n0,0,0,0000\n")
    with pytest.raises(ValueError, match="b2, val_top1"):
        read_history(path)


# --- benchmark ---------------------------------------------------------------------------------------------------


def best_of_bo(seed: int, n_initial: int = 5, n_total: int = 30) -> float:
    """PBLF-BO as the workflow runs it: random initial candidates, then one acquisition candidate per iteration,
    each iteration with its own seed."""
    history = observe(as_candidates(propose("bo", [], n_acq=0, n_random=n_initial, seed=seed)))
    for iteration in range(n_total - n_initial):
        proposal = propose("bo", history, n_acq=1, n_random=0, seed=seed * 1000 + iteration, **FAST)
        history += observe(as_candidates(proposal))
    return max(o.val_top1 for o in history)


def best_of_rs(seed: int, n_total: int = 30) -> float:
    return max(o.val_top1 for o in observe(as_candidates(propose("rs", [], 0, n_total, seed=seed))))


def test_bo_beats_random_search_on_a_synthetic_objective(capsys):
    bo = [best_of_bo(seed) for seed in range(10)]
    rs = [best_of_rs(seed) for seed in range(10)]
    with capsys.disabled():
        print(f"\nbest of 30, mean over 10 seeds: PBLF-BO {np.mean(bo):.2f}, PBLF-RS {np.mean(rs):.2f} (max 71)")
    assert np.mean(bo) > np.mean(rs) + 1.0
