"""The proposer that PBLF-BO and PBLF-RS share: a Gaussian-process surrogate, its acquisition, and random draws.

:func:`propose` fits a Gaussian-process surrogate to every candidate evaluated so far and proposes ``n_acq``
maximisers of the acquisition function (UCB, mu + beta * sigma with the thesis's beta = 0.1, or Expected
Improvement) plus ``n_random`` random candidates, because the thesis "randomly sampled from the search space
concurrently" (Section 6.1); with ``n_acq`` 0 it only draws (PBLF-RS). Each BO iteration is a Snakemake checkpoint
that calls :func:`propose` once, so a proposal must be fast, must never fail on an awkward history (empty, tiny, duplicated,
constant, diverged) and must be a pure function of (history, seed, settings): a rerun of the workflow has to
propose byte-identical candidates, or every later training job would be rebuilt.

The search space is mixed: phi = (w1, w2, b1, b2) in the open box |x| < phi_bound and a 4-bit mode. The surrogate
sees phi mapped to the unit cube and the mode as four 0/1 inputs, with one length scale per input, so that it can
learn which places (bits) matter. The acquisition is maximised over all 16 modes by scoring a seeded random pool and
polishing the best pool points (and the best observations) with L-BFGS-B on phi, the mode held fixed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel
from threadpoolctl import threadpool_limits

from pblf.core.candidate import PHI_DECIMALS, Candidate
from pblf.core.config import allowed
from pblf.core.files import ACCURACY, COUNT, Field, read_typed_csv
from pblf.core.names import HISTORY_REQUIRED, PHI_NAMES

ACQUISITIONS: tuple[str, ...] = allowed("search.bo.acquisition")
#: All 16 modes, in bit-string order.
MODES: tuple[str, ...] = tuple(format(i, "04b") for i in range(16))
N_INPUTS = len(PHI_NAMES) + 4
#: Candidates keep phi to PHI_DECIMALS decimals; drawing inside |x| <= phi_bound - one step of that grid keeps the
#: rounded value strictly inside the open box |x| < phi_bound.
PHI_STEP = 10.0**-PHI_DECIMALS
#: Length scales on the unit cube: below 0.05 the surrogate could only interpolate the few hundred observations a
#: search makes; above 20 an input is irrelevant anyway, and a larger bound only slows the hyperparameter search.
LENGTH_SCALE_BOUNDS = (0.05, 20.0)
#: Targets are normalised (normalize_y), so the signal variance is near 1 and the noise variance at most that.
AMPLITUDE_BOUNDS = (1e-2, 1e2)
NOISE_BOUNDS = (1e-6, 1.0)
#: Central-difference step (unit-cube coordinates) for the acquisition's gradient in the local polish.
FD_STEP = 1e-6
#: Random draws allowed per new candidate before the box counts as exhausted; a draw repeats an earlier candidate
#: only when the box is a few rounding steps wide.
MAX_DRAWS_PER_CANDIDATE = 1000
#: Independent random streams derived from the seed, so that e.g. changing the pool size does not change the
#: random supplements.
STREAM_RANDOM, STREAM_POOL, STREAM_GP = 0, 1, 2


@dataclass(frozen=True)
class Observation:
    """An evaluated candidate and its Top-1 validation (percent); NaN when the evaluation produced no number. The
    rest is what low-fidelity search reads: which run it was, its status, its validation curve."""

    candidate: Candidate
    val_top1: float
    iteration: int | None = None
    index: int | None = None
    status: str = "ok"
    curve: tuple[float, ...] = ()


# --- files -----------------------------------------------------------------------------------------------------


#: How a ``history.csv`` is read (:data:`pblf.core.names.HISTORY_COLUMNS`): an empty Top-1 validation is NaN (the
#: surrogate leaves it out but never proposes the candidate again); the run's columns may be absent.
HISTORY_FIELDS: dict[str, Field] = {
    **{name: Field(str, "text") for name in HISTORY_REQUIRED if name != "val_top1"},
    "val_top1": Field(ACCURACY.parse, ACCURACY.what, empty=math.nan),
    "iteration": COUNT.optional(), "index": COUNT.optional(),
    "status": Field(str, "a status").optional("ok"),
    "val_curve": Field(lambda text: tuple(float(value) for value in text.split()),
                       "Top-1 validation values separated by spaces").optional(()),
}


def read_history(path: str | Path) -> list[Observation]:
    """The evaluated candidates of a ``history.csv`` (at least :data:`pblf.core.names.HISTORY_REQUIRED`); an empty
    or header-only file is an empty history (the first iteration). A bad value names the file, line and column."""
    return [Observation(Candidate.from_dict(row), row["val_top1"], row["iteration"], row["index"], row["status"],
                        row["val_curve"])
            for _, row in read_typed_csv(path, HISTORY_FIELDS, "history",
                                         lambda raw, row: {**row, **Candidate.from_dict(raw).to_dict()})]


# --- encoding --------------------------------------------------------------------------------------------------


def _inner_bound(phi_bound: float) -> float:
    """The largest |phi| a proposal may have so that, rounded, it stays strictly inside |phi| < phi_bound."""
    if not phi_bound > PHI_STEP:
        raise ValueError(f"phi_bound={phi_bound!r} must be larger than {PHI_STEP}")
    return phi_bound - PHI_STEP


def encode(candidates: Sequence[Candidate], phi_bound: float) -> np.ndarray:
    """Surrogate inputs, shape (n, 8): phi mapped from (-phi_bound, phi_bound) to (0, 1), then the four mode bits."""
    phi = np.array([c.phi for c in candidates], dtype=float).reshape(-1, len(PHI_NAMES))
    bits = np.array([[float(b) for b in c.mode] for c in candidates], dtype=float).reshape(-1, 4)
    return np.hstack([(phi / phi_bound + 1.0) / 2.0, bits])


def decode(x: np.ndarray, phi_bound: float) -> Candidate:
    """The candidate at surrogate input ``x`` (the inverse of :func:`encode`), clipped into the proposal box."""
    inner = _inner_bound(phi_bound)
    phi = np.clip(phi_bound * (2.0 * x[: len(PHI_NAMES)] - 1.0), -inner, inner)
    mode = "".join("1" if bit > 0.5 else "0" for bit in x[len(PHI_NAMES) :])
    return Candidate(*(float(v) for v in phi), mode=mode)


# --- surrogate -------------------------------------------------------------------------------------------------


def default_kernel() -> Kernel:
    """Amplitude * Matern 5/2 with one length scale per input (ARD) + white noise: Matern 5/2 because training
    outcomes are smooth but not infinitely so, ARD because some phi components and mode bits matter more than
    others, white noise because Top-1 validation varies between runs of the same candidate."""
    return ConstantKernel(1.0, AMPLITUDE_BOUNDS) * Matern(
        length_scale=np.full(N_INPUTS, 0.5), length_scale_bounds=LENGTH_SCALE_BOUNDS, nu=2.5
    ) + WhiteKernel(1e-2, NOISE_BOUNDS)


class Surrogate:
    """A Gaussian-process regression of Top-1 validation on the encoded candidates.

    Wraps scikit-learn's regressor so that the proposer sees only fit / predict / condition, and so that the
    optimiser's ConvergenceWarnings (hyperparameters at a bound: common with few or constant targets, and harmless)
    do not reach the workflow log as if something had failed.
    """

    def __init__(self, seed: int, n_restarts: int = 5, kernel: Kernel | None = None) -> None:
        self.seed = seed
        self.n_restarts = n_restarts
        self.kernel = kernel
        self.gp: GaussianProcessRegressor | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> "Surrogate":
        """Fit the kernel hyperparameters by maximum marginal likelihood (with restarts) and condition on (X, y);
        ``kernel`` given at construction is kept fixed instead."""
        fixed = self.kernel is not None
        self.gp = GaussianProcessRegressor(
            kernel=self.kernel if fixed else default_kernel(),
            normalize_y=True,
            optimizer=None if fixed else "fmin_l_bfgs_b",
            n_restarts_optimizer=0 if fixed else self.n_restarts,
            random_state=self.seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.gp.fit(np.asarray(X, dtype=float), np.asarray(y, dtype=float))
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation, in the units of y."""
        if self.gp is None:
            raise RuntimeError("Surrogate.predict before fit")
        mu, sigma = self.gp.predict(np.atleast_2d(np.asarray(X, dtype=float)), return_std=True)
        return mu, sigma

    def condition(self, X: np.ndarray, y: np.ndarray) -> "Surrogate":
        """A new surrogate with this one's fitted hyperparameters, conditioned on (X, y) without re-optimising:
        what the kriging believer needs to add its fake observations cheaply and without moving the model."""
        if self.gp is None:
            raise RuntimeError("Surrogate.condition before fit")
        return Surrogate(self.seed, self.n_restarts, kernel=self.gp.kernel_).fit(X, y)


