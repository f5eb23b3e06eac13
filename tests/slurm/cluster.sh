#!/usr/bin/env bash
# Bring up / tear down a real single-node SLURM cluster on this machine for the pipeline's SLURM tests.
#
#   bash tests/slurm/cluster.sh start    # idempotent; ~1 s when everything is already up
#   bash tests/slurm/cluster.sh status   # sinfo/squeue/sacct sanity; exit 0 when the cluster accepts jobs
#   bash tests/slurm/cluster.sh stop     # stops only the daemons this script started (by recorded PID)
#
# Target: Debian 12, run as root, no systemd (daemons are started by hand, in the foreground, under setsid).
# Facts behind the choices below: /work/shared/notes/slurm-local.md (measured on this kind of machine).
#
# Environment knobs:
#   PBLF_SLURM_STATE   state dir: recorded PIDs, logs, fake GPU device links   (default /run/pblf-slurm)
#   PBLF_SLURM_GPUS    number of fake GPUs on the node                          (default 2)
#   PBLF_SLURM_CLUSTER ClusterName                                              (default pblf)
#   PBLF_SLURM_ACCOUNT accounting account that root (and $SUDO_USER) get added to (default pblf)
set -Eeuo pipefail   # -E: the ERR trap below also reports failures inside functions

STATE=${PBLF_SLURM_STATE:-/run/pblf-slurm}
PIDS=$STATE/pids          # one file per daemon, holding the PID *we* started; stop only ever uses these
LOGS=$STATE/log
NGPU=${PBLF_SLURM_GPUS:-2}
CLUSTER=${PBLF_SLURM_CLUSTER:-pblf}
ACCOUNT=${PBLF_SLURM_ACCOUNT:-pblf}
PARTITION=gpu
SLURM_ETC=/etc/slurm
MYSQL_SOCK=/run/mysqld/mysqld.sock
PACKAGES=(munge mariadb-server slurmdbd slurmctld slurmd slurm-client)
# Start order matters: auth (munge) -> database -> accounting daemon -> controller -> node daemon.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

log() { printf '[pblf-slurm %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
trap 'log "ERROR: failed at line $LINENO: $BASH_COMMAND"' ERR

# wait_for SECONDS DAEMON CMD...: poll CMD every 0.2 s until it succeeds; fail early if DAEMON (started by us)
# has died meanwhile, instead of sitting out the whole timeout.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs)) pid
  pid=$(our_pid "$what" || true)
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    if [[ -n $pid ]] && ! alive "$pid"; then log "$what (pid $pid) died"; return 1; fi
    sleep 0.2
  done
  log "$what ready"
}

# --- PID bookkeeping ------------------------------------------------------------------------------------------
# A recorded PID counts as "ours and alive" only if the process exists AND still has the daemon's name, so a
# recycled PID after a reboot/crash is never mistaken for (or killed as) our daemon.
our_pid() {  # prints the live PID of daemon $1 started by this script, or fails
  local name=$1 pid
  [[ -r $PIDS/$name.pid ]] || return 1
  pid=$(<"$PIDS/$name.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 1
  alive "$pid" || return 1
  echo "$pid"
}

# A killed daemon whose parent is PID 1 can linger as a zombie (this machine's init reaps lazily): not alive.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }   # field 3 (state) follows the last ')' of the comm field
  [[ ${stat%% *} != [ZX] ]]
}

# launch NAME LOGFILE CMD...: start CMD in the foreground mode of the daemon, in its own session (so it survives
# the calling shell / CI step), and record its PID. setsid does not fork here (a non-interactive script's
# background child is not a process-group leader), so $! is the daemon itself.
launch() {
  local name=$1 logf=$2; shift 2
  setsid "$@" </dev/null >>"$logf" 2>&1 &
  local pid=$!
  echo "$pid" >"$PIDS/$name.pid"
  sleep 0.1
  if ! our_pid "$name" >/dev/null; then
    log "$name exited at once; last lines of $logf:"
    tail -n 20 "$logf" >&2 || true
    die "could not start $name"
  fi
  log "started $name (pid $pid, log $logf)"
}

