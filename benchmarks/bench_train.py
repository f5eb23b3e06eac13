"""Benchmarks of the training job's hot paths: the meta-network op, the on-device data pipeline, a real epoch.

    python benchmarks/bench_train.py --out FILE.json [--device cpu|cuda] [--batch B] [--steps N] [--quick]

(a) step  -- cost of the meta-network op. One SGD step (forward, cross-entropy, backward, optimizer.step on a fixed
             random batch) of the target network in three variants, measured side by side in one process:
               plain      candidate=None (no op at all),
               standard   phi = (0, 0, 0, 1), mode 1111 (the op is present but sigma' == 1),
               candidate  phi = (0.3, -0.5, 0.1, 0.7), mode 1111, relu (a non-identity sigma').
             After warm-up the variants are interleaved (A B C A B C ...) in blocks of a few steps; each block gives a
             time per step. Reported: the median time per step of each variant, the ratio of medians to plain and the
             median of the per-round ratios (the latter cancels slow drifts of a shared machine). Target: candidate /
             plain <= 1.05. WRN-16-2 on 32x32x3, and a tiny network (the smoke preset's WRN-10-1, base width 2, on
             8x8x1) where the op's relative cost is largest. The optimiser runs with lr 0 (all its work is done, the
             weights stay at their seeded values) so that every step of every variant computes on the same numbers.
             A second, low-noise estimate: the op's own forward + backward at the four places (tensors of the shapes
             and dtypes the step produces there), timed alone minus the same autograd call on a plain view, over
             the plain step: "1 + op/plain". It misses effects of the op inside the whole backward pass (the autograd
             engine calling into Python, caches), so it is a lower bound; trust the interleaved ratio when the
             machine is quiet.
(b) data  -- one epoch of CIFAR-shaped synthetic uint8 images through pblf.training.data.DeviceSplit (Augment(4, True),
             batches(128, generator, shuffle=True)) versus torchvision's per-image transforms (RandomCrop(32, 4),
             RandomHorizontalFlip, ToTensor, Normalize) on PIL images in a DataLoader (batch 128, shuffle,
             num_workers 0 and 2). Every batch is consumed with .sum() (on the device for cuda, after .to(device) for
             the DataLoader). Only data loading, no model. Epochs of the pipelines are interleaved; medians.
(c) epoch -- cuda only: seconds per epoch and images/s of pblf.training.train's own epoch function (``_train_epoch``:
             channels_last, autocast, optimizer, per-epoch evaluation on validation and test) on WRN-16-2 with
             synthetic CIFAR-sized data (45,000 train / 5,000 validation / 10,000 test), one run, for bf16 autocast
             off/on times torch.compile off / mode default / mode reduce-overhead (CUDA graphs: the step's kernels
             replayed without a launch each). The first epoch of each variant is warm-up (cuDNN, compilation, graph
             capture); the following epochs are timed. ``pblf plan`` reads "s/epoch incl. eval" of the variant a
             config trains from benchmarks/results/cuda-bench_train.json.
(d) pack  -- cuda only: the same epoch function on a fused pack of K = 1, 2, 4, 8, 16 runs (pblf.training.pack.FusedPack,
             as ``resources.runs_per_job: K`` trains on a GPU) on 10,000 train images, float32, eager and with CUDA
             graphs: images/s per run and summed over the pack (what packing buys a search).
             (c) and (d) start no variant after ``--minutes`` (default 6) from the start, so that the whole
             benchmark fits in 8 minutes of one GPU; the skipped ones are named. On CPU they are skipped
             (``--force-epoch`` runs them on a tiny network and sizes, to test the code path).

All numbers measure this machine at this moment: compare ratios measured in one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from pblf.core.candidate import Candidate
from pblf.training.data import Augment, DeviceSplit, ImageSet, Normalisation, Splits, THESIS_TRAIN_MEAN, THESIS_TRAIN_STD
from pblf.training.model import WideResNet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import finish, record, table  # noqa: E402

CANDIDATE = Candidate(0.3, -0.5, 0.1, 0.7, "1111")
STANDARD = Candidate(0.0, 0.0, 0.0, 1.0, "1111")
NETS = {
    # name: (WideResNet kwargs, input shape (C, H, W), num_classes)
    "WRN-16-2": (dict(depth=16, widen_factor=2, base_width=16), (3, 32, 32), 10),
    "tiny WRN-10-1 (base 2)": (dict(depth=10, widen_factor=1, base_width=2), (1, 8, 8), 10),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


# ------------------------------------------------------------------------------------------------- (a) step time


def _make_step(net_kwargs: dict[str, Any], num_classes: int, in_channels: int, candidate: Candidate | None,
               device: torch.device, x: torch.Tensor, y: torch.Tensor, bf16: bool, channels_last: bool
               ) -> tuple[Callable[[], None], torch.nn.Module]:
    torch.manual_seed(0)  # every variant starts from the same weights
    model = WideResNet(num_classes=num_classes, in_channels=in_channels, candidate=candidate, activation="relu",
                       **net_kwargs).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    # lr 0: the optimiser does all its work (momentum, weight decay, update) but the weights stay at their seeded
    # initial values, so every step of every variant computes on the same numbers. With a real lr, hundreds of steps
    # on one fixed batch drive the gradients towards zero (and into float denormals on a CPU, which are slow), and
    # the variants, whose gradients differ, would drift apart in speed for reasons unrelated to the op.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9, nesterov=True, weight_decay=5e-4)
    autocast = {"device_type": device.type, "dtype": torch.bfloat16, "enabled": bf16}

    def step() -> None:
        with torch.autocast(**autocast):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, model


def op_backward_ms(model: torch.nn.Module, step: Callable[[], None], device: torch.device, reps: int) -> dict:
    """Time of the op alone at every active place: forward (a view plus saving h) and backward
    (grad * sigma'(h)) through autograd, the Python-level custom Function overhead included, on tensors of the
    shapes, dtypes and memory formats that the step produces there (captured with hooks); median of ``reps``,
    minus the median of the same autograd call on a plain view (the cost of timing it standalone)."""
    from pblf.training.metanet import MetaDerivative, meta_derivative

    seen: list[tuple[torch.Tensor, MetaDerivative]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((inp[0].detach().clone(), mod)))
             for m in model.modules() if isinstance(m, MetaDerivative)]
    step()
    for hook in hooks:
        hook.remove()
    per_place = []
    for h, mod in seen:
        h.requires_grad_(True)
        grad = torch.randn_like(h)

        def op() -> None:
            h.grad = None
            meta_derivative(h, mod.phi, mod.activation).backward(grad)

        def baseline() -> None:  # the same autograd call on a plain view: what the standalone timing adds
            h.grad = None
            h.view_as(h).backward(grad)

        times: dict[str, list[float]] = {"op": [], "baseline": []}
        for _ in range(3):
            op()
            baseline()
        for _ in range(reps):
            for name, work in (("op", op), ("baseline", baseline)):
                sync(device)
                started = time.perf_counter()
                work()
                sync(device)
                times[name].append(time.perf_counter() - started)
        op_ms, base_ms = 1000 * median(times["op"]), 1000 * median(times["baseline"])
        per_place.append({"shape": list(h.shape), "dtype": str(h.dtype).replace("torch.", ""),
                          "op_ms": round(op_ms, 4), "baseline_ms": round(base_ms, 4),
                          "median_ms": round(max(op_ms - base_ms, 0.0), 4)})
    return {"places": per_place, "total_ms": round(sum(p["median_ms"] for p in per_place), 4)}


def bench_step(net: str, device: torch.device, batch: int, rounds: int, block: int, warmup: int,
               bf16: bool = False, channels_last: bool = False) -> dict[str, Any]:
    net_kwargs, shape, num_classes = NETS[net]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((batch, *shape), generator=gen).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch,), generator=gen).to(device)
    variants = {
        "plain": None,
        "standard": STANDARD,
        "candidate": CANDIDATE,
    }
    built = {name: _make_step(net_kwargs, num_classes, shape[0], cand, device, x, y, bf16, channels_last)
             for name, cand in variants.items()}
    steps = {name: step for name, (step, _) in built.items()}
    for step in steps.values():
        for _ in range(warmup):
            step()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(rounds):
        # rotate the order each round so no variant always follows the same one
        order = list(steps)[r % len(steps):] + list(steps)[: r % len(steps)]
        for name in order:
            sync(device)
            started = time.perf_counter()
            for _ in range(block):
                steps[name]()
            sync(device)
            times[name].append((time.perf_counter() - started) / block)
    out: dict[str, Any] = {
        "net": net, "input": [batch, *shape], "batch": batch, "rounds": rounds, "steps_per_block": block,
        "warmup_steps": warmup, "bf16_autocast": bf16, "channels_last": channels_last,
        "candidate": CANDIDATE.to_dict(), "activation": "relu",
        "median_ms": {name: round(1000 * median(t), 3) for name, t in times.items()},
    }
    # The interleaved ratio carries the machine's noise (several % on a shared CPU). A second, low-noise estimate:
    # the op's own forward + backward at the four places, timed alone, over the plain step's median.
    op = op_backward_ms(built["candidate"][1], steps["candidate"], device, reps=max(20, 2 * rounds))
    out["op_backward"] = op
    out["candidate_over_plain_estimate"] = round(1 + op["total_ms"] / out["median_ms"]["plain"], 4)
    for name in ("standard", "candidate"):
        out[f"{name}_over_plain"] = round(median(times[name]) / median(times["plain"]), 4)
        out[f"{name}_over_plain_paired"] = round(
            median([a / b for a, b in zip(times[name], times["plain"])]), 4)
    return out


# -------------------------------------------------------------------------------------------------- (b) data


def synthetic_cifar(n: int, seed: int = 0) -> ImageSet:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (n,), generator=gen)
    return ImageSet(images, labels)


class PILDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does per item: HWC uint8 array -> PIL image -> transforms."""

    def __init__(self, images_hwc: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images, self.labels, self.transform = images_hwc, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def bench_data(device: torch.device, n: int, batch: int, epochs: int, workers: list[int]) -> dict[str, Any]:
    import torchvision.transforms as T

    data = synthetic_cifar(n)
    norm = Normalisation(THESIS_TRAIN_MEAN, THESIS_TRAIN_STD)
    split = DeviceSplit(data, norm, Augment(4, True), device)
    generator = torch.Generator().manual_seed(0)

    def device_epoch() -> None:
        total = torch.zeros((), device=device)
        for images, labels in split.batches(batch, generator, shuffle=True):
            total += images.sum() + labels.sum()
        sync(device)
        float(total)

    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(THESIS_TRAIN_MEAN, THESIS_TRAIN_STD)])
    dataset = PILDataset(data.images.permute(0, 2, 3, 1).contiguous().numpy(), data.labels.numpy(), transform)

    def loader_epoch(num_workers: int) -> Callable[[], None]:
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch, shuffle=True, num_workers=num_workers, pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(0), persistent_workers=num_workers > 0,
        )

        def run() -> None:
            total = torch.zeros((), device=device)
            for images, labels in loader:
                images = images.to(device, non_blocking=True)
                labels = labels.to(device, non_blocking=True)
                total += images.sum() + labels.sum()
            sync(device)
            float(total)

        return run

    pipelines: dict[str, Callable[[], None]] = {"pblf DeviceSplit": device_epoch}
    for w in workers:
        pipelines[f"torchvision DataLoader workers={w}"] = loader_epoch(w)
    for run in pipelines.values():  # warm-up (starts the persistent workers too)
        run()
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(epochs):
        for name, run in pipelines.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    rows = {name: {"seconds_per_epoch": round(median(t), 4), "images_per_second": round(n / median(t), 1)}
            for name, t in times.items()}
    base = median(times["pblf DeviceSplit"])
    for name, t in times.items():
        rows[name]["device_split_speedup"] = round(median(t) / base, 2)
    return {"images": n, "batch": batch, "timed_epochs": epochs, "augment": {"crop_padding": 4, "hflip": True},
            "pipelines": rows}


