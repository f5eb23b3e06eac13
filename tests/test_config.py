"""The schema refuses bad configs with a message that names the key; presets and the thesis config are valid."""

from pathlib import Path

import pytest
import yaml

from pblf import plan
from pblf.core.config import ConfigError, deep_merge, load_config, search_seeds, stage_config, validate

ROOT = Path(__file__).resolve().parents[1]


def test_thesis_config_matches_the_thesis():
    cfg = load_config([ROOT / "config.yaml"])
    assert cfg["data"]["dataset"] == "cifar10"
    assert cfg["data"]["val_fraction"] == 0.1
    assert (cfg["model"]["depth"], cfg["model"]["widen_factor"]) == (16, 2)
    assert cfg["budgets"] == [20, 100]
    bo = cfg["search"]["bo"]
    assert (bo["initial"], bo["iterations"], bo["acquisition"], bo["beta"]) == (20, 100, "ucb", 0.1)
    # the thesis's budgets: 20 random + 100 UCB candidates (120 trainings) against RS's 100
    assert (bo["n_acq"], bo["n_random"]) == (1, 0)
    assert cfg["search"]["rs"]["samples"] == 100
    assert cfg["repeats"]["seeds"] == [1, 2, 3, 4, 5] and cfg["search"]["train_seed"] == 0
    assert cfg["train"]["bf16"] is False
    assert cfg["convergence"]["epochs"] == 600


@pytest.mark.parametrize("preset", ["demo", "smoke"])
def test_the_laptop_presets_read_digits(preset):
    cfg = load_config([ROOT / "config.yaml", ROOT / "presets" / f"{preset}.yaml"])
    assert cfg["data"]["dataset"] == "digits"
    assert cfg["search"]["train_seed"] not in cfg["repeats"]["seeds"]


@pytest.mark.parametrize("path", sorted((ROOT / "presets").glob("*.yaml")), ids=lambda path: path.stem)
def test_presets_are_valid_and_only_override(path):
    load_config([ROOT / "config.yaml", path])
    # a preset names only what it changes: everything it sets differs from the thesis config
    thesis = load_config([ROOT / "config.yaml"])
    override = yaml.safe_load(path.read_text())

    def same_leaves(over, base, prefix=""):
        for key, value in over.items():
            if isinstance(value, dict):
                yield from same_leaves(value, base[key], f"{prefix}{key}.")
            elif base[key] == value:
                yield f"{prefix}{key}"

    assert list(same_leaves(override, thesis)) == []


def test_the_wrn_28_10_preset_is_the_thesis_run_on_the_larger_network():
    cfg = load_config([ROOT / "config.yaml", ROOT / "presets" / "wrn-28-10.yaml"])
    assert (cfg["model"]["depth"], cfg["model"]["widen_factor"], cfg["data"]["dataset"]) == (28, 10, "cifar10")
    assert cfg["resources"]["minutes_per_epoch"] > load_config([ROOT / "config.yaml"])["resources"]["minutes_per_epoch"]


def test_defaults_fill_an_empty_config():
    cfg = validate({})
    assert cfg["train"]["lr"] == 0.1
    assert cfg["data"]["augment"] == {"crop_padding": 4, "hflip": True}
    assert cfg["standard"] == {"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"}


@pytest.mark.parametrize(
    ("override", "key", "fragment"),
    [
        ({"train": {"lr": "fast"}}, "train.lr", "wrong type"),
        ({"search": {"phi_bound": 1.5}}, "search.phi_bound", "out of range"),
        ({"standard": {"w1": -1.0}}, "standard.w1", "out of range"),
        ({"standard": {"mode": "0120"}}, "standard.mode", "does not match"),
        ({"standard": {"mode": "00101"}}, "standard.mode", "does not match"),
        ({"budgets": [20, -100]}, "budgets.1", "out of range"),
        ({"budgets": [0]}, "budgets.0", "out of range"),
        ({"data": {"normalisation": "imagenet"}}, "data.normalisation", "allowed: \"thesis\", \"consistent\""),
        ({"data": {"dataset": "mnist"}}, "data.dataset", "allowed: \"cifar10\", \"digits\""),
        ({"data": {"datset": "cifar10"}}, "data", "datset"),
        ({"model": {"metanet_activation": "gelu"}}, "model.metanet_activation", "allowed"),
        ({"model": {"depth": 15}}, "model.depth", "multiple of 6"),
        ({"convergence": {"from_budget": 50}}, "convergence.from_budget", "not one of budgets"),
        ({"train": {"lr_milestones": [0.6, 0.3]}}, "train.lr_milestones", "increasing"),
        ({"device": "tpu"}, "device", "allowed"),
        ({"repeats": {"seeds": [0, 1]}}, "repeats.seeds", "winner's curse"),
    ],
)
def test_bad_configs_name_the_key(override, key, fragment):
    with pytest.raises(ConfigError) as info:
        plan.check(validate(deep_merge(load_config([ROOT / "config.yaml"]), override)))
    message = str(info.value)
    assert f"config key {key}" in message
    assert fragment in message


def test_every_problem_is_listed():
    with pytest.raises(ConfigError) as info:
        validate({"seed": -1, "device": "tpu"})
    assert "config key seed" in str(info.value) and "config key device" in str(info.value)


def test_malformed_yaml_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml, line 2, column 1 is not valid YAML"):
        load_config([bad])
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config([listing])


