"""The results layout: where every file of a run of the pipeline lives, written once, used by rules and code alike.

Each path is one template below. :class:`Layout` fills templates in for the code (``layout.proposal(20, "PBLF-BO",
0, 3)`` is ``results/search/b20/PBLF-BO/r0/i003/proposal.json``) and, given Snakemake wildcards instead of values,
gives the rules their patterns (``layout.proposal("{budget}", "{method}", "{search}", "{iteration}")``), so a rule
never re-types a path.
This is also the only module that reads a path back into its parts (:meth:`Layout.parse_run`, for the training
rule's ``run`` wildcard); everything else reads a run's identity from its ``metrics.json`` (:class:`RunId`).

Results layout: each run of the pipeline in ``results/<name>/`` (:func:`run_name`: the config files' names, or the
``run_name`` key; ``logs/<name>/`` mirrors it with one ``.log`` per job)::

    run.json                                     the config files of the run, and the folder's name as the pipeline
                                                 gave it (for the audit)
    config/<stage>.json                          the config keys a stage reads
    data/split.json                              the train/validation split record
    data/arrays/*.npy                            the data set as arrays (train and test images and labels)
    search/b<B>/<method>/r<R>/i<III>/history.csv      what the proposer of iteration III of search R saw
    search/b<B>/<method>/r<R>/i<III>/proposal.json    its proposal (a Snakemake checkpoint)
    search/b<B>/<method>/r<R>/evaluations.csv         every candidate search R evaluated, in order
    select/b<B>/r<R>/<method>.json               the candidate search R chose (highest Top-1 validation)
    runs/search/b<B>/<method>/r<R>/i<III>/c<JJ>/ one search run: metrics.json, checkpoint.pt
    runs/repeats/b<B>/<method>/r<R>/s<S>/        search R's choice retrained with repeat seed S
    runs/convergence/<method>/s<S>/              the long reruns (Figure 6.4)
    runs/generalisation/b<B>/<method>/bs<N>/<fixed|linear>/s<S>/   the chosen candidates at other batch sizes
    generalisation/runs.csv                      one row per generalisation run (as tables/trials.csv for repeats)
    tables/generalisation.{csv,md,tex}           Top-1 and diverged runs per method, batch size and lr scaling
    tables/trials.csv                            one row per repeat (SPEC section 3); every table is made from it
    tables/<table>.{csv,md,tex}                  Tables 6.2, B.1, B.2
    trajectories/figure_C_<N>.csv, velocity.csv  Appendix C
    figures/figure_<id>.{png,pdf}                every figure
    provenance/<path of a file above>.json       its provenance record
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from pblf.core.config import SEARCH_SEED_STRIDE, allowed
from pblf.core.errors import ConfigError, InputError
from pblf.core.files import read_json, write_json
from pblf.core.names import RUN_KINDS, figure_stem

#: How a generalisation run's learning rate follows its batch size: kept as configured, or scaled in proportion
#: (the linear scaling rule of Goyal et al. 2017); written in the schema.
LR_SCALINGS: tuple[str, ...] = allowed("generalisation.lr_scaling")

#: The names of the files a stage writes into its ``--out`` folder (``pblf <command> --out DIR``).
SPLIT = "split.json"
HISTORY = "history.csv"
PROPOSAL = "proposal.json"
EVALUATIONS = "evaluations.csv"
TRIALS = "trials.csv"
VELOCITY = "velocity.csv"
GENERALISATION_RUNS = "runs.csv"
GENERALISATION = "generalisation"
SUMMARY = "summary.html"
METRICS = "metrics.json"
CHECKPOINT = "checkpoint.pt"


def selection_name(method: str) -> str:
    """The file a selection writes into ``select/b<B>/``: one per method."""
    return f"{method}.json"


class Template:
    """A path with named fields, e.g. ``search/b{budget}/{method}/i{iteration:03d}``.

    :meth:`fill` formats integers with the field's spec and passes any other string through unchanged, so that
    ``fill(iteration="{iteration}")`` leaves a Snakemake wildcard in place; :meth:`parse` reads a filled path back.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.fields = [(name, spec) for _, name, spec, _ in string.Formatter().parse(text) if name]
        regex = ""
        for literal, name, spec, _ in string.Formatter().parse(text):
            regex += re.escape(literal)
            if name:
                width = re.fullmatch(r"0(\d+)d", spec or "")
                value = rf"\d{{{width.group(1)}}}" if width else r"[^/]+"
                regex += f"(?P<{name}>{value})"
        self.regex = re.compile(regex)

    def value(self, name: str, value: Any) -> str:
        """One field as the template writes it: an integer with the field's spec, anything else unchanged."""
        spec = dict(self.fields)[name]
        numeric = isinstance(value, int) or (isinstance(value, str) and value.isdigit())
        return format(int(value), spec) if spec and numeric else str(value)

    def fill(self, **values: Any) -> str:
        return self.text.format_map(_Raw({name: self.value(name, values[name]) for name, _ in self.fields}))

    def parse(self, path: str) -> dict[str, str] | None:
        match = self.regex.fullmatch(path)
        return match.groupdict() if match else None


