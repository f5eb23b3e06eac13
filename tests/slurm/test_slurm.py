"""The workflow through a real SLURM cluster with the slurm/ profile, as users run it (`snakemake --profile slurm`).

Needs the single-node cluster of tests/slurm/cluster.sh (partition `gpu`, 2 fake GPUs, accounting on). Without it
the module is skipped, unless PBLF_REQUIRE_SLURM=1 (CI), which turns the skip into a failure.

One smoke run goes through SLURM with packing on (two runs per training job; every training job asks for a GPU; the
convergence runs are made long enough to be interrupted: one pack is cancelled with scancel, one gets the profile's
time-limit warning signal), while the same preset runs locally, unpacked, next to it for the reference trials.csv.
The tests then read Snakemake's log, sacct and the results. About 9 minutes on 2 cores (tests/slurm/README.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pblf import plan
from pblf.core.config import deep_merge, load_config, validate
from workflow_helpers import BIN, ROOT, copy_workflow, env

pytestmark = pytest.mark.slurm

CLUSTER_SH = ROOT / "tests" / "slurm" / "cluster.sh"
PROFILE = ROOT / "slurm"
PARTITION = "gpu"  # the test cluster's (only, and default) partition
ACCOUNT = "pblf"  # cluster.sh adds root to it
#: Long enough (~0.1-1 s an epoch here) that a convergence run can be caught between its epoch 2 and its end.
CONVERGENCE_EPOCHS = 120
#: Training runs per SLURM job: packing on, so the pack rules (train_<shape>) go through SLURM; the local reference
#: trains every run in a job of its own, which packs must equal (exact packs on the CPU).
RUNS_PER_JOB = 2
#: What a local test must change in the smoke preset, beside the profile's status-check delay and partition.
OVERRIDES = f"""\
# The local reference runs smoke.yaml alone: the same folder name, results/smoke, in its own working copy.
run_name: smoke
# smoke.yaml says gpu: 0 (CPU-only runs); here every training job asks SLURM for one (fake) GPU, for a pack of runs.
resources:
  gpu: 1
  runs_per_job: {RUNS_PER_JOB}
# Convergence runs long enough to be interrupted mid-run (trials.csv does not depend on them).
convergence:
  epochs: {CONVERGENCE_EPOCHS}
