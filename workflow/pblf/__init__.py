"""pblf: the Parametrized Backpropagation Learning Framework (Eyono 2020) as a reproducible pipeline.

One module per concept: config, data, candidate, metanet (the sigma'_phi op), model (WRN), train, propose,
select, tables, figures, trajectories (Appendix C), provenance, cli. The Snakemake workflow calls these through
the ``pblf`` command; they work without Snakemake too.
"""

__version__ = "0.1.0"
