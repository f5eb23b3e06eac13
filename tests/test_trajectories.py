"""Appendix C: the beta-perturbed ReLU derivative, the trajectories, the velocity table and their figures."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
import torch

from pblf.results import figures_c
from pblf.results import trajectories as tj

SEED = 3
N = 40  # points per class: small, the tests are about mechanics
EPOCHS = 8
TRIALS = 2


@pytest.fixture(scope="module")
def start() -> tj.Start:
    return tj.make_start(tj.start_seed(SEED, 0), N)


def _grad_with_plain_relu(start: tj.Start, w: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> torch.Tensor:
    """The same graph with autograd's own ReLU at hidden layer 2."""
    with monkeypatch.context() as patch:
        patch.setattr(tj, "beta_relu", lambda x, beta: torch.relu(x))
        return tj.trained_gradient(start, w, 123.0)  # beta is ignored by the stand-in


def test_beta_one_is_autograd_relu_bit_for_bit(start, monkeypatch):
    points = ([0.6, 0.3], [0.6, -0.3])  # both units active; unit 2 dead
    for w in (start.w0, *(torch.tensor(p, dtype=torch.float64) for p in points)):
        reference = _grad_with_plain_relu(start, w, monkeypatch)
        assert torch.equal(tj.trained_gradient(start, w, 1.0), reference)
        assert reference[0] != 0


def test_loss_is_softmax_cross_entropy_of_the_described_network(start):
    w = torch.tensor([0.6, 0.3], dtype=torch.float64)
    h1 = torch.relu(start.x @ start.w_in.T)
    h2 = torch.relu(h1 @ w.reshape(2, 1).T)
    logits = torch.relu(h2 @ start.w3.T) @ start.w4.T
    expected = torch.nn.functional.cross_entropy(logits, start.y)
    torch.testing.assert_close(tj.target_loss(start, w, 5.0), expected, rtol=1e-14, atol=0)
    assert start.x.dtype == torch.float64 and start.x.shape == (2 * N, 2)
    assert start.w_in.shape == (1, 2) and start.w3.shape == (2, 2) and start.w4.shape == (2, 2)


def test_beta_scales_the_gradient_where_the_unit_is_active(start):
    # h1 >= 0, so with w1, w2 > 0 both units of hidden layer 2 are active wherever h1 > 0.
    w = torch.tensor([0.6, 0.3], dtype=torch.float64)
    assert bool((start.x @ start.w_in.T > 0).any())
    g1 = tj.trained_gradient(start, w, 1.0)
    assert bool((g1 != 0).all())
    for c in (0.5, 5.0, 100.0):
        torch.testing.assert_close(tj.trained_gradient(start, w, c), c * g1, rtol=1e-12, atol=0)
    assert torch.equal(tj.trained_gradient(start, w, 0.0), torch.zeros(2, dtype=torch.float64))
    # Unit 2 dead (w2 < 0): its weight gets nothing whatever beta is, unit 1's still scales.
    w_dead = torch.tensor([0.6, -0.3], dtype=torch.float64)
    g_dead = tj.trained_gradient(start, w_dead, 1.0)
    g_dead5 = tj.trained_gradient(start, w_dead, 5.0)
    assert g_dead[1] == 0 and g_dead5[1] == 0 and g_dead[0] != 0
    torch.testing.assert_close(g_dead5, 5.0 * g_dead, rtol=1e-12, atol=0)
    # The forward pass does not see beta.
    assert torch.equal(tj.target_loss(start, w, 1.0), tj.target_loss(start, w, 5.0))


def test_trajectories_are_deterministic_share_a_start_and_depend_on_the_seed():
    seed = tj.start_seed(SEED, 0)
    a = tj.run_trajectory("gd_momentum", 5.0, EPOCHS, seed, N)
    b = tj.run_trajectory("gd_momentum", 5.0, EPOCHS, seed, N)
    assert a.shape == (EPOCHS + 1, 2) and a.dtype == np.float64
    assert np.array_equal(a, b)
    assert not np.allclose(a[1:], a[0])  # it moves
    start = tj.make_start(seed, N).w0.numpy()
    for optimizer, beta in (("gd_momentum", 1.0), ("sgd", 0.5), ("adam", 100.0), ("adagrad", 0.0)):
        assert np.array_equal(tj.run_trajectory(optimizer, beta, 2, seed, N)[0], start)
    other = tj.run_trajectory("gd_momentum", 5.0, EPOCHS, tj.start_seed(SEED, 1), N)
    assert not np.allclose(a, other)
    assert tj.start_seed(SEED, 0) != tj.start_seed(SEED, 1) != tj.start_seed(SEED + 1, 1)