class _Raw(dict):
    """format_map values already formatted by :meth:`Template.fill`: their specs must not apply again."""

    def __getitem__(self, key: str) -> "_Formatted":
        return _Formatted(super().__getitem__(key))


class _Formatted(str):
    def __format__(self, spec: str) -> str:
        return str(self)


#: Every path of the layout, relative to the results folder.
TEMPLATES: dict[str, Template] = {name: Template(text) for name, text in {
    "stage_config": "config/{stage}.json",
    "split": f"data/{SPLIT}",
    "array": "data/arrays/{name}.npy",
    "history": f"search/b{{budget}}/{{method}}/r{{search}}/i{{iteration:03d}}/{HISTORY}",
    "proposal": f"search/b{{budget}}/{{method}}/r{{search}}/i{{iteration:03d}}/{PROPOSAL}",
    "evaluations": f"search/b{{budget}}/{{method}}/r{{search}}/{EVALUATIONS}",
    "selection": "select/b{budget}/r{search}/" + selection_name("{method}"),
    "trials": f"tables/{TRIALS}",
    "table": "tables/{table}.{format}",
    "figure": "figures/{stem}.{format}",
    "trajectory": "trajectories/{stem}.csv",
    "velocity": f"trajectories/{VELOCITY}",
    "generalisation_runs": f"generalisation/{GENERALISATION_RUNS}",
    "generalisation_table": f"tables/{GENERALISATION}.{{format}}",
    "summary": SUMMARY,
}.items()}

#: A run's folder under ``runs/``, per kind (manual runs live wherever ``pblf train --out`` puts them).
RUN_TEMPLATES: dict[str, Template] = {kind: Template(text) for kind, text in {
    "search": "search/b{budget}/{method}/r{search}/i{iteration:03d}/c{index:02d}",
    "repeat": "repeats/b{budget}/{method}/r{search}/s{seed}",
    "convergence": "convergence/{method}/s{seed}",
    "generalisation": "generalisation/b{budget}/{method}/bs{batch_size}/{lr_scaling}/s{seed}",
}.items()}

#: Snakemake's constraint for the training rule's ``run`` wildcard: a folder under one of the kinds' roots.
RUN_WILDCARD = "(?:search|repeats|convergence|generalisation)/.+"


#: Where runs keep their results and logs: each run of the pipeline in a folder of its name under each.
RESULTS_ROOT, LOGS_ROOT = "results", "logs"
#: A run folder's own record (``results/<name>/run.json``): the config files it was run with, and the results folder
#: as the pipeline named it (relative to the folder Snakemake ran in, which every provenance record's paths are).
RUN_RECORD = "run.json"
BASE_CONFIG = "config.yaml"
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def run_name(config: dict[str, Any], configfiles: Sequence[str | Path]) -> str:
    """The name of a run's folders: ``run_name`` when the config sets it, else the names of its config files other
    than config.yaml joined by "+" (presets/demo.yaml -> demo), or "thesis" for config.yaml alone."""
    if config.get("run_name"):
        return config["run_name"]
    base = Path(BASE_CONFIG).resolve()
    stems = list(dict.fromkeys(Path(f).stem for f in configfiles if Path(f).resolve() != base))
    name = "+".join(stems) or "thesis"
    if not RUN_NAME.fullmatch(name):
        raise ConfigError(f"config files {', '.join(map(str, configfiles))} give the run name {name!r}, which is not "
                          "a folder name (letters, digits, . _ + -): set run_name in a config file")
    return name


def run_layout(name: str) -> "Layout":
    """The layout of the run called ``name``: results/<name>/ and logs/<name>/."""
    return Layout(f"{RESULTS_ROOT}/{name}", f"{LOGS_ROOT}/{name}")


def config_identity(configfiles: Sequence[str | Path]) -> list[str]:
    """The config files of a run as its run record keeps them: relative to the working folder, in order."""
    return list(dict.fromkeys(os.path.relpath(Path(f).resolve()) for f in configfiles))