# ------------------------------------------------------------------------------------------- (c, d) real epochs


def epoch_splits(device: torch.device, n_train: int, n_val: int, n_test: int) -> Splits:
    """Synthetic CIFAR-sized train / validation / test parts on ``device``, as pblf.training.train gets them."""
    norm = Normalisation(THESIS_TRAIN_MEAN, THESIS_TRAIN_STD)
    return Splits(
        train=DeviceSplit(synthetic_cifar(n_train, 1), norm, Augment(4, True), device),
        validation=DeviceSplit(synthetic_cifar(n_val, 2), norm, None, device),
        test=DeviceSplit(synthetic_cifar(n_test, 3), norm, None, device),
        num_classes=10, in_channels=3,
    )


def time_epochs(splits: Splits, net: str, device: torch.device, train_cfg: dict[str, Any], size: int, epochs: int
                ) -> dict[str, Any]:
    """One warm-up epoch (cuDNN, compilation, graph capture), then ``epochs`` timed ones of a pack of ``size`` runs
    (fused when size > 1) through pblf.training.train's own epoch function; medians. Images/s count every run's images."""
    import pblf.training.train as ptrain
    from pblf.training.pack import make_pack, sgd_options

    net_kwargs = NETS[net][0]
    models = []
    for k in range(size):
        torch.manual_seed(0)  # common random numbers: every run starts from the same weights
        models.append(WideResNet(num_classes=10, in_channels=3, candidate=(CANDIDATE, STANDARD)[k % 2],
                                 activation="relu", **net_kwargs).to(device))
    pack = make_pack("fused" if size > 1 else "exact", models, channels_last=train_cfg["channels_last"],
                     compile=ptrain.compile_mode(train_cfg), **sgd_options(train_cfg))
    states = [ptrain.TrainState() for _ in range(size)]
    generator = torch.Generator().manual_seed(0)
    autocast = {"device_type": device.type, "dtype": torch.bfloat16, "enabled": train_cfg["bf16"]}
    walls, train_secs = [], []
    with ptrain._StopFlag() as stop:
        for epoch in range(epochs + 1):
            sync(device)
            started = time.perf_counter()
            diverged = ptrain._train_epoch(pack, states, splits, train_cfg, 1000, generator, autocast, stop,
                                           lambda: None)
            sync(device)
            wall = time.perf_counter() - started
            if diverged:
                raise RuntimeError(f"the loss became non-finite in epoch {epoch + 1}")
            if epoch == 0:
                warm_up = wall
                continue
            walls.append(wall)
            train_secs.append(states[0].history[-1]["seconds"] * size)  # a row's seconds are one run's share
    per_run = len(splits.train) / median(train_secs)
    return {"pack_size": size, "first_epoch_wall_s": round(warm_up, 3),
            "seconds_per_epoch_train": round(median(train_secs), 3),
            "seconds_per_epoch_with_eval": round(median(walls), 3),
            "train_images_per_second_per_run": round(per_run, 1),
            "train_images_per_second_total": round(size * per_run, 1)}


