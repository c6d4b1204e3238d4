# Sourced by setup_slurm.sh and stop_slurm.sh: where the one-node test cluster keeps its config
# and pid files, and how its daemons are checked and stopped.
# shellcheck shell=bash

SLURM_CONF_FILE=/etc/slurm/slurm.conf
SLURM_CONF_MARKER="# Written by rwkvlite scripts/setup_slurm.sh"
SLURM_RUN_DIR=/run/slurm
SLURM_LOG_DIR=/var/log/slurm
SLURMCTLD_PID_FILE="$SLURM_RUN_DIR/slurmctld.pid"
SLURMD_PID_FILE="$SLURM_RUN_DIR/slurmd.pid"
MUNGED_PID_FILE=/run/munge/munged.pid

# The pid in a pid file; the daemon removes the file as it exits, so a missing file is no pid.
pid_of() { cat "$1" 2>/dev/null; }

# A daemon killed a moment ago stays a zombie until init reaps it (up to ~1 s here): not alive.
pid_alive() { # pid
  local st
  [ -n "$1" ] || return 1
  st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# SIGTERM, up to 10 s to exit, then SIGKILL. Returns 0 when it was running, 1 when it was not.
stop_daemon() { # pidfile
  local pid
  pid="$(pid_of "$1")"
  pid_alive "$pid" || return 1
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do pid_alive "$pid" || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 20); do pid_alive "$pid" || return 0; sleep 0.1; done
}

# A config without the marker belongs to a real cluster: never touch it or its daemons.
conf_is_ours() { [ ! -e "$SLURM_CONF_FILE" ] || grep -qF "$SLURM_CONF_MARKER" "$SLURM_CONF_FILE"; }
