"""The results layout: every path builder round-trips, rules get wildcard patterns, runs know who they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from pblf.core.errors import ConfigError, InputError
from pblf.core.layout import (
    RUN_TEMPLATES, TEMPLATES, Layout, RunId, Template, check_run_folder, find_run, run_layout, run_name, working_folder,
    write_run_record,
)
from pblf.core.names import FIGURES, RUN_KINDS, TABLE_FORMATS, TABLES

L = Layout("results", "logs")
RUNS = [
    RunId("search", 20, 0, "PBLF-BO", 3, 1, 0),
    RunId("search", 100, 1007, "PBLF-RS", 0, 42, 1),
    RunId("repeat", 20, 4, "Standard", search=0),
    RunId("convergence", 600, 0, "PBLF-RS"),
]


def test_paths_are_the_documented_layout():
    assert L.split() == "results/data/split.json"
    assert L.array("test_labels") == "results/data/arrays/test_labels.npy"
    assert L.stage_config("train") == "results/config/train.json"
    assert L.history(20, "PBLF-BO", 0, 3) == "results/search/b20/PBLF-BO/r0/i003/history.csv"
    assert L.proposal(20, "PBLF-BO", 1, 3) == "results/search/b20/PBLF-BO/r1/i003/proposal.json"
    assert L.evaluations(100, "PBLF-RS", 0) == "results/search/b100/PBLF-RS/r0/evaluations.csv"
    assert L.selection(20, "Standard", 0) == "results/select/b20/r0/Standard.json"
    assert L.trials() == "results/tables/trials.csv"
    assert L.table("table_6_2", "md") == "results/tables/table_6_2.md"
    assert L.figure("6.3", "pdf") == "results/figures/figure_6_3.pdf"
    assert L.figure("C.4", "png") == "results/figures/figure_C_4.png"
    assert L.trajectory("C.2") == "results/trajectories/figure_C_2.csv"
    assert L.velocity() == "results/trajectories/velocity.csv"
    assert [L.run(run) for run in RUNS] == [
        "results/runs/search/b20/PBLF-BO/r0/i003/c01",
        "results/runs/search/b100/PBLF-RS/r1/i000/c42",
        "results/runs/repeats/b20/Standard/r0/s4",
        "results/runs/convergence/PBLF-RS/s0",
    ]
    assert L.metrics(RUNS[2]) == "results/runs/repeats/b20/Standard/r0/s4/metrics.json"


def test_rules_get_wildcard_patterns_from_the_same_builders():
    assert L.history("{budget}", "{method}", "{search}", "{iteration}") == "results/search/b{budget}/{method}/r{search}/i{iteration}/history.csv"
    assert L.selection("{budget}", "Standard", "{search}") == "results/select/b{budget}/r{search}/Standard.json"
    assert L.metrics("{run}") == "results/runs/{run}/metrics.json"
    assert L.figure("6.{n}", "png") == "results/figures/figure_6_{n}.png"
    assert L.log(L.proposal("{budget}", "{method}", "{search}", "{iteration}")) == "logs/search/b{budget}/{method}/r{search}/i{iteration}/proposal.log"
    assert L.run_log("{run}") == "logs/runs/{run}.log"
    assert Layout.iteration(7) == "007"


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r.folder)
def test_every_run_folder_round_trips(run):
    train_seed = run.seed - 1000 * run.search if run.kind == "search" else 99
    budget = run.budget if run.kind == "convergence" else 99
    assert Layout.parse_run(run.folder, train_seed=train_seed, convergence_budget=budget) == run
    assert RunId.from_dict(run.to_dict()) == run


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_round_trips(name):
    template = TEMPLATES[name]
    values = {field: 7 if field in ("budget", "iteration", "seed", "index", "search") else "x" for field, _ in template.fields}
    filled = template.fill(**values)
    assert template.parse(filled) == {field: template.value(field, value) for field, value in values.items()}


def test_table_and_figure_files_cover_every_id():
    files = {L.table(name, fmt) for name in TABLES for fmt in TABLE_FORMATS} | {L.figure(f, "png") for f in FIGURES}
    assert len(files) == len(TABLES) * len(TABLE_FORMATS) + len(FIGURES)


@pytest.mark.parametrize("folder", ["search/b20/PBLF-BO/r0/i3/c1", "search/b20/PBLF-BO/i003/c01", "repeats/b20/s0", "elsewhere/x", "search/b20/PBLF-BO/i003"])
def test_a_folder_outside_the_layout_is_refused(folder):
    with pytest.raises(ValueError, match="is not a run folder"):
        Layout.parse_run(folder, 0, 600)


@pytest.mark.parametrize(
    "fields, message",
    [
        (("sweep", 20, 0, "PBLF-BO"), "run kind 'sweep'"),
        (("search", 20, 0, "PBLF-BO"), "only if it is a search run"),
        (("repeat", 20, 0, "PBLF-BO", 1, 2), "only if it is a search run"),
        (("repeat", 20, 0), "needs a method"),
        (("repeat", 0, 0, "Standard"), "budget 0"),
        (("convergence", 600, 0, "PBLF-BO", None, None, 0), "takes a search"),
        (("search", 20, 0, "PBLF-BO", 1, 2, -1), "takes a search"),
    ],
)
def test_an_impossible_identity_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        RunId(*fields)


def test_a_search_or_repeat_run_without_a_search_is_of_the_first():
    assert RunId("search", 20, 0, "PBLF-BO", 1, 2).search == 0
    assert RunId("repeat", 20, 3, "Standard").folder == "repeats/b20/Standard/r0/s3"


def test_a_manual_run_has_an_identity_but_no_folder():
    run = RunId("manual", 3, 1)
    assert run.to_dict() == {"kind": "manual", "budget": 3, "seed": 1}
    with pytest.raises(ValueError, match="no folder"):
        run.folder


def test_every_kind_but_manual_has_a_folder_template():
    assert sorted(RUN_TEMPLATES) == sorted(set(RUN_KINDS) - {"manual"})


def test_template_formats_numbers_and_keeps_wildcards():
    template = Template("i{iteration:03d}/c{index:02d}")
    assert template.fill(iteration=3, index="4") == "i003/c04"
    assert template.fill(iteration="{iteration}", index="{index}") == "i{iteration}/c{index}"
    assert template.parse("i003/c04") == {"iteration": "003", "index": "04"}
    assert template.parse("i3/c4") is None


# --- a folder per run -----------------------------------------------------------------------------------------------


def test_a_run_is_named_by_its_config_files_or_its_run_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_name({}, ["config.yaml"]) == "thesis"
    assert run_name({}, ["presets/demo.yaml", "config.yaml"]) == "demo"
    assert run_name({"run_name": None}, ["config.yaml", "presets/smoke.yaml", str(tmp_path / "two.yaml")]) == "smoke+two"
    assert run_name({"run_name": "mine"}, ["presets/demo.yaml"]) == "mine"
    with pytest.raises(ConfigError, match="is not a folder name"):
        run_name({}, ["my config.yaml"])
    assert (run_layout("demo").results, run_layout("demo").logs) == ("results/demo", "logs/demo")


def test_a_run_folder_holds_one_config_and_says_where_its_records_point(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    demo = run_layout("demo")
    check_run_folder(demo, ["presets/demo.yaml"])  # a new folder: nothing to refuse
    write_run_record(demo, ["presets/demo.yaml", "config.yaml"])
    check_run_folder(demo, ["./presets/demo.yaml", "config.yaml"])  # the same files, spelled otherwise
    with pytest.raises(ConfigError, match="results/demo holds the run of presets/demo.yaml config.yaml, not of "
                                          "presets/smoke.yaml config.yaml: give this run another run_name"):
        check_run_folder(demo, ["presets/smoke.yaml", "config.yaml"])
    assert find_run(Path("results")) == Path("results/demo")  # the one run under results/
    assert working_folder(Path("results/demo")) == Path(".")
    assert working_folder(tmp_path / "results" / "demo") == tmp_path
    write_run_record(run_layout("smoke"), ["presets/smoke.yaml"])
    with pytest.raises(InputError, match="results holds the runs demo, smoke: name one"):
        find_run(Path("results"))
    (tmp_path / "results" / "demo" / "run.json").write_text('{"results": "../../etc"}')
    with pytest.raises(InputError, match="does not name this folder"):
        working_folder(Path("results/demo"))
    assert working_folder(tmp_path / "handmade") == tmp_path  # no run record: the folder that holds it