def check_run_folder(layout: "Layout", configfiles: Sequence[str | Path]) -> None:
    """Refuse a run into a folder that holds a run of other config files: it would overwrite its stage configs and
    retrain or delete what the other run made."""
    record = Path(layout.results) / RUN_RECORD
    if not record.is_file():
        return
    held = read_json(record).get("config_files")
    given = config_identity(configfiles)
    if held != given:
        raise ConfigError(f"{layout.results} holds the run of {' '.join(held or ['?'])}, not of {' '.join(given)}: "
                          f"give this run another run_name (e.g. --config run_name=NAME), or delete {layout.results} "
                          f"and {layout.logs} to replace that run")


def write_run_record(layout: "Layout", configfiles: Sequence[str | Path]) -> None:
    """``results/<name>/run.json``, before the run's first job."""
    write_json({"config_files": config_identity(configfiles), "results": layout.results},
               Path(layout.results) / RUN_RECORD)


def find_run(path: Path) -> Path:
    """The run folder a command means by ``path``: ``path`` itself if it is one, or the one run under it (``pblf
    audit results`` where only results/demo exists); several are a one-line error naming them."""
    if (path / RUN_RECORD).is_file() or not path.is_dir():
        return path
    runs = sorted(child for child in path.iterdir() if (child / RUN_RECORD).is_file())
    if len(runs) == 1:
        return runs[0]
    if runs:
        raise InputError(f"{path} holds the runs {', '.join(run.name for run in runs)}: name one "
                         f"(e.g. {runs[0]})")
    return path


def working_folder(results: Path) -> Path:
    """The folder Snakemake ran in, which every path in the run's records is relative to: ``results`` less the
    results folder's name as the pipeline gave it (its run record's ``results``: results/<name>); a folder without
    a run record (made by hand, or before runs had names) is taken to sit in that folder itself."""
    record = results / RUN_RECORD
    if not record.is_file():
        return results.parent
    named = Path(str(read_json(record).get("results", "")))
    parts = named.parts
    if named.is_absolute() or ".." in parts or not parts or results.resolve().parts[-len(parts):] != parts:
        raise InputError(f"{record}: results {str(named)!r} does not name this folder ({results.resolve()})")
    if results.parts[-len(parts):] == parts:  # as given (results/demo): keep the paths printed relative
        return Path(*results.parts[:-len(parts)])
    return results.resolve().parents[len(parts) - 1]


@dataclass(frozen=True)
class RunId:
    """Who a training run is: its kind, method, budget and seed, for a search run its search (which of the
    method's ``search.repeats`` searches), iteration and index, for a repeat the search whose choice it retrains
    (Standard's: 0; 0 where not given, the only search where search.repeats is 1), and for a generalisation run the batch size it trains with and how its learning rate follows it.

    Every run records this in its ``metrics.json`` (``run``), so collection, selection, tables, figures and the
    audit never have to read it from a folder name."""

    kind: str
    budget: int
    seed: int
    method: str | None = None
    iteration: int | None = None
    index: int | None = None
    search: int | None = None
    batch_size: int | None = None
    lr_scaling: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in RUN_KINDS:
            raise ValueError(f"run kind {self.kind!r} must be one of {', '.join(RUN_KINDS)}")
        if self.budget < 1 or self.seed < 0:
            raise ValueError(f"run budget {self.budget} must be >= 1 and seed {self.seed} >= 0")
        searched = self.iteration is not None and self.index is not None
        if (self.kind == "search") != searched or (self.iteration is None) != (self.index is None):
            raise ValueError(f"a {self.kind} run takes an iteration and an index only if it is a search run")
        if self.kind != "manual" and not self.method:
            raise ValueError(f"a {self.kind} run needs a method")
        if self.kind in ("search", "repeat") and self.search is None:
            object.__setattr__(self, "search", 0)  # the first search: the only one where search.repeats is 1
        if (self.kind in ("search", "repeat")) != (self.search is not None) or (self.search or 0) < 0:
            raise ValueError(f"a {self.kind} run takes a search (0, 1, ...) only if it is a search or repeat run")
        varied = self.batch_size is not None and self.lr_scaling is not None
        if (self.kind == "generalisation") != varied or (self.batch_size is None) != (self.lr_scaling is None):
            raise ValueError(f"a {self.kind} run takes a batch size and an lr scaling only if it is a generalisation "
                             "run")
        if self.lr_scaling not in (None, *LR_SCALINGS):
            raise ValueError(f"lr scaling {self.lr_scaling!r} must be one of {', '.join(LR_SCALINGS)}")

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunId":
        return cls(**{field.name: data.get(field.name) for field in fields(cls)})

    @property
    def folder(self) -> str:
        """The run's folder under ``runs/``."""
        if self.kind == "manual":
            raise ValueError("a manual run has no folder in the results layout")
        return RUN_TEMPLATES[self.kind].fill(**asdict(self))


