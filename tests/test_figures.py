"""Figures 6.1-6.4: the numbers each plots (worked out by hand), that the drawing places exactly those numbers,
byte-stable output, refusal of partial inputs, a PCA that does not depend on row order; and the table of figures."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from pblf.core.errors import InputError
from pblf.core.names import FIGURES
from pblf.results import curves, figures, scatter
from pblf.search.registry import methods

BUDGET = 3


def fake_metrics(method: str, seed: int, budget: int = BUDGET, status: str = "ok", epochs: int | None = None) -> dict:
    """A metrics.json as pblf.training.train writes it, with accuracies that differ by method, seed and epoch."""
    epochs = budget if epochs is None else epochs
    offset = 5.0 * methods().index(method) + 1.5 * seed
    rows = [
        {"epoch": e, "lr": 0.1, "train_loss": 2.0 / e, "train_top1": 30.0 + 10 * e + offset,
         "val_top1": 25.0 + 10 * e + offset, "test_top1": 20.0 + 10 * e + offset, "seconds": 1.0 + seed,
         "images_per_second": 1000.0 + e}
        for e in range(1, epochs + 1)
    ]
    metrics = {"run": {"kind": "repeat", "method": method, "budget": budget, "seed": seed}, "status": status,
               "epochs": rows,
               "candidate": {"w1": 0.0, "w2": 0.0, "b1": 0.0, "b2": 1.0, "mode": "1111"}, "activation": "relu"}
    if status == "diverged":
        metrics["diverged_at"] = {"epoch": epochs + 1, "step": 7}
        metrics["val_top1"], metrics["test_top1"] = 10.0, 10.0
    else:
        metrics["val_top1"], metrics["test_top1"] = rows[-1]["val_top1"], rows[-1]["test_top1"]
    return metrics


def fake_runs(budget: int = BUDGET) -> dict[str, list[dict]]:
    return {m: [fake_metrics(m, s, budget) for s in (0, 1)] for m in methods()}


def fake_search(budget: int, method: str, n: int = 5) -> list[dict[str, str]]:
    """Rows as pblf.core.files.read_csv returns them from evaluations.csv: every value a string, mode with leading zeros."""
    rng = np.random.default_rng([budget, methods().index(method)])
    rows = []
    for i in range(n):
        w1, w2, b1, b2 = (round(float(v), 6) for v in rng.uniform(-1, 1, 4))
        mode = "".join(str(int(b)) for b in rng.integers(0, 2, 4))
        rows.append({"iteration": str(i // 2), "index": str(i % 2), "source": "random", "w1": str(w1), "w2": str(w2),
                     "b1": str(b1), "b2": str(b2), "mode": mode, "status": "ok",
                     "val_top1": str(round(float(rng.uniform(10, 90)), 2)),
                     "test_top1": str(round(float(rng.uniform(10, 90)), 2)), "run": f"runs/i{i // 2:03d}/c{i % 2:02d}"})
    return rows


def fake_searches() -> dict[tuple[int, str], list[dict[str, str]]]:
    return {(b, m): fake_search(b, m) for b in (2, 3) for m in ("PBLF-BO", "PBLF-RS")}


def curve_files(runs: dict, stem: Path, budget: int = BUDGET) -> list[Path]:
    return curves.draw_curves(curves.curve_figure(runs, budget), stem, "6.1")


def scatter_files(searches: dict, stem: Path) -> list[Path]:
    return scatter.draw_scatter(scatter.scatter_figure(searches), stem, "6.3")


def convergence_files(runs: dict, stem: Path) -> list[Path]:
    return curves.draw_convergence(curves.convergence_figure(runs), stem, "6.4")


def captured_figure(monkeypatch) -> dict:
    """Keep the matplotlib figure a draw function would save, to read back what it drew."""
    captured: dict = {}
    monkeypatch.setattr(figures.curves.plotting, "save_figure", lambda fig, stem: captured.setdefault("fig", fig) and [])
    return captured


def assert_same_bytes(first: list[Path], second: list[Path]) -> None:
    assert [p.suffix for p in first] == [".png", ".pdf"]
    for a, b in zip(first, second):
        assert a.is_file() and a.stat().st_size > 0, a
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two draws"


# ---------------------------------------------------------------------------------------------- byte-stability


def test_curves_are_byte_identical(tmp_path: Path) -> None:
    runs = fake_runs()
    runs["PBLF-RS"][0] = fake_metrics("PBLF-RS", 0, status="diverged", epochs=1)  # drawn apart, not in the mean
    first = curve_files(runs, tmp_path / "a" / "figure_6_1")
    # Seeds in the other order: the figure must not depend on the order the runs arrive in.
    swapped = {m: list(reversed(seeds)) for m, seeds in runs.items()}
    second = curve_files(swapped, tmp_path / "b" / "figure_6_1")
    assert_same_bytes(first, second)


def test_search_scatter_is_byte_identical_and_ignores_row_order(tmp_path: Path) -> None:
    searches = fake_searches()
    searches[(2, "PBLF-BO")][1]["status"] = "diverged"
    first = scatter_files(searches, tmp_path / "a" / "figure_6_3")
    shuffled = {}
    for key, rows in reversed(list(searches.items())):
        rows = list(rows)
        random.Random(1).shuffle(rows)
        shuffled[key] = rows
    second = scatter_files(shuffled, tmp_path / "b" / "figure_6_3")
    assert_same_bytes(first, second)


def test_convergence_is_byte_identical(tmp_path: Path) -> None:
    runs = {m: fake_metrics(m, 0, budget=4) for m in methods()}
    runs["PBLF-BO"] = fake_metrics("PBLF-BO", 0, budget=4, status="diverged", epochs=2)
    first = convergence_files(runs, tmp_path / "a" / "figure_6_4")
    second = convergence_files(runs, tmp_path / "b" / "figure_6_4")
    assert_same_bytes(first, second)


# --------------------------------------------------------------------------------------------- partial inputs


def test_load_metrics_names_the_missing_file(tmp_path: Path) -> None:
    present = tmp_path / "s0" / "metrics.json"
    present.parent.mkdir()
    present.write_text(json.dumps(fake_metrics("Standard", 0)))
    loaded = curves.load_metrics([present])
    assert loaded[0]["status"] == "ok" and loaded[0]["path"] == str(present)
    missing = tmp_path / "s1" / "metrics.json"
    with pytest.raises(InputError, match="s1/metrics.json"):
        curves.load_metrics([present, missing])


def test_curves_refuse_a_missing_method(tmp_path: Path) -> None:
    runs = fake_runs()
    del runs["PBLF-RS"]
    with pytest.raises(ValueError, match="PBLF-RS"):
        curve_files(runs, tmp_path / "f")
    runs = fake_runs()
    runs["Standard"] = []
    with pytest.raises(ValueError, match="Standard"):
        curve_files(runs, tmp_path / "f")
    assert not list(tmp_path.iterdir()), "nothing may be written from partial inputs"


def test_curves_refuse_an_incomplete_run(tmp_path: Path) -> None:
    runs = fake_runs()
    runs["PBLF-BO"][1] = {**fake_metrics("PBLF-BO", 1, epochs=BUDGET - 1), "path": "runs/b3/PBLF-BO/s1/metrics.json"}
    runs["PBLF-BO"][1]["status"] = "ok"
    with pytest.raises(ValueError, match=r"PBLF-BO run runs/b3/PBLF-BO/s1/metrics.json .*incomplete"):
        curve_files(runs, tmp_path / "f")
    # The wrong budget, and a status that is neither ok nor diverged, are refused too.
    with pytest.raises(ValueError, match="budget"):
        curve_files(fake_runs(budget=BUDGET + 1), tmp_path / "f")
    runs = fake_runs()
    runs["Standard"][0]["status"] = "running"
    with pytest.raises(ValueError, match="Standard run seed 0 has status 'running'"):
        curve_files(runs, tmp_path / "f")


def test_convergence_refuses_an_unknown_method_and_an_incomplete_run(tmp_path: Path) -> None:
    runs = {m: fake_metrics(m, 0) for m in methods()}
    runs["Backprop Evolution"] = runs.pop("Standard")
    with pytest.raises(ValueError, match="unknown or no method.*Backprop Evolution"):
        convergence_files(runs, tmp_path / "f")
    del runs["Backprop Evolution"]  # the methods of convergence.methods: any of them
    assert len(convergence_files(runs, tmp_path / "f")) == 2
    runs = {m: fake_metrics(m, 0) for m in methods()}
    runs["PBLF-RS"]["epochs"] = runs["PBLF-RS"]["epochs"][:1]
    with pytest.raises(ValueError, match="PBLF-RS.*incomplete"):
        convergence_files(runs, tmp_path / "f")


def test_search_scatter_refuses_empty_and_missing_searches(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no searches"):
        scatter_files({}, tmp_path / "f")
    searches = fake_searches()
    searches[(3, "PBLF-RS")] = []
    with pytest.raises(ValueError, match="PBLF-RS at budget 3 is empty"):
        scatter_files(searches, tmp_path / "f")
    searches = fake_searches()
    del searches[(2, "PBLF-BO")]
    with pytest.raises(ValueError, match="PBLF-BO at budget 2 is missing"):
        scatter_files(searches, tmp_path / "f")


# ------------------------------------------------------------------------------------------------------- PCA


def test_projection_ignores_row_order_and_fixes_signs() -> None:
    rows = [row for rows in fake_searches().values() for row in rows]
    coords, ratios, components = scatter.project_candidates(rows)
    assert coords.shape == (len(rows), 2) and components.shape == (2, len(scatter.PCA_FEATURES))
    assert 0 < ratios[1] <= ratios[0] and ratios.sum() <= 1 + 1e-12
    for component in components:  # the sign convention: the largest-magnitude loading is positive
        assert component[np.argmax(np.abs(component))] > 0
    permutation = np.random.default_rng(3).permutation(len(rows))
    coords_p, ratios_p, components_p = scatter.project_candidates([rows[i] for i in permutation])
    np.testing.assert_array_equal(coords_p, coords[permutation])
    np.testing.assert_array_equal(ratios_p, ratios)
    np.testing.assert_array_equal(components_p, components)
    # Mode bits count: two candidates that differ only in mode are apart.
    twins = [dict(rows[0], mode="0000"), dict(rows[0], mode="1111")]
    assert np.abs(scatter.project_candidates(twins)[0][0] - scatter.project_candidates(twins)[0][1]).max() > 0.5


def test_projection_of_degenerate_inputs() -> None:
    one = fake_search(2, "PBLF-BO", n=1)
    coords, ratios, _ = scatter.project_candidates(one)
    np.testing.assert_array_equal(coords, np.zeros((1, 2)))
    np.testing.assert_array_equal(ratios, np.zeros(2))
    with pytest.raises(ValueError, match="mode"):
        scatter.candidate_features(dict(one[0], mode="012"))
    # A CSV whose mode lost its leading zeros (0011 -> "11") still gives the right bits; a number is refused.
    assert scatter.candidate_features(dict(one[0], mode="11"))[4:] == [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="must be a string"):
        scatter.candidate_features(dict(one[0], mode=11))


# ----------------------------------------------------------------------------------------------- diverged runs


def test_curves_when_every_seed_of_a_method_diverged(tmp_path: Path) -> None:
    """No mean and no band for that method, only its diverged runs (one diverged in its first epoch: no rows)."""
    runs = fake_runs()
    runs["PBLF-BO"] = [fake_metrics("PBLF-BO", s, status="diverged", epochs=s) for s in (0, 1)]
    paths = curve_files(runs, tmp_path / "curves")
    assert all(p.stat().st_size > 0 for p in paths)


def test_chosen_candidate_is_earliest_of_the_best() -> None:
    rows = fake_search(2, "PBLF-RS", n=4)
    for row in rows:
        row["val_top1"] = "50.0"
    rows[2]["val_top1"] = rows[3]["val_top1"] = "70.0"
    best = scatter.chosen_candidate(list(reversed(rows)))
    assert (best["iteration"], best["index"]) == (rows[2]["iteration"], rows[2]["index"])


# ------------------------------------------------------------------------------------- the numbers each figure plots


def test_the_curves_are_the_mean_min_and_max_over_completed_runs() -> None:
    runs = fake_runs()  # Top-1 = 20 + 10 * epoch + 5 * (method's place) + 1.5 * seed, seeds 0 and 1
    runs["PBLF-RS"].append(fake_metrics("PBLF-RS", 2, status="diverged", epochs=1))
    summary = curves.curve_figure(runs, BUDGET).methods
    bo = summary["PBLF-BO"].bands["test_top1"]
    np.testing.assert_allclose(bo.mean, [30.75, 40.75, 50.75])
    np.testing.assert_allclose(bo.low, [30.0, 40.0, 50.0])
    np.testing.assert_allclose(bo.high, [31.5, 41.5, 51.5])
    np.testing.assert_allclose(summary["Standard"].bands["val_top1"].mean, [45.75, 55.75, 65.75])
    rs = summary["PBLF-RS"]  # the diverged seed is drawn apart, not averaged in
    np.testing.assert_allclose(rs.bands["test_top1"].mean, [35.75, 45.75, 55.75])
    assert rs.n_runs == 3 and [run.end_epoch for run in rs.diverged] == [2]  # diverged in its second epoch
    np.testing.assert_allclose(rs.diverged[0].values["test_top1"], [20 + 10 + 5 + 3.0])  # its one completed epoch
    assert rs.diverged[0].end == {"test_top1": 10.0, "val_top1": 10.0}  # what it measured after diverging


def test_the_curves_of_a_method_whose_runs_all_diverged() -> None:
    runs = fake_runs()
    runs["PBLF-BO"] = [fake_metrics("PBLF-BO", s, status="diverged", epochs=1) for s in (0, 1)]
    summary = curves.curve_figure(runs, BUDGET).methods
    assert summary["PBLF-BO"].bands == {"test_top1": None, "val_top1": None}


def test_projection_of_candidates_worked_out_by_hand() -> None:
    """Four candidates spread along w1 (by 0.5) and w2 (by 0.2) only: the components are the w1 and w2 axes, the
    coordinates the centred values, and the ratios 0.5 / 0.58 and 0.08 / 0.58 of the total variance."""
    rows = [{"w1": w1, "w2": w2, "b1": 0.1, "b2": -0.3, "mode": "0110"}
            for w1, w2 in ((0.5, 0.0), (-0.5, 0.0), (0.0, 0.2), (0.0, -0.2))]
    coordinates, ratios, components = scatter.project_candidates(rows)
    np.testing.assert_allclose(coordinates, [[0.5, 0.0], [-0.5, 0.0], [0.0, 0.2], [0.0, -0.2]], atol=1e-12)
    np.testing.assert_allclose(ratios, [0.5 / 0.58, 0.08 / 0.58])
    np.testing.assert_allclose(np.abs(components), np.eye(2, len(scatter.PCA_FEATURES)), atol=1e-12)


def test_the_curves_drawn_are_the_summary(monkeypatch, tmp_path: Path) -> None:
    """Panel (a) of Figure 6.1 draws PBLF-BO's mean Top-1 and mean Top-1 validation, and panel (e) every
    method's mean Top-1: the drawing places the numbers of curve_figure, not other series."""
    captured = captured_figure(monkeypatch)
    runs = fake_runs()
    curve_files(runs, tmp_path / "f")
    summary = curves.curve_figure(runs, BUDGET).methods
    panel_a, panel_d = captured["fig"].axes[0], captured["fig"].axes[len(methods())]
    drawn_a = [line.get_ydata() for line in panel_a.get_lines()]
    expected_a = [summary["PBLF-BO"].bands[key].mean for key in ("val_top1", "test_top1")]
    assert all(any(np.array_equal(e, d) for d in drawn_a) for e in expected_a)
    drawn_d = [line.get_ydata() for line in panel_d.get_lines()]
    for method in methods():
        assert any(np.array_equal(summary[method].bands["test_top1"].mean, d) for d in drawn_d), method


