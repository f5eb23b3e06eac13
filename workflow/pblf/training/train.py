"""Training: one candidate, one budget, one seed per run (the inner loop of Algorithm 2), one or several runs per job.

Every search evaluation, repeat, convergence and generalisation run is trained here. Runs of one seed and budget
can train together as a *pack* (:mod:`pblf.training.pack`): they start from the same weights and see the same batches
(common random numbers), so one job steps them side by side, each with its own checkpoint and metrics; a pack of one
is a single run. Training is built to be

* exact: phi = (0, 0, 0, 1) is standard backpropagation, bit for bit;
* deterministic, with common random numbers: every random stream (initial weights, batch order, augmentation) is
  seeded from (base seed, seed) and never from the candidate, so every candidate and method trained with seed s
  starts from the same weights and sees the same batches: differences between candidates are differences of phi,
  not of luck, and the comparison of methods is paired by seed. The same command gives the same ``metrics.json``
  (timing fields aside);
* resumable: each run writes a checkpoint atomically after every epoch (and when SLURM's SIGTERM/SIGUSR1 arrives, in
  the middle of one); rerunning the same command after any kill continues and ends with the same metrics as an
  uninterrupted run;
* one process at a time: a run folder is locked while it trains (:func:`pblf.core.files.folder_lock`), and a second
  command on it refuses at once, naming the first;
* tolerant of bad candidates: a NaN or infinite loss ends the run with status ``diverged`` and exit status 0, so the
  search records the candidate and goes on;
* fast on a GPU: data resident on the device, whole-batch augmentation, channels_last, optional bf16 autocast and
  torch.compile, no DataLoader workers.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import math
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from pblf.core.candidate import Candidate, read_candidate, read_proposal
from pblf.core.config import check_device, compile_mode, load_config, stage_config
from pblf.core.errors import EXIT_PREEMPTED, PREEMPTION_SIGNALS, ConfigError, Preempted
from pblf.core.files import folder_lock, note_output, read_bytes, read_json, write_bytes, write_json
from pblf.core.layout import CHECKPOINT, METRICS, RunId
from pblf.core.provenance import Outcome, code_fingerprint, machine_name
from pblf.core.seeding import derive_seed
from pblf.training.data import Splits, load_splits, make_split, read_split
from pblf.training.fidelity import Fidelity
from pblf.training.hypergrad import HypergradientUpdater, ValidationStream, learning_start
from pblf.training.model import build_model
from pblf.training.pack import Pack, make_pack, sgd_options
from pblf.training.schedule import learning_rate

log = logging.getLogger(__name__)

#: Names the way random numbers are drawn; a checkpoint written under another scheme is stale.
SEEDING = "common random numbers: (base seed, seed, stream)"
#: Fields of an epoch row that measure the machine, not the training; determinism checks ignore them (and the run's
#: ``measured_on``, the machine they were measured on).
TIMING_FIELDS = ("seconds", "images_per_second")


# ---------------------------------------------------------------------------------------------------- set-up


def resolve_device(name: str) -> torch.device:
    """auto picks CUDA when torch sees a GPU; cuda without one is an error rather than a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_device({"device": name})
    return torch.device(name)


#: A CPU epoch longer than this makes ``device: auto`` without a GPU worth a warning before the first job.
CPU_EPOCH_WARNING_SECONDS = 60.0


def cpu_fallback_warning(cfg: dict[str, Any], steps: int = 2) -> str | None:
    """What to tell the user when ``device: auto`` finds no GPU and training would run on the CPU for long: the
    seconds of a training step of the configured network, measured here, and the minutes of an epoch they imply.
    None when there is a GPU, the device is chosen explicitly, or an epoch is short."""
    from pblf.training.data import IMAGE_SHAPES, train_size

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


