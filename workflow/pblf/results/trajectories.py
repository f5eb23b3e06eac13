"""Appendix C: gradient trajectories of a toy network whose ReLU derivative is perturbed by beta.

The thesis (App. C.1-C.2) trains a tiny target network on a two-Gaussian binary classification task and replaces the
ReLU derivative of its second hidden layer by

    f'(x; beta) = beta  if x > 0  else 0                                   (Eq. C.2)

so beta = 1 is ordinary backpropagation. Only the two weights w1^(2), w2^(2) of the second hidden layer are trained,
which makes the optimisation a path in the plane (w1, w2) that can be drawn over the loss landscape (Figures C.1-C.3),
and whose speed can be compared across beta and optimisers (Figure C.4).

Choices the thesis leaves open, made here once:

* **Data.** Class 0 ~ N([1, 1], I2), class 1 ~ N([-1, -1], I2), ``n_samples`` points each, drawn with numpy's
  ``default_rng([seed, 0])``.
* **Target network.** 2 inputs -> 1 neuron -> 2 -> 2 -> 2 logits, no biases, ReLU after each hidden layer, softmax and
  cross-entropy averaged over the data (the thesis says "binary cross-entropy"; with two softmax outputs that is the
  same loss). The layer-2 weight matrix is 2x1, w = (w1^(2), w2^(2)); it is the only trained tensor.
* **Initialisation.** Every weight is drawn like ``torch.nn.Linear``'s default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
  from ``default_rng([seed, 1])``. Because the first hidden layer has a single ReLU neuron (h1 >= 0), unit j of layer 2
  is active on some sample only if w_j > 0; a draw whose start point gives w1 or w2 no gradient at all would draw a
  line, not a trajectory, and a draw whose start loss is above log 2 (the loss of a dead layer 2) only descends into
  the dead quadrant w1, w2 <= 0 and stops at chance. Such draws are rejected and the *same* generator draws again
  (still deterministic); see :func:`make_start`.
* **A start** is one draw of the data, the frozen weights and the initial (w1, w2): every beta and every optimiser
  of a start begins from the same point, and starts differ by :func:`start_seed` (base seed, start index). The thesis
  calls these "trials"; in this pipeline a trial is one repeat of Table B.1 (see :mod:`pblf.core.names`).
* **Full batch everywhere.** Each of the ``epochs`` steps uses the whole data set ("batch gradient descent"). The
  caption of Figure C.2 says "SGD", but the text around it calls the same experiment "gradient descent (with
  momentum)" and the next paragraph contrasts Adam with "batch gradient descent"; with a two-weight toy that is also
  the reading in which the trajectories are smooth enough to compare. So "sgd" here is ``torch.optim.SGD`` on the full
  batch, like "gd_momentum"; the two differ only in their learning rate, as in the captions.
* **Optimisers and learning rates** (from the captions): ``gd_momentum`` lr 0.5, momentum 0.5 (Fig. C.1); ``sgd``
  lr 1.5, momentum 0.5 (Fig. C.2); ``adam`` lr 0.5 (Fig. C.3, Fig. C.4, whose caption quotes "Adam: 0.5");
  ``adagrad`` lr 0.5 (not given by the thesis; the same as Adam so the two adaptive panels of Fig. C.4 are
  comparable). Every other hyperparameter is torch's default. Fig. C.4's caption speaks of three SGD plots, "(C.4a),
  (C.4b) & (C.4c)", at learning rates it does not give: here SGD at 0.1, 0.5 and 1.5 (:data:`VELOCITY_PANELS`).
* **Betas.** Fig. C.1: {1, 5}; Fig. C.2: {0.5, 1}; Fig. C.3: {0.5, 1, 5, 100} (the caption's list; the body text
  says "beta = 0, 5, 100"); Fig. C.4: {0, 0.5, 1, 5, 100} (beta = 0, "simply dropout" in the caption, stops the
  trained weights).

Because f'(x; beta) sits directly after the trained layer, beta multiplies the gradient of (w1, w2) by exactly beta:
for (momentum) gradient descent that is the learning rate times beta, while Adam and Adagrad divide the scale out
(up to their epsilon). That is the mechanism behind the thesis's observations, and what the tests check.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from pblf.core.config import load_config, stage_config
from pblf.core.files import write_text
from pblf.core.layout import VELOCITY
from pblf.core.names import figure_stem
from pblf.core.provenance import Outcome

log = logging.getLogger(__name__)

#: name -> (label used in figures, learning rate, momentum or None). Learning rates from the thesis's captions.
OPTIMIZERS: dict[str, tuple[str, float, float | None]] = {
    "gd_momentum": ("GD with momentum", 0.5, 0.5),
    "sgd": ("SGD", 1.5, 0.5),
    "adam": ("Adam", 0.5, None),
    "adagrad": ("Adagrad", 0.5, None),
}

#: Figure C.4: its panels (optimizer, learning rate), in order, and the betas compared. The thesis shows three SGD
#: panels "(C.4a), (C.4b) & (C.4c)" without their rates; here they are 0.5 and 1.5 (the rates of Figs. C.1 and
#: C.2) and 0.1, the rate the target networks of Chapter 6 train with, so the three span an order of magnitude.
VELOCITY_PANELS: tuple[tuple[str, float], ...] = (("sgd", 0.1), ("sgd", 0.5), ("sgd", 1.5), ("adam", 0.5),
                                                  ("adagrad", 0.5))
VELOCITY_BETAS: tuple[float, ...] = (0.0, 0.5, 1.0, 5.0, 100.0)

TRAJECTORY_COLUMNS: tuple[str, ...] = ("figure", "optimizer", "beta", "start", "step", "w1", "w2")
VELOCITY_COLUMNS: tuple[str, ...] = ("optimizer", "lr", "beta", "velocity_mean", "velocity_std", "runs")

#: Significant digits of every float written to a CSV: fixed, so the same numbers always give the same bytes.
FLOAT_DIGITS = 10
_MAX_INIT_DRAWS = 1000
DTYPE = torch.float64


@dataclass(frozen=True)
class FigureSetting:
    """One of Figures C.1-C.3: which optimiser, with which hyperparameters, for which betas."""

    figure: str  # "C.1"
    optimizer: str
    lr: float
    momentum: float | None
    betas: tuple[float, ...]

    @property
    def stem(self) -> str:
        """File stem of the figure and of its CSV, e.g. ``figure_C_1``."""
        return figure_stem(self.figure)


def trajectory_settings() -> tuple[FigureSetting, ...]:
    """Figures C.1-C.3 as the thesis's captions describe them."""

    def setting(figure: str, optimizer: str, betas: Sequence[float]) -> FigureSetting:
        _, lr, momentum = OPTIMIZERS[optimizer]
        return FigureSetting(figure, optimizer, lr, momentum, tuple(sorted(float(b) for b in betas)))

    return (
        setting("C.1", "gd_momentum", (1.0, 5.0)),
        setting("C.2", "sgd", (1.0, 0.5)),
        setting("C.3", "adam", (1.0, 0.5, 5.0, 100.0)),
    )