# A daemon with the same name that this script did not start (e.g. a system munged): use it, never stop it.
foreign_pid() {
  local p
  for p in $(pgrep -x "$1" || true); do alive "$p" && { echo "$p"; return 0; }; done
  return 1
}

# --- installation ---------------------------------------------------------------------------------------------
install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]} (apt; daemons are NOT auto-started, see policy-rc.d)"
  # Without systemd the packages' postinst would try to start daemons with Debian's default config; a
  # policy-rc.d that exits 101 tells invoke-rc.d "not allowed". Keep a pre-existing one intact.
  local had_policy=0
  if [[ -e /usr/sbin/policy-rc.d ]]; then
    had_policy=1; cp -a /usr/sbin/policy-rc.d "$STATE/policy-rc.d.orig"
  fi
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  local rc=0
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >"$LOGS/apt.log" 2>&1 || {
    log "apt-get install failed; refreshing package lists and retrying"
    apt-get update -q >>"$LOGS/apt.log" 2>&1 &&
      apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$LOGS/apt.log" 2>&1
  } || rc=$?
  if ((had_policy)); then mv -f "$STATE/policy-rc.d.orig" /usr/sbin/policy-rc.d; else rm -f /usr/sbin/policy-rc.d; fi
  ((rc == 0)) || { tail -n 30 "$LOGS/apt.log" >&2; die "apt-get install failed (see $LOGS/apt.log)"; }
  log "packages installed"
}

# --- configuration --------------------------------------------------------------------------------------------
# write_if_changed FILE OWNER MODE: replace FILE with stdin only when the content differs; returns 0 if changed.
write_if_changed() {
  local f=$1 owner=$2 mode=$3 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [[ -f $f ]] && cmp -s "$tmp" "$f"; then
    rm -f "$tmp"
    # ownership/mode are cheap to enforce every time (slurmdbd refuses a slurmdbd.conf not 600 by SlurmUser)
    chown "$owner" "$f"; chmod "$mode" "$f"
    return 1
  fi
  install -o "${owner%%:*}" -g "${owner##*:}" -m "$mode" "$tmp" "$f"
  rm -f "$tmp"
  log "wrote $f"
  return 0
}

