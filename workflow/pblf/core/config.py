"""Load, merge and validate the pipeline configuration.

The configuration is data with a schema (``workflow/schemas/config.schema.yaml``). This module is the one place
that reads it: it fills in the schema's defaults, refuses anything the schema or the cross-key rules below forbid,
and hands plain dicts to the rest of the package. A bad config must stop *before* any job starts, with a message
that names the key, the bad value and what is allowed, because the alternative is discovering a typo after a
GPU-week.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pblf.core.errors import ConfigError, DeviceError
from pblf.core.files import read_text

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"

#: The configuration keys each stage reads (a section, or one key of it: ``resources.pack``). A stage's outputs are
#: rebuilt only when these change, so that editing, say, the figure settings does not retrain every candidate; and a
#: stage's job receives only these (``results/config/<stage>.json``), every other key at its default. That a stage
#: reads nothing else is tested, stage by stage, with a config that records every key read
#: (``tests/test_stage_keys.py``).
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "data": ("seed", "data"),
    "train": ("seed", "device", "deterministic", "data", "model", "train", "resources.pack", "generalisation.warmup"),
    "search": ("seed", "search", "standard"),
    "select": ("standard",),
    "appendix_c": ("seed", "appendix_c"),
    "generalisation": ("train.batch_size", "generalisation.lr_scaling"),
}


@functools.cache
def _schema_text() -> str:
    return SCHEMA_PATH.read_text()


def load_schema() -> dict[str, Any]:
    """The JSON schema, as a (fresh) dict."""
    return yaml.safe_load(_schema_text())


@functools.cache
def allowed(key: str) -> tuple[str, ...]:
    """The values the schema allows for ``key`` (dotted, e.g. ``train.lr_schedule``; for a list, its items), in the
    schema's order. The schema is where allowed values are written; code that needs them asks here."""
    node = load_schema()
    for part in key.split("."):
        node = node["properties"][part]
    return tuple((node.get("items") or node)["enum"])


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base`` the way Snakemake merges ``--configfile``: dicts recursively,
    everything else (lists included) replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(f"key {key!r} appears twice, on lines {first} and {second}: YAML would keep only the "
                         "second; merge the two into one")


class _Alias(Exception):
    def __init__(self, event: yaml.NodeEvent) -> None:
        sign, kind = ("*", "alias") if isinstance(event, yaml.AliasEvent) else ("&", "anchor")
        super().__init__(f"line {event.start_mark.line + 1}: YAML {kind} {sign}{event.anchor} is refused: a config "
                         "says each value once, and aliases let a few lines stand for billions of copies that every "
                         "check would walk; write the value out")


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key that appears twice in one mapping (YAML itself keeps the last one
    silently, which would drop, say, a whole ``search:`` section written earlier in the file), and anchors and
    aliases, before any is expanded: nine lines of nine aliases each are 9**9 values to check (a "billion laughs")."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if event.anchor is not None:  # an AliasEvent's anchor is the name it refers to
            raise _Alias(event)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in lines:
                raise _DuplicateKey(key, lines[key], line)
            lines[key] = line
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML (or JSON) config file; an empty file is an empty config. Syntax errors, duplicate keys and
    anchors or aliases are ConfigErrors naming the file and line. (JSON has no aliases: every value in it is written
    out, so its size bounds the work of every check.)"""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.load(read_text(path), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except _DuplicateKey as err:
        raise ConfigError(f"config file {path}: {err}") from None
    except _Alias as err:
        raise ConfigError(f"config file {path}, {err}") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path}{where} is not valid YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def load_config(paths: Iterable[str | Path]) -> dict[str, Any]:
    """Read, merge (later files win) and validate config files; returns the config with every default filled."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = deep_merge(merged, read_yaml(path))
    return validate(merged)


def _fill_defaults(validator_class: type) -> type:
    """A validator class that also writes each property's ``default`` into the instance (the jsonschema FAQ recipe).

    Defaults are filled before the properties are checked, so nested objects with ``default: {}`` get their own
    defaults too."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _fill_defaults(jsonschema.Draft202012Validator)


def shown(value: Any) -> str:
    """A value for a message, as JSON cut short: the message about a list of 100,000 seeds must still be one short
    line. (``str`` for what JSON cannot write, such as a date YAML read from ``2020-01-01``.)"""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else f"{text[:56]} ..."


def _describe(error: jsonschema.ValidationError) -> str:
    """One line: the dotted key, the bad value, what is allowed."""
    key = ".".join(str(part) for part in error.absolute_path) or "<top level>"
    schema = error.schema if isinstance(error.schema, dict) else {}
    value = shown(error.instance)
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(schema.get("properties", {})))
        return f"config key {key!s}: {error.message}; allowed keys here: {allowed}"
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(item) for item in error.validator_value)
        return f"config key {key}: {value} is not allowed; allowed: {allowed}"
    if error.validator in {"minItems", "maxItems"}:
        bound = "at least" if error.validator == "minItems" else "at most"
        return f"config key {key}: {len(error.instance)} items; allowed: {bound} {error.validator_value}"
    if error.validator == "pattern":
        return f"config key {key}: {value} does not match {error.validator_value} (e.g. \"0010\": four bits)"
    if error.validator in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        bounds = []
        for word, symbol in (("exclusiveMinimum", ">"), ("minimum", ">="), ("exclusiveMaximum", "<"), ("maximum", "<=")):
            if word in schema:
                bounds.append(f"{symbol} {schema[word]}")
        return f"config key {key}: {value} is out of range; allowed: {' and '.join(bounds)}"
    if error.validator == "type":
        return f"config key {key}: {value} has the wrong type; allowed: {error.validator_value}"
    description = schema.get("description", "").strip()
    hint = f" ({description})" if description else ""
    return f"config key {key}: {value}: {error.message}{hint}"


def _non_finite(value: Any, key: str = "") -> list[str]:
    """Every number in ``value`` that is NaN or infinite, as a problem naming its key (JSON Schema cannot say
    "finite", and a NaN passes every comparison a schema makes: ``lr: .nan`` would train garbage)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{key}.{k}" if key else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{key}.{i}")]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"config key {key}: {value} is not a finite number"]
    return []