def set_determinism(enabled: bool, compiled: bool = True) -> None:
    """Deterministic algorithms everywhere (cuBLAS needs its workspace setting before the first CUDA call).

    ``torch.use_deterministic_algorithms`` also sets Inductor's flag, and importing Inductor for it costs ~2.7 s of a
    job's start-up (half of it on a CPU; benchmarks/bench_startup.py): an eager run (``compiled`` false) sets only
    the flag eager kernels read."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if compiled:
        torch.use_deterministic_algorithms(enabled)
    else:
        torch._C._set_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


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


# ------------------------------------------------------------------------------------------------- checkpoints


def run_fingerprint(cfg: dict[str, Any], split: dict[str, Any], candidate: Candidate, budget: int, seed: int,
                    learn: dict[str, Any] | None = None) -> str:
    """What a checkpoint belongs to (the config, data, candidate, budget, seed, PBLF-HG's settings when it learns,
    and the training code); a checkpoint with another fingerprint is stale and ignored."""
    keys = {k: cfg[k] for k in ("seed", "data", "model", "train", "deterministic")}
    blob = json.dumps(
        [keys, split["checksums"], split["validation_indices"][:50], candidate.to_dict(), budget, seed, SEEDING,
         code_fingerprint(), *([learn] if learn is not None else [])],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def save_checkpoint(path: Path, model_state: dict[str, torch.Tensor], optimizer_state: dict[str, Any],
                    state: TrainState, generator: torch.Generator, fingerprint: str,
                    hypergrad: dict[str, Any] | None = None) -> None:
    """Write to a temporary file, fsync, then rename: a kill at any moment leaves the old or the new checkpoint.
    ``hypergrad`` is a learning run's :meth:`pblf.training.hypergrad.HypergradientUpdater.state_dict`."""
    payload = {
        "fingerprint": fingerprint,
        "model": model_state,
        "optimizer": optimizer_state,
        "scheduler": {"epoch": state.epoch},
        "epoch": state.epoch,
        "stats": vars(state.stats),
        "epoch_rng": state.epoch_rng,
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "history": state.history,
        **({"hypergrad": hypergrad} if hypergrad is not None else {}),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes(buffer.getvalue(), path)


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


def load_checkpoint(path: Path, model: torch.nn.Module, fingerprint: str) -> dict[str, Any] | None:
    """Restore the weights of ``model`` from ``path`` and return the rest of the checkpoint (optimiser state, train
    state, random states); None when there is none, it belongs to another run, or it is damaged (then it is set
    aside, and ``model`` is left as it was: its weights are loaded into a copy first)."""
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
        TrainState(payload["epoch"], EpochStats(**payload["stats"]), payload["epoch_rng"], payload["history"])
        torch.Generator().set_state(payload["generator"])
        trial = copy.deepcopy(model)
        trial.load_state_dict(payload["model"])
        torch.optim.SGD(trial.parameters(), lr=0.0).load_state_dict(payload["optimizer"])
    except Exception as err:  # noqa: BLE001 - the right fingerprint but a damaged payload
        set_aside(path, err)
        return None
    model.load_state_dict(payload["model"])
    return payload


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


def _percent(value: float) -> float:
    return round(value, 4)


def run_config(cfg: dict[str, Any], run: RunId) -> dict[str, Any]:
    """The config a run trains with: a generalisation run's own batch size, and its learning rate kept or scaled in
    proportion to it (the linear scaling rule, Goyal et al. 2017); every other run trains with ``cfg`` as it is.

    A rate scaled up by k starts at the configured one and reaches k times it after ``generalisation.warmup`` of the
    budget (Goyal et al.'s gradual warm-up): without it a large rate can diverge in its first steps, for Standard as
    much as for a found equation, and the table could not tell the two apart."""
    if run.batch_size is None:
        return cfg
    train = {**cfg["train"], "batch_size": run.batch_size}
    scale = run.batch_size / cfg["train"]["batch_size"]
    if run.lr_scaling == "linear":
        train["lr"] = cfg["train"]["lr"] * scale
        if scale > 1 and cfg["generalisation"]["warmup"] > 0:
            train["gradual_warmup"] = {"fraction": cfg["generalisation"]["warmup"], "start_factor": 1 / scale}
    return {**cfg, "train": train}


def initial_model(cfg: dict[str, Any], candidate: Candidate, seed: int, num_classes: int,
                  in_channels: int) -> torch.nn.Module:
    """The target network with ``candidate``'s backward pass and the initial weights of ``seed``: the same weights
    for every candidate (the op has no parameters and phi is not in the state dict), on the CPU."""
    torch.manual_seed(derive_seed(cfg["seed"], seed, "init"))
    return build_model(cfg["model"], num_classes, in_channels, candidate)


@dataclass(frozen=True)
class RunSpec:
    """One run to train: who it is, its candidate, where it writes, how far it trains, which run it continues."""

    run: RunId
    candidate: Candidate
    out_dir: Path
    fidelity: Fidelity = Fidelity()
    resume_from: Path | None = None
    #: PBLF-HG: learn phi and the mode while training, with these settings (a proposal entry's ``learn``)
    learn: dict[str, Any] | None = None


@dataclass
class _Member:
    """A run being trained in a pack: its spec, progress and metrics so far."""

    spec: RunSpec
    fingerprint: str
    state: TrainState
    result: dict[str, Any]
    model: torch.nn.Module
    payload: dict[str, Any] | None
    updater: HypergradientUpdater | None = None

    @property
    def checkpoint(self) -> Path:
        return self.spec.out_dir / CHECKPOINT

    @property
    def resumed_at(self) -> tuple[int, int, bytes]:
        """Where it stands: runs that stand at the same (epoch, step, batch random state) can train as one pack."""
        generator = self.payload["generator"] if self.payload else None
        return (self.state.epoch, self.state.stats.step, b"" if generator is None else bytes(generator.numpy()))


def train_candidate(cfg: dict[str, Any], candidate: Candidate, run: RunId, out_dir: str | Path,
                    split: dict[str, Any] | None = None, fidelity: Fidelity = Fidelity(),
                    resume_from: Path | None = None) -> dict[str, Any]:
    """Train one run (a pack of one, see :func:`train_pack`) and return its metrics."""
    return train_pack(cfg, [RunSpec(run, candidate, Path(out_dir), fidelity, resume_from)], split)[0]


def train_pack(cfg: dict[str, Any], specs: list[RunSpec], split: dict[str, Any] | None = None,
               kind: str = "exact", split_folder: Path | None = None) -> list[dict[str, Any]]:
    """Train the runs of ``specs`` together and return their metrics, each also written to its ``metrics.json``.

    The runs must share the seed, the budget and the training config (so the same initial weights, batches and
    learning rates); each follows its own candidate and fidelity, writes its own checkpoint every epoch and resumes
    on its own after a kill. ``kind`` "exact" steps them one after another (each run bit for bit what it is alone),
    "fused" as one network (:class:`pblf.training.pack.FusedPack`: faster on a GPU, equal up to rounding). Runs that a kill
    left at different points (an earlier pack, a run already finished) train in groups of runs that stand at the same
    point. The data come from the arrays of the split record read from ``split_folder`` (the data stage's), or from
    the data set itself. ``cfg`` is a validated config (only seed, device, deterministic, data, model and train are
    read). Every run folder is locked first (:func:`_holding`): an OutputError, before any work, when another
    process trains one of them. Raises :class:`Preempted` after saving every run when a preemption signal arrives."""
    configs = {json.dumps(run_config(cfg, spec.run)["train"], sort_keys=True) for spec in specs}
    if len({(spec.run.seed, spec.run.budget) for spec in specs}) != 1 or len(configs) != 1:
        raise ValueError("the runs of a pack must share their seed, budget and training config")
    with _holding([spec.out_dir for spec in specs]):
        cfg = run_config(cfg, specs[0].run)
        split = split or make_split(cfg["data"], cfg["seed"])
        set_determinism(cfg["deterministic"], compiled=cfg["train"]["compile"])
        device = resolve_device(cfg["device"])
        splits = load_splits(cfg["data"], split, device, split_folder)
        members = [_member(cfg, spec, split, splits) for spec in specs]
        with _StopFlag() as stop:
            groups: dict[tuple[Any, ...], list[_Member]] = {}
            for number, member in enumerate(members):  # a learning run trains alone: its op is not a pack's
                groups.setdefault((*member.resumed_at, member.spec.learn and number), []).append(member)
            for group in groups.values():
                _train_group(cfg, group, splits, device, kind, stop)
    return [member.result for member in members]


@contextlib.contextmanager
def _holding(folders: list[Path]) -> Iterator[None]:
    """Lock every run folder of a pack (creating it) until training ends. The folders are taken in one fixed order,
    so that of two packs that share a run one trains and the other refuses, rather than each taking a part and
    both refusing."""
    with contextlib.ExitStack() as held:
        for folder in sorted(set(folders)):
            held.enter_context(folder_lock(folder, "trained"))
        yield


def _member(cfg: dict[str, Any], spec: RunSpec, split: dict[str, Any], splits: Splits) -> _Member:
    """Prepare one run (its folder exists and is locked): the checkpoint it continues (its own, or a promoted run's
    predecessor's), its initial weights (the seed's, for every candidate) and what its checkpoint holds."""
    out_dir = spec.out_dir
    checkpoint = out_dir / CHECKPOINT
    promoted = spec.resume_from and {"run": str(spec.resume_from),
                                     "epoch": len(read_json(Path(spec.resume_from) / METRICS)["epochs"])}
    if spec.resume_from and not checkpoint.exists():
        write_bytes(read_bytes(Path(spec.resume_from) / CHECKPOINT), checkpoint)
    # A learning run starts from Standard's sigma' == 1 at a phi where the hypergradient is alive (pblf.training.hypergrad)
    start = learning_start(cfg["model"]["metanet_activation"]) if spec.learn else spec.candidate
    model = initial_model(cfg, start, spec.run.seed, splits.num_classes, splits.in_channels)
    fingerprint = run_fingerprint(cfg, split, spec.candidate, spec.run.budget, spec.run.seed, spec.learn)
    payload = load_checkpoint(checkpoint, model, fingerprint)
    state = TrainState() if payload is None else TrainState(
        payload["epoch"], EpochStats(**payload["stats"]), payload["epoch_rng"], payload["history"])
    if state.epoch or state.stats.step:
        log.info("resuming from %s at epoch %d, step %d", checkpoint, state.epoch + 1, state.stats.step)
        note_output(checkpoint)  # the run's, even when an earlier try wrote it all (a rerun for its lost records)
    result = {
        "run": spec.run.to_dict(),
        "candidate": spec.candidate.to_dict(),
        "activation": cfg["model"]["metanet_activation"],
        "training_code": code_fingerprint(),
        "measured_on": machine_name(resolve_device(cfg["device"]).type),
        "status": "ok",
        "epochs": state.history,
        **({"resumed_from": promoted} if promoted else {}),
    }
    return _Member(spec, fingerprint, state, result, model, payload)


def _train_group(cfg: dict[str, Any], group: list[_Member], splits: Splits, device: torch.device, kind: str,
                 stop: "_StopFlag") -> None:
    """Train the runs of ``group`` (standing at the same point) to their end, writing each one's metrics."""
    train_cfg, budget = cfg["train"], group[0].spec.run.budget
    on_cuda = device.type == "cuda"
    generator = torch.Generator().manual_seed(derive_seed(cfg["seed"], group[0].spec.run.seed, "batches"))
    resumed = group[0].payload
    if resumed is not None:
        generator.set_state(resumed["generator"])
        torch.set_rng_state(resumed["torch_rng"])
        if resumed["cuda_rng"]:
            torch.cuda.set_rng_state_all(resumed["cuda_rng"])
    autocast = {"device_type": device.type, "dtype": torch.bfloat16, "enabled": on_cuda and train_cfg["bf16"]}
    for member in group:
        member.model.to(device)
        if member.spec.learn:
            member.updater = _updater(cfg, member, splits, device)
    pack = make_pack(kind, [member.model for member in group],
                     None if resumed is None else [member.payload["optimizer"] for member in group],
                     channels_last=on_cuda and train_cfg["channels_last"], compile=compile_mode(train_cfg),
                     **sgd_options(train_cfg))
    live = list(group)
    log.info("training %d run(s) of %d epochs from epoch %d, step %d (%s)", len(live), budget,
             live[0].state.epoch + 1, live[0].state.stats.step, "a pack, " + kind if len(live) > 1 else "alone")
    while True:
        # before each epoch, so that a run killed after its stopping epoch stops again on resume
        done = [member for member in live if member.spec.fidelity.stops(
            member.state.epoch, [row["val_top1"] for row in member.state.history], budget)]
        for member in done:
            _finish(member, budget, pack, live.index(member), splits, train_cfg, autocast)
        if done:
            pack, live = _without(pack, live, done)
        if not live:
            return
        learner = live[0].updater if len(live) == 1 else None
        hook = (lambda images, labels, lr: learner.before_step(live[0].model, images, labels, lr)) if learner \
            else None
        diverged = _train_epoch(pack, [member.state for member in live], splits, train_cfg, budget, generator,
                                autocast, stop, lambda: _save(pack, live, generator), hook)
        for k, step in diverged:
            live[k].result["status"] = "diverged"
            live[k].result["diverged_at"] = {"epoch": live[k].state.epoch + 1, "step": step}
            _finish(live[k], budget, pack, k, splits, train_cfg, autocast)
        if diverged:
            pack, live = _without(pack, live, [live[k] for k, _ in diverged])
        if not live:
            return
        _save(pack, live, generator)


def _updater(cfg: dict[str, Any], member: _Member, splits: Splits, device: torch.device) -> HypergradientUpdater:
    """A learning run's hypergradient updater, attached to its model (before any torch.compile) and, when resuming,
    restored from its checkpoint. Its validation batches are seeded from the run's seed, like every stream."""
    learn, seed = member.spec.learn, member.spec.run.seed
    validation = ValidationStream(splits.validation, learn["val_batch_size"],
                                  derive_seed(cfg["seed"], seed, "hypergradient"))
    updater = HypergradientUpdater(
        learning_start(cfg["model"]["metanet_activation"]), validation, hyper_lr=learn["hyper_lr"],
        interval=learn["interval"], bound=learn["phi_bound"], activation=cfg["model"]["metanet_activation"],
        gate_init=learn["gate_init"], device=device)
    updater.attach(member.model)
    if member.payload is not None:
        updater.load_state_dict(member.payload["hypergrad"])
    return updater


def _save(pack: Pack, live: list[_Member], generator: torch.Generator) -> None:
    for k, member in enumerate(live):
        save_checkpoint(member.checkpoint, pack.model_state_dict(k), pack.optimizer_state_dict(k), member.state,
                        generator, member.fingerprint, member.updater.state_dict() if member.updater else None)


def _without(pack: Pack, live: list[_Member], gone: list[_Member]) -> tuple[Pack, list[_Member]]:
    """The pack without the runs that are done (they cost no compute from here on)."""
    keep = [k for k, member in enumerate(live) if member not in gone]
    return (pack.select(keep) if keep else pack), [live[k] for k in keep]


def _finish(member: _Member, budget: int, pack: Pack, k: int, splits: Splits, train_cfg: dict[str, Any],
            autocast: dict[str, Any]) -> None:
    """Write a run's metrics: its last epoch's accuracies, or, when it diverged, those of its network as it was."""
    result, state = member.result, member.state
    if result["status"] == "ok" and state.epoch < budget:
        result["status"], result["stopped_at"] = "stopped", state.epoch
    last = state.history[-1] if state.history else None
    if result["status"] in ("ok", "stopped") and last is not None:
        result["val_top1"], result["test_top1"] = last["val_top1"], last["test_top1"]
    else:
        single = pack.select([k])
        eval_bs = train_cfg["eval_batch_size"]
        result["val_top1"] = _percent(single.accuracy(splits.validation.batches(eval_bs), autocast)[0])
        result["test_top1"] = _percent(single.accuracy(splits.test.batches(eval_bs), autocast)[0])
        log.warning("candidate %s diverged at epoch %d: val %.2f%%, test %.2f%%", member.spec.candidate.to_json(),
                    state.epoch + 1, result["val_top1"], result["test_top1"])
    if member.updater is not None:
        updater = member.updater
        result["learned"] = updater.candidate().to_dict()
        result["hypergrad"] = {"start": updater.start.to_dict(), "settings": member.spec.learn,
                               "hyper_steps": updater.hyper_steps, "trajectory": updater.trajectory}
        log.info("learned %s after %d hypergradient steps", updater.candidate().to_json(), updater.hyper_steps)
    write_json(result, member.spec.out_dir / METRICS)


def _spec(run: RunId, out: Path, candidate: str | None, candidate_file: Path | None,
          resume_from: Path | None) -> RunSpec:
    """A run to train from its identity and where its candidate is: JSON, or a file: the proposal entry
    ``run.index`` for a search run (with the fidelity it asks for), otherwise a selection record."""
    if (candidate is None) == (candidate_file is None):
        raise ConfigError("give the candidate either as JSON (--candidate) or as a file (--candidate-file)")
    if candidate_file is not None and run.kind == "search":
        chosen = read_candidate(candidate_file, run.index)  # refuses an index the proposal does not have
        entry = read_proposal(candidate_file)[run.index]
        return RunSpec(run, chosen, Path(out), Fidelity.of_entry(entry), resume_from, entry.get("learn"))
    if candidate_file is not None:
        return RunSpec(run, read_candidate(candidate_file), Path(out), resume_from=resume_from)
    try:
        return RunSpec(run, Candidate.from_json(candidate), Path(out), resume_from=resume_from)
    except ValueError as err:
        raise ConfigError(f"--candidate {candidate}: {err}") from None


def pack_kind(cfg: dict[str, Any]) -> str:
    """``resources.pack``: auto trains a pack fused on CUDA and exactly on the CPU (where fusion measured slower)."""
    kind = cfg["resources"]["pack"]
    return ("fused" if resolve_device(cfg["device"]).type == "cuda" else "exact") if kind == "auto" else kind


def _run_pack(cfg: dict[str, Any], specs: list[RunSpec], split: Path | None, kind: str) -> Outcome:
    """Train ``specs``, log each result, and tell the CLI what to record (or that a preemption stopped it)."""
    try:
        results = train_pack(cfg, specs, read_split(split) if split else None, kind, split.parent if split else None)
    except Preempted as err:
        log.warning("preempted (%s); the checkpoints in %s hold the progress, rerun the same command to resume", err,
                    ", ".join(str(spec.out_dir) for spec in specs))
        return Outcome(exit_code=EXIT_PREEMPTED)
    for spec, result in zip(specs, results, strict=True):
        log.info("%s: val %.2f%%, test %.2f%% -> %s", result["status"], result["val_top1"], result["test_top1"],
                 spec.out_dir / METRICS)
    runs = [{"run": spec.run.to_dict(), "status": result["status"]} for spec, result in zip(specs, results)]
    extra = {"run": runs[0]["run"], "status": runs[0]["status"]} if len(specs) == 1 else \
        {"pack": {"kind": kind, "runs": runs}}
    return Outcome(stage_config(cfg, "train"), extra, device=resolve_device(cfg["device"]).type)


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
    cfg = load_config(config)
    return _run_pack(cfg, [_spec(run, out, candidate, candidate_file, resume_from)], split, "exact")


def stage_train_pack(config: list[Path], runs: str, split: Path | None = None, kind: str | None = None) -> Outcome:
    """``pblf train-pack``: train several runs of one seed and budget in one process (a pack, :func:`train_pack`).

    ``runs`` is a JSON list of ``{"run": identity, "candidate_file": path, "out": folder, "resume_from": folder or
    null}``; ``kind`` is exact or fused (default: the config's ``resources.pack``)."""
    cfg = load_config(config)
    try:
        entries = json.loads(runs)
        specs = [_spec(RunId.from_dict(entry["run"]), Path(entry["out"]), None, Path(entry["candidate_file"]),
                       Path(entry["resume_from"]) if entry.get("resume_from") else None) for entry in entries]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"--runs: not a list of runs ({err})") from None
    if not specs:
        raise ConfigError("--runs: no runs to train")
    return _run_pack(cfg, specs, split, kind or pack_kind(cfg))