CHANGED_SLURM=0 CHANGED_DBD=0 LEFTOVER_JOBS=""
write_configs() {
  local host node_line mem gres_lines i
  host=$(hostname -s)
  # SlurmctldHost / NodeName use the short hostname; it must resolve or slurmd/slurmctld refuse to run.
  if ! getent hosts "$host" >/dev/null; then
    echo "127.0.0.1 $host" >>/etc/hosts
    log "added '$host' to /etc/hosts"
  fi

  # Fake GPUs: gres.conf File= must be a character device, and file-less GPUs are dropped (node -> INVAL).
  # Symlinks to /dev/null pass slurmd's check; CUDA_VISIBLE_DEVICES is still set per allocation.
  gres_lines=""
  for ((i = 0; i < NGPU; i++)); do
    [[ -L $STATE/gpu$i ]] || ln -sfn /dev/null "$STATE/gpu$i"
    gres_lines+="Name=gpu File=$STATE/gpu$i"$'\n'
  done
  while [[ -L $STATE/gpu$i ]]; do rm -f "$STATE/gpu$i"; i=$((i + 1)); done  # from an earlier, larger N

  # Topology from slurmd -C (giving only CPUs= makes slurmd complain about socket/core boundaries); RealMemory
  # must not exceed what slurmd detects, so declare 90 % of it.
  node_line=$(slurmd -C | head -n1)
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
  [[ -n $mem ]] || die "could not parse 'slurmd -C': $node_line"
  node_line=$(sed -e 's/ *RealMemory=[0-9]*//' -e 's/ *UpTime=.*//' -e "s/^NodeName=[^ ]*/NodeName=$host/" <<<"$node_line")
  NODE=$host

  install -d -o slurm -g slurm -m 755 /var/lib/slurm/slurmctld
  install -d -o root -g root -m 755 /var/lib/slurm/slurmd

  if write_if_changed "$SLURM_ETC/slurm.conf" root:root 644 <<EOF; then CHANGED_SLURM=1; fi
# Written by tests/slurm/cluster.sh -- single-node test cluster, no systemd/cgroups. Changes get overwritten.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
# no cgroups here: track processes via /proc; task/affinity (task/none makes the jobstep's srun --cpu-bind warn)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MpiDefault=none
MailProg=/bin/true
# a node that went DOWN for being unreachable comes back by itself when slurmd registers again
ReturnToService=2
# finished jobs stay visible to squeue for 5 min (a status check via squeue needs >= 3x the plugin's first wait)
MinJobAge=300
# scancel: SIGKILL 5 s after SIGTERM instead of 30
KillWait=5
InactiveLimit=0
SchedulerType=sched/backfill
GresTypes=gpu
JobAcctGatherType=jobacct_gather/linux
# Accounting on (sacct is what the Snakemake SLURM plugin polls). AccountingStorageEnforce is left unset, so a
# user without an association can still run jobs; the pblf account is there for profiles that set slurm_account.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
# GPUs are not tracked in accounting by default; needed for sacct AllocTRES to show gres/gpu=N
AccountingStorageTRES=gres/gpu
$node_line RealMemory=$((mem * 9 / 10)) NodeAddr=127.0.0.1 Gres=gpu:$NGPU State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

  if write_if_changed "$SLURM_ETC/gres.conf" root:root 644 <<<"${gres_lines%$'\n'}"; then CHANGED_SLURM=1; fi

  # slurmdbd talks to MariaDB over the unix socket as OS user 'slurm' (unix_socket auth): no password to keep.
  if write_if_changed "$SLURM_ETC/slurmdbd.conf" slurm:slurm 600 <<EOF; then CHANGED_DBD=1; fi
# Written by tests/slurm/cluster.sh. Must be owned by SlurmUser and mode 600 or slurmdbd refuses to start.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StorageLoc=slurm_acct_db
LogFile=$LOGS/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
EOF
  return 0
}

# --- daemons --------------------------------------------------------------------------------------------------
# Each start_X is a no-op when our instance (or a foreign one) is already alive; slurm daemons are restarted
# only when write_configs changed their config file.
start_munged() {
  our_pid munged >/dev/null && return 0
  local f; if f=$(foreign_pid munged) && [[ -n $f ]]; then log "using munged pid $f (not ours; stop leaves it)"; return 0; fi
  [[ -s /etc/munge/munge.key ]] || { log "creating munge key"; mungekey --create --force; }
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  install -d -o munge -g munge -m 755 /run/munge
  install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
  # setpriv execs (runuser would fork and $! would not be munged); --force: clean up a stale socket/lock
  launch munged "$LOGS/munged.log" setpriv --reuid=munge --regid=munge --init-groups munged --foreground --force
  wait_for 15 munged bash -c 'munge -n | unmunge' || die "munged not answering (see $LOGS/munged.log)"
}