def bench_epochs(device: torch.device, net: str, sizes: tuple[int, int, int], epochs: int,
                 variants: list[tuple[bool, str | None, int]], deadline: float) -> dict[str, Any]:
    """:func:`time_epochs` for each (bf16, compile mode, pack size) of ``variants`` in turn, under the names
    ``pblf plan`` looks up (:func:`pblf.plan.epoch_variant`, plus the pack size); a variant that would start after
    ``deadline`` (time.monotonic) is skipped and says so, one that fails records its error."""
    import pblf.training.train as ptrain
    from pblf.core.config import validate
    from pblf.plan import epoch_variant

    splits = epoch_splits(device, *sizes)
    ptrain.set_determinism(True)  # config.yaml's default (deterministic: true)
    rows: dict[str, Any] = {}
    for bf16, mode, size in variants:
        train_cfg = {**validate({})["train"], "bf16": device.type == "cuda" and bf16,
                     "channels_last": device.type == "cuda", "compile": mode is not None,
                     "compile_mode": mode or "default"}
        name = epoch_variant(train_cfg) + (f" pack={size}" if size > 1 else "")
        if time.monotonic() > deadline:
            rows[name] = {"skipped": "the time given by --minutes was spent"}
            continue
        try:
            rows[name] = time_epochs(splits, net, device, train_cfg, size, epochs)
        except Exception as err:  # noqa: BLE001 - record e.g. a compile failure and go on
            rows[name] = {"error": f"{type(err).__name__}: {err}"[:500]}
        torch._dynamo.reset()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    base = rows.get(epoch_variant({"bf16": False, "compile": False}), {}).get("train_images_per_second_per_run")
    for row in rows.values():
        if base and "train_images_per_second_total" in row:
            row["total_speedup_vs_fp32_eager"] = round(row["train_images_per_second_total"] / base, 2)
    return {"net": net, "train_images": sizes[0], "validation_images": sizes[1], "test_images": sizes[2],
            "batch": 128, "timed_epochs": epochs, "deterministic": True, "candidates": "phi of (a) and Standard in turn",
            "variants": rows}


