#!/usr/bin/env bash
# A one-node SLURM cluster with accounting, from Debian's packages, for `make test-slurm`.
#
#   tests/clusters/slurm.sh up DIR     start munged, MariaDB, slurmdbd, slurmctld and slurmd (configs, state, logs and
#                                      pids under DIR); prints the SLURM_CONF the clients need
#   tests/clusters/slurm.sh down DIR   stop every daemon `up` started, by the pid it recorded
#
# Needs root, and: apt-get update && apt-get install slurm-wlm slurmdbd munge mariadb-server. No systemd: each daemon
# runs in the foreground of its own session, so that its pid is the one to stop. Accounting (slurmdbd on MariaDB) is
# there because submitit asks sacct how a job ended; without it a job that died is waited on forever.
set -euo pipefail

usage() { echo "usage: $0 up|down DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$(realpath -m "$2")
pids=$dir/pids

start() {  # start NAME COMMAND...: in its own session, its output in DIR/log/NAME.log, its pid recorded
    local name=$1; shift
    setsid "$@" >"$dir/log/$name.log" 2>&1 </dev/null &
    echo "$name $!" >>"$pids"
}

wait_for() {  # wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds
    local what=$1 seconds=$2; shift 2
    for _ in $(seq $((seconds * 4))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    echo "slurm.sh: $what did not come up in ${seconds} s; its log: $dir/log/" >&2
    return 1
}

down() {
    [[ -f $pids ]] || return 0
    # the last started first: slurmd, slurmctld, slurmdbd, MariaDB, munged
    tac "$pids" | while read -r name pid; do
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
            echo "stopped $name (pid $pid)"
        fi
    done
    rm -f "$pids"
}

up() {
    if [[ $(id -u) -ne 0 ]]; then echo "slurm.sh: needs root (it starts munged, MariaDB and SLURM's daemons)" >&2; exit 2; fi
    for bin in munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sacctmgr sbatch; do
        command -v "$bin" >/dev/null || {
            echo "slurm.sh: $bin not found: apt-get update && apt-get install slurm-wlm slurmdbd munge mariadb-server" >&2
            exit 2
        }
    done
    if [[ -f $pids ]]; then echo "slurm.sh: $dir holds a running cluster: $0 down $dir first" >&2; exit 2; fi
    mkdir -p "$dir"/{etc,state,spool,log,mysql} /run/munge /run/mysqld
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
    trap 'echo "slurm.sh: start-up failed; stopping what started" >&2; down' ERR

    start munged munged --foreground --force
    wait_for munged 10 munge -n

    if [[ ! -d $dir/mysql/mysql ]]; then
        mariadb-install-db --user=root --datadir="$dir/mysql" --skip-test-db >"$dir/log/mariadb-install.log" 2>&1
    fi
    start mariadb mariadbd --user=root --datadir="$dir/mysql" --socket=/run/mysqld/mysqld.sock \
        --pid-file="$dir/mariadb.pid" --bind-address=127.0.0.1 --port=3306
    wait_for MariaDB 30 mariadb --socket=/run/mysqld/mysqld.sock -e "SELECT 1"
    mariadb --socket=/run/mysqld/mysqld.sock -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'bnstudy';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

    cat >"$dir/etc/slurm.conf" <<CONF
ClusterName=bnstudy
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.daemon.log
SlurmdLogFile=$dir/log/slurmd.daemon.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=30
NodeName=localhost CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    cat >"$dir/etc/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=bnstudy
StorageLoc=slurm_acct_db
PidFile=$dir/slurmdbd.pid
LogFile=$dir/log/slurmdbd.daemon.log
CONF
    chmod 600 "$dir/etc/slurmdbd.conf"
    export SLURM_CONF=$dir/etc/slurm.conf  # slurmdbd reads slurmdbd.conf beside it

    start slurmdbd slurmdbd -D
    wait_for slurmdbd 30 sacctmgr -n list cluster
    sacctmgr -i add cluster bnstudy >/dev/null 2>&1 || true  # there already on a second start
    start slurmctld slurmctld -D -i
    start slurmd slurmd -D -N localhost
    wait_for "the node" 60 bash -c '[[ $(sinfo -h -o %T) == idle ]]'
    trap - ERR
    echo "export SLURM_CONF=$SLURM_CONF"
}

case $action in
    up) up ;;
    down) down ;;
    *) usage ;;
esac
