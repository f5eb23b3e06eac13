"""Provenance records: for every file the pipeline writes, what made it.

A reviewer who asks "where does 92.77 come from?" must get, in one command, the chain from that number to the
training runs, their inputs, config, code version and hardware, with every checksum verified (``pblf audit``).
So every ``pblf`` command that writes files also writes a record: its inputs and outputs with sha256 (from the I/O log
that :func:`pblf.core.files.track` keeps while the stage runs, so the record lists exactly what the stage read and
wrote), the config it read and its hash, the code version (git commit, dirty or not), package versions, Python, torch, CUDA/cuDNN, device,
host, SLURM job id, start and end time and the command line.

Records live in one store beside the results, ``<results>/provenance/<path of the output relative to results>.json``
(one per output file; an invocation with several outputs writes the same record under each), so that tables and
figures themselves stay free of timestamps and byte-identical across reruns. An output written outside the results
folder gets its record next to it, as ``<output>.prov.json``.

Every path in a record is relative to the results folder (version 2), so that a results folder copied anywhere, with
or without the checkout, audits the same, and so that the audit never has to follow a path out of it: a file read
from elsewhere is recorded by its absolute path, which the audit refuses. The one outside input a run needs, its
config files, is recorded by name and sha256 in the stage config's record (``config_files``), not as an input: the
stage config inside the results folder is what every stage reads. The data set is named by the split record's
checksums, which the audit recomputes under a data root the auditor gives.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pblf.core.config import config_hash
from pblf.core.files import IOLog, file_digest, read_json, write_json

RECORD_VERSION = 2
STORE = "provenance"
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "seaborn", "snakemake",
            "snakemake-executor-plugin-slurm", "pyyaml", "jsonschema", "tabulate")
REPO = Path(__file__).resolve().parents[3]


@dataclass
class Outcome:
    """What a stage tells the record besides the files it read and wrote: the config subset it ran with, extra
    fields for the record, the device it ran on, and the command's exit status (records are written only on 0)."""

    config: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    exit_code: int = 0


#: The modules whose code decides what a training run computes: a change to any of them must retrain.
#: (Modules by their path in the package, without ``.py``.)
TRAINING_CODE: tuple[str, ...] = (
    "training/train", "training/schedule", "training/fidelity", "training/pack", "training/fused", "training/hypergrad",
    "training/model", "training/wrn", "training/metanet", "training/data", "core/candidate", "core/seeding",
)
#: The package's folder, which the module paths of TRAINING_CODE are relative to.
PACKAGE = Path(__file__).resolve().parents[1]


