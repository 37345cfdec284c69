#!/usr/bin/env bash
# Stop the daemons that .ci/slurm-up.sh started, in reverse start order, by the
# pids it recorded in $CLIPFLOW_SLURM_STATE (default /run/clipflow-slurm).
# Daemons that slurm-up.sh found already running (not started by it) are left
# alone. Tolerant of daemons that already stopped; never fails on them.
#
# Environment: CLIPFLOW_SLURM_STATE, CLIPFLOW_SLURM_LOG (as slurm-up.sh),
#   CLIPFLOW_SLURM_STOP_TIMEOUT  seconds to wait after SIGTERM before SIGKILL [30]
set -uo pipefail

STATE_DIR=${CLIPFLOW_SLURM_STATE:-/run/clipflow-slurm}
LOG=${CLIPFLOW_SLURM_LOG:-/var/log/clipflow-slurm/slurm-up.log}
STOP_TIMEOUT=${CLIPFLOW_SLURM_STOP_TIMEOUT:-30}

mkdir -p "$(dirname "$LOG")" 2>/dev/null || true
log() { printf '%s %s\n' "$(date '+%F %T')" "$*" >>"$LOG" 2>/dev/null || true; }
say() { printf 'slurm-down: %s\n' "$*"; log "$*"; }

if [ ! -s "$STATE_DIR/started" ]; then
    say "nothing to stop (no $STATE_DIR/started)"
    exit 0
fi
log "==== slurm-down.sh ===="

pid_alive() { # running and not a zombie (init may reap our orphaned daemons late)
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "${st:0:1}" != Z ]
}

# The program each recorded name must be running, so a recycled pid is never killed.
expected_comm() {
    case $1 in
    munged) echo munged ;;
    mariadbd) echo mariadbd ;;
    *) echo "$1" ;;
    esac
}

# If we started slurmctld, cancel leftover jobs first (through slurmctld), so no
# slurmstepd / job process outlives the cluster.
if grep -qx slurmctld "$STATE_DIR/started" && [ -s "$STATE_DIR/slurmctld.pid" ] &&
    pid_alive "$(cat "$STATE_DIR/slurmctld.pid")" && command -v scancel >/dev/null 2>&1; then
    scancel --full --state=RUNNING,PENDING,SUSPENDED --user=root >/dev/null 2>&1 || true
fi

stopped=()
# reverse order
mapfile -t names < <(tac "$STATE_DIR/started")
for name in "${names[@]}"; do
    [ -n "$name" ] || continue
    pidfile="$STATE_DIR/$name.pid"
    if [ ! -s "$pidfile" ]; then
        log "$name: no pid file"
        continue
    fi
    pid=$(cat "$pidfile")
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    if [ -z "$comm" ]; then
        log "$name: pid $pid already gone"
        rm -f "$pidfile"
        continue
    fi
    if [ "$comm" != "$(expected_comm "$name")" ]; then
        log "$name: pid $pid now runs '$comm', not ours; leaving it"
        rm -f "$pidfile"
        continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while pid_alive "$pid" && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if pid_alive "$pid"; then
        log "$name: pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    log "$name: stopped pid $pid"
    stopped+=("$name")
    rm -f "$pidfile"
done
rm -f "$STATE_DIR/started" "$STATE_DIR/script.sha256"
say "stopped: ${stopped[*]:-nothing (all already stopped)}"
exit 0
