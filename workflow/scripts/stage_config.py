"""Snakemake adapter: write the stage's config subset (snakemake.params.subset) as canonical JSON."""
from pathlib import Path

from pblf.files import write_json

out = write_json(snakemake.params.subset, snakemake.output[0])  # noqa: F821 - injected by Snakemake
Path(snakemake.log[0]).write_text(f"wrote {out}\n")  # noqa: F821