def _train_epoch(pack: Pack, states: list[TrainState], splits: Splits, train_cfg: dict[str, Any], budget: int,
                 generator: torch.Generator, autocast: dict[str, Any], stop: "_StopFlag",
                 save: Any, before_step: Callable[[torch.Tensor, torch.Tensor, float], Any] | None = None
                 ) -> list[tuple[int, int]]:
    """One epoch of every run of ``pack`` (or the rest of one, after a mid-epoch resume): its steps, then the
    evaluation, then each live run's epoch row, logged. Returns (run, step) of the runs whose loss became non-finite
    (they were left as before that step). ``before_step(images, labels, lr)`` runs before each step (a learning
    run's hypergradient step)."""
    epoch, seen_before = states[0].epoch, states[0].stats.seen
    started = time.perf_counter()
    diverged = _steps(pack, states, splits, train_cfg, budget, generator, autocast, stop, save, before_step)
    if not any(pack.live):
        return diverged
    seconds = time.perf_counter() - started
    eval_bs = train_cfg["eval_batch_size"]
    val = pack.accuracy(splits.validation.batches(eval_bs), autocast)
    test = pack.accuracy(splits.test.batches(eval_bs), autocast)
    steps_per_epoch = math.ceil(len(splits.train) / train_cfg["batch_size"])
    lr = learning_rate(train_cfg, budget * steps_per_epoch, epoch * steps_per_epoch)  # the row's: at the start
    for k, state in enumerate(states):
        if pack.live[k]:
            row = epoch_row(state.stats, epoch + 1, lr, val[k], test[k], seconds / len(states),
                            (state.stats.seen - seen_before) / max(seconds, 1e-9))
            state.history.append(row)
            state.epoch += 1
            state.stats = EpochStats()
            log.info("epoch %d/%d lr %.4g | loss %.4f train %.2f%% val %.2f%% test %.2f%% | %.0f img/s, %.1f s, "
                     "~%s left" + (f" | run {k + 1} of a pack of {len(states)}" if len(states) > 1 else ""),
                     row["epoch"], budget, lr, row["train_loss"], row["train_top1"], row["val_top1"],
                     row["test_top1"], row["images_per_second"], seconds, _duration(seconds * (budget - state.epoch)))
    return diverged