def test_beta_acts_as_a_learning_rate_for_sgd_and_is_divided_out_by_adam():
    seed = tj.start_seed(SEED, 0)
    scaled_beta = tj.run_trajectory("sgd", 2.0, EPOCHS, seed, N, lr=0.5)
    scaled_lr = tj.run_trajectory("sgd", 1.0, EPOCHS, seed, N, lr=1.0)
    np.testing.assert_allclose(scaled_beta, scaled_lr, rtol=1e-9, atol=1e-12)
    sgd_small, sgd_large = (tj.run_trajectory("sgd", b, EPOCHS, seed, N) for b in (0.5, 5.0))
    assert np.abs(sgd_small - sgd_large).max() > 1e-2
    adam_small, adam_large = (tj.run_trajectory("adam", b, EPOCHS, seed, N) for b in (0.5, 5.0))
    np.testing.assert_allclose(adam_small, adam_large, rtol=1e-4, atol=1e-4)


def test_velocity_is_the_mean_step_length():
    path = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0], [3.0, 5.0]])
    assert tj.velocity(path) == pytest.approx((5.0 + 0.0 + 1.0) / 3)
    assert tj.velocity(path[:1]) == 0.0


def test_loss_landscape_layout_matches_target_loss(start):
    w1_grid, w2_grid = np.array([-0.5, 0.2, 0.7, 1.5]), np.array([-0.1, 0.4, 0.9])
    loss = tj.loss_landscape(w1_grid, w2_grid, tj.start_seed(SEED, 0), N)
    assert loss.shape == (3, 4)
    for i, j in itertools.product(range(3), range(4)):
        point = torch.tensor([w1_grid[j], w2_grid[i]], dtype=torch.float64)
        assert loss[i, j] == pytest.approx(float(tj.target_loss(start, point)), rel=1e-12)
    assert loss[0, 0] == pytest.approx(np.log(2.0), rel=1e-12)  # w1, w2 < 0: layer 2 dead, zero logits


@pytest.fixture(scope="module")
def written_twice(tmp_path_factory):
    """Every Appendix C output written and drawn twice, into two directories."""
    dirs = []
    for name in ("first", "second"):
        out = tmp_path_factory.mktemp(name)
        csvs = tj.write_trajectories(out, EPOCHS, TRIALS, N, SEED)
        velocity = tj.write_velocity(out / "velocity.csv", EPOCHS, TRIALS, N, SEED)
        for path in csvs:
            data = figures_c.trajectory_figure(path, seed=SEED, n_samples=N, grid_points=31)
            figures_c.draw_trajectories(data, out / path.stem, data.figure_id)
        figures_c.draw_velocity(figures_c.velocity_figure(velocity), out / "figure_C_4", "C.4")
        dirs.append(out)
    return dirs


def test_trajectory_csvs_have_the_columns_and_rows(written_twice):
    out = written_twice[0]
    for setting in tj.trajectory_settings():
        with (out / f"{setting.stem}.csv").open(newline="") as handle:
            rows = list(csv.reader(handle))
        assert tuple(rows[0]) == tj.TRAJECTORY_COLUMNS
        body = rows[1:]
        assert len(body) == len(setting.betas) * TRIALS * (EPOCHS + 1)
        assert {r[0] for r in body} == {setting.figure} and {r[1] for r in body} == {setting.optimizer}
        assert sorted({float(r[2]) for r in body}) == sorted(setting.betas)
    assert [s.figure for s in tj.trajectory_settings()] == ["C.1", "C.2", "C.3"]