def test_stage_config_holds_only_its_keys():
    cfg = validate({})
    assert set(stage_config(cfg, "data")) == {"seed", "data"}
    assert "search" not in stage_config(cfg, "train")


def test_stage_methods_default_to_every_method_and_refuse_an_unknown_one():
    from pblf import plan
    from pblf.search.registry import methods

    cfg = validate({})
    assert cfg["convergence"]["methods"] is None and plan.stage_methods(cfg, "convergence") == methods()
    chosen = validate({"generalisation": {"methods": ["Standard", "PBLF-BO"]}})
    assert plan.stage_methods(chosen, "generalisation") == ("PBLF-BO", "Standard")  # in the tables' order
    typo = validate({"convergence": {"methods": ["PBLF-B0"]}})
    with pytest.raises(ConfigError, match="config key convergence.methods: PBLF-B0 is not a method"):
        plan.check(typo)


def test_one_problem_is_one_line():
    with pytest.raises(ConfigError) as error:
        validate({"train": {"lr": 0}})
    assert "\n" not in str(error.value) and "config key train.lr: 0 is out of range" in str(error.value)


def test_every_name_the_schema_allows_has_its_implementation():
    """Allowed values are written once, in the schema; where code implements each one (a table of functions or
    classes), the table has exactly the schema's names."""
    from pblf.core.config import allowed
    from pblf.training.pack import PACK_KINDS
    from pblf.training.metanet import ACTIVATIONS

    assert set(ACTIVATIONS) == set(allowed("model.metanet_activation"))
    assert {"auto", *PACK_KINDS} == set(allowed("resources.pack"))
    assert allowed("generalisation.lr_scaling") == ("fixed", "linear")  # a list's items
    with pytest.raises(KeyError):
        allowed("train.no_such_key")


def test_the_convergence_reruns_never_train_with_the_searchs_seed():
    assert validate({})["convergence"]["seed"] != validate({})["search"]["train_seed"]
    with pytest.raises(ConfigError, match=r"config key convergence.seed: 0 is a search's training seed \[0\]"):
        validate({"convergence": {"seed": 0}})
    with pytest.raises(ConfigError, match=r"convergence.seed: 1000 is a search's training seed \[0, 1000\]"):
        validate({"search": {"repeats": 2}, "convergence": {"seed": 1000}})
    with pytest.raises(ConfigError, match=r"repeats.seeds: \[1, 2000\] contains a search's training seed"):
        validate({"search": {"repeats": 3}, "repeats": {"seeds": [1, 2000]}})
    assert search_seeds(validate({"search": {"repeats": 3, "train_seed": 7}})) == [7, 1007, 2007]


#: The integers with no maximum, and why: a seed names a random stream (derived by hashing, any size is cheap), and
#: plan_ceiling is itself the bound on what the counts add up to.
UNBOUNDED = ["convergence.seed", "generalisation.seeds[]", "plan_ceiling.epochs", "plan_ceiling.runs",
             "repeats.seeds[]", "search.train_seed", "seed"]


def unbounded(node: dict, key: str = "") -> list[str]:
    """The lists without maxItems and the integers without maximum under the schema ``node``, by dotted key."""
    types = node.get("type") if isinstance(node.get("type"), list) else [node.get("type")]
    missing = [key] if ("array" in types and "maxItems" not in node) or \
        ("integer" in types and "maximum" not in node) else []
    for name, child in node.get("properties", {}).items():
        missing += unbounded(child, f"{key}.{name}" if key else name)
    return missing + (unbounded(node["items"], f"{key}[]") if "items" in node else [])


def test_every_list_and_count_has_a_bound():
    from pblf.core.config import load_schema

    assert sorted(unbounded(load_schema())) == UNBOUNDED


@pytest.mark.parametrize(("override", "key", "unit", "planned"), [
    ({"search": {"repeats": 11}}, "runs", "training runs", 5290),
    ({"budgets": [20, 100, 10000]}, "epochs", "epochs", 2443000),
])
def test_a_plan_above_the_ceiling_is_refused_unless_the_ceiling_is_raised(override, key, unit, planned):
    thesis = load_config([ROOT / "config.yaml"])
    ceiling = validate({})["plan_ceiling"][key]
    with pytest.raises(ConfigError) as info:
        plan.check(validate(deep_merge(thesis, override)))
    assert str(info.value) == (f"config key plan_ceiling.{key}: the config plans {planned:,} {unit}, above the ceiling "
                               f"of {ceiling:,} (pblf plan shows where they go); if the study means it, set "
                               f"plan_ceiling.{key}: {planned} or more")
    plan.check(validate(deep_merge(thesis, {**override, "plan_ceiling": {key: planned}})))


def test_the_thesis_run_with_ten_searches_stays_under_the_ceiling():
    """docs/statistics.md's largest study (4,818 runs, 287,880 epochs) needs no override."""
    config = validate(deep_merge(load_config([ROOT / "config.yaml"]), {"search": {"repeats": 10}}))
    costs = plan.stage_costs(config)
    assert (sum(c.runs for c in costs), sum(c.epochs for c in costs)) == (4818, 287880)
    plan.check(config)


def test_a_json_config_is_read_like_yaml(tmp_path):
    """JSON is YAML without anchors and aliases: every value is written out, so its size bounds every check."""
    config = tmp_path / "config.json"
    config.write_text('{"search": {"repeats": 2}, "train": {"lr": 0.05}}')
    loaded = load_config([config])
    assert (loaded["search"]["repeats"], loaded["train"]["lr"]) == (2, 0.05)