def _steps(pack: Pack, states: list[TrainState], splits: Splits, train_cfg: dict[str, Any], budget: int,
           generator: torch.Generator, autocast: dict[str, Any], stop: "_StopFlag", save: Any,
           before_step: Callable[[torch.Tensor, torch.Tensor, float], Any] | None) -> list[tuple[int, int]]:
    """The training steps of one epoch (from the step a resumed epoch stopped at, its batches replayed from the
    epoch's random state), each run's running sums kept in its state; on a preemption signal, ``save()`` and raise
    :class:`Preempted`. Returns (run, step) of the runs that diverged; stops early once none is live."""
    stats = [state.stats for state in states]
    epoch, done_before = states[0].epoch, stats[0].step
    if done_before == 0:
        for state in states:
            state.epoch_rng = generator.get_state()
    else:
        generator.set_state(states[0].epoch_rng)  # replay this epoch's shuffle and augmentation from its start
    steps_per_epoch = math.ceil(len(splits.train) / train_cfg["batch_size"])
    diverged: list[tuple[int, int]] = []
    for step, (images, labels) in enumerate(splits.train.batches(train_cfg["batch_size"], generator, shuffle=True)):
        if step < done_before:
            continue
        step_lr = learning_rate(train_cfg, budget * steps_per_epoch, epoch * steps_per_epoch + step)
        pack.set_lr(step_lr)
        if images.device.type == "cuda" and train_cfg["channels_last"]:
            images = images.contiguous(memory_format=torch.channels_last)
        if before_step is not None:
            before_step(images, labels, step_lr)
        outcome = pack.step(images, labels, autocast)
        for k, run_stats in enumerate(stats):
            if k in outcome.diverged:
                diverged.append((k, run_stats.step))
            elif pack.live[k]:
                run_stats.add(outcome.losses[k], outcome.logits[:, k], labels)
        if not any(pack.live):
            return diverged
        if stop.signum is not None:
            save()
            raise Preempted(f"signal {signal.Signals(stop.signum).name} at epoch {epoch + 1}, step {step + 1}")
    return diverged


def epoch_row(stats: EpochStats, epoch: int, lr: float, val: float, test: float, seconds: float,
              images_per_second: float) -> dict[str, Any]:
    """A run's row for one epoch in ``metrics.json``: its schedule's rate at the epoch's start, the mean training
    loss and Top-1 of its steps, the accuracies after it, and its share of the epoch's seconds (the timing fields,
    :data:`TIMING_FIELDS`, are the only ones two runs of one command do not share)."""
    return {
        "epoch": epoch,
        "lr": round(lr, 12),
        "train_loss": round(stats.loss_sum / max(stats.seen, 1), 6),
        "train_top1": _percent(100.0 * stats.correct / max(stats.seen, 1)),
        "val_top1": _percent(val),
        "test_top1": _percent(test),
        "seconds": round(seconds, 3),
        "images_per_second": round(images_per_second, 1),
    }


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def without_timing(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` minus the fields that measure the machine: what two runs of one command must agree on."""
    rows = [{k: v for k, v in row.items() if k not in TIMING_FIELDS} for row in metrics["epochs"]]
    return {**{k: v for k, v in metrics.items() if k != "measured_on"}, "epochs": rows}
