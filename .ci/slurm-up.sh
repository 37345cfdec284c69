#!/usr/bin/env bash
# Bring up a real single-node SLURM cluster on this machine (Debian packages):
#   munged -> mariadbd -> slurmdbd -> slurmctld -> slurmd
# with job accounting through slurmdbd, so that `sacct` (which the snakemake
# SLURM executor plugin polls) reports job states.
#
# Idempotent: on a fresh machine it installs and starts everything; if the
# cluster is already up it only verifies it. Must run as root (CI runs it with
# CI=true and no stdin). Daemons it starts are recorded, by pid, in
# $CLIPFLOW_SLURM_STATE (default /run/clipflow-slurm); .ci/slurm-down.sh stops
# them in reverse order.
#
# Environment (all optional):
#   CLIPFLOW_SLURM_STATE      state dir with pid files      [/run/clipflow-slurm]
#   CLIPFLOW_SLURM_LOG        detailed log of this script   [/var/log/clipflow-slurm/slurm-up.log]
#   CLIPFLOW_SLURM_CLUSTER    cluster name                  [clipflow]
#   CLIPFLOW_SLURM_ACCOUNT    account for jobs              [clipflow]
#   CLIPFLOW_SLURM_PARTITION  the (default) partition       [cpu]
#   CLIPFLOW_SLURM_TIMEOUT    seconds per wait loop         [90]
#   CLIPFLOW_SLURM_SMOKE      1: submit a test job and wait for sacct COMPLETED [1]
#   CLIPFLOW_SLURM_NO_INSTALL 1: never apt-get install (fail instead)          [0]
#
# Exit codes: 0 up, 2 not root / cannot install, 1 anything else.
set -euo pipefail

STATE_DIR=${CLIPFLOW_SLURM_STATE:-/run/clipflow-slurm}
LOG=${CLIPFLOW_SLURM_LOG:-/var/log/clipflow-slurm/slurm-up.log}
CLUSTER=${CLIPFLOW_SLURM_CLUSTER:-clipflow}
ACCOUNT=${CLIPFLOW_SLURM_ACCOUNT:-clipflow}
PARTITION=${CLIPFLOW_SLURM_PARTITION:-cpu}
TIMEOUT=${CLIPFLOW_SLURM_TIMEOUT:-90}
SMOKE=${CLIPFLOW_SLURM_SMOKE:-1}
NO_INSTALL=${CLIPFLOW_SLURM_NO_INSTALL:-0}

ETC=/etc/slurm
DB_NAME=slurm_acct_db
DB_USER=slurm
# MinJobAge must be >= 3x the plugin's status-check interval (slurm/config.yaml
# sets slurm-init-seconds-before-status-checks: 5; the plugin's default is 40).
MIN_JOB_AGE=300

T0=$(date +%s.%N)
mkdir -p "$(dirname "$LOG")" "$STATE_DIR"
: >>"$LOG"

