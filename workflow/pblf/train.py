"""One training job: one candidate, one budget, one seed (the inner loop of Algorithm 2).

Every search iteration, repeat and 600-epoch rerun is this function, so it is built to be

* exact: phi = (0, 0, 0, 1) is standard backpropagation, bit for bit;
* deterministic, with common random numbers: every random stream (initial weights, batch order, augmentation) is
  seeded from (base seed, seed) and never from the candidate, so every candidate and method trained with seed s
  starts from the same weights and sees the same batches: differences between candidates are differences of phi,
  not of luck, and the comparison of methods is paired by seed. The same command gives the same ``metrics.json``
  (timing fields aside);
* resumable: a checkpoint is written atomically after every epoch (and when SLURM's SIGTERM/SIGUSR1 arrives, in the
  middle of one); rerunning the same command after any kill continues and ends with the same metrics as an
  uninterrupted run;
* tolerant of bad candidates: a NaN or infinite loss ends the run with status ``diverged`` and exit status 0, so the
  search records the candidate and goes on;
* fast on a GPU: data resident on the device, whole-batch augmentation, channels_last, optional bf16 autocast and
  torch.compile, no DataLoader workers.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pblf.candidate import Candidate, read_candidate, read_proposal
from pblf.config import load_config, stage_config
from pblf.data import DeviceSplit, Splits, load_splits, make_split, read_split
from pblf.errors import ConfigError, DeviceError
from pblf.files import read_bytes, read_json, write_bytes, write_json
from pblf.layout import CHECKPOINT, METRICS, RunId
from pblf.model import build_model
from pblf.provenance import Outcome, code_fingerprint
from pblf.prune import should_stop
from pblf.seeding import derive_seed

log = logging.getLogger(__name__)

#: Exit status after a preemption signal: "try again" (EX_TEMPFAIL). The checkpoint holds everything done so far.
EXIT_PREEMPTED = 75
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
#: Names the way random numbers are drawn; a checkpoint written under another scheme is stale.
SEEDING = "common random numbers: (base seed, seed, stream)"
#: Fields of an epoch row that measure the machine, not the training; determinism checks ignore them.
TIMING_FIELDS = ("seconds", "images_per_second")


class Preempted(Exception):
    """Raised inside the epoch loop when SLURM asked the job to stop; the state was saved first."""


# ---------------------------------------------------------------------------------------------------- set-up


def resolve_device(name: str) -> torch.device:
    """auto picks CUDA when torch sees a GPU; cuda without one is an error rather than a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device: cuda was requested but torch sees no GPU (torch.cuda.is_available() is False); "
                          "set device: cpu or auto, or run on a machine with a GPU")
    return torch.device(name)


#: A CPU epoch longer than this makes ``device: auto`` without a GPU worth a warning before the first job.
CPU_EPOCH_WARNING_SECONDS = 60.0