# --- acquisition -----------------------------------------------------------------------------------------------


def ucb(mu: np.ndarray, sigma: np.ndarray, beta: float) -> np.ndarray:
    """Upper confidence bound mu + beta * sigma (Section 5, beta = 0.1 in Section 6.1)."""
    return mu + beta * sigma


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float, xi: float) -> np.ndarray:
    """E[max(f - best - xi, 0)] under the posterior; all arguments in normalised-target units, so that xi means
    the same whatever the scale of Top-1 validation."""
    sigma = np.maximum(sigma, 1e-12)
    improvement = mu - best - xi
    z = improvement / sigma
    return improvement * norm.cdf(z) + sigma * norm.pdf(z)


def acquisition_function(
    surrogate: Surrogate, y: np.ndarray, acquisition: str, beta: float, xi: float
) -> Callable[[np.ndarray], np.ndarray]:
    """The acquisition of ``surrogate`` as a function of surrogate inputs (m, 8) -> (m,), in units of the
    observations ``y`` normalised by their mean and standard deviation."""
    centre = float(np.mean(y))
    scale = float(np.std(y)) or 1.0
    best = (float(np.max(y)) - centre) / scale

    def score(X: np.ndarray) -> np.ndarray:
        mu, sigma = surrogate.predict(X)
        mu, sigma = (mu - centre) / scale, sigma / scale
        return ucb(mu, sigma, beta) if acquisition == "ucb" else expected_improvement(mu, sigma, best, xi)  # "ei"

    return score


