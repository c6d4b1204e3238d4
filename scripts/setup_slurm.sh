#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine (munged, slurmctld, slurmd; no systemd) so that
# tests and CI can submit real job arrays. Safe to rerun: a running cluster with the same config
# is only checked; a changed config or a dead daemon restarts the Slurm daemons.
# On any failure prints one line "setup_slurm: <reason>" on stderr and exits 1, so callers can skip
# their Slurm tests with that reason. See docs/slurm.md.
#   SLURM_SETUP_TIMEOUT  seconds to wait for the node to become idle (default 60)
set -euo pipefail

fail() {
  echo "setup_slurm: $*" >&2
  exit 1
}

if [ "$(id -u)" -ne 0 ]; then
  # Everything below writes to /etc, /run and /var and starts root daemons: rerun as root.
  command -v sudo >/dev/null || fail "not root and sudo is not installed"
  sudo -n true 2>/dev/null || fail "not root and 'sudo -n' needs a password"
  exec sudo -n SLURM_SETUP_TIMEOUT="${SLURM_SETUP_TIMEOUT:-60}" bash "$0" "$@"
fi

# shellcheck source=scripts/slurm_local.sh
. "$(dirname "$0")/slurm_local.sh"
TIMEOUT="${SLURM_SETUP_TIMEOUT:-60}"
CONF="$SLURM_CONF_FILE"
LOG_DIR="$SLURM_LOG_DIR"

# --- packages -------------------------------------------------------------------------------------
PACKAGES=(slurm-wlm munge)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup_slurm: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || fail "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    fail "apt-get install ${missing[*]} failed"
fi

# --- munge ----------------------------------------------------------------------------------------
munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create >/dev/null 2>&1 || fail "could not create /etc/munge/munge.key"
fi
# munged refuses a key that others can read, and a socket directory it does not own.
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge

if ! munge_works; then
  # A munged killed without cleanup leaves its socket and pid file; --force lets a new one take over.
  runuser -u munge -- /usr/sbin/munged --force >/dev/null 2>&1 || true
  for _ in $(seq 50); do munge_works && break; sleep 0.1; done
  munge_works || fail "munged did not start (see /var/log/munge/munged.log)"
fi

# --- slurm.conf -----------------------------------------------------------------------------------
NODE="$(hostname -s)"
[ -n "$NODE" ] || fail "hostname is empty"
CPUS="$(nproc)"
MEM_KB="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
[ -n "$MEM_KB" ] || fail "no MemTotal in /proc/meminfo"
# slurmd drains a node whose RealMemory exceeds what it measures; the floor of MemTotal never does.
MEM_MB=$((MEM_KB / 1024))

NEW_CONF="$SLURM_CONF_MARKER: a one-node test cluster on this machine.
# Rerunning the script rewrites it (and restarts the daemons when it changed).
ClusterName=rwkvlite-local
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No cgroup plugins (they need a cgroup tree prepared for Slurm, normally by systemd): /proc tracking.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
ReturnToService=2
MaxArraySize=10001
MaxJobCount=20000
# Finished jobs stay visible to 'scontrol show job' for this many seconds.
MinJobAge=300
KillWait=5
# Debian ships no mail program; without this slurmctld logs an error at every start.
MailProg=/bin/true
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$SLURMCTLD_PID_FILE
SlurmdPidFile=$SLURMD_PID_FILE
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP"

if ! conf_is_ours; then
  fail "$CONF exists and was not written by this script; not touching it"
fi

conf_changed=1
if [ -e "$CONF" ] && [ "$(cat "$CONF")" = "$NEW_CONF" ]; then conf_changed=0; fi

node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1; }
node_usable() { case "$(node_state)" in idle | mixed | allocated | completing) return 0 ;; esac; return 1; }

# Healthy = same config, slurmctld answers a ping, the local slurmd answers, the node takes jobs.
# (sinfo alone is not enough: slurmctld notices a dead slurmd only after SlurmdTimeout.)
if ((conf_changed == 0)) && scontrol ping >/dev/null 2>&1 && scontrol show slurmd >/dev/null 2>&1 &&
  node_usable; then
  echo "setup_slurm: already running, node $NODE is $(node_state)" >&2
  exit 0
fi

# Anything else (first start, changed config, a dead or hung daemon): restart both from scratch.
stop_daemon "$SLURMD_PID_FILE" || true
stop_daemon "$SLURMCTLD_PID_FILE" || true
if ((conf_changed)); then
  { printf '%s\n' "$NEW_CONF" >"$CONF.tmp" && mv "$CONF.tmp" "$CONF"; } || fail "could not write $CONF"
fi

# --- daemons --------------------------------------------------------------------------------------
install -d -m 0755 "$SLURM_RUN_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
slurmctld >/dev/null 2>&1 || fail "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
# -N: the node name in the config, whatever the FQDN or aliases gethostname() returns.
slurmd -N "$NODE" >/dev/null 2>&1 || fail "slurmd did not start (see $LOG_DIR/slurmd.log)"

state=""
for _ in $(seq $((TIMEOUT * 2))); do
  state="$(node_state)"
  case "$state" in
  idle | mixed | allocated | completing)
    # Right after a restart slurmctld reports the saved state; wait for the slurmd too.
    scontrol show slurmd >/dev/null 2>&1 || { sleep 0.5; continue; }
    echo "setup_slurm: running, node $NODE is $state (CPUs=$CPUS RealMemory=$MEM_MB)" >&2
    exit 0
    ;;
  drained | draining | down | "down*")
    # e.g. left drained by an earlier config; the config now matches the machine.
    scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
    ;;
  esac
  sleep 0.5
done
reason="$(sinfo -h -n "$NODE" -o %E 2>/dev/null | head -1)"
[ -z "$reason" ] || reason=", reason '$reason'"
fail "node $NODE not idle after ${TIMEOUT}s (state '${state:-no answer from slurmctld}'$reason; see $LOG_DIR/)"
