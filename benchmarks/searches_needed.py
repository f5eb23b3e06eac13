"""What ``search.repeats`` buys and costs: the width of the method-level interval per number of searches, and what
the thesis's protocol trains with that many (issue 20).

    python benchmarks/searches_needed.py --out benchmarks/results/searches_needed.json [--seconds-per-epoch 55]

Table 6.2's method-level comparison (pblf.results.stats.method_level) is a one-sample t interval over the S
searches' mean paired differences to Standard, with S - 1 degrees of freedom: its half-width is
t(0.975, S - 1) / sqrt(S) times the spread of those means over searches (which includes the seed noise left in each
mean). Nothing here is measured: the factor is arithmetic, the cost is what ``pblf plan`` counts for config.yaml
with ``search.repeats: S``, so a reader can choose S before paying for it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEARCHES = (1, 2, 3, 5, 10, 20)


def rows(seconds_per_epoch: float) -> list[dict]:
    """One row per number of searches: the interval's t quantile and half-width factor, and the thesis run's cost."""
    from scipy import stats

    from pblf.core.config import deep_merge, load_config, validate
    from pblf.plan import stage_costs

    base = load_config([ROOT / "config.yaml"])
    table = []
    for searches in SEARCHES:
        config = validate(deep_merge(base, {"search": {"repeats": searches}}))
        costs = stage_costs(config)
        epochs = sum(cost.epochs for cost in costs)
        quantile = float(stats.t.ppf(0.975, searches - 1)) if searches > 1 else None
        table.append({"searches": searches, "t_975": None if quantile is None else round(quantile, 4),
                      "half_width_per_spread": None if quantile is None else round(quantile / math.sqrt(searches), 4),
                      "trainings": sum(cost.runs for cost in costs), "epochs": epochs,
                      "gpu_days": round(epochs * seconds_per_epoch / 86400, 1)})
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seconds-per-epoch", type=float, default=55.0,
                        help="seconds per epoch for the GPU-days column (default 55, the thesis's implied time)")
    args = parser.parse_args(argv)
    result = {"benchmark": "searches_needed", "config": "config.yaml", "quantile": 0.975,
              "seconds_per_epoch": args.seconds_per_epoch,
              "rows": rows(args.seconds_per_epoch)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in result["rows"]:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