#: How far apart the training seeds of a method's searches are (search.repeats): search r trains its candidates
#: with search.train_seed + r * SEARCH_SEED_STRIDE, far from the small seeds the retrains use.
SEARCH_SEED_STRIDE = 1000


def search_seed(config: dict[str, Any], search: int) -> int:
    """The seed search ``search`` (0, 1, ... up to search.repeats - 1) trains every candidate with."""
    return config["search"]["train_seed"] + SEARCH_SEED_STRIDE * search


def search_seeds(config: dict[str, Any]) -> list[int]:
    """The training seeds of every search of a method, in order (one per search.repeats)."""
    return [search_seed(config, search) for search in range(config["search"]["repeats"])]


def train_seed_in(config: dict[str, Any], seeds: list[int]) -> bool:
    """Whether ``seeds`` contain a search's training seed: a retrain with it would be a search run itself."""
    return bool(set(search_seeds(config)) & set(seeds))


def _check_cross_keys(config: dict[str, Any]) -> list[str]:
    """Rules a JSON schema cannot state: relations between keys."""
    problems = []
    conv = config["convergence"]
    if conv["enabled"] and conv["methods"] != [] and conv["from_budget"] not in config["budgets"]:
        problems.append(
            f"config key convergence.from_budget: {conv['from_budget']} is not one of budgets {config['budgets']}"
        )
    if conv["enabled"] and train_seed_in(config, [conv["seed"]]):
        problems.append(f"config key convergence.seed: {conv['seed']} is a search's training seed "
                        f"{search_seeds(config)}; a chosen candidate's rerun would repeat its winning search run's "
                        "first epochs: choose another seed")
    general = config["generalisation"]
    if general["enabled"] and general["methods"] != [] and general["from_budget"] not in config["budgets"]:
        problems.append(f"config key generalisation.from_budget: {general['from_budget']} is not one of budgets "
                        f"{config['budgets']}")
    if general["enabled"] and train_seed_in(config, general["seeds"]):
        problems.append(f"config key generalisation.seeds: {general['seeds']} contains a search's training seed "
                        f"{search_seeds(config)}; use seeds without it, as for the repeats")
    rungs = config["search"]["pruning"]["rungs"]
    if rungs != sorted(set(rungs)):
        problems.append(f"config key search.pruning.rungs: {rungs} must be strictly increasing")
    milestones = config["train"]["lr_milestones"]
    if milestones != sorted(set(milestones)):
        problems.append(f"config key train.lr_milestones: {milestones} must be strictly increasing")
    if train_seed_in(config, config["repeats"]["seeds"]):
        problems.append(
            f"config key repeats.seeds: {config['repeats']['seeds']} contains a search's training seed "
            f"{search_seeds(config)}; the repeat with that seed would be the search's winning run itself (winner's "
            "curse): choose seeds without it"
        )
    bo = config["search"]["bo"]
    if bo["iterations"] and bo["n_acq"] + bo["n_random"] == 0:
        problems.append("config key search.bo.n_acq: n_acq + n_random must be at least 1 when iterations > 0")
    return problems


def validate(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a validated copy of ``config`` with every default filled in; raise ConfigError listing every problem."""
    filled = copy.deepcopy(dict(config))
    validator = _Validator(load_schema())
    errors = sorted(validator.iter_errors(filled), key=lambda e: [str(p) for p in e.absolute_path])
    problems = _non_finite(filled) + [_describe(error) for error in errors]
    if not problems:
        problems = _check_cross_keys(filled)
    if len(problems) == 1:
        raise ConfigError(f"invalid configuration: {problems[0]}")
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
    return filled


def check_device(config: Mapping[str, Any]) -> None:
    """Refuse ``device: cuda`` on a machine where torch sees no GPU, before any job starts.

    Only ``cuda`` needs the check (and only it pays for importing torch): ``cpu`` always works and ``auto`` falls
    back to the CPU. Call it where the jobs will run; a SLURM login node usually has no GPU of its own."""
    if config["device"] != "cuda":
        return
    import torch

    if not torch.cuda.is_available():
        raise DeviceError("config key device: \"cuda\" but torch sees no GPU on this machine "
                          "(torch.cuda.is_available() is False); use device: auto or cpu, or run where a GPU is")


def compile_mode(train_cfg: Mapping[str, Any]) -> str | None:
    """The ``torch.compile`` mode the training config asks for (``train.compile_mode``), or None for eager. Here, not
    with the training code, so that ``pblf plan`` can name the variant a config trains without importing torch."""
    return train_cfg["compile_mode"] if train_cfg["compile"] else None


def stage_config(config: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """The part of ``config`` that ``stage`` reads (see STAGE_KEYS), as a fresh dict."""
    subset: dict[str, Any] = {}
    for key in STAGE_KEYS[stage]:
        *sections, name = key.split(".")
        source, target = config, subset
        for section in sections:
            source, target = source[section], target.setdefault(section, {})
        target[name] = copy.deepcopy(source[name])
    return subset


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON form of a config (sorted keys), for provenance records."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()