"""
SLURM_ARGS = ("--profile", "slurm", "--configfile", "presets/smoke.yaml", "slurm-test.yaml",
              "--slurm-init-seconds-before-status-checks", "2")
LOCAL_ARGS = ("results/smoke/tables/trials.csv", "--cores", "2", "--configfile", "presets/smoke.yaml")
TIMEOUT = 25 * 60  # only a hang gets near it


def _profile_signal() -> str:
    """The time-limit warning signal the profile asks SLURM for (--signal=[B:]NAME@SECONDS)."""
    match = re.search(r"--signal=(?:[A-Z]+:)?([A-Z0-9]+)@\d+", (PROFILE / "profile.yaml").read_text())
    assert match, "slurm/profile.yaml sets no --signal=NAME@SECONDS for the training jobs"
    return match.group(1)


#: run folder -> (scancel arguments, the state SLURM records for that attempt)
INTERRUPTIONS = {
    "convergence/Standard/s1": ((), "CANCELLED"),  # scancel: what a user or an admin does
    "convergence/PBLF-RS/s1": ((f"--signal={_profile_signal()}",), "FAILED"),  # the time-limit warning
}


@dataclass(frozen=True)
class PackJob:
    """The training job (a pack of runs) that trains one run folder, as the plugin and the workflow name it."""

    rule: str  # train_<shape>
    wildcards: str  # as the plugin writes them in its log path: the values, joined by "_"
    log: str  # the pack's own log (logs/smoke/runs/<its first run>.log), relative to the working directory


def pack_job(target: str) -> PackJob:
    """Find ``target``'s pack among the rule shapes the test's config implies (pblf.plan.pack_shapes)."""
    config = validate(deep_merge(load_config([ROOT / "config.yaml", ROOT / "presets/smoke.yaml"]),
                                 yaml.safe_load(OVERRIDES)))
    for shape in plan.pack_shapes(config):
        for member in shape.members:
            names = list(dict.fromkeys(re.findall(r"\{(\w+)\}", member)))
            regex = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(member))
            found = re.fullmatch(regex, target)
            if found and all(re.fullmatch(rx, found.group(key)) for key, rx in shape.constraints):
                first = shape.members[0].format(**found.groupdict())
                return PackJob(f"train_{shape.name}", "_".join(found.group(n) for n in names),
                               f"logs/smoke/runs/{first}.log")
    raise AssertionError(f"no pack trains {target}")


# ------------------------------------------------------------------------------------------------ the cluster


def _cluster_problem() -> str | None:
    if shutil.which("sinfo") is None:
        return "sinfo is not on PATH (slurm-client is not installed)"
    try:
        proc = subprocess.run(["bash", str(CLUSTER_SH), "status"], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "`bash tests/slurm/cluster.sh status` did not answer within 120 s"
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        return f"`bash tests/slurm/cluster.sh status` failed ({tail})"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster():
    problem = _cluster_problem()
    if problem:
        if os.environ.get("PBLF_REQUIRE_SLURM") == "1":
            pytest.fail(f"PBLF_REQUIRE_SLURM=1 but the local SLURM cluster is not usable: {problem}")
        pytest.skip(f"local SLURM cluster not up: {problem}; start it with `sudo bash tests/slurm/cluster.sh start`")


# ------------------------------------------------------------------------------------------------- the runs


@dataclass
class Submission:
    jobid: str  # SLURM's
    rule: str
    wildcards: str  # as the plugin writes them in its log path: run=search/b1/... -> search_b1_...


@dataclass
class Accounting:
    state: str
    tres: str
    account: str
    partition: str


@dataclass
class SlurmRun:
    work: Path
    reference: Path
    log: str
    run_id: str
    submissions: list[Submission]
    sacct: dict[str, Accounting]
    interrupted: dict[str, dict] = field(default_factory=dict)
    watcher_errors: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def attempts(self, rule: str, wildcards: str) -> list[str]:
        """SLURM job ids of every attempt of one job, in submission order."""
        return sorted((s.jobid for s in self.submissions if (s.rule, s.wildcards) == (rule, wildcards)), key=int)


SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
#: A log file Snakemake shows in its own log (snakemake.logging.show_logs): a header, the lines between two rulers.
SHOWN_LOG = re.compile(r"^Logfile \S+:\n(=+)\n.*?^\1$", re.M | re.S)
LOG_PATH = re.compile(r"/rule_([^/]+)/(?:([^/]+)/)?\d+\.log$")


def submissions(log: str) -> list[Submission]:
    found = []
    for jobid, path in SUBMITTED.findall(log):
        match = LOG_PATH.search(path)
        assert match, f"unexpected SLURM log path {path} (the plugin names them logs/slurm/rule_R/WILDCARDS/ID.log)"
        found.append(Submission(jobid, match.group(1), match.group(2) or ""))
    return found


def sacct(run_id: str, jobids: set[str]) -> dict[str, Accounting]:
    """sacct's record of every job of the run, once all of them have a final state (slurmdbd may lag a little)."""
    since = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    command = ["sacct", "-X", "-n", "-P", "-S", since, "--name", run_id,
               "-o", "JobID,State,AllocTRES,Account,Partition"]
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        rows = {jobid: Accounting(*fields)
                for jobid, *fields in (line.split("|") for line in out.splitlines() if line)}
        pending = [j for j in jobids if j not in rows or rows[j].state in ("PENDING", "RUNNING", "REQUEUED")]
        if not pending or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def interrupt(work: Path, log_file: Path, proc: subprocess.Popen, run: SlurmRun) -> None:
    """Watch the SLURM run; interrupt each of INTERRUPTIONS' training runs once it has finished its second epoch."""
    try:
        _interrupt(work, log_file, proc, run)
    except Exception as err:  # a thread's exception would vanish: hand it to the tests
        run.watcher_errors.append(f"watcher failed: {err!r}")