start_mariadbd() {
  our_pid mariadbd >/dev/null && return 0
  local f; if f=$(foreign_pid mariadbd) && [[ -n $f ]]; then log "using mariadbd pid $f (not ours; stop leaves it)"; return 0; fi
  install -d -o mysql -g mysql -m 755 /run/mysqld
  if [[ ! -d /var/lib/mysql/mysql ]]; then
    log "initialising MariaDB data dir"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$LOGS/mariadbd.log" 2>&1
  fi
  # Unix socket only: nothing listens on TCP, so this cannot clash with / expose anything on the host network.
  launch mariadbd "$LOGS/mariadbd.log" mariadbd --user=mysql --skip-networking --socket="$MYSQL_SOCK" \
    --pid-file=/run/mysqld/mysqld.pid --innodb-lock-wait-timeout=900
  wait_for 60 mariadbd mariadb-admin --socket="$MYSQL_SOCK" ping || die "mariadbd not answering (see $LOGS/mariadbd.log)"
  # idempotent; root@localhost authenticates through unix_socket on Debian
  mariadb --socket="$MYSQL_SOCK" -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED VIA unix_socket;
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

start_slurmdbd() {
  if our_pid slurmdbd >/dev/null; then
    ((CHANGED_DBD)) || return 0
    log "slurmdbd.conf changed: restarting slurmdbd"; stop_one slurmdbd
  fi
  local f; if f=$(foreign_pid slurmdbd) && [[ -n $f ]]; then log "using slurmdbd pid $f (not ours; stop leaves it)"; return 0; fi
  launch slurmdbd "$LOGS/slurmdbd.stdout" slurmdbd -D
  wait_for 60 slurmdbd sacctmgr -n list cluster || die "slurmdbd not answering (see $LOGS/slurmdbd.log)"
}

ensure_associations() {
  # Each sacctmgr call costs ~0.4 s; skip the checks when they already passed against this slurmdbd instance.
  local marker=$STATE/accounting.ok want
  want="$CLUSTER $ACCOUNT root ${SUDO_USER:-} $(our_pid slurmdbd || true)"
  [[ -r $marker && $(<"$marker") == "$want" ]] && return 0
  # sacctmgr add exits 1 when the entity exists, so look first; -i = no confirmation prompt.
  if [[ -z $(sacctmgr -n -P list cluster "$CLUSTER" format=cluster) ]]; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null; log "accounting: added cluster $CLUSTER"
  fi
  if [[ -z $(sacctmgr -n -P list account "$ACCOUNT" format=account) ]]; then
    sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="pblf tests" Organization=pblf >/dev/null
    log "accounting: added account $ACCOUNT"
  fi
  local u
  for u in root ${SUDO_USER:-}; do
    if [[ -z $(sacctmgr -n -P list assoc cluster="$CLUSTER" account="$ACCOUNT" user="$u" format=user) ]]; then
      sacctmgr -i add user "$u" Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null
      log "accounting: added user $u to account $ACCOUNT"
    fi
  done
  echo "$want" >"$marker"
}

start_slurmctld() {
  local restart=0
  if our_pid slurmctld >/dev/null; then
    ((CHANGED_SLURM)) || return 0
    log "slurm.conf/gres.conf changed: restarting slurmctld (running jobs are kept)"; stop_one slurmctld
    restart=1
  fi
  local f; if f=$(foreign_pid slurmctld) && [[ -n $f ]]; then log "using slurmctld pid $f (not ours; stop leaves it)"; return 0; fi
  launch slurmctld "$LOGS/slurmctld.stdout" slurmctld -D
  wait_for 60 slurmctld scontrol ping || die "slurmctld not answering (see $LOGS/slurmctld.log)"
  # Saved state from an earlier (possibly SIGKILLed) run can hold phantom RUNNING jobs that pin CPUs: a fresh
  # controller starts with an empty queue. They are cancelled once slurmd is back (see cmd_start), because a
  # cancel sent while slurmd is down leaves the job's slurmstepd and its processes running as orphans.
  # A controller restarted here only for a config change keeps its (real) running jobs.
  ((restart)) || LEFTOVER_JOBS=$(squeue -h -o %A | tr '\n' ' ')
}

start_slurmd() {
  if our_pid slurmd >/dev/null; then
    ((CHANGED_SLURM)) || return 0
    log "slurm.conf/gres.conf changed: restarting slurmd"; stop_one slurmd
  fi
  local f; if f=$(foreign_pid slurmd) && [[ -n $f ]]; then log "using slurmd pid $f (not ours; stop leaves it)"; return 0; fi
  launch slurmd "$LOGS/slurmd.stdout" slurmd -D
}

# short state (%t): a trailing '*' means "not responding" (slurmd not registered yet), which %T would hide
node_state() { sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n1; }

wait_node_ready() {
  local deadline=$((SECONDS + 60)) st resumed=0
  while :; do
    st=$(node_state || true)
    case $st in
      idle | mix | alloc | comp) log "node $NODE is $st"; return 0 ;;
      *'*') ;;  # not responding yet: slurmd still registering
      drain | drng | down | inval | fail*)
        # e.g. drained by an earlier bad config; ReturnToService=2 does not undo an admin/INVAL drain
        if ((!resumed)); then
          log "node $NODE is '$st': resuming it"
          scontrol update nodename="$NODE" state=resume 2>/dev/null || true
          resumed=1
        fi ;;
    esac
    if ((SECONDS >= deadline)); then
      scontrol show node "$NODE" >&2 || true
      die "node $NODE not ready (state '$st'); see $LOGS/slurmd.log and $LOGS/slurmctld.log"
    fi
    sleep 0.2
  done
}

