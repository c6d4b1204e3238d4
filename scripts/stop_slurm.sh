#!/usr/bin/env bash
# Stops the one-node test cluster that scripts/setup_slurm.sh started (slurmd, slurmctld; with
# --munge also munged). Jobs still running are killed. Leaves the config and state in place, so
# setup_slurm.sh starts it again as before. Refuses to act on a cluster it did not configure.
set -euo pipefail

fail() {
  echo "stop_slurm: $*" >&2
  exit 1
}
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || fail "not root and sudo is not installed"
  sudo -n true 2>/dev/null || fail "not root and 'sudo -n' needs a password"
  exec sudo -n bash "$0" "$@"
fi
# shellcheck source=scripts/slurm_local.sh
. "$(dirname "$0")/slurm_local.sh"

with_munge=0
case "${1:-}" in
"") ;;
--munge) with_munge=1 ;;
*) fail "usage: stop_slurm.sh [--munge]" ;;
esac
conf_is_ours || fail "$SLURM_CONF_FILE was not written by setup_slurm.sh; not stopping that cluster"

stop() { # name pidfile
  if stop_daemon "$2"; then echo "stop_slurm: stopped $1" >&2; fi
}
stop slurmd "$SLURMD_PID_FILE"
stop slurmctld "$SLURMCTLD_PID_FILE"
((with_munge == 0)) || stop munged "$MUNGED_PID_FILE"
