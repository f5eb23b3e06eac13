"""The report's captions render against every preset's config: a caption that names a config key that no longer
exists would otherwise render as an empty string in the report, silently."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest

from pblf.core.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = sorted((ROOT / "report").glob("*.rst"))
PRESETS = [[ROOT / "config.yaml"], *([ROOT / "config.yaml", preset] for preset in sorted((ROOT / "presets").glob("*.yaml")))]


@pytest.mark.parametrize("caption", CAPTIONS, ids=lambda p: p.name)
@pytest.mark.parametrize("configs", PRESETS, ids=lambda c: c[-1].name)
def test_every_caption_renders_with_every_key_defined(caption, configs):
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    config = load_config(configs)
    for n in ("1", "2", "3", "4"):
        snakemake = SimpleNamespace(config=config, wildcards=SimpleNamespace(n=n))
        text = environment.from_string(caption.read_text()).render(snakemake=snakemake)
        assert text.strip()