def epoch_table(title: str, measured: dict[str, Any]) -> str:
    return table(title, ["variant", "warm-up s", "train s/epoch", "s/epoch incl. eval", "img/s per run",
                         "img/s total", "total speed-up"],
                 [[name, r.get("first_epoch_wall_s", "-"), r.get("seconds_per_epoch_train", "-"),
                   r.get("seconds_per_epoch_with_eval", "-"), r.get("train_images_per_second_per_run", "-"),
                   r.get("train_images_per_second_total", "-"),
                   r.get("total_speedup_vs_fp32_eager", r.get("error", r.get("skipped", "-")))]
                  for name, r in measured["variants"].items()])


# ----------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, help="(a) WRN-16-2 batch size (default 128 on cuda, 32 on cpu; the "
                                                  "tiny net always uses 32)")
    parser.add_argument("--steps", type=int, help="(a) timed steps per variant (default 200 cuda, 60 cpu; 30 quick)")
    parser.add_argument("--images", type=int, help="(b) images per epoch (default 45,000 cuda, 5,000 cpu)")
    parser.add_argument("--quick", action="store_true", help="fewer steps and epochs")
    parser.add_argument("--parts", default="abcd", help="which parts to run, e.g. 'ab'")
    parser.add_argument("--threads", type=int,
                        help="torch intra-op threads (default: torch's). On a CPU shared with other work use 1: "
                             "OpenMP threads that wait on each other while preempted can make every op many times "
                             "slower, which measures the neighbours, not the code")
    parser.add_argument("--workers", default="0,2", help="(b) DataLoader num_workers to compare, comma-separated")
    parser.add_argument("--force-epoch", action="store_true",
                        help="run (c) and (d) on cpu too, on a tiny network and sizes (code check)")
    parser.add_argument("--pack-sizes", default="1,2,4,8,16", help="(d) pack sizes, comma-separated")
    parser.add_argument("--pack-images", type=int, help="(d) train images per epoch (default 10,000 cuda, 256 cpu)")
    parser.add_argument("--minutes", type=float, default=6.0,
                        help="(c) and (d) start no variant after this many minutes from the start (default 6: the "
                             "whole run fits 8 minutes on one GPU); skipped ones are named in the output")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + 60 * args.minutes

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":  # (c) runs deterministic like pblf.training.train; cuBLAS reads this before its first call
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no GPU")
    on_cuda = device.type == "cuda"
    batch = args.batch or (128 if on_cuda else 32)
    block = 10 if on_cuda else 3
    steps = args.steps or ((60 if on_cuda else 30) if args.quick else (200 if on_cuda else 60))
    rounds = max(3, steps // block)
    n_images = args.images or (45_000 if on_cuda else (2_000 if args.quick else 5_000))

    result: dict[str, Any] = {
        **record("bench_train", argv, device),
        "quick": args.quick,
        "note": "ratios are measured side by side in one process; absolute times depend on the machine's load",
    }
    printed: list[str] = []

    if "a" in args.parts:
        runs = []
        configs = [(False, False)] + ([(True, True)] if on_cuda else [])
        for net in NETS:
            for bf16, cl in configs:
                if net == "WRN-16-2":
                    runs.append(bench_step(net, device, batch, rounds, block, warmup=2 * block, bf16=bf16,
                                           channels_last=cl))
                else:  # steps of a few ms: longer blocks and more rounds cost little and cut the noise
                    runs.append(bench_step(net, device, 32, min(5 * rounds, 100), max(block, 10), warmup=20,
                                           bf16=bf16, channels_last=cl))
        result["a_step"] = {"target": "candidate / plain <= 1.05", "runs": runs}
        printed.append(table(
            f"(a) SGD step time, interleaved rounds of a few steps per variant, medians ({device})",
            ["net", "batch", "rounds x steps", "bf16+CL", "plain ms", "standard ms", "candidate ms", "std/plain", "cand/plain",
             "cand/plain paired", "op fwd+bwd ms", "1 + op/plain"],
            [[r["net"], r["batch"], f'{r["rounds"]} x {r["steps_per_block"]}', "yes" if r["bf16_autocast"] else "no", r["median_ms"]["plain"],
              r["median_ms"]["standard"], r["median_ms"]["candidate"], r["standard_over_plain"],
              r["candidate_over_plain"], r["candidate_over_plain_paired"], r["op_backward"]["total_ms"],
              r["candidate_over_plain_estimate"]] for r in runs]))

    if "b" in args.parts:
        workers = [int(w) for w in args.workers.split(",") if w.strip()]
        data = bench_data(device, n_images, 128, epochs=2 if args.quick else 3, workers=workers)
        if not on_cuda:
            data["note"] = (f"CPU run on {n_images} synthetic images instead of 45,000, to finish in minutes; "
                            "images/s does not depend on N")
        result["b_data"] = data
        printed.append(table(
            f"(b) one epoch of {n_images} CIFAR-shaped uint8 images, batch 128, crop 4 + flip, medians ({device})",
            ["pipeline", "s/epoch", "images/s", "time / DeviceSplit time"],
            [[name, r["seconds_per_epoch"], r["images_per_second"], r["device_split_speedup"]]
             for name, r in data["pipelines"].items()]))

    if ("c" in args.parts or "d" in args.parts) and not (on_cuda or args.force_epoch):
        result["epochs_skipped"] = ("(c) and (d) need --device cuda (real epochs of WRN-16-2 on 45,000 images are "
                                    "hours on a CPU); run them in a GPU session")
    elif "c" in args.parts or "d" in args.parts:
        net = "WRN-16-2" if on_cuda else "tiny WRN-10-1 (base 2)"  # (on 3x32x32 here)
        epochs = 1 if args.quick or not on_cuda else 2
        note = ("--force-epoch on cpu: tiny network and sizes, eager only, a code-path check, not a measurement "
                "(torch.compile's CPU backend crashed the process with heap corruption in the compiled backward on "
                "the project's machine, torch 2.14.1, even for a plain WRN at batch 128)")
        modes = (None, "default", "reduce-overhead") if on_cuda else (None,)
        if "c" in args.parts:
            sizes = (45_000, 5_000, 10_000) if on_cuda else (256, 64, 64)
            variants = [(bf16, mode, 1) for bf16 in ((False, True) if on_cuda else (False,)) for mode in modes]
            ep = bench_epochs(device, net, sizes, epochs, variants, deadline)
            result["c_epoch"] = ep if on_cuda else {**ep, "note": note}
            printed.append(epoch_table(
                f"(c) pblf.training.train._train_epoch, one run, {net}, {sizes[0]} train images, medians of {epochs} "
                f"epoch(s) after one warm-up ({device})", ep))
        if "d" in args.parts:
            sizes = (args.pack_images or (10_000 if on_cuda else 256), 1_000 if on_cuda else 64,
                     1_000 if on_cuda else 64)
            packs = [int(k) for k in args.pack_sizes.split(",") if k.strip()]
            variants = [(False, mode, k) for mode in modes[::2] for k in packs]
            ep = bench_epochs(device, net, sizes, 1, variants, deadline)
            result["d_pack"] = ep if on_cuda else {**ep, "note": note}
            printed.append(epoch_table(
                f"(d) packs of K runs (fused), pblf.training.train._train_epoch, {net}, {sizes[0]} train images per run, "
                f"one epoch after one warm-up ({device})", ep))

    return finish(result, printed, args.out)


if __name__ == "__main__":
    sys.exit(main())
