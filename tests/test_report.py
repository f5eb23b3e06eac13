"""The report's captions render against every preset's config: a caption that names a config key that no longer
exists would otherwise render as an empty string in the report, silently; and what they render is reStructuredText
that docutils reads without an error (which the report would show as a "System Message" block)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
from docutils.core import publish_parts

from pblf.core.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = sorted((ROOT / "report").glob("*.rst"))
PRESETS = [[ROOT / "config.yaml"], *([ROOT / "config.yaml", preset] for preset in sorted((ROOT / "presets").glob("*.yaml")))]


#: docutils' settings for a check: keep every warning and error in the output (where the report would show them),
#: raise none, print none.
READ_QUIETLY = {"report_level": 2, "halt_level": 5, "warning_stream": False}


def report_files(tmp_path: Path) -> list[SimpleNamespace]:
    """What Snakemake hands a caption as ``files``: the report's file records (the front page embeds two)."""
    summary = tmp_path / "summary.html"
    summary.write_text('<section class="pblf-summary"><table class="pblf"></table></section>\n')
    return [SimpleNamespace(target="summary.html", path=summary, caption=""),
            SimpleNamespace(target="table_6_2.html", path=tmp_path / "table_6_2.html", caption="<p>Table 6.2:\nfull</p>")]


@pytest.mark.parametrize("caption", CAPTIONS, ids=lambda p: p.name)
@pytest.mark.parametrize("configs", PRESETS, ids=lambda c: c[-1].name)
def test_every_caption_renders_with_every_key_defined(caption, configs, tmp_path):
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    config = load_config(configs)
    # as Snakemake renders them: its Jinja options, and the report's file records (a run without Table 6.2 yet, and a
    # finished one)
    for files in ([], report_files(tmp_path)):
        for n in ("1", "2", "3", "4"):
            snakemake = SimpleNamespace(config=config, wildcards=SimpleNamespace(n=n))
            text = environment.from_string(caption.read_text()).render(snakemake=snakemake, files=files, categories={})
            assert text.strip()
            html = publish_parts(text, writer="html", settings_overrides=READ_QUIETLY)["html_body"]
            assert "System Message" not in html and "system-message" not in html, text