def cpu_fallback_warning(cfg: dict[str, Any], steps: int = 2) -> str | None:
    """What to tell the user when ``device: auto`` finds no GPU and training would run on the CPU for long: the
    seconds of a training step of the configured network, measured here, and the minutes of an epoch they imply.
    None when there is a GPU, the device is chosen explicitly, or an epoch is short."""
    from pblf.data import IMAGE_SHAPES, train_size

    if cfg["device"] != "auto" or torch.cuda.is_available():
        return None
    data, batch = cfg["data"], cfg["train"]["batch_size"]
    channels, height, width = IMAGE_SHAPES[data["dataset"]]
    model = build_model(cfg["model"], 10, channels, None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    images, labels = torch.randn(batch, channels, height, width), torch.zeros(batch, dtype=torch.long)
    seconds = []
    for _ in range(steps + 1):  # the first step warms up
        started = time.perf_counter()
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
        seconds.append(time.perf_counter() - started)
    per_step = min(seconds[1:])
    per_epoch = per_step * math.ceil(train_size(data) / batch)
    if per_epoch < CPU_EPOCH_WARNING_SECONDS:
        return None
    model_cfg = cfg["model"]
    return (f"device: auto found no GPU, so training runs on this machine's CPU: one step of "
            f"WRN-{model_cfg['depth']}-{model_cfg['widen_factor']} on {batch} images took {per_step:.1f} s here, "
            f"about {_duration(per_epoch)} per epoch of {train_size(data):,} images. Run where a GPU is, or set "
            f"device: cpu to train here anyway.")


def set_determinism(enabled: bool) -> None:
    """Deterministic algorithms everywhere (cuBLAS needs its workspace setting before the first CUDA call)."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def learning_rate(train_cfg: dict[str, Any], budget: int, epoch: int) -> float:
    """Step decay: lr * gamma^k after k milestones (fractions of the budget) have passed. A pure function of the
    epoch, so resuming needs no scheduler state."""
    passed = sum(epoch >= round(fraction * budget) for fraction in train_cfg["lr_milestones"])
    return train_cfg["lr"] * train_cfg["lr_gamma"] ** passed


@dataclass
class EpochStats:
    """Running sums of one training epoch (kept in the checkpoint so a mid-epoch resume loses nothing)."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    step: int = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.loss_sum += float(loss.detach()) * len(labels)
        self.correct += int((logits.argmax(1) == labels).sum())
        self.seen += len(labels)
        self.step += 1


@dataclass
class TrainState:
    """Everything a resumed run needs besides the model and optimiser."""

    epoch: int = 0
    stats: EpochStats = field(default_factory=EpochStats)
    #: the batch generator's state at the start of ``epoch`` (a mid-epoch resume replays the epoch's random numbers)
    epoch_rng: torch.Tensor | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Fidelity:
    """How much of its budget a run trains (low-fidelity search, :mod:`pblf.prune`): up to epoch ``until`` (a
    successive-halving rung), and no further than a rung epoch at which its best Top-1 validation so far is below
    ``stop_below[epoch]`` (the median stopping rule). Either way it follows the full budget's schedule, so training
    it further later continues exactly where it stopped. The default trains the whole budget."""

    until: int | None = None
    stop_below: dict[int, float] = field(default_factory=dict)

    @classmethod
    def of_entry(cls, entry: dict[str, Any]) -> "Fidelity":
        """The fidelity a proposal entry asks for (``until``, ``stop_below``; JSON keys are strings)."""
        return cls(entry.get("until"), {int(epoch): float(value) for epoch, value in entry.get("stop_below", {}).items()})

    def stops(self, state: "TrainState", budget: int) -> bool:
        """Whether a run in ``state`` is done short of ``budget``: its rung reached, or below the median there."""
        return state.epoch >= min(budget, self.until or budget) or \
            should_stop([row["val_top1"] for row in state.history], self.stop_below)


# ------------------------------------------------------------------------------------------------- checkpoints


def run_fingerprint(cfg: dict[str, Any], split: dict[str, Any], candidate: Candidate, budget: int, seed: int) -> str:
    """What a checkpoint belongs to (the config, data, candidate, budget, seed and the training code); a checkpoint
    with another fingerprint is stale and ignored."""
    keys = {k: cfg[k] for k in ("seed", "data", "model", "train", "deterministic")}
    blob = json.dumps(
        [keys, split["checksums"], split["validation_indices"][:50], candidate.to_dict(), budget, seed, SEEDING,
         code_fingerprint()],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: TrainState,
                    generator: torch.Generator, fingerprint: str) -> None:
    """Write to a temporary file, fsync, then rename: a kill at any moment leaves the old or the new checkpoint."""
    payload = {
        "fingerprint": fingerprint,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": {"epoch": state.epoch},
        "epoch": state.epoch,
        "stats": vars(state.stats),
        "epoch_rng": state.epoch_rng,
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "history": state.history,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes(buffer.getvalue(), path)


class DamagedCheckpoint(Exception):
    """A checkpoint that loaded but could not be applied; it has been set aside and the run must start afresh."""


def set_aside(path: Path, reason: Exception) -> Path:
    """Move a damaged checkpoint out of the way (kept, for a post-mortem) so that the run, and every retry of it,
    starts from epoch 0 instead of failing on the same file for ever."""
    number = 1
    while (aside := path.with_name(f"{path.stem}.damaged-{number}{path.suffix}")).exists():
        number += 1
    os.replace(path, aside)
    log.warning("checkpoint %s cannot be used (%s: %s); moved it to %s and starting the run from epoch 0", path,
                type(reason).__name__, str(reason).splitlines()[0] if str(reason) else "", aside)
    return aside


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    generator: torch.Generator, fingerprint: str) -> TrainState | None:
    """Restore a run from ``path``; None when there is none, it belongs to another run, or it cannot be read (then
    it is set aside). Raises :class:`DamagedCheckpoint` when it was read but could not be applied."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict):
            raise ValueError(f"it holds a {type(payload).__name__}, not a checkpoint")
    except Exception as err:  # noqa: BLE001 - truncated, empty or random bytes: torch raises many types
        set_aside(path, err)
        return None
    if payload.get("fingerprint") != fingerprint:
        log.warning("%s belongs to another configuration or candidate; starting from scratch", path)
        return None
    try:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        generator.set_state(payload["generator"])
        torch.set_rng_state(payload["torch_rng"])
        if payload["cuda_rng"]:
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        return TrainState(payload["epoch"], EpochStats(**payload["stats"]), payload["epoch_rng"], payload["history"])
    except Exception as err:  # noqa: BLE001 - a checkpoint with the right fingerprint but a damaged payload
        set_aside(path, err)
        raise DamagedCheckpoint(str(path)) from err


# ------------------------------------------------------------------------------------------------ training loop


class _StopFlag:
    """Turns SIGTERM/SIGUSR1 into a flag the loop checks after each step (a handler must not save by itself)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        for signum in PREEMPTION_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


@torch.no_grad()
def evaluate(model: torch.nn.Module, part: DeviceSplit, batch_size: int, autocast: dict[str, Any]) -> float:
    """Top-1 accuracy in percent."""
    model.eval()
    correct = 0
    for images, labels in part.batches(batch_size):
        with torch.autocast(**autocast):
            logits = model(images)
        correct += int((logits.argmax(1) == labels).sum())
    model.train()
    return 100.0 * correct / len(part)


def _percent(value: float) -> float:
    return round(value, 4)


def run_config(cfg: dict[str, Any], run: RunId) -> dict[str, Any]:
    """The config a run trains with: a generalisation run's own batch size, and its learning rate kept or scaled in
    proportion to it (the linear scaling rule, Goyal et al. 2017); every other run trains with ``cfg`` as it is."""
    if run.batch_size is None:
        return cfg
    train = {**cfg["train"], "batch_size": run.batch_size}
    if run.lr_scaling == "linear":
        train["lr"] = cfg["train"]["lr"] * run.batch_size / cfg["train"]["batch_size"]
    return {**cfg, "train": train}


def initial_model(cfg: dict[str, Any], candidate: Candidate, seed: int, num_classes: int,
                  in_channels: int) -> torch.nn.Module:
    """The target network with ``candidate``'s backward pass and the initial weights of ``seed``: the same weights
    for every candidate (the op has no parameters and phi is not in the state dict), on the CPU."""
    torch.manual_seed(derive_seed(cfg["seed"], seed, "init"))
    return build_model(cfg["model"], num_classes, in_channels, candidate)


def train_candidate(
    cfg: dict[str, Any],
    candidate: Candidate,
    run: RunId,
    out_dir: str | Path,
    split: dict[str, Any] | None = None,
    fidelity: Fidelity = Fidelity(),
    resume_from: Path | None = None,
) -> dict[str, Any]:
    """Train the target network with ``candidate``'s backward pass for ``run.budget`` epochs with ``run.seed`` (or
    less, as ``fidelity`` says: status ``stopped``); write and return the metrics, which record ``run`` (who this
    run is) next to the candidate.

    ``resume_from`` is the folder of an earlier run of the same candidate, budget and seed that stopped at a rung:
    this run starts from its checkpoint (successive halving's promotion). ``cfg`` is a validated config (only seed,
    device, deterministic, data, model and train are read). Raises :class:`Preempted` after saving when a
    preemption signal arrives."""
    budget, seed = run.budget, run.seed
    cfg = run_config(cfg, run)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / CHECKPOINT
    promoted = resume_from and {"run": str(resume_from),
                                "epoch": len(read_json(Path(resume_from) / METRICS)["epochs"])}
    if resume_from and not checkpoint.exists():
        write_bytes(read_bytes(Path(resume_from) / CHECKPOINT), checkpoint)
    split = split or make_split(cfg["data"], cfg["seed"])
    set_determinism(cfg["deterministic"])
    device = resolve_device(cfg["device"])
    on_cuda = device.type == "cuda"
    train_cfg = cfg["train"]
    splits = load_splits(cfg["data"], split, device)

    model = initial_model(cfg, candidate, seed, splits.num_classes, splits.in_channels).to(device)
    if on_cuda and train_cfg["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=train_cfg["lr"], momentum=train_cfg["momentum"],
        nesterov=train_cfg["nesterov"], weight_decay=train_cfg["weight_decay"],
    )
    generator = torch.Generator().manual_seed(derive_seed(cfg["seed"], seed, "batches"))
    fingerprint = run_fingerprint(cfg, split, candidate, budget, seed)
    try:
        state = load_checkpoint(checkpoint, model, optimizer, generator, fingerprint) or TrainState()
    except DamagedCheckpoint:  # the model may hold part of it: build everything afresh, without the checkpoint
        return train_candidate(cfg, candidate, run, out_dir, split, fidelity)
    if state.epoch or state.stats.step:
        log.info("resuming from %s at epoch %d, step %d", checkpoint, state.epoch + 1, state.stats.step)
    forward = torch.compile(model) if train_cfg["compile"] else model
    autocast = {"device_type": device.type, "dtype": torch.bfloat16, "enabled": on_cuda and train_cfg["bf16"]}

    result = {
        "run": run.to_dict(),
        "candidate": candidate.to_dict(),
        "activation": cfg["model"]["metanet_activation"],
        "training_code": code_fingerprint(),
        "status": "ok",
        "epochs": state.history,
        **({"resumed_from": promoted} if promoted else {}),
    }
    with _StopFlag() as stop:
        # checked before each epoch, so that a run killed after its stopping epoch stops again on resume
        while not fidelity.stops(state, budget):
            diverged = _train_epoch(forward, optimizer, splits, train_cfg, budget, state, generator, autocast,
                                    stop, lambda: save_checkpoint(checkpoint, model, optimizer, state, generator,
                                                                  fingerprint))
            if diverged:
                result["status"] = "diverged"
                result["diverged_at"] = {"epoch": state.epoch + 1, "step": state.stats.step}
                break
            save_checkpoint(checkpoint, model, optimizer, state, generator, fingerprint)
        if result["status"] == "ok" and state.epoch < budget:
            result["status"], result["stopped_at"] = "stopped", state.epoch
        # a signal that arrives from here on finds the work done: finish and exit 0
        last = state.history[-1] if state.history else None
        if result["status"] in ("ok", "stopped") and last is not None:
            result["val_top1"], result["test_top1"] = last["val_top1"], last["test_top1"]
        else:
            result["val_top1"] = _percent(evaluate(forward, splits.validation, train_cfg["eval_batch_size"], autocast))
            result["test_top1"] = _percent(evaluate(forward, splits.test, train_cfg["eval_batch_size"], autocast))
            log.warning("candidate %s diverged at epoch %d: val %.2f%%, test %.2f%%", candidate.to_json(),
                        state.epoch + 1, result["val_top1"], result["test_top1"])
        write_json(result, out_dir / METRICS)
    return result


def stage_train(
    config: list[Path],
    out: Path,
    run: RunId,
    candidate: str | None = None,
    candidate_file: Path | None = None,
    split: Path | None = None,
    resume_from: Path | None = None,
) -> Outcome:
    """``pblf train``: train one run into the folder ``out`` (``metrics.json``, ``checkpoint.pt``).

    The candidate is given as JSON (``candidate``) or read from ``candidate_file``: the proposal entry ``run.index``
    for a search run (with the fidelity it asks for), otherwise a selection record. ``resume_from``: the folder of the
    run this one continues (a promotion of successive halving). Without ``split`` the split is made from the
    config."""
    if (candidate is None) == (candidate_file is None):
        raise ConfigError("give the candidate either as JSON (--candidate) or as a file (--candidate-file)")
    cfg = load_config(config)
    fidelity = Fidelity()
    if candidate_file is not None and run.kind == "search":
        chosen = read_candidate(candidate_file, run.index)
        fidelity = Fidelity.of_entry(read_proposal(candidate_file)[run.index])
    elif candidate_file is not None:
        chosen = read_candidate(candidate_file)
    else:
        try:
            chosen = Candidate.from_json(candidate)
        except ValueError as err:
            raise ConfigError(f"--candidate {candidate}: {err}") from None
    split_record = read_split(split) if split else None
    try:
        result = train_candidate(cfg, chosen, run, out, split_record, fidelity, resume_from)
    except Preempted as err:
        log.warning("preempted (%s); the checkpoint in %s holds the progress, rerun the same command to resume",
                    err, out)
        return Outcome(exit_code=EXIT_PREEMPTED)
    log.info("%s: val %.2f%%, test %.2f%% -> %s", result["status"], result["val_top1"], result["test_top1"],
             out / METRICS)
    return Outcome(stage_config(cfg, "train"), {"run": run.to_dict(), "status": result["status"]},
                   device=resolve_device(cfg["device"]).type)


def _train_epoch(model, optimizer, splits: Splits, train_cfg, budget, state: TrainState, generator,
                 autocast, stop: _StopFlag, save) -> bool:
    """One epoch (or the rest of one, after a mid-epoch resume). Returns True when the loss became non-finite."""
    lr = learning_rate(train_cfg, budget, state.epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    if state.stats.step == 0:
        state.epoch_rng = generator.get_state()
    else:
        generator.set_state(state.epoch_rng)  # replay this epoch's shuffle and augmentation from its start
    started = time.perf_counter()
    stats = state.stats
    done_before, seen_before = stats.step, stats.seen
    for step, (images, labels) in enumerate(splits.train.batches(train_cfg["batch_size"], generator, shuffle=True)):
        if step < done_before:
            continue
        if images.device.type == "cuda" and train_cfg["channels_last"]:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(**autocast):
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
        if not torch.isfinite(loss):
            return True
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        stats.add(loss, logits, labels)
        if stop.signum is not None:
            save()
            raise Preempted(f"signal {signal.Signals(stop.signum).name} at epoch {state.epoch + 1}, step {stats.step}")
    seconds = time.perf_counter() - started
    eval_bs = train_cfg["eval_batch_size"]
    row = {
        "epoch": state.epoch + 1,
        "lr": round(lr, 12),
        "train_loss": round(stats.loss_sum / max(stats.seen, 1), 6),
        "train_top1": _percent(100.0 * stats.correct / max(stats.seen, 1)),
        "val_top1": _percent(evaluate(model, splits.validation, eval_bs, autocast)),
        "test_top1": _percent(evaluate(model, splits.test, eval_bs, autocast)),
        "seconds": round(seconds, 3),
        "images_per_second": round((stats.seen - seen_before) / max(seconds, 1e-9), 1),
    }
    state.history.append(row)
    state.epoch += 1
    state.stats = EpochStats()
    left = seconds * (budget - state.epoch)
    log.info(
        "epoch %d/%d lr %.4g | loss %.4f train %.2f%% val %.2f%% test %.2f%% | %.0f img/s, %.1f s, ~%s left",
        row["epoch"], budget, lr, row["train_loss"], row["train_top1"], row["val_top1"], row["test_top1"],
        row["images_per_second"], seconds, _duration(left),
    )
    return False


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def without_timing(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` minus the fields that measure the machine: what two runs of one command must agree on."""
    rows = [{k: v for k, v in row.items() if k not in TIMING_FIELDS} for row in metrics["epochs"]]
    return {**metrics, "epochs": rows}
