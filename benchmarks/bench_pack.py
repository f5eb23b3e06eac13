"""Throughput of a pack of K runs of one seed: horizontally fused (one network) against exact (K networks in turn).

    python benchmarks/bench_pack.py --out FILE.json [--device cpu|cuda] [--sizes 1,2,4,8] [--depth 16] [--width 2]
                                    [--base-width 16] [--batch 128] [--rounds R] [--steps S] [--threads T]
                                    [--configs fp32,bf16-cl] [--no-deterministic]

For each pack size K, two packs of the same K networks (WRN-depth-width on 32x32x3 random images, K different
candidates: Standard, a non-trivial phi in mode 1111, the same phi in mode 0000, ... in turn) are built with
``pblf.training.pack.make_pack``:

    fused   one FusedWideResNet (grouped convs, BN over K*C channels) and one SGD: one forward + backward per step;
    exact   the K standalone networks and K SGDs stepped one after another (what K runs in one process cost, and
            a lower bound on K separate processes sharing one device, which also pay K CUDA contexts).

One step is ``pack.step(images, labels)``: forward, the K cross-entropies, backward, SGD (Nesterov, weight decay) for
every member, as ``pblf.training.train`` steps one network. The optimiser runs with lr 0 (all its work is done, the weights
stay at their seeded values) so that every step of every variant computes on the same numbers (see bench_train.py).
After warm-up, all (K, kind) variants are interleaved in blocks of a few steps, the order rotating each round, so the
machine's load affects all alike; each block gives a time per step. Reported per variant: the median seconds per
step, images/s summed over the K runs (K * batch / step time) and per run (batch / step time), and fused's speed-up
over exact (ratio of medians, and the median of per-round ratios, which cancels slow drifts). On CUDA also the memory
one step allocates at its peak beyond what was allocated before it (activations and gradients; all variants' weights
stay allocated throughout); on a CPU the process's user and system seconds per step: with glibc's malloc, tensors
above its mmap threshold (at most 32 MiB) are mapped afresh and page-faulted in at every step, which a fused network's
K-times larger activations hit and K small networks do not (system time), while the arithmetic (user time) is
about the same. ``--configs`` picks float32 (fp32) and/or bf16 autocast with channels_last (bf16-cl, CUDA only).

On a CPU, WRN-16-2 at batch 128 takes seconds per step and K = 8 tens of seconds: pass a smaller network
(``--depth 10 --width 1 --base-width 8 --batch 32``) to finish in minutes; the numbers then say how fusion behaves on a
CPU, not what a GPU gains. All numbers measure this machine at this moment: compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from pblf.core.candidate import Candidate
from pblf.training.pack import Pack, make_pack
from pblf.training.model import WideResNet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import finish, record, table  # noqa: E402

#: The members' candidates, in turn (a pack of K takes the first K, repeating).
CANDIDATES = (
    Candidate(0.0, 0.0, 0.0, 1.0, "1111"),
    Candidate(0.3, -0.5, 0.1, 0.7, "1111"),
    Candidate(0.3, -0.5, 0.1, 0.7, "0000"),
    Candidate(0.7, -0.4, -0.2, 0.3, "1011"),
)
SGD = dict(lr=0.0, momentum=0.9, nesterov=True, weight_decay=5e-4)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(kind: str, size: int, net: dict[str, int], device: torch.device, channels_last: bool) -> Pack:
    models = []
    for k in range(size):
        torch.manual_seed(0)  # common random numbers: every member starts from the same weights
        models.append(WideResNet(num_classes=10, in_channels=3, candidate=CANDIDATES[k % len(CANDIDATES)],
                                 **net).to(device))
    return make_pack(kind, models, channels_last=channels_last, **SGD)  # type: ignore[arg-type]


def peak_memory_mib(pack: Pack, images: torch.Tensor, labels: torch.Tensor, autocast: dict[str, Any] | None,
                    device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    pack.step(images, labels, autocast)
    sync(device)
    return round((torch.cuda.max_memory_allocated(device) - before) / 2**20, 1)


def bench_config(name: str, sizes: list[int], net: dict[str, int], device: torch.device, batch: int, rounds: int,
                 steps: int, warmup: int) -> dict[str, Any]:
    bf16_cl = name == "bf16-cl"
    autocast = {"device_type": device.type, "dtype": torch.bfloat16} if bf16_cl else None
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, 32, 32, generator=generator).to(device)
    if bf16_cl:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (batch,), generator=generator).to(device)
    packs = {(size, kind): build(kind, size, net, device, bf16_cl) for size in sizes for kind in ("fused", "exact")}
    memory = {}
    for key, pack in packs.items():
        for _ in range(warmup):
            pack.step(images, labels, autocast)
        memory[key] = peak_memory_mib(pack, images, labels, autocast, device)
    sync(device)
    times: dict[tuple[int, str], list[float]] = {key: [] for key in packs}
    cpu_times: dict[tuple[int, str], list[tuple[float, float]]] = {key: [] for key in packs}
    keys = list(packs)
    for r in range(rounds):
        for key in keys[r % len(keys):] + keys[: r % len(keys)]:  # rotate so no variant always follows the same one
            sync(device)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            for _ in range(steps):
                packs[key].step(images, labels, autocast)
            sync(device)
            times[key].append((time.perf_counter() - started) / steps)
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu_times[key].append(((after.ru_utime - usage.ru_utime) / steps,
                                   (after.ru_stime - usage.ru_stime) / steps))
    rows = []
    for size in sizes:
        row: dict[str, Any] = {"pack_size": size}
        for kind in ("fused", "exact"):
            seconds = statistics.median(times[(size, kind)])
            row[kind] = {
                "seconds_per_step": round(seconds, 5),
                "images_per_second_total": round(size * batch / seconds, 1),
                "images_per_second_per_run": round(batch / seconds, 1),
            }
            if memory[(size, kind)] is not None:
                row[kind]["step_memory_mib"] = memory[(size, kind)]
            else:  # on a CPU: the process's user (computing) and system (e.g. page faults) seconds per step
                user, system = zip(*cpu_times[(size, kind)], strict=True)
                row[kind]["cpu_user_seconds_per_step"] = round(statistics.median(user), 5)
                row[kind]["cpu_system_seconds_per_step"] = round(statistics.median(system), 5)
        row["fused_speedup"] = round(row["exact"]["seconds_per_step"] / row["fused"]["seconds_per_step"], 3)
        row["fused_speedup_paired"] = round(statistics.median(
            e / f for e, f in zip(times[(size, "exact")], times[(size, "fused")], strict=True)), 3)
        rows.append(row)
    return {"config": name, "bf16_autocast": bf16_cl, "channels_last": bf16_cl, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sizes", default="1,2,4,8", help="pack sizes, comma-separated (16 optional)")
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--width", type=int, default=2, help="widen factor")
    parser.add_argument("--base-width", type=int, default=16)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 10 cuda, 5 cpu)")
    parser.add_argument("--steps", type=int, help="steps per block (default 10 cuda, 1 cpu)")
    parser.add_argument("--warmup", type=int, help="untimed steps per variant first (default 5 cuda, 1 cpu)")
    parser.add_argument("--configs", help="fp32 and/or bf16-cl, comma-separated (default fp32,bf16-cl on cuda, fp32 "
                                          "on cpu)")
    parser.add_argument("--threads", type=int,
                        help="torch intra-op threads (default: torch's; on a CPU shared with other work use 1)")
    parser.add_argument("--no-deterministic", action="store_true",
                        help="let cuDNN pick non-deterministic and benchmarked algorithms (pblf.training.train's default "
                             "config trains deterministic)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    on_cuda = device.type == "cuda"
    if on_cuda and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no GPU")
    deterministic = not args.no_deterministic
    if on_cuda:  # as pblf.training.train.set_determinism; cuBLAS reads this before its first call
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(deterministic)
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    configs = (args.configs or ("fp32,bf16-cl" if on_cuda else "fp32")).split(",")
    if "bf16-cl" in configs and not on_cuda:
        parser.error("bf16-cl is measured on cuda only (pblf.training.train uses bf16 and channels_last on CUDA alone)")
    rounds = args.rounds or (10 if on_cuda else 5)
    steps = args.steps or (10 if on_cuda else 1)
    warmup = args.warmup if args.warmup is not None else (5 if on_cuda else 1)
    net = dict(depth=args.depth, widen_factor=args.width, base_width=args.base_width)
    name = f"WRN-{args.depth}-{args.width}" + ("" if args.base_width == 16 else f" (base width {args.base_width})")

    result: dict[str, Any] = {
        **record("bench_pack", argv, device),
        "network": name, "input": [args.batch, 3, 32, 32], "batch": args.batch, "deterministic": deterministic,
        "rounds": rounds, "steps_per_block": steps, "warmup_steps": warmup,
        "candidates": [c.to_dict() for c in CANDIDATES],
        "note": "one step = forward, K cross-entropies, backward and SGD for all K runs of a pack; images/s total = "
                "K * batch / step time; fused and exact are interleaved in one process; lr 0",
        "configs": [],
    }
    printed = []
    for config in configs:
        measured = bench_config(config, sizes, net, device, args.batch, rounds, steps, warmup)
        result["configs"].append(measured)
        with_memory = on_cuda
        header = ["K", "fused s/step", "exact s/step", "fused img/s (total)", "exact img/s (total)",
                  "fused img/s per run", "exact img/s per run", "fused speed-up", "paired"]
        if with_memory:
            header += ["fused step MiB", "exact step MiB"]
        else:
            header += ["fused user/sys s", "exact user/sys s"]
        rows = []
        for row in measured["rows"]:
            cells = [row["pack_size"], row["fused"]["seconds_per_step"], row["exact"]["seconds_per_step"],
                     row["fused"]["images_per_second_total"], row["exact"]["images_per_second_total"],
                     row["fused"]["images_per_second_per_run"], row["exact"]["images_per_second_per_run"],
                     row["fused_speedup"], row["fused_speedup_paired"]]
            if with_memory:
                cells += [row["fused"].get("step_memory_mib"), row["exact"].get("step_memory_mib")]
            else:
                cells += [f'{row[k]["cpu_user_seconds_per_step"]:.3f}/{row[k]["cpu_system_seconds_per_step"]:.3f}'
                          for k in ("fused", "exact")]
            rows.append(cells)
        printed.append(table(f"{name}, batch {args.batch}, 32x32x3, {config}, medians of {rounds} interleaved rounds "
                             f"x {steps} step(s) ({result['device']}, {result['threads']} thread(s))", header, rows))
    return finish(result, printed, args.out)


if __name__ == "__main__":
    sys.exit(main())