def test_the_convergence_curves_by_hand(monkeypatch, tmp_path: Path) -> None:
    """Figure 6.4's numbers: each rerun's Top-1 per epoch (20 + 10 epoch + 5 method's place) and its final Top-1;
    a diverged rerun ends at the epoch it diverged in; the lines drawn are those numbers."""
    runs = {m: fake_metrics(m, 0, budget=4) for m in methods()}
    runs["PBLF-RS"] = fake_metrics("PBLF-RS", 0, budget=4, status="diverged", epochs=2)
    data = curves.convergence_figure(runs)
    assert data.budget == 4 and list(data.curves) == list(methods())
    np.testing.assert_allclose(data.curves["Standard"].top1, [40.0, 50.0, 60.0, 70.0])  # Standard is third
    assert data.curves["Standard"].final == 70.0 and data.curves["Standard"].diverged is None
    assert data.curves["PBLF-RS"].diverged.end_epoch == 3 and data.curves["PBLF-RS"].final == 10.0
    captured = captured_figure(monkeypatch)
    curves.draw_convergence(data, tmp_path / "f", "6.4")
    drawn = [line.get_ydata() for line in captured["fig"].axes[0].get_lines()]
    assert any(np.array_equal(line, [40.0, 50.0, 60.0, 70.0]) for line in drawn)