# --- candidates --------------------------------------------------------------------------------------------------


def random_candidates(
    n: int, rng: np.random.Generator, phi_bound: float, exclude: Collection[Candidate] = ()
) -> list[Candidate]:
    """``n`` distinct candidates, phi uniform in the box |x| < phi_bound and the mode uniform over the 16 bit
    strings, none of them in ``exclude`` (already evaluated or already proposed).

    Raises ValueError rather than loop forever when a box only a few rounding steps wide has run out of new
    candidates.
    """
    inner = _inner_bound(phi_bound)
    taken = set(exclude)
    chosen: list[Candidate] = []
    for _ in range(MAX_DRAWS_PER_CANDIDATE * n):
        if len(chosen) == n:
            break
        phi = rng.uniform(-inner, inner, size=len(PHI_NAMES))
        candidate = Candidate(*(float(v) for v in phi), mode=MODES[int(rng.integers(len(MODES)))])
        if candidate not in taken:
            taken.add(candidate)
            chosen.append(candidate)
    if len(chosen) < n:
        raise ValueError(f"found only {len(chosen)} of {n} new candidates in |phi| < {phi_bound}: the box is exhausted")
    return chosen


def _pool(rng: np.random.Generator, size: int, phi_bound: float) -> np.ndarray:
    """``size`` random surrogate inputs, the modes cycling through all 16 so that every mode is scored."""
    inner = _inner_bound(phi_bound)
    low, high = (1.0 - inner / phi_bound) / 2.0, (1.0 + inner / phi_bound) / 2.0
    phi = rng.uniform(low, high, size=(size, len(PHI_NAMES)))
    bits = np.array([[float(b) for b in MODES[i % len(MODES)]] for i in range(size)]).reshape(size, 4)
    return np.hstack([phi, bits])


def _polish(score: Callable[[np.ndarray], np.ndarray], start: np.ndarray, phi_bound: float) -> tuple[np.ndarray, float]:
    """Maximise ``score`` over phi from ``start`` with L-BFGS-B in the proposal box, the mode bits held fixed.

    The gradient is a central difference whose 2 * 4 + 1 points are scored in one call: one surrogate prediction
    per step instead of five, which is what makes polishing cheap.
    """
    inner = _inner_bound(phi_bound)
    bounds = [((1.0 - inner / phi_bound) / 2.0, (1.0 + inner / phi_bound) / 2.0)] * len(PHI_NAMES)
    bits = start[len(PHI_NAMES) :]
    steps = np.vstack([np.zeros(len(PHI_NAMES)), FD_STEP * np.eye(len(PHI_NAMES)), -FD_STEP * np.eye(len(PHI_NAMES))])

    def objective(phi: np.ndarray) -> tuple[float, np.ndarray]:
        points = np.hstack([phi + steps, np.broadcast_to(bits, (len(steps), len(bits)))])
        values = score(points)
        gradient = (values[1 : 1 + len(PHI_NAMES)] - values[1 + len(PHI_NAMES) :]) / (2.0 * FD_STEP)
        return -float(values[0]), -gradient

    x0 = np.clip(start[: len(PHI_NAMES)], bounds[0][0], bounds[0][1])
    result = minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 50})
    return np.concatenate([result.x, bits]), -float(result.fun)