def code_fingerprint(modules: Sequence[str] = TRAINING_CODE) -> str:
    """A sha256 of what the code of ``modules`` (of this package) does: each module's syntax tree without
    docstrings, so that a comment or docstring edit leaves it unchanged and any change to the code does not.

    The training rule passes it as a Snakemake param (a change reruns every training job) and each run's
    checkpoint records it (a resumed run must continue the same code), without importing torch to compute it."""
    digest = hashlib.sha256()
    for name in modules:
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
        digest.update(name.encode() + b"\0" + ast.dump(tree).encode() + b"\0")
    return digest.hexdigest()


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def record_path(output: str | Path, results: str | Path = "results") -> Path:
    """Where the record of ``output`` lives (see the module docstring)."""
    output, results = Path(output), Path(results)
    try:
        relative = output.resolve().relative_to(results.resolve())
    except ValueError:
        return output.with_name(output.name + ".prov.json")
    return results / STORE / relative.parent / (relative.name + ".json")


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def code_version(inputs: Sequence[Path] = ()) -> dict[str, Any]:
    """The git commit of the checkout pblf runs from, whether its tracked files differ from that commit, and which
    of ``inputs`` lie in the checkout but are not tracked by git (an untracked preset leaves the tree "clean", yet
    nobody else has it)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    inside = []
    for path in inputs:
        try:
            inside.append(str(path.resolve().relative_to(REPO)))
        except ValueError:
            continue
    untracked = []
    if inside and commit is not None:  # untracked and not ignored (results/ is ignored: it is made, not given)
        untracked = sorted(set((_git("ls-files", "--others", "--exclude-standard", "--", *inside) or "").splitlines()))
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status),
            "untracked_inputs": untracked}


#: The processor features that decide which CPU kernels PyTorch, oneDNN and BLAS run (x86's vector extensions; on
#: other processors none are listed). Two processors with the same model name share them; two without it may not,
#: and the same float operations then round differently.
KERNEL_FLAGS: tuple[str, ...] = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512dq",
                                 "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
                                 "amx_bf16", "amx_int8")
#: What a run's numbers depend on beyond the code and its inputs (:func:`stack`): the same values, bit-equal results.
STACK_KEYS: tuple[str, ...] = ("processor", "cpu_flags", "torch", "torch_cuda_build", "cudnn", "gpu")


def environment(device: str | None = None) -> dict[str, Any]:
    """Software and hardware: enough to tell two runs' environments apart, and whether they could give the same bits
    (:func:`stack`)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "packages": versions,
        "processor": cpu_name(),
        "cpu_flags": cpu_flags(),
    }
    if "torch" in sys.modules:
        import torch

        env["torch"] = torch.__version__
        # the CUDA version torch was built with, whether or not this machine has a GPU; the GPU's own is below
        env["torch_cuda_build"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        env["cuda_available"] = torch.cuda.is_available()
        env["threads"] = torch.get_num_threads()
        env["cpu_capability"] = torch.backends.cpu.get_cpu_capability()  # the kernels torch chose: AVX512, AVX2, ...
        if device == "cuda" and torch.cuda.is_available():
            env["device_name"] = torch.cuda.get_device_name()
            major, minor = torch.cuda.get_device_capability()
            env["gpu_compute_capability"] = f"{major}.{minor}"
    env.setdefault("device_name", env["processor"])
    env["device"] = device
    return env


def stack(env: dict[str, Any]) -> dict[str, Any]:
    """The part of a record's ``environment`` that decides a training run's bits, given its code and inputs and
    the machine: the processor and the kernel-selecting features it has, torch and the CUDA and cuDNN it was built
    with, and the GPU for a run on one. A key a record does not have (an older record) is None. The thread count
    also matters on a CPU (a reduction split across threads adds in another order) and is recorded, but it is the
    job's setting (the training rules export OMP_NUM_THREADS), not the machine's: the count of a process auditing
    says nothing about how a retrain would run, so it is not compared."""
    on_gpu = env.get("device") == "cuda"
    return {"processor": env.get("processor"), "cpu_flags": env.get("cpu_flags"), "torch": env.get("torch"),
            "torch_cuda_build": env.get("torch_cuda_build") if on_gpu else None,
            "cudnn": env.get("cudnn") if on_gpu else None, "gpu": env.get("device_name") if on_gpu else None}


def cpu_name() -> str:
    """This machine's processor model as the kernel names it (``/proc/cpuinfo``), or Python's guess elsewhere."""
    model = _cpuinfo("model name")
    return model if model is not None else platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The :data:`KERNEL_FLAGS` this processor has (``/proc/cpuinfo``; none known elsewhere), in that order."""
    present = set((_cpuinfo("flags") or "").split())
    return [flag for flag in KERNEL_FLAGS if flag in present]


def _cpuinfo(key: str) -> str | None:
    """The first value of ``key`` in ``/proc/cpuinfo`` (Linux), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == key:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_name(device: str) -> str:
    """What a run was measured on: the GPU's name for ``cuda``, else the processor's (torch must be imported)."""
    import torch

    return torch.cuda.get_device_name() if device == "cuda" else cpu_name()


def file_entry(path: str | Path, results: str | Path) -> dict[str, str]:
    """A file as a record names it: its path relative to the results folder ``results`` (its absolute path if it
    lies elsewhere, which the audit refuses to follow) and its sha256."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot record {path}: it does not exist")
    try:
        name = path.resolve().relative_to(Path(results).resolve()).as_posix()
    except ValueError:
        name = str(path.resolve())
    return {"path": name, "sha256": file_digest(path)}


def write_records(io: IOLog, outcome: Outcome, stage: str, argv: Sequence[str], started: str,
                  results: str | Path = "results") -> list[Path]:
    """Write one record per output in ``io`` (what ``stage`` wrote, run as ``pblf ARGV``); returns the record
    paths."""
    outputs = sorted({str(p) for p in io.outputs})
    record = {
        "version": RECORD_VERSION,
        "stage": stage,
        "command": ["pblf", *argv],
        "cwd": os.getcwd(),
        "inputs": [file_entry(p, results) for p in sorted({str(p) for p in io.inputs})],
        "outputs": [file_entry(p, results) for p in outputs],
        "config": outcome.config,
        "config_sha256": None if outcome.config is None else config_hash(outcome.config),
        "code": code_version(list(io.inputs)),
        "environment": environment(outcome.device),
        "started": started,
        "ended": now(),
        **outcome.extra,
    }
    return [write_json(record, record_path(path, results)) for path in outputs]


def read_record(output: str | Path, results: str | Path = "results") -> dict[str, Any]:
    path = record_path(output, results)
    if not path.is_file():
        raise FileNotFoundError(f"no provenance record for {output} (expected {path})")
    return read_json(path)


def write_stage_config(subset: dict[str, Any], out: str | Path, configfiles: Sequence[str | Path],
                       log_path: str | Path) -> Path:
    """Snakemake's ``stage_config`` rule: write a stage's config subset as canonical JSON, with its record, which
    names the config files Snakemake merged (``config_files``: each as given, its sha256, and whether git tracks it)
    without making them inputs: they lie outside the results folder, which the audit does not leave."""
    from pblf.core.files import track, write_text

    started = now()
    untracked = set(code_version([Path(f) for f in configfiles])["untracked_inputs"])
    files = [{"path": str(f), "sha256": file_digest(f),
              "untracked": os.path.relpath(Path(f).resolve(), REPO) in untracked} for f in configfiles]
    with track() as io:
        path = write_json(subset, out)
    write_records(io, Outcome(config=subset, extra={"config_files": files}), "stage_config",
                  ["(snakemake stage_config)", str(path)], started, Path(out).parents[1])
    write_text(f"wrote {path} from {', '.join(map(str, configfiles))}\n", log_path)
    return path