log() { printf '%s %s\n' "$(date '+%F %T')" "$*" >>"$LOG"; }
say() { printf 'slurm-up: %s\n' "$*"; log "$*"; }
die() {
    local rc=${2:-1}
    printf 'slurm-up: ERROR: %s\n' "$1" >&2
    log "ERROR: $1"
    {
        echo "---- last lines of $LOG ----"
        tail -n 25 "$LOG"
        for f in /var/log/slurm/slurmdbd.log /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log \
            "$STATE_DIR"/*.out; do
            [ -s "$f" ] || continue
            echo "---- last lines of $f ----"
            tail -n 15 "$f"
        done
    } >&2
    exit "$rc"
}
run() { log "+ $*"; "$@" >>"$LOG" 2>&1; }
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# check_daemons: fail fast if a daemon this script started has died.
check_daemons() {
    local name pid
    [ -s "$STATE_DIR/started" ] || return 0
    while read -r name; do
        [ -s "$STATE_DIR/$name.pid" ] || continue
        pid=$(cat "$STATE_DIR/$name.pid")
        pid_alive "$pid" || die "$name (pid $pid) died; see $STATE_DIR/$name.out and /var/log/slurm/"
    done <"$STATE_DIR/started"
}
# wait_for DESCRIPTION CMD... : retry CMD every 0.5 s until it succeeds or TIMEOUT.
wait_for() {
    local what=$1
    shift
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >>"$LOG" 2>&1; do
        check_daemons
        if ((SECONDS >= deadline)); then
            die "timed out after ${TIMEOUT}s waiting for $what"
        fi
        sleep 0.5
    done
    log "ok: $what"
}

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts system daemons)" 2

log "==== slurm-up.sh (CI=${CI:-}) ===="

# ---------------------------------------------------------------- helpers for pids
# State file per daemon: "$STATE_DIR/NAME.pid" holds the pid we started;
# "$STATE_DIR/started" lists names in start order (slurm-down.sh reverses it).
pid_alive() { # pid_alive PID -> 0 if PID runs and is not a zombie (init may reap late)
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "${st:0:1}" != Z ]
}
alive() { # alive NAME -> 0 if the pid we recorded for NAME is still running
    local f="$STATE_DIR/$1.pid"
    [ -s "$f" ] && pid_alive "$(cat "$f")"
}
running_anywhere() { # running_anywhere PROGRAM -> 0 if some process runs PROGRAM
    pidof -s "$1" >/dev/null 2>&1
}
# start NAME LOGFILE CMD... : start CMD detached (own session, no stdin/stdout
# inherited, so callers capturing our output do not hang) and record its pid.
start() {
    local name=$1 out=$2
    shift 2
    log "+ start $name: $*"
    nohup setsid "$@" </dev/null >>"$out" 2>&1 &
    local pid=$!
    echo "$pid" >"$STATE_DIR/$name.pid"
    # keep "started" in dependency order, also when one daemon is restarted
    { cat "$STATE_DIR/started" 2>/dev/null || true; echo "$name"; } | sort -u >"$STATE_DIR/started.tmp"
    for n in munged mariadbd slurmdbd slurmctld slurmd; do
        if grep -qx "$n" "$STATE_DIR/started.tmp"; then echo "$n"; fi
    done >"$STATE_DIR/started"
    rm -f "$STATE_DIR/started.tmp"
    sleep 0.2
    pid_alive "$pid" || die "$name exited right after start (see $out)"
    log "started $name pid $pid"
}
# ensure NAME PROGRAM LOGFILE CMD... : start unless already running.
ensure() {
    local name=$1 prog=$2
    if alive "$name"; then
        log "$name already running (pid $(cat "$STATE_DIR/$name.pid"), ours)"
    elif running_anywhere "$prog"; then
        log "$name already running (pid $(pidof -s "$prog"), not started by this script; leaving it)"
    else
        shift 2
        start "$name" "$@"
    fi
}

# ---------------------------------------------------------------- fast path
# The full path below is idempotent too; it is skipped only if this very script
# version brought the cluster up (so edits to the generated configs get applied).
SCRIPT_SHA=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
cluster_ok() {
    timeout 20 sinfo -h -p "$PARTITION" -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated|completing)' &&
        timeout 20 sacctmgr -n -P show assoc where "account=$ACCOUNT" user=root format=user 2>/dev/null |
        grep -qx root
}
# (only ask sinfo/sacctmgr when all daemons run: against a stopped slurmctld they
# retry for ~10 s before failing)
if command -v sinfo >/dev/null 2>&1 && [ -f "$ETC/slurm.conf" ] &&
    running_anywhere munged && running_anywhere slurmdbd &&
    running_anywhere slurmctld && running_anywhere slurmd &&
    [ "$(cat "$STATE_DIR/script.sha256" 2>/dev/null)" = "$SCRIPT_SHA" ] && cluster_ok; then
    say "cluster already up: $(sinfo -h -p "$PARTITION" -o '%P %D node(s) %T %c cpus %m MB' | head -1) (checked in $(elapsed)s)"
    exit 0
fi

# Forget daemons recorded by an earlier run that are gone (killed, crashed).
if [ -s "$STATE_DIR/started" ]; then
    while read -r name; do
        if alive "$name"; then echo "$name"; else rm -f "$STATE_DIR/$name.pid"; fi
    done <"$STATE_DIR/started" >"$STATE_DIR/started.new"
    mv "$STATE_DIR/started.new" "$STATE_DIR/started"
fi

# ---------------------------------------------------------------- 1. packages
need_install() {
    local p
    for p in munged mungekey mariadbd mariadb-admin slurmdbd slurmctld slurmd sbatch sacct sacctmgr sinfo; do
        command -v "$p" >/dev/null 2>&1 || return 0
    done
    return 1
}
if need_install; then
    [ "$NO_INSTALL" = 1 ] && die "SLURM packages missing and CLIPFLOW_SLURM_NO_INSTALL=1" 2
    command -v apt-get >/dev/null 2>&1 || die "SLURM packages missing and apt-get unavailable" 2
    say "installing slurm-wlm slurmdbd munge mariadb-server (apt-get; log: $LOG)"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages' init scripts from starting services during install; only
    # add/remove our own policy-rc.d (Docker images often ship one already).
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# added by clipflow .ci/slurm-up.sh during apt-get install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
        own_policy=1
    fi
    t=$SECONDS
    run apt-get update -q || die "apt-get update failed" 2
    run apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        slurm-wlm slurmdbd munge mariadb-server mariadb-client ||
        die "apt-get install failed" 2
    if [ "${own_policy:-0}" = 1 ]; then
        rm -f "$policy"
        trap - EXIT
    fi
    if need_install; then
        die "packages installed but some SLURM/munge/mariadb binaries are still missing"
    fi
    say "installed packages in $((SECONDS - t))s"
fi

# ---------------------------------------------------------------- 2. dirs, munge
for u in munge slurm mysql; do
    id "$u" >/dev/null 2>&1 || die "system user '$u' missing (package install incomplete?)"
done
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge
install -d -o munge -g munge -m 0700 /var/log/munge
install -d -o mysql -g mysql -m 0755 /run/mysqld
install -d -o slurm -g slurm -m 0755 /run/slurm /var/log/slurm /var/spool/slurmctld
install -d -o root -g root -m 0755 /var/spool/slurmd "$ETC"

if [ ! -s /etc/munge/munge.key ]; then
    log "creating munge key"
    if ! run mungekey --create --keyfile=/etc/munge/munge.key; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

ensure munged munged "$STATE_DIR/munged.out" \
    setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
wait_for "munge credential round trip" sh -c 'munge -n | unmunge'

# ---------------------------------------------------------------- 3. mariadb
if [ ! -d /var/lib/mysql/mysql ]; then
    say "initialising mariadb data dir"
    install -d -o mysql -g mysql -m 0755 /var/lib/mysql
    run mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db ||
        die "mariadb-install-db failed"
fi
ensure mariadbd mariadbd "$STATE_DIR/mariadbd.out" \
    /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql \
    --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mysqld.pid \
    --bind-address=127.0.0.1 --innodb-buffer-pool-size=64M
wait_for "mariadb" mariadb-admin --socket=/run/mysqld/mysqld.sock ping

# Password for slurmdbd's DB user: generated once, kept root-only.
pwfile=$ETC/.dbpass
if [ ! -s "$pwfile" ]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$pwfile")
fi
DB_PASS=$(cat "$pwfile")
mariadb --socket=/run/mysqld/mysqld.sock >>"$LOG" 2>&1 <<SQL || die "creating database $DB_NAME failed"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
SQL

# ---------------------------------------------------------------- 4. slurmdbd
cat >"$ETC/slurmdbd.conf" <<EOF
# written by clipflow .ci/slurm-up.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
PidFile=/run/slurm/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
chown slurm:slurm "$ETC/slurmdbd.conf"
chmod 0600 "$ETC/slurmdbd.conf"

# ---------------------------------------------------------------- 5. slurm.conf
HOST=$(hostname -s)
# "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=2 ... RealMemory=24000": keep the
# hardware fields, drop UpTime and the name (set below).
HW=$(slurmd -C 2>>"$LOG" | head -1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore|RealMemory)=' | tr '\n' ' ')
[ -n "$HW" ] || die "slurmd -C printed no hardware description"
log "node $HOST: $HW"
cat >"$ETC/slurm.conf.new" <<EOF
# written by clipflow .ci/slurm-up.sh: single-node cluster for CI / local runs
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
# keep sbatch --comment (the plugin puts "rule_<name>" there) in sacct's Comment field
AccountingStoreFlags=job_comment
# The snakemake plugin polls every >=5 s; keep finished jobs visible well beyond 3x that.
MinJobAge=$MIN_JOB_AGE
ReturnToService=2
SlurmctldTimeout=120
SlurmdTimeout=300
InactiveLimit=0
KillWait=10
Waittime=0
NodeName=$HOST NodeAddr=127.0.0.1 ${HW}State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
if ! cmp -s "$ETC/slurm.conf.new" "$ETC/slurm.conf" 2>/dev/null; then
    mv "$ETC/slurm.conf.new" "$ETC/slurm.conf"
    conf_changed=1
else
    rm -f "$ETC/slurm.conf.new"
fi
chmod 0644 "$ETC/slurm.conf"

# ---------------------------------------------------------------- 6. slurmdbd + cluster
ensure slurmdbd slurmdbd "$STATE_DIR/slurmdbd.out" /usr/sbin/slurmdbd -D
wait_for "slurmdbd (sacctmgr list cluster)" sacctmgr -n -P list cluster

if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    run sacctmgr -i add cluster "$CLUSTER" || die "sacctmgr add cluster $CLUSTER failed"
fi

# ---------------------------------------------------------------- 7. slurmctld + slurmd
if [ "${conf_changed:-0}" = 1 ] && { running_anywhere slurmctld || running_anywhere slurmd; }; then
    log "slurm.conf changed; asking running daemons to reconfigure"
    run scontrol reconfigure || true
fi
ensure slurmctld slurmctld "$STATE_DIR/slurmctld.out" /usr/sbin/slurmctld -D -i
wait_for "slurmctld (scontrol ping)" sh -c 'scontrol ping | grep -q UP'
ensure slurmd slurmd "$STATE_DIR/slurmd.out" /usr/sbin/slurmd -D

node_ready() {
    local st
    st=$(sinfo -h -n "$HOST" -o '%T' 2>/dev/null | head -1)
    log "node $HOST state: ${st:-?}"
    case $st in
    idle | mixed | allocated | completing) return 0 ;;
    down* | drain* | fail*)
        # e.g. "Node unexpectedly rebooted" after an unclean stop
        scontrol update nodename="$HOST" state=resume >>"$LOG" 2>&1 || true
        return 1
        ;;
    *) return 1 ;;
    esac
}
wait_for "node $HOST idle in sinfo" node_ready

# ---------------------------------------------------------------- 8. account + users
if ! sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT"; then
    run sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" \
        Description="clipflow workflow jobs" Organization=clipflow ||
        die "sacctmgr add account $ACCOUNT failed"
fi
users="root ${SUDO_USER:-}"
for u in $users; do
    if ! sacctmgr -n -P show assoc where "account=$ACCOUNT" "user=$u" format=user | grep -qx "$u"; then
        run sacctmgr -i add user "$u" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" Cluster="$CLUSTER" ||
            die "sacctmgr add user $u failed"
    fi
done

# ---------------------------------------------------------------- 9. smoke test
if [ "$SMOKE" = 1 ]; then
    # Proves submit (association known to slurmctld), run, and accounting: the
    # plugin decides job success from sacct, so sacct must show COMPLETED.
    smoke_submit() {
        jid=$(sbatch --parsable -A "$ACCOUNT" -p "$PARTITION" -t 1 --mem 16 -c 1 \
            -J clipflow-slurm-smoke -o /dev/null --wrap true 2>>"$LOG") && [ -n "$jid" ]
    }
    wait_for "smoke job submission (account/association visible to slurmctld)" smoke_submit
    log "smoke job $jid"
    smoke_done() { sacct -n -X -P -j "$jid" -o State 2>/dev/null | grep -qx COMPLETED; }
    wait_for "smoke job $jid COMPLETED in sacct" smoke_done
fi

say "cluster '$CLUSTER' up in $(elapsed)s: $(sinfo -h -p "$PARTITION" -o '%P %D node(s) %T %c cpus %m MB' | head -1); account '$ACCOUNT'; daemons: $(tr '\n' ' ' <"$STATE_DIR/started" 2>/dev/null)(pids in $STATE_DIR, log $LOG)"
echo "$SCRIPT_SHA" >"$STATE_DIR/script.sha256"