def test_the_scatter_points_by_hand(monkeypatch, tmp_path: Path) -> None:
    """Figure 6.3's numbers: two searches of two candidates that differ only in w1 (by 0.6) and w2 (by 0.2) along
    with their search: the coordinates are the centred w1 and w2, in evaluation order, and the chosen candidate is
    the higher Top-1 validation; the points drawn are those coordinates."""
    def row(iteration, w1, w2, val, test, method):
        return {"budget_epochs": 2, "method": method, "iteration": iteration, "index": 0, "w1": w1, "w2": w2,
                "b1": 0.1, "b2": 0.2, "mode": "1010", "status": "ok", "val_top1": val, "test_top1": test}
    searches = {(2, "PBLF-BO"): [row(1, 0.3, 0.0, 80.0, 70.0, "PBLF-BO"), row(0, -0.3, 0.0, 60.0, 50.0, "PBLF-BO")],
                (2, "PBLF-RS"): [row(0, 0.0, 0.1, 55.0, 45.0, "PBLF-RS"), row(1, 0.0, -0.1, 65.0, 40.0, "PBLF-RS")]}
    data = scatter.scatter_figure(searches)
    bo, rs = data.panels
    np.testing.assert_allclose(bo.points, [[-0.3, 0.0], [0.3, 0.0]], atol=1e-12)  # iteration order: -0.3 first
    np.testing.assert_allclose(rs.points, [[0.0, 0.1], [0.0, -0.1]], atol=1e-12)
    np.testing.assert_allclose(data.ratios, [0.18 / 0.20, 0.02 / 0.20])  # variances 0.09 and 0.01 (x 2 / 4)
    assert (bo.chosen, rs.chosen) == (1, 1) and list(bo.top1) == [50.0, 70.0]
    captured = captured_figure(monkeypatch)
    scatter.draw_scatter(data, tmp_path / "f", "6.3")
    offsets = np.concatenate([c.get_offsets() for c in captured["fig"].axes[0].collections])
    assert {tuple(np.round(p, 9)) for p in offsets} == {(-0.3, 0.0), (0.3, 0.0)}


def test_every_figure_has_a_read_and_a_draw() -> None:
    assert set(figures.FIGURES_DRAWN) == set(FIGURES)