def test_velocity_csv_has_one_row_per_optimizer_and_beta(written_twice):
    with (written_twice[0] / "velocity.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
        handle.seek(0)
        header = handle.readline().strip().split(",")
    assert header == ["optimizer", "lr", "beta", "velocity_mean", "velocity_std", "runs"]
    keys = [(r["optimizer"], float(r["lr"]), float(r["beta"])) for r in rows]
    assert keys == sorted((o, lr, b) for (o, lr), b in itertools.product(tj.VELOCITY_PANELS, tj.VELOCITY_BETAS))
    assert len({(o, lr) for o, lr, _ in keys}) == 5 and {lr for o, lr, _ in keys if o == "sgd"} == {0.1, 0.5, 1.5}
    assert all(int(r["runs"]) == TRIALS for r in rows)
    speed = {key: float(r["velocity_mean"]) for key, r in zip(keys, rows)}
    assert all(speed[(o, lr, 0.0)] == 0.0 for o, lr in tj.VELOCITY_PANELS)  # beta = 0: nothing moves
    for lr in (0.1, 0.5, 1.5):  # SGD: beta acts as a learning-rate factor at every rate
        assert speed[("sgd", lr, 0.5)] < speed[("sgd", lr, 1.0)] < speed[("sgd", lr, 5.0)]
    assert speed[("sgd", 0.1, 1.0)] < speed[("sgd", 0.5, 1.0)] < speed[("sgd", 1.5, 1.0)]
    assert speed[("adam", 0.5, 0.5)] == pytest.approx(speed[("adam", 0.5, 100.0)], rel=1e-3)


def test_writers_and_figures_are_byte_stable(written_twice):
    first, second = written_twice
    names = sorted(p.name for p in first.iterdir())
    expected = {f"figure_C_{i}.{ext}" for i in (1, 2, 3, 4) for ext in ("png", "pdf")}
    expected |= {f"figure_C_{i}.csv" for i in (1, 2, 3)} | {"velocity.csv"}
    assert set(names) == expected
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_figure_refuses_a_seed_the_csv_was_not_written_with(written_twice, tmp_path):
    with pytest.raises(ValueError, match="seed"):
        figures_c.trajectory_figure(written_twice[0] / "figure_C_1.csv", seed=SEED + 1, n_samples=N)


def test_the_trajectory_and_velocity_figures_read_the_csvs_by_hand(tmp_path):
    """The numbers Figures C.1-C.4 plot: each start's path per beta as written (step order), its start point, the
    loss landscape of that start; and per panel of C.4 the velocity rows in beta order."""
    out = tmp_path / "c"
    (path, *_), velocity = tj.write_trajectories(out, EPOCHS, TRIALS, N, SEED), \
        tj.write_velocity(out / "velocity.csv", EPOCHS, TRIALS, N, SEED)
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["start"] == "0" and float(row["beta"]) == 1.0]
    data = figures_c.trajectory_figure(path, seed=SEED, n_samples=N, grid_points=5)
    panel = data.panels[0]
    expected = np.array([[float(r["w1"]), float(r["w2"])] for r in sorted(rows, key=lambda r: int(r["step"]))])
    np.testing.assert_array_equal(panel.paths[1.0], expected)
    np.testing.assert_allclose(panel.start_point, expected[0], rtol=1e-6)
    np.testing.assert_array_equal(panel.loss, tj.loss_landscape(panel.w1_grid, panel.w2_grid,
                                                                tj.start_seed(SEED, 0), N))
    assert (data.figure_id, data.steps, panel.loss.shape) == ("C.1", EPOCHS, (5, 5))
    speed = figures_c.velocity_figure(velocity)
    with velocity.open(newline="") as handle:
        sgd = sorted((float(r["beta"]), float(r["velocity_mean"])) for r in csv.DictReader(handle)
                     if (r["optimizer"], float(r["lr"])) == tj.VELOCITY_PANELS[0])
    first = speed.panels[0]
    assert (first.optimizer, first.lr) == tj.VELOCITY_PANELS[0] and speed.runs == [TRIALS]
    assert list(zip(first.betas, first.mean)) == sgd
