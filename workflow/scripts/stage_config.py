"""Snakemake adapter: write the stage's config subset (snakemake.params.subset) as canonical JSON, with its
provenance record (its only input is the Snakemake config itself, which the record holds)."""
from pathlib import Path

from pblf.files import track, write_json
from pblf.provenance import Outcome, now, write_records

started = now()
with track() as io:
    out = write_json(snakemake.params.subset, snakemake.output[0])  # noqa: F821 - injected by Snakemake
write_records(io, Outcome(config=snakemake.params.subset), "stage_config", ["(snakemake stage_config)", str(out)],  # noqa: F821
              started)
Path(snakemake.log[0]).write_text(f"wrote {out}\n")  # noqa: F821