def rank_acquisition(
    score: Callable[[np.ndarray], np.ndarray],
    rng: np.random.Generator,
    phi_bound: float,
    starts: np.ndarray,
    pool_size: int = 4096,
    n_polish: int = 5,
) -> list[tuple[float, Candidate]]:
    """Distinct candidates ordered by acquisition value, best first.

    The acquisition is scored on a random pool over all 16 modes; the ``n_polish`` best pool points and the
    surrogate inputs ``starts`` (the best observations, near which an exploitative UCB peaks) are polished with
    L-BFGS-B. Returning a ranking rather than one maximiser lets the caller skip candidates that were already
    evaluated without another optimisation.
    """
    pool = _pool(rng, pool_size, phi_bound)
    pool_values = score(pool)
    top = np.argsort(-pool_values, kind="stable")[:n_polish]
    polished = [_polish(score, x, phi_bound) for x in (*pool[top], *starts)]
    inputs = [x for x, _ in polished] + list(pool)
    values = np.array([v for _, v in polished] + list(pool_values))
    ranked: dict[Candidate, float] = {}
    for index in np.argsort(-values, kind="stable"):
        ranked.setdefault(decode(inputs[index], phi_bound), float(values[index]))
    return [(value, candidate) for candidate, value in ranked.items()]


# --- proposals ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcquisitionSettings:
    """How :func:`propose` scores and maximises the acquisition (see its arguments)."""

    acquisition: str
    beta: float
    xi: float
    phi_bound: float
    min_distance: float
    pool_size: int
    n_restarts: int
    n_polish: int


def _rng(seed: int, salt: int, stream: int) -> np.random.Generator:
    """A generator for one purpose (``stream``) of one method (its ``salt``), independent of every other stream."""
    return np.random.default_rng(np.random.SeedSequence([seed, salt, stream]))


def _finite(history: Sequence[Observation]) -> list[Observation]:
    """The observations the surrogate can fit; a warning names how many others are left out."""
    finite = [o for o in history if o.val_top1 is not None and math.isfinite(o.val_top1)]
    if len(finite) < len(history):
        warnings.warn(
            f"{len(history) - len(finite)} observation(s) without a finite val_top1 are left out of the surrogate "
            "(they are still never proposed again)",
            stacklevel=3,
        )
    return finite


def fit_surrogate(history: Sequence[Observation], seed: int, phi_bound: float, n_restarts: int = 5,
                  salt: int = 1) -> Surrogate:
    """The surrogate :func:`propose` fits to ``history`` (finite val_top1 only) for ``seed`` (and the method's
    ``salt``)."""
    gp_seed = int(np.random.SeedSequence([seed, salt, STREAM_GP]).generate_state(1)[0])
    X = encode([o.candidate for o in history], phi_bound)
    return Surrogate(gp_seed, n_restarts).fit(X, np.array([o.val_top1 for o in history], dtype=float))


def _acquisition_batch(
    history: Sequence[Observation],
    n_acq: int,
    seed: int,
    settings: AcquisitionSettings,
    exclude: Collection[Candidate],
    salt: int,
) -> list[tuple[Candidate, str]]:
    """Up to ``n_acq`` (>= 1) acquisition maximisers, each with what it replaced ("" for none).

    A maximiser closer than ``min_distance`` to a candidate of ``exclude`` (every evaluated one) or of the batch
    would teach the surrogate nothing: it is replaced by the best distinct candidate of the acquisition's ranking
    ("next-best"). Fewer than ``n_acq`` come back only when no ranked candidate is distinct, in a box a few
    rounding steps wide; the caller fills those slots randomly. For more than one, the kriging believer: each
    chosen candidate is added as a fake observation at its posterior mean, which collapses the uncertainty there,
    so that the next maximiser looks elsewhere."""
    phi_bound = settings.phi_bound
    surrogate = fit_surrogate(history, seed, phi_bound, settings.n_restarts, salt)
    X = encode([o.candidate for o in history], phi_bound)
    y = np.array([o.val_top1 for o in history], dtype=float)
    starts = X[np.argsort(-y, kind="stable")[: settings.n_polish]]
    rng = _rng(seed, salt, STREAM_POOL)
    taken = list(exclude)
    chosen: list[tuple[Candidate, str]] = []
    X_believed, y_believed = X, y
    while True:
        score = acquisition_function(surrogate, y, settings.acquisition, settings.beta, settings.xi)
        ranked = [c for _, c in rank_acquisition(score, rng, phi_bound, starts, settings.pool_size,
                                                 settings.n_polish)]
        distinct = _distinct_from(ranked, taken, phi_bound, settings.min_distance)
        if distinct is None:
            return chosen
        chosen.append((ranked[distinct], "" if distinct == 0 else "next-best"))
        candidate = ranked[distinct]
        taken.append(candidate)
        if len(chosen) == n_acq:
            return chosen
        x = encode([candidate], phi_bound)
        X_believed = np.vstack([X_believed, x])
        y_believed = np.append(y_believed, surrogate.predict(x)[0])
        surrogate = surrogate.condition(X_believed, y_believed)