# --- stop -----------------------------------------------------------------------------------------------------
stop_one() {
  local name=$1 pid i
  if ! pid=$(our_pid "$name"); then
    rm -f "$PIDS/$name.pid"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do  # up to 30 s (mariadbd flushes on shutdown)
    alive "$pid" || break
    sleep 0.2
  done
  if alive "$pid"; then
    log "$name did not exit after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDS/$name.pid"
}

cmd_stop() {
  local i
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop_one "${DAEMONS[i]}"; done
  log "stopped (only daemons started by this script; state dir $STATE kept)"
}

# --- start / status -------------------------------------------------------------------------------------------
cmd_start() {
  local t0=$SECONDS
  install -d -m 755 "$STATE" "$PIDS"
  install -d -m 755 "$LOGS"   # user slurm may not exist before install_packages
  install_packages
  # slurmctld/slurmdbd write logs and pid files after dropping to SlurmUser
  install -d -o slurm -g slurm -m 755 "$LOGS" "$STATE/run"
  write_configs
  start_munged
  start_mariadbd
  start_slurmdbd
  ensure_associations
  start_slurmctld
  start_slurmd
  wait_node_ready
  if [[ -n ${LEFTOVER_JOBS// /} ]]; then
    log "cancelling leftover jobs from an earlier run: $LEFTOVER_JOBS"
    # shellcheck disable=SC2086
    scancel $LEFTOVER_JOBS || true
    wait_node_ready
  fi
  log "cluster up (partition '$PARTITION', $NGPU fake GPUs, state in $STATE) in $((SECONDS - t0)) s"
}

cmd_status() {
  local ok=0 name pid
  for name in "${DAEMONS[@]}"; do
    if pid=$(our_pid "$name"); then echo "$name: running (pid $pid, started by cluster.sh)"
    elif pid=$(foreign_pid "$name") && [[ -n $pid ]]; then echo "$name: running (pid $pid, NOT started by cluster.sh)"
    else echo "$name: not running"; ok=1; fi
  done
  # With slurmctld/slurmdbd down every client call retries for ~10+ s: answer at once instead.
  if ((ok)); then echo "--- accepts jobs: NO (daemons missing; run: bash $0 start)"; return 1; fi
  echo "--- sinfo";  timeout 15 sinfo -o '%P %a %D %t %c %m %G %N' || ok=1
  echo "--- squeue"; timeout 15 squeue -o '%A %P %j %u %T %M %b' || ok=1
  echo "--- sacct (last hour, last 10)"
  timeout 15 sacct -a -X -S now-1hour -o JobID,JobName%20,State,AllocTRES%50 | tail -n 10 || ok=1
  NODE=$(hostname -s)
  case $(node_state || true) in idle | mix | alloc | comp) ;; *) echo "node $NODE not usable"; ok=1 ;; esac
  # the real question: would the controller take a GPU job on the gpu partition right now?
  if timeout 15 sbatch --test-only -p "$PARTITION" --gpus=1 --wrap true >/dev/null 2>&1; then
    echo "--- accepts jobs: yes"
  else
    echo "--- accepts jobs: NO"; ok=1
  fi
  return $ok
}

[[ $(id -u) == 0 ]] || die "must run as root (installs packages and starts system daemons)"
case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status || exit 1 ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
