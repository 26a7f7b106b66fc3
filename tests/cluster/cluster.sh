# shellcheck shell=bash
# Part of tests/cluster/run_slurm_demo.sh (sourced: sets its globals, defines functions, starts
# nothing): a throwaway one-node Slurm cluster. munged, slurmctld and slurmd run from a scratch
# folder (state, spool, logs, PID files, munge key and socket); one node with every CPU and one fake
# GPU (gres.conf File=/dev/null); no accounting, no cgroups. The config goes to
# /etc/slurm/slurm.conf and is removed again at the end.
# Uses the entry point's globals: SCRATCH, KEEP, PARTITION, SLURM_CONF_PATH, MARKER.

HOST=$(hostname -s)
RUN=$SCRATCH/run           # PID files and the daemons' stdout
MUNGE=$SCRATCH/munge       # key, socket, log
SLURM_LOG_DIR=$SCRATCH/log # slurmctld.log, slurmd.log
PIDS=()                    # daemons this test started, in start order
PID_NAMES=()

# stop_pid PID NAME: stop one daemon this test started: TERM, then KILL after 10 s
stop_pid() {
    local pid=$1 name=$2
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    log "$name (PID $pid) ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# print_daemon_logs: the daemons' last words, printed before failing when the cluster does not come up
print_daemon_logs() {
    local f
    for f in "$SLURM_LOG_DIR/slurmctld.log" "$SLURM_LOG_DIR/slurmd.log" "$MUNGE/munged.log" \
        "$RUN/slurmctld.out" "$RUN/slurmd.out" "$RUN/munged.out"; do
        [[ -s $f ]] || continue
        echo "----- last lines of $f -----" >&2
        tail -n 25 "$f" >&2
    done
}

# stop_leftovers: a previous run killed before its cleanup may have left daemons behind; their PID
# files are ours, and the name check makes sure a recycled PID is not someone else's process
stop_leftovers() {
    local pidfile old
    for pidfile in "$RUN/munged.pid" "$RUN/slurmctld.pid" "$RUN/slurmd.pid"; do
        [[ -s $pidfile ]] || continue
        old=$(cat "$pidfile")
        if kill -0 "$old" 2>/dev/null && grep -qaE 'munged|slurmctld|slurmd' "/proc/$old/cmdline" 2>/dev/null; then
            log "stopping $(basename "$pidfile" .pid) left over from an earlier run (PID $old)"
            stop_pid "$old" "$(basename "$pidfile" .pid)"
        fi
    done
}

# check_host_free: never overwrite a real Slurm host's config or fight a running Slurm for its ports
check_host_free() {
    local port
    if [[ -f $SLURM_CONF_PATH ]] && ! head -n 1 "$SLURM_CONF_PATH" | grep -qF "$MARKER"; then
        fail "$SLURM_CONF_PATH exists and was not written by this test: this machine is configured as a real Slurm host; refusing to overwrite it"
    fi
    for port in 6817 6818; do
        if command -v ss >/dev/null 2>&1 && ss -ltn "sport = :$port" 2>/dev/null | grep -q LISTEN; then
            fail "TCP port $port (Slurm) is already in use by another process; stop it first"
        fi
    done
}

# start_munged: Slurm authenticates through munge; this one has its own key and socket, nothing
# shared with a system munged
start_munged() {
    [[ -s $MUNGE/munge.key ]] || mungekey --create --keyfile="$MUNGE/munge.key" >/dev/null
    chmod 600 "$MUNGE/munge.key"
    munged --foreground --force --key-file="$MUNGE/munge.key" --socket="$MUNGE/munge.socket" \
        --pid-file="$RUN/munged.pid" --log-file="$MUNGE/munged.log" --seed-file="$MUNGE/munged.seed" \
        >"$RUN/munged.out" 2>&1 &
    PIDS+=($!)
    PID_NAMES+=(munged)
    for _ in $(seq 1 50); do
        [[ -S $MUNGE/munge.socket ]] && break
        sleep 0.1
    done
    [[ -S $MUNGE/munge.socket ]] || {
        print_daemon_logs
        fail "munged did not start"
    }
}

# write_slurm_conf: slurm.conf and gres.conf at the compiled-in default path: the executor plugin
# runs srun with every SLURM_* variable (SLURM_CONF too) removed, so srun only finds them there
write_slurm_conf() {
    local detected_mb
    # Memory is not enforced on this cluster (no cgroups), so the node advertises enough for the
    # production requests in profiles/slurm (up to 24 GB per job) even on a small machine
    # (SlurmdParameters=config_overrides accepts a node description larger than the hardware).
    NCPU=$(nproc)
    ((NCPU < 2)) && NCPU=2 # two jobs side by side (profiles/slurm-ci: one thread each)
    detected_mb=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
    MEM_MB=$((${detected_mb:-0} * 85 / 100))
    ((MEM_MB < 64000)) && MEM_MB=64000
    mkdir -p "$(dirname "$SLURM_CONF_PATH")"
    cat >"$SLURM_CONF_PATH" <<EOF
$MARKER
# Written by the test and removed when it ends. The compiled-in default path: the executor plugin
# runs srun with every SLURM_* variable (SLURM_CONF too) removed.
ClusterName=cnnstudy
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE/munge.socket
StateSaveLocation=$SCRATCH/state
SlurmdSpoolDir=$SCRATCH/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$SLURM_LOG_DIR/slurmctld.log
SlurmdLogFile=$SLURM_LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerParameters=sched_interval=2
MpiDefault=none
MailProg=/bin/true
# Finished jobs stay visible to squeue/scontrol for an hour: the executor polls with squeue (no
# accounting here) and the test reads every job's final state at the end.
MinJobAge=3600
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$NCPU Boards=1 SocketsPerBoard=1 CoresPerSocket=$NCPU ThreadsPerCore=1 RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$(dirname "$SLURM_CONF_PATH")/gres.conf" <<EOF
$MARKER
# One fake GPU: a GPU line needs File= (without it the GPU is dropped and the node drains).
AutoDetect=off
NodeName=$HOST Name=gpu File=/dev/null
EOF
}

# wait_node_idle: jobs can only be submitted once slurmd has registered the node with slurmctld
wait_node_idle() {
    local state="" i
    for _ in $(seq 1 60); do
        state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1 || true)
        [[ $state == idle ]] && return 0
        for i in "${!PIDS[@]}"; do
            kill -0 "${PIDS[$i]}" 2>/dev/null || {
                print_daemon_logs
                fail "${PID_NAMES[$i]} exited during start-up"
            }
        done
        sleep 1
    done
    print_daemon_logs
    sinfo -N -l >&2 || true
    fail "node $HOST not idle after 60 s (state: '${state:-none}')"
}

