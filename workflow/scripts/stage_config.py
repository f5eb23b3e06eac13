"""Snakemake adapter: write the stage's config subset (snakemake.params.subset) as canonical JSON, with its
provenance record. Its inputs are the config files Snakemake merged ($PBLF_CONFIG_FILES, set by common.smk), read
here so that the record lists them with their sha256, and names any the git checkout does not track."""
import os
from pathlib import Path

from pblf.files import read_text, track, write_json
from pblf.provenance import Outcome, now, write_records

started = now()
with track() as io:
    for configfile in filter(None, os.environ.get("PBLF_CONFIG_FILES", "").split(os.pathsep)):
        read_text(configfile)
    out = write_json(snakemake.params.subset, snakemake.output[0])  # noqa: F821 - injected by Snakemake
write_records(io, Outcome(config=snakemake.params.subset), "stage_config", ["(snakemake stage_config)", str(out)],  # noqa: F821
              started)
Path(snakemake.log[0]).write_text(f"wrote {out}\n")  # noqa: F821