def _distinct_from(ranked: Sequence[Candidate], taken: Sequence[Candidate], phi_bound: float,
                   min_distance: float) -> int | None:
    """The position in ``ranked`` of the first candidate that is not in ``taken`` and at least ``min_distance`` from
    each of them (in surrogate inputs); None when there is none."""
    taken_set = set(taken)
    taken_X = encode(taken, phi_bound)
    ranked_X = encode(ranked, phi_bound)
    for position, candidate in enumerate(ranked):
        if candidate in taken_set:
            continue
        if len(taken_X) and np.linalg.norm(taken_X - ranked_X[position], axis=1).min() < min_distance:
            continue
        return position
    return None


def propose(
    history: Sequence[Observation],
    n_acq: int,
    n_random: int,
    seed: int,
    *,
    salt: int,
    beta: float,
    acquisition: str,
    xi: float,
    phi_bound: float,
    min_distance: float,
    pool_size: int = 4096,
    n_restarts: int = 5,
    n_polish: int = 5,
) -> list[dict]:
    """The next candidates to train, as ``candidate.to_dict()`` plus ``source`` ("ucb", "ei" or "random").

    ``n_acq`` acquisition candidates, then ``n_random`` random ones; with fewer than two finite observations there
    is nothing to fit, and the acquisition slots are filled randomly too. ``salt`` (the method's) keeps two methods
    given the same ``seed`` from drawing the same candidates. No proposed candidate equals (after rounding) an evaluated
    one or another of the batch, and no acquisition candidate is closer than ``min_distance`` to one: an entry's
    ``replaced`` says when the acquisition's maximiser was replaced, by the best distinct candidate of its ranking
    ("next-best") or, when there was none, by a random draw ("random"). Same arguments, same output.
    """
    if acquisition not in ACQUISITIONS:
        raise ValueError(f"acquisition {acquisition!r} must be one of {', '.join(ACQUISITIONS)}")
    if n_acq < 0 or n_random < 0 or pool_size < 1 or n_polish < 0 or n_restarts < 0:
        raise ValueError("n_acq, n_random, n_restarts and n_polish must be >= 0, pool_size >= 1")
    if not beta >= 0 or not xi >= 0 or not min_distance >= 0:
        raise ValueError(f"beta={beta!r}, xi={xi!r} and min_distance={min_distance!r} must be >= 0")
    _inner_bound(phi_bound)
    exclude = {o.candidate for o in history}
    finite = _finite(history) if n_acq > 0 else []
    proposals: list[dict] = []
    n_replaced = 0
    if len(finite) >= 2 and n_acq > 0:
        settings = AcquisitionSettings(acquisition, beta, xi, phi_bound, min_distance, pool_size, n_restarts,
                                       n_polish)
        # One BLAS thread: on matrices this small, threads cost more than they save (and far more on a busy
        # machine), and a fixed thread count keeps the floating-point sums, hence the proposals, reproducible.
        with threadpool_limits(limits=1):
            batch = _acquisition_batch(finite, n_acq, seed, settings, exclude, salt)
        exclude.update(c for c, _ in batch)
        proposals += [_entry(c, acquisition, replaced) for c, replaced in batch]
        n_replaced = n_acq - len(batch)
    n_left = n_acq + n_random - len(proposals)
    randoms = random_candidates(n_left, _rng(seed, salt, STREAM_RANDOM), phi_bound, exclude)
    proposals += [_entry(c, "random", "random" if i < n_replaced else "") for i, c in enumerate(randoms)]
    return proposals


def draw(history: Sequence[Observation], n: int, seed: int, *, salt: int, phi_bound: float) -> list[dict]:
    """``n`` random candidates, none evaluated before: :func:`propose` without acquisition (PBLF-RS's batch)."""
    _inner_bound(phi_bound)
    randoms = random_candidates(n, _rng(seed, salt, STREAM_RANDOM), phi_bound, {o.candidate for o in history})
    return [_entry(c, "random", "") for c in randoms]


def _entry(candidate: Candidate, source: str, replaced: str) -> dict:
    """A proposal entry: the candidate, where it came from and, only if so, what it replaced."""
    return {**candidate.to_dict(), "source": source, **({"replaced": replaced} if replaced else {})}