def velocity_settings() -> tuple[tuple[str, float, float | None, tuple[float, ...]], ...]:
    """Figure C.4: (optimizer, lr, momentum, betas) per panel, in panel order."""
    return tuple((name, lr, OPTIMIZERS[name][2], VELOCITY_BETAS) for name, lr in VELOCITY_PANELS)


def start_seed(seed: int, number: int) -> int:
    """The seed of start ``number`` under base seed ``seed`` (numpy SeedSequence: platform-independent, no overlap)."""
    return int(np.random.SeedSequence([int(seed), int(number)]).generate_state(1)[0])


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread: the tensors here are tiny, and on a busy machine intra-op threads only spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------------- target network


class BetaReLU(torch.autograd.Function):
    """ReLU forward; backward multiplies the incoming gradient by f'(x; beta) = beta if x > 0 else 0 (Eq. C.2)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, beta: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.beta = float(beta)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        # beta == 1 leaves grad untouched where x > 0 and writes 0 elsewhere: bit-identical to autograd's ReLU.
        scaled = grad if ctx.beta == 1.0 else grad * ctx.beta
        return torch.where(x > 0, scaled, torch.zeros_like(grad)), None


def beta_relu(x: torch.Tensor, beta: float) -> torch.Tensor:
    """ReLU whose backward pass uses f'(x; beta) instead of the true derivative."""
    return BetaReLU.apply(x, beta)