def _interrupt(work: Path, log_file: Path, proc: subprocess.Popen, run: SlurmRun) -> None:
    todo = dict(INTERRUPTIONS)
    while todo and proc.poll() is None:
        text = log_file.read_text(errors="replace")
        for target, (scancel_args, _) in list(todo.items()):
            job = pack_job(target)
            jobids = [s.jobid for s in submissions(text) if (s.rule, s.wildcards) == (job.rule, job.wildcards)]
            if not jobids:
                continue
            if (work / "results/smoke/runs" / target / "metrics.json").exists():
                run.watcher_errors.append(f"{target} finished before it could be interrupted")
                del todo[target]
                continue
            train_log = work / job.log
            epochs = re.findall(r"epoch (\d+)/", train_log.read_text()) if train_log.exists() else []
            if epochs and int(epochs[-1]) >= 2:
                command = ["scancel", *scancel_args, jobids[0]]
                subprocess.run(command, check=True, timeout=60)
                run.interrupted[target] = {"jobid": jobids[0], "epoch": int(epochs[-1]), "command": command}
                del todo[target]
        time.sleep(0.2)
    run.watcher_errors += [f"{target} was never interrupted (Snakemake ended first)" for target in todo]


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory) -> SlurmRun:
    """The smoke preset through SLURM, with the local reference run of the same preset beside it."""
    work = copy_workflow(tmp_path_factory.mktemp("slurm") / "wf")
    shutil.copytree(PROFILE, work / "slurm")
    (work / "slurm-test.yaml").write_text(OVERRIDES)
    reference = copy_workflow(tmp_path_factory.mktemp("local") / "wf")
    slurm_env = {**env(), "PBLF_SLURM_PARTITION": PARTITION, "PBLF_SLURM_ACCOUNT": ACCOUNT}

    started = time.monotonic()
    local_out = (reference / "snakemake.out").open("w")
    local = subprocess.Popen([str(BIN / "snakemake"), *LOCAL_ARGS], cwd=reference, env=env(), stdout=local_out,
                             stderr=subprocess.STDOUT, start_new_session=True)
    log_file = work / "snakemake.out"
    with log_file.open("w") as out:
        proc = subprocess.Popen([str(BIN / "snakemake"), *SLURM_ARGS], cwd=work, env=slurm_env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    run = SlurmRun(work, reference, "", "", [], {})
    watcher = threading.Thread(target=interrupt, args=(work, log_file, proc, run), daemon=True)
    watcher.start()
    threading.Thread(target=lambda: (local.wait(), run.seconds.setdefault("local", time.monotonic() - started)),
                     daemon=True).start()
    local_rc = None
    try:
        rc = proc.wait(timeout=TIMEOUT)
        run.seconds["slurm"] = time.monotonic() - started
        if rc == 0:
            local_rc = local.wait(timeout=max(60.0, TIMEOUT - (time.monotonic() - started)))
    finally:
        for p in (proc, local):  # only after a timeout: stop what this fixture started (its own process groups)
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)  # Snakemake cancels its SLURM jobs on SIGINT
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        local_out.close()
        watcher.join(timeout=10)
        run.log = log_file.read_text(errors="replace")
        if match := re.search(r"SLURM run ID: (\S+)", run.log):
            run.run_id = match.group(1)
            if proc.returncode != 0:  # jobs left behind by a failed or killed run
                subprocess.run(["scancel", "--name", run.run_id], check=False)
    assert rc == 0, f"snakemake {' '.join(SLURM_ARGS)} failed ({rc}):\n{run.log[-6000:]}"
    assert local_rc == 0, f"local reference run failed:\n{(reference / 'snakemake.out').read_text()[-6000:]}"
    assert run.run_id, "no 'SLURM run ID' in Snakemake's log"
    run.submissions = submissions(run.log)
    run.sacct = sacct(run.run_id, {s.jobid for s in run.submissions})
    time.sleep(0.1)  # let the timing thread record the local run's end
    print(f"\nSLURM run {run.seconds['slurm']:.0f} s ({len(run.submissions)} SLURM jobs); "
          f"local reference, beside it, {run.seconds.get('local', float('nan')):.0f} s")
    return run


# ------------------------------------------------------------------------------------------------- the tests