# start_cluster: a fresh cluster every run (a node drained by an earlier bad config stays drained
# in the saved state), with munge first since both Slurm daemons authenticate through it
start_cluster() {
    local t0
    t0=$(date +%s)
    stop_leftovers
    check_host_free
    rm -rf "$SCRATCH/state" "$SCRATCH/spool" "$SLURM_LOG_DIR" "$RUN"
    mkdir -p "$SCRATCH/state" "$SCRATCH/spool" "$SLURM_LOG_DIR" "$RUN" "$MUNGE"
    chmod 755 "$SCRATCH" "$MUNGE" # munged insists on a socket folder others can only read
    start_munged
    write_slurm_conf
    export SLURM_CONF=$SLURM_CONF_PATH
    slurmctld -D >"$RUN/slurmctld.out" 2>&1 &
    PIDS+=($!)
    PID_NAMES+=(slurmctld)
    slurmd -D >"$RUN/slurmd.out" 2>&1 &
    PIDS+=($!)
    PID_NAMES+=(slurmd)
    wait_node_idle
    log "cluster up: node $HOST idle, $NCPU CPUs, ${MEM_MB} MB, gres $(sinfo -h -N -o %G), partition $PARTITION (daemon PIDs ${PIDS[*]})"
    timing "start munge + slurm" "$(since "$t0")"
    SUMMARY+=("cluster: $(slurmctld -V), node $HOST, $NCPU CPUs, 1 fake GPU (gres.conf File=/dev/null)")
}

# stop_cluster: on every exit, so no daemon or config outlives the test (CNNSTUDY_SLURM_KEEP=1
# leaves it running to inspect)
stop_cluster() {
    local i t0
    [[ ${#PIDS[@]} -gt 0 ]] || return 0
    if [[ $KEEP == 1 ]]; then
        log "CNNSTUDY_SLURM_KEEP=1: leaving the cluster running (PIDs ${PIDS[*]}: ${PID_NAMES[*]}; config $SLURM_CONF_PATH)"
        return 0
    fi
    t0=$(date +%s)
    # jobs still queued or running (only after a failure or a kill) die with the cluster
    SLURM_CONF=$SLURM_CONF_PATH timeout 10 scancel --quiet --partition="$PARTITION" 2>/dev/null
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[$i]}" "${PID_NAMES[$i]}"
    done
    if [[ -f $SLURM_CONF_PATH ]] && head -n 1 "$SLURM_CONF_PATH" | grep -qF "$MARKER"; then
        rm -f "$SLURM_CONF_PATH" "$(dirname "$SLURM_CONF_PATH")/gres.conf"
    fi
    log "cluster stopped"
    timing "stop the cluster" "$(since "$t0")"
}