def make_data(n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The binary classification task: (x of shape (2n, 2), labels of shape (2n,)); class 0 around [1, 1]."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    rng = np.random.default_rng([int(seed), 0])
    x0 = rng.normal(loc=(1.0, 1.0), scale=1.0, size=(n_samples, 2))
    x1 = rng.normal(loc=(-1.0, -1.0), scale=1.0, size=(n_samples, 2))
    x = np.concatenate([x0, x1])
    y = np.concatenate([np.zeros(n_samples, dtype=np.int64), np.ones(n_samples, dtype=np.int64)])
    return x, y


@dataclass(frozen=True)
class Start:
    """Everything a trajectory starts from: data, the frozen weights and the start point of w = (w1, w2)."""

    x: torch.Tensor  # (2n, 2)
    y: torch.Tensor  # (2n,)
    w_in: torch.Tensor  # (1, 2): input -> hidden layer 1 (one neuron)
    w3: torch.Tensor  # (2, 2): hidden 2 -> hidden 3
    w4: torch.Tensor  # (2, 2): hidden 3 -> logits
    w0: torch.Tensor  # (2,): w1^(2), w2^(2) at step 0


def _uniform(rng: np.random.Generator, shape: tuple[int, int]) -> torch.Tensor:
    bound = 1.0 / np.sqrt(shape[1])  # (out, in): fan_in is the second dimension
    return torch.from_numpy(rng.uniform(-bound, bound, size=shape))


@functools.lru_cache(maxsize=64)
def make_start(seed: int, n_samples: int) -> Start:
    """Data and initialisation of one start, redrawn (same generator) until the start point is usable.

    Usable: both w1 and w2 get a non-zero gradient, and the loss is below log 2, the loss of a network whose layer 2
    is dead (zero logits). A draw above log 2 has frozen layers that map the class the first neuron sees to the wrong
    logit, so every descent runs into the dead quadrant w1, w2 <= 0 and stops at chance: no minimum to compare paths to.
    Cached (every beta and optimiser of a start starts here); callers must not modify the returned tensors in place.
    """
    x, y = make_data(n_samples, seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    rng = np.random.default_rng([int(seed), 1])
    with _one_thread():
        for _ in range(_MAX_INIT_DRAWS):
            w_in, w2 = _uniform(rng, (1, 2)), _uniform(rng, (2, 1))
            w3, w4 = _uniform(rng, (2, 2)), _uniform(rng, (2, 2))
            start = Start(xt, yt, w_in, w3, w4, w2.reshape(2))
            if bool((trained_gradient(start, start.w0, 1.0) != 0).all()) and _beats_dead_layer(start):
                return start
    raise RuntimeError(f"no usable initialisation in {_MAX_INIT_DRAWS} draws (seed {seed})")


def _beats_dead_layer(start: Start) -> bool:
    with torch.no_grad():
        return float(target_loss(start, start.w0)) < float(np.log(2.0))


def target_loss(start: Start, w: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Mean cross-entropy of the target network with layer-2 weights ``w``.

    ``w`` has shape (..., 2); leading dimensions broadcast (one loss per point, used for the loss landscape).
    """
    h1 = torch.relu(start.x @ start.w_in.T)  # (n, 1)
    z2 = h1 * w.unsqueeze(-2)  # (..., n, 2): h1 @ W2.T with W2 = w as a 2x1 matrix
    h2 = beta_relu(z2, beta)
    h3 = torch.relu(h2 @ start.w3.T)
    logits = h3 @ start.w4.T
    log_p = torch.log_softmax(logits, dim=-1)
    picked = torch.gather(log_p, -1, start.y.expand(*log_p.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    return -picked.mean(dim=-1)


def trained_gradient(start: Start, w: torch.Tensor, beta: float) -> torch.Tensor:
    """d loss / d (w1, w2) under f'(x; beta) at the second hidden layer."""
    with torch.enable_grad():
        w = w.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(target_loss(start, w, beta), w)
    return grad


def _make_optimizer(name: str, params: list[torch.Tensor], lr: float | None, momentum: float | None):
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)}")
    _, default_lr, default_momentum = OPTIMIZERS[name]
    lr = default_lr if lr is None else float(lr)
    if name in ("gd_momentum", "sgd"):
        return torch.optim.SGD(params, lr=lr, momentum=default_momentum if momentum is None else float(momentum))
    if momentum is not None:
        raise ValueError(f"optimizer {name!r} takes no momentum")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.Adagrad(params, lr=lr)


def run_trajectory(
    optimizer: str,
    beta: float,
    epochs: int,
    seed: int,
    n_samples: int,
    *,
    lr: float | None = None,
    momentum: float | None = None,
) -> np.ndarray:
    """Train (w1, w2) for ``epochs`` full-batch steps; returns the path, shape (epochs + 1, 2), row 0 the start.

    ``seed`` is the run's own seed (see :func:`start_seed`); ``lr``/``momentum`` default to :data:`OPTIMIZERS`.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be non-negative, got {epochs}")
    with _one_thread():
        start = make_start(seed, n_samples)
        w = start.w0.clone().requires_grad_(True)
        opt = _make_optimizer(optimizer, [w], lr, momentum)
        path = np.empty((epochs + 1, 2), dtype=np.float64)
        path[0] = w.detach().numpy()
        for step in range(1, epochs + 1):
            opt.zero_grad(set_to_none=False)
            target_loss(start, w, beta).backward()
            opt.step()
            path[step] = w.detach().numpy()
    return path


def velocity(path: np.ndarray) -> float:
    """Velocity of a trajectory: the mean Euclidean distance that (w1, w2) moves per step, over the whole run.

    v = (1 / T) * sum_{t=1..T} || w_t - w_{t-1} ||_2  for a path w_0 .. w_T (T = epochs). A run that stops (beta = 0,
    or a weight pushed below 0 where its unit is dead) keeps counting its zero-length steps.
    """
    steps = np.diff(np.asarray(path, dtype=np.float64), axis=0)
    return float(np.linalg.norm(steps, axis=1).mean()) if len(steps) else 0.0


def loss_landscape(
    w1_grid: Sequence[float] | np.ndarray,
    w2_grid: Sequence[float] | np.ndarray,
    seed: int,
    n_samples: int,
) -> np.ndarray:
    """Training loss over the grid of (w1, w2) for start seed ``seed``; shape (len(w2_grid), len(w1_grid)).

    Row i, column j is the loss at (w1_grid[j], w2_grid[i]), the layout ``plt.contour(w1_grid, w2_grid, Z)`` expects.
    """
    w1s = torch.as_tensor(np.asarray(w1_grid, dtype=np.float64))
    out = np.empty((len(w2_grid), len(w1s)), dtype=np.float64)
    with _one_thread(), torch.no_grad():
        start = make_start(seed, n_samples)
        for i, w2 in enumerate(np.asarray(w2_grid, dtype=np.float64)):
            points = torch.stack([w1s, torch.full_like(w1s, w2)], dim=-1)  # (len(w1), 2)
            out[i] = target_loss(start, points).numpy()
    return out


# ------------------------------------------------------------------------------------------------------- CSV files


def _fmt(value: float) -> str:
    return format(float(value) + 0.0, f".{FLOAT_DIGITS}g")  # + 0.0 turns -0.0 into 0.0


def _fmt_beta(beta: float) -> str:
    return format(float(beta) + 0.0, "g")


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(buffer.getvalue(), path)


def write_trajectories(out_dir: str | Path, epochs: int, starts: int, n_samples: int, seed: int) -> list[Path]:
    """Write ``figure_C_1.csv`` .. ``figure_C_3.csv`` (columns :data:`TRAJECTORY_COLUMNS`) under ``out_dir``.

    Rows are ordered by beta, start, step. Returns the paths in figure order.
    """
    if starts < 1:
        raise ValueError(f"starts must be at least 1, got {starts}")
    paths = []
    for setting in trajectory_settings():
        rows = []
        for beta in setting.betas:
            for number in range(starts):
                path = run_trajectory(
                    setting.optimizer, beta, epochs, start_seed(seed, number), n_samples,
                    lr=setting.lr, momentum=setting.momentum,
                )
                for step, (w1, w2) in enumerate(path):
                    rows.append(
                        (setting.figure, setting.optimizer, _fmt_beta(beta), number, step, _fmt(w1), _fmt(w2))
                    )
        paths.append(_write_csv(Path(out_dir) / f"{setting.stem}.csv", TRAJECTORY_COLUMNS, rows))
    return paths


def velocity_table(epochs: int, starts: int, n_samples: int,
                   seed: int) -> list[tuple[str, float, float, float, float, int]]:
    """(optimizer, lr, beta, mean velocity, std, runs) per Figure C.4 setting, sorted by optimizer, lr, beta.

    The std is the sample standard deviation over the runs (ddof = 1), 0 for a single run.
    """
    if starts < 1:
        raise ValueError(f"starts must be at least 1, got {starts}")
    table = []
    for optimizer, lr, momentum, betas in velocity_settings():
        for beta in betas:
            speeds = np.array(
                [
                    velocity(run_trajectory(optimizer, beta, epochs, start_seed(seed, t), n_samples,
                                            lr=lr, momentum=momentum))
                    for t in range(starts)
                ]
            )
            std = float(speeds.std(ddof=1)) if starts > 1 else 0.0
            table.append((optimizer, float(lr), float(beta), float(speeds.mean()), std, starts))
    return sorted(table, key=lambda row: row[:3])


def write_velocity(path: str | Path, epochs: int, starts: int, n_samples: int, seed: int) -> Path:
    """Write Figure C.4's data, ``velocity.csv``: columns :data:`VELOCITY_COLUMNS`, one row per (optimizer, lr,
    beta)."""
    rows = [
        (optimizer, _fmt_beta(lr), _fmt_beta(beta), _fmt(mean), _fmt(std), runs)
        for optimizer, lr, beta, mean, std, runs in velocity_table(epochs, starts, n_samples, seed)
    ]
    return _write_csv(Path(path), VELOCITY_COLUMNS, rows)


def stage_trajectories(config: list[Path], out: Path) -> Outcome:
    """``pblf trajectories``: the CSVs of Figures C.1-C.3 and ``velocity.csv`` of Figure C.4, into the folder ``out``."""
    cfg = load_config(config)
    c = cfg["appendix_c"]
    paths = write_trajectories(out, c["epochs"], c["starts"], c["n_samples"], cfg["seed"])
    paths.append(write_velocity(Path(out) / VELOCITY, c["epochs"], c["velocity_starts"], c["n_samples"], cfg["seed"]))
    log.info("Appendix C: %s", ", ".join(str(p) for p in paths))
    return Outcome(stage_config(cfg, "appendix_c"))