def test_training_runs_on_slurm_with_a_gpu_and_matches_a_local_run(slurm_run):
    run = slurm_run
    # Every SLURM job of this run is one Snakemake submitted, and each one is in sacct.
    assert run.submissions, "Snakemake submitted nothing to SLURM"
    assert set(run.sacct) == {s.jobid for s in run.submissions}

    # Local rules stayed local: no job of a rule Snakemake ran as 'localrule' went through SLURM. The failed
    # attempts' SLURM logs that Snakemake shows (show-failed-logs) hold the job's own Snakemake, for which the job
    # it runs is a 'localrule': only Snakemake's own lines count.
    own = SHOWN_LOG.sub("", run.log)
    local_rules = set(re.findall(r"^local(?:rule|checkpoint) (\w+):$", own, re.M))
    slurm_rules = {s.rule for s in run.submissions}
    assert {"propose", "history", "trials"} <= local_rules
    assert not local_rules & slurm_rules, f"local rules submitted to SLURM: {local_rules & slurm_rules}"
    assert slurm_rules == set(re.findall(r"^(?:rule|checkpoint) (\w+):$", own, re.M))

    # Every job ran in the partition and account the environment named; every training run asked for one GPU,
    # and its last attempt completed.
    # Training went in packs of RUNS_PER_JOB runs: every run has its metrics, from fewer jobs than runs.
    runs = sorted(str(p.parent.relative_to(run.work / "results/smoke/runs"))
                  for p in (run.work / "results/smoke/runs").rglob("metrics.json"))
    assert len(runs) >= 30, runs
    packs = {(s.rule, s.wildcards) for s in run.submissions if s.rule.startswith("train_")}
    assert {(job.rule, job.wildcards) for job in map(pack_job, runs)} == packs
    assert len(packs) < len(runs) and "train" not in slurm_rules
    for submission in run.submissions:
        record = run.sacct[submission.jobid]
        assert (record.partition, record.account) == (PARTITION, ACCOUNT), (submission, record)
        if submission.rule.startswith("train_"):
            assert "gres/gpu=1" in record.tres.split(","), (submission, record)
        else:  # only training asks for a GPU
            assert "gres/gpu" not in record.tres, (submission, record)
            assert record.state == "COMPLETED", (submission, record)
    for rule, wildcards in packs:
        last = run.attempts(rule, wildcards)[-1]
        assert run.sacct[last].state == "COMPLETED", (rule, wildcards, run.sacct[last])

    # Same numbers as on a workstation: trials.csv byte for byte.
    assert (run.work / "results/smoke/tables/trials.csv").read_bytes() == \
        (run.reference / "results/smoke/tables/trials.csv").read_bytes()


@pytest.mark.parametrize("target", sorted(INTERRUPTIONS))
def test_interrupted_training_job_is_retried_and_resumes(slurm_run, target):
    run = slurm_run
    assert target in run.interrupted, f"{target} was not interrupted: {run.watcher_errors}"
    scancel_args, first_state = INTERRUPTIONS[target]
    interrupted = run.interrupted[target]
    job = pack_job(target)
    attempts = run.attempts(job.rule, job.wildcards)
    states = [run.sacct[jobid].state.split()[0] for jobid in attempts]  # "CANCELLED by 0" -> CANCELLED
    assert attempts[0] == interrupted["jobid"]
    assert states[0] == first_state and states[-1] == "COMPLETED", list(zip(attempts, states))
    assert all("gres/gpu=1" in run.sacct[j].tres for j in attempts)

    # The signal reached `pblf train-pack` under the plugin's srun step: it saved the run's checkpoint in the middle
    # of an epoch (step >= 1; the per-epoch checkpoints are at step 0), and the retry resumed from there. Snakemake
    # deletes a job's log before every attempt, so the pack's log holds the last attempt only.
    log = (run.work / job.log).read_text()
    resumed = re.search(rf"resuming from \S*{re.escape(target)}/checkpoint.pt at epoch (\d+), step (\d+)", log)
    assert resumed, log[:3000]
    assert int(resumed.group(1)) > interrupted["epoch"] and int(resumed.group(2)) >= 1, resumed.group(0)
    metrics = json.loads((run.work / "results/smoke/runs" / target / "metrics.json").read_text())
    assert metrics["status"] == "ok" and len(metrics["epochs"]) == CONVERGENCE_EPOCHS
    assert [row["epoch"] for row in metrics["epochs"]] == list(range(1, CONVERGENCE_EPOCHS + 1))
    # The failed attempt's SLURM log is kept under the profile's slurm-logdir.
    assert (run.work / "logs/slurm" / f"rule_{job.rule}" / job.wildcards / f"{attempts[0]}.log").is_file()