@dataclass(frozen=True)
class Layout:
    """The paths of one results folder (and its logs folder). Arguments are values, or wildcards for rules."""

    results: str = "results"
    logs: str = "logs"

    @staticmethod
    def iteration(iteration: int) -> str:
        """An iteration as its folder writes it (``3`` -> ``003``): the value of a Snakemake ``iteration`` wildcard."""
        return TEMPLATES["proposal"].value("iteration", iteration)

    def _path(self, template: str, /, **values: Any) -> str:
        return f"{self.results}/{TEMPLATES[template].fill(**values)}"

    def stage_config(self, stage: str) -> str:
        return self._path("stage_config", stage=stage)

    def split(self) -> str:
        return self._path("split")

    def array(self, name: str) -> str:
        """One array of the data set the data stage writes beside the split (``pblf.training.data.ARRAYS``)."""
        return self._path("array", name=name)

    def history(self, budget: int | str, method: str, search: int | str, iteration: int | str) -> str:
        return self._path("history", budget=budget, method=method, search=search, iteration=iteration)

    def proposal(self, budget: int | str, method: str, search: int | str, iteration: int | str) -> str:
        return self._path("proposal", budget=budget, method=method, search=search, iteration=iteration)

    def evaluations(self, budget: int | str, method: str, search: int | str) -> str:
        return self._path("evaluations", budget=budget, method=method, search=search)

    def selection(self, budget: int | str, method: str, search: int | str) -> str:
        return self._path("selection", budget=budget, method=method, search=search)

    def trials(self) -> str:
        return self._path("trials")

    def table(self, name: str, fmt: str) -> str:
        return self._path("table", table=name, format=fmt)

    def figure(self, figure: str, fmt: str) -> str:
        """A figure by id ("6.1", "C.4"), or with ``figure`` a wildcard, the pattern of its file."""
        stem = figure if figure.startswith("{") else figure_stem(figure)
        return self._path("figure", stem=stem, format=fmt)

    def trajectory(self, figure: str) -> str:
        """The trajectory CSV of Figure C.1, C.2 or C.3."""
        return self._path("trajectory", stem=figure_stem(figure))

    def velocity(self) -> str:
        return self._path("velocity")

    def generalisation_runs(self) -> str:
        return self._path("generalisation_runs")

    def generalisation_table(self, fmt: str) -> str:
        return self._path("generalisation_table", format=fmt)

    def summary(self) -> str:
        """The answer on one page: Table 6.2 and the key figures (:mod:`pblf.results.summary`)."""
        return self._path("summary")

    def run(self, run: RunId | str) -> str:
        """A run's folder: from its identity, or from the training rule's ``run`` wildcard."""
        return f"{self.results}/runs/{run if isinstance(run, str) else run.folder}"

    def metrics(self, run: RunId | str) -> str:
        return f"{self.run(run)}/{METRICS}"

    def run_log(self, run: RunId | str) -> str:
        """The log of a training job, beside the logs of the other runs of its kind."""
        return f"{self.logs}/runs/{run if isinstance(run, str) else run.folder}.log"

    def log(self, output: str) -> str:
        """The log of the job that writes ``output``: the same path under ``logs/``, with the suffix ``.log``."""
        relative = output.removeprefix(f"{self.results}/")
        return f"{self.logs}/{relative.rsplit('.', 1)[0]}.log"

    @staticmethod
    def parse_run(folder: str, train_seed: int, convergence_budget: int) -> RunId:
        """The identity of a run from its folder under ``runs/`` (the training rule's wildcard); the two values a
        folder name leaves out come from the config: a search run's seed (``search.train_seed``, offset for search
        r as :func:`pblf.core.config.search_seed` says) and the convergence budget."""
        for kind, template in RUN_TEMPLATES.items():
            parts = template.parse(folder)
            if parts is None:
                continue
            values: dict[str, Any] = {"kind": kind}
            values.update({key: value if key in ("method", "lr_scaling") else int(value) for key, value in parts.items()})
            values.setdefault("seed", train_seed + SEARCH_SEED_STRIDE * values.get("search", 0))
            values.setdefault("budget", convergence_budget)
            return RunId(**values)
        shapes = ", ".join(t.text for t in RUN_TEMPLATES.values())
        raise ValueError(f"{folder!r} is not a run folder of the results layout ({shapes})")


def read_run(metrics_path: str | Path) -> tuple[RunId, dict[str, Any]]:
    """A finished run's identity and metrics; a metrics file without a valid ``run`` record is named."""
    metrics = read_json(metrics_path)
    try:
        return RunId.from_dict(metrics["run"]), metrics
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{metrics_path} has no valid run identity (\"run\": kind, method, budget, seed): {err}") \
            from None
