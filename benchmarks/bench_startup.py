"""Start-up of a training job: from process start to its first training step, before and after the data arrays.

    python benchmarks/bench_startup.py --out benchmarks/results/startup.json [--repeats 5] [--per-batch 10000]

Every training job used to read the data set itself: unpickle the five CIFAR-10 batches (or load scikit-learn's
digits), decode them into arrays and compare their checksums with the split record's. The data stage now writes the
arrays once (``results/data/arrays/*.npy``, their sha256 in ``split.json``) and a job memory-maps them. This times a
real ``pblf train`` process (the command the Snakemake rule runs) from its start to the log line it writes just
before the first training step ("training 1 run(s) ..."), then stops it, for

    before   a split record without "arrays" (what a job did until now: read the data set),
    after    the split record of ``pblf split`` (the arrays),

on two data sets: the smoke preset (digits, 200 images) and a CIFAR-10-sized synthetic data set in the canonical
batch format (5 x 10,000 train + 10,000 test images of random pixels, written like the real
``cifar-10-batches-py``; ``verify_checksums: false`` since its md5s are not the canonical ones, so "before" leaves
out the md5 of 178 MB that a job on the real data set also paid). Before and after are interleaved; medians of
``--repeats``. Both variants run the current code otherwise; what jobs also did before, setting the deterministic
flag through ``torch.use_deterministic_algorithms`` (which imports Inductor), is timed apart, in fresh interpreters
next to ``import torch`` and ``import pblf.cli``. CPU only: the GPU's own start-up (CUDA context, cuDNN) is the same
before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import finish, table  # noqa: E402

#: The line pblf.training.train logs just before the first training step.
READY = "training 1 run(s)"


def seconds_to_first_step(command: list[str], env: dict[str, str]) -> float:
    """Start ``command``, wait for its :data:`READY` line, stop it; the seconds in between."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if READY in line:
            elapsed = time.perf_counter() - started
            proc.kill()
            proc.wait()
            return elapsed
    proc.wait()
    raise RuntimeError(f"{' '.join(command)} ended (exit {proc.returncode}) before training:\n{''.join(lines[-20:])}")


def interpreter_seconds(code: str, env: dict[str, str]) -> float:
    """Seconds a fresh interpreter takes to run ``code`` and exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def prepare(work: Path, name: str, config: list[Path]) -> dict[str, Path]:
    """``pblf split`` for ``config`` into ``work/name``; the split record with arrays (after) and without (before)."""
    out = work / name
    subprocess.run(["pblf", "split", "--config", *map(str, config), "--out", str(out)], check=True,
                   capture_output=True)
    record = json.loads((out / "split.json").read_text())
    del record["arrays"]
    before = out / "split-without-arrays.json"
    before.write_text(json.dumps(record))
    return {"before": before, "after": out / "split.json"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--repeats", type=int, default=5, help="processes timed per variant (default 5)")
    parser.add_argument("--per-batch", type=int, default=10_000,
                        help="images per synthetic CIFAR-10 batch file (default 10,000: the real size)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import write_cifar10  # the test suite's writer of the canonical batch format

    from pblf.core.provenance import environment

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    candidate = '{"w1": 0, "w2": 0, "b1": 0, "b2": 1, "mode": "1111"}'
    result: dict[str, Any] = {
        "benchmark": "bench_startup",
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "device": f"cpu ({platform.processor() or platform.machine()})", "cpu_count": os.cpu_count(),
        "environment": environment("cpu"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "repeats": args.repeats,
        "measured": f"process start to the line '{READY} ...' pblf train logs before its first step",
        "data_sets": {},
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_cifar10(work / "cifar", per_batch=args.per_batch)
        cifar = work / "cifar.yaml"
        cifar.write_text(json.dumps({"data": {"root": str(work / "cifar"), "verify_checksums": False},
                                     "device": "cpu"}))
        data_sets = {
            "smoke (digits, 200 images)": [ROOT / "config.yaml", ROOT / "presets" / "smoke.yaml"],
            f"CIFAR-10-sized synthetic ({5 * args.per_batch:,} + {args.per_batch:,} images)":
                [ROOT / "config.yaml", ROOT / "presets" / "smoke.yaml", cifar],
        }
        snippets = {"import pblf.cli": "import pblf.cli",
                    "import torch": "import torch",
                    "torch.use_deterministic_algorithms (what jobs called before)":
                        "import torch; torch.use_deterministic_algorithms(True)",
                    "torch._C._set_deterministic_algorithms (what an eager job calls now)":
                        "import torch; torch._C._set_deterministic_algorithms(True)"}
        result["interpreter_seconds"] = {name: round(statistics.median(
            interpreter_seconds(code, env) for _ in range(args.repeats)), 3) for name, code in snippets.items()}
        for k, (name, config) in enumerate(data_sets.items()):
            splits = prepare(work, f"data{k}", config)
            times: dict[str, list[float]] = {"before": [], "after": []}
            for r in range(args.repeats):
                for variant in ("before", "after") if r % 2 == 0 else ("after", "before"):
                    out = work / f"run{k}-{variant}-{r}"
                    times[variant].append(seconds_to_first_step(
                        ["pblf", "train", "--config", *map(str, config), "--split", str(splits[variant]),
                         "--candidate", candidate, "--budget", "1", "--seed", "1", "--out", str(out)], env))
            before, after = (round(statistics.median(times[v]), 3) for v in ("before", "after"))
            result["data_sets"][name] = {"before_seconds": before, "after_seconds": after,
                                         "saved_seconds": round(before - after, 3),
                                         "all_seconds": {v: [round(t, 3) for t in ts] for v, ts in times.items()}}
            rows.append([name, before, after, round(before - after, 3)])
    printed = [table(f"seconds from process start to the first training step, medians of {args.repeats}",
                     ["data set", "before (reads the data set)", "after (maps the arrays)", "saved"], rows),
               table("seconds of a fresh interpreter that runs ...", ["code", "seconds"],
                     [[name, t] for name, t in result["interpreter_seconds"].items()])]
    return finish(result, printed, args.out)


if __name__ == "__main__":
    sys.exit(main())
