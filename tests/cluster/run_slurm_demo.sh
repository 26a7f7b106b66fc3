#!/usr/bin/env bash
# The real SLURM test: run the offline demo through a single-node Slurm cluster on this machine.
#
#   tests/cluster/run_slurm_demo.sh          (from the repository root, as root; `make test-cluster`)
#
# 1. installs Debian's Slurm and munge (apt-get; skipped when already there),
# 2. starts munged, slurmctld and slurmd in a scratch folder (one node, one fake GPU: gres.conf
#    File=/dev/null), the config in /etc/slurm/slurm.conf (srun inside jobs only finds it there),
# 3. runs the demo with `--profile profiles/slurm --profile profiles/slurm-ci` (outputs redirected to
#    the scratch folder; 2 epochs per model, same 45 jobs), and checks that every non-local job was submitted with sbatch, completed
#    with exit code 0, and that the GPU rules, and only they, were given a GPU,
# 4. proves the failure behaviour with a throwaway A -> B -> C workflow whose B fails once: the run
#    fails naming B's Slurm log, and the rerun submits only B and C,
# 5. stops the daemons (by PID, on any exit) and prints a summary with timings.
#
# Prints "SKIPPED: ..." and exits 0 only when not root or when the packages cannot be installed.
# Exit status 1: a check failed (the reason is printed last). Idempotent: every run starts a fresh
# cluster and fresh outputs under the scratch folder.
#
# Environment:
#   CNNSTUDY_SLURM_DIR       scratch folder (default ${TMPDIR:-/tmp}/cnnstudy-slurm; wiped per run)
#   SNAKEMAKE                snakemake to use (default .venv/bin/snakemake, else the one on PATH)
#   CNNSTUDY_SLURM_STEPS     which parts to run: "demo failure" (default), or one of them
#   CNNSTUDY_SLURM_DEMO_TIMEOUT, CNNSTUDY_SLURM_FAIL_TIMEOUT   seconds (default 600, 240); the
#                            Snakemake runs are killed (SIGKILL) after that
#   CNNSTUDY_SLURM_KEEP=1    leave the cluster running at the end (stop it by the PIDs printed)
#   CNNSTUDY_SLURM_FULL_DEMO=1  the demo's own epochs (default: 2 epochs per model, same jobs)

set -euo pipefail

T_START=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"

SCRATCH=${CNNSTUDY_SLURM_DIR:-${TMPDIR:-/tmp}/cnnstudy-slurm}
STEPS=${CNNSTUDY_SLURM_STEPS:-demo failure}
DEMO_TIMEOUT=${CNNSTUDY_SLURM_DEMO_TIMEOUT:-600}
FAIL_TIMEOUT=${CNNSTUDY_SLURM_FAIL_TIMEOUT:-240}
KEEP=${CNNSTUDY_SLURM_KEEP:-0}
FULL_DEMO=${CNNSTUDY_SLURM_FULL_DEMO:-0}
PARTITION=debug # must match slurm_partition in profiles/slurm-ci/config.yaml
SLURM_CONF_PATH=/etc/slurm/slurm.conf
MARKER="# cnnstudy single-node test cluster (tests/cluster/run_slurm_demo.sh)"

# The workflow's contract, as the issue states it: rules run on the login node, and rules that need
# a GPU. Every other rule must be submitted to Slurm without a GPU.
EXPECTED_LOCAL_RULES="all make_demo_archive download_dataset download_weights"
EXPECTED_GPU_RULES="train_cnn finetune_resnet18 evaluate"

if [[ -n "${SNAKEMAKE:-}" ]]; then
    :
elif [[ -x "$REPO/.venv/bin/snakemake" ]]; then
    SNAKEMAKE="$REPO/.venv/bin/snakemake"
else
    SNAKEMAKE=$(command -v snakemake || true)
fi

log() { printf '[%s +%4ds] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - T_START))" "$*"; }
TIMINGS=()
SUMMARY=()
timing() { TIMINGS+=("$(printf '%-34s %5ds' "$1" "$2")"); }
fail() {
    log "FAILED: $*"
    SUMMARY+=("FAILED: $*")
    exit 1
}

# --- 0. preconditions --------------------------------------------------------------------------
if [[ $(id -u) -ne 0 ]]; then
    echo "SKIPPED: the SLURM test installs packages and starts Slurm daemons; run it as root."
    exit 0
fi
if [[ -z "$SNAKEMAKE" ]]; then
    fail "no snakemake found (create .venv: pip install -r requirements-cluster.txt, or set SNAKEMAKE)"
fi
if [[ $SNAKEMAKE == */* ]]; then # absolute: the failure test runs from another folder
    SNAKEMAKE="$(cd "$(dirname "$SNAKEMAKE")" && pwd)/$(basename "$SNAKEMAKE")"
fi
SM_PYTHON=$(dirname "$SNAKEMAKE")/python
if [[ -x $SM_PYTHON ]] && ! "$SM_PYTHON" -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
    fail "$SNAKEMAKE has no SLURM executor plugin: pip install -r requirements-cluster.txt"
fi

# --- 1. packages -------------------------------------------------------------------------------
t0=$(date +%s)
mkdir -p "$SCRATCH"
need_install=0
for cmd in slurmctld slurmd sbatch squeue scontrol sinfo munged mungekey; do
    command -v "$cmd" >/dev/null 2>&1 || need_install=1
done
if [[ $need_install -eq 1 ]]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "SKIPPED: Slurm is not installed and there is no apt-get to install it (Debian/Ubuntu only)."
        exit 0
    fi
    log "installing slurmctld slurmd slurm-client munge (apt-get, quiet; log: $SCRATCH/apt.log)"
    # Keep the packages' init scripts from starting system daemons with the default config.
    own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
    fi
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            slurmctld slurmd slurm-client munge >>"$SCRATCH/apt.log" 2>&1
    }
    ok=0
    apt_install && ok=1
    if [[ $ok -eq 0 ]]; then # stale package lists: update once, then try again
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$SCRATCH/apt.log" 2>&1 && apt_install && ok=1
    fi
    [[ $own_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
    if [[ $ok -eq 0 ]]; then
        tail -n 5 "$SCRATCH/apt.log" >&2 || true
        echo "SKIPPED: could not install the Debian packages slurmctld slurmd slurm-client munge (see $SCRATCH/apt.log)."
        exit 0
    fi
    timing "install packages" $(($(date +%s) - t0))
else
    log "Slurm and munge already installed: $(slurmctld -V 2>/dev/null || echo '?')"
fi

# --- 2. cluster --------------------------------------------------------------------------------
HOST=$(hostname -s)
RUN=$SCRATCH/run
MUNGE=$SCRATCH/munge
DEMO_DIR=$SCRATCH/demo
FAIL_DIR=$SCRATCH/failure
PIDS=()
PID_NAMES=()

stop_pid() { # stop one daemon this script started: TERM, then KILL after 10 s
    local pid=$1 name=$2 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 20); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    log "$name (PID $pid) ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

print_daemon_logs() {
    local f
    for f in "$SCRATCH/log/slurmctld.log" "$SCRATCH/log/slurmd.log" "$MUNGE/munged.log" \
        "$RUN/slurmctld.out" "$RUN/slurmd.out" "$RUN/munged.out"; do
        [[ -s $f ]] || continue
        echo "----- last lines of $f -----" >&2
        tail -n 25 "$f" >&2
    done
}

cleanup() {
    local rc=$?
    set +e
    if [[ ${#PIDS[@]} -gt 0 ]]; then
        if [[ $KEEP == 1 ]]; then
            log "CNNSTUDY_SLURM_KEEP=1: leaving the cluster running (PIDs ${PIDS[*]}: ${PID_NAMES[*]})"
        else
            # jobs still queued or running (only after a failure or a kill) die with the cluster
            SLURM_CONF=$SLURM_CONF_PATH timeout 10 scancel --quiet --partition="$PARTITION" 2>/dev/null
            local i
            for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
                stop_pid "${PIDS[$i]}" "${PID_NAMES[$i]}"
            done
            if [[ -f $SLURM_CONF_PATH ]] && head -n 1 "$SLURM_CONF_PATH" | grep -qF "$MARKER"; then
                rm -f "$SLURM_CONF_PATH" "$(dirname "$SLURM_CONF_PATH")/gres.conf"
            fi
            log "cluster stopped"
        fi
    fi
    local total=$(($(date +%s) - T_START))
    echo
    echo "==================== SLURM test summary ===================="
    local line
    for line in "${SUMMARY[@]}"; do echo "  $line"; done
    echo "  timings:"
    for line in "${TIMINGS[@]}"; do echo "    $line"; done
    echo "    $(printf '%-34s %5ds' total "$total")"
    echo "  scratch folder (logs, outputs): $SCRATCH"
    if [[ $rc -eq 0 ]]; then echo "  RESULT: PASSED"; else echo "  RESULT: FAILED (exit $rc)"; fi
    echo "============================================================"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(date +%s)
# Stop daemons a previous, killed run of this script may have left behind (their PID files are ours).
for pidfile in "$RUN/munged.pid" "$RUN/slurmctld.pid" "$RUN/slurmd.pid"; do
    if [[ -s $pidfile ]]; then
        old=$(cat "$pidfile")
        if kill -0 "$old" 2>/dev/null && grep -qaE 'munged|slurmctld|slurmd' "/proc/$old/cmdline" 2>/dev/null; then
            log "stopping $(basename "$pidfile" .pid) left over from an earlier run (PID $old)"
            stop_pid "$old" "$(basename "$pidfile" .pid)"
        fi
    fi
done
if [[ -f $SLURM_CONF_PATH ]] && ! head -n 1 "$SLURM_CONF_PATH" | grep -qF "$MARKER"; then
    fail "$SLURM_CONF_PATH exists and was not written by this test: this machine is configured as a real Slurm host; refusing to overwrite it"
fi
for port in 6817 6818; do
    if command -v ss >/dev/null 2>&1 && ss -ltn "sport = :$port" 2>/dev/null | grep -q LISTEN; then
        fail "TCP port $port (Slurm) is already in use by another process; stop it first"
    fi
done

# A fresh cluster every run: a node drained by an earlier bad config stays drained in the state.
rm -rf "$SCRATCH/state" "$SCRATCH/spool" "$SCRATCH/log" "$RUN"
mkdir -p "$SCRATCH/state" "$SCRATCH/spool" "$SCRATCH/log" "$RUN" "$MUNGE"
chmod 755 "$SCRATCH" "$MUNGE" # munged insists on a socket folder others can only read

# munge: its own key and socket, nothing shared with a system munged
[[ -s $MUNGE/munge.key ]] || mungekey --create --keyfile="$MUNGE/munge.key" >/dev/null
chmod 600 "$MUNGE/munge.key"
munged --foreground --force --key-file="$MUNGE/munge.key" --socket="$MUNGE/munge.socket" \
    --pid-file="$RUN/munged.pid" --log-file="$MUNGE/munged.log" --seed-file="$MUNGE/munged.seed" \
    >"$RUN/munged.out" 2>&1 &
PIDS+=($!)
PID_NAMES+=(munged)
for _ in $(seq 1 50); do [[ -S $MUNGE/munge.socket ]] && break; sleep 0.1; done
[[ -S $MUNGE/munge.socket ]] || { print_daemon_logs; fail "munged did not start"; }

# Node size. Memory is not enforced on this cluster (no cgroups), so the node advertises enough for
# the production requests in profiles/slurm (up to 24 GB per job) even on a small machine
# (SlurmdParameters=config_overrides accepts a node description larger than the hardware).
NCPU=$(nproc)
((NCPU < 2)) && NCPU=2 # two jobs side by side (profiles/slurm-ci: one thread each)
DETECTED_MB=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
MEM_MB=$((${DETECTED_MB:-0} * 85 / 100))
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
SlurmctldLogFile=$SCRATCH/log/slurmctld.log
SlurmdLogFile=$SCRATCH/log/slurmd.log
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
export SLURM_CONF=$SLURM_CONF_PATH

slurmctld -D >"$RUN/slurmctld.out" 2>&1 &
PIDS+=($!)
PID_NAMES+=(slurmctld)
slurmd -D >"$RUN/slurmd.out" 2>&1 &
PIDS+=($!)
PID_NAMES+=(slurmd)

state=""
for _ in $(seq 1 60); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1 || true)
    [[ $state == idle ]] && break
    for i in "${!PIDS[@]}"; do
        kill -0 "${PIDS[$i]}" 2>/dev/null || { print_daemon_logs; fail "${PID_NAMES[$i]} exited during start-up"; }
    done
    sleep 1
done
if [[ $state != idle ]]; then
    print_daemon_logs
    sinfo -N -l >&2 || true
    fail "node $HOST not idle after 60 s (state: '${state:-none}')"
fi
log "cluster up: node $HOST idle, $NCPU CPUs, ${MEM_MB} MB, gres $(sinfo -h -N -o %G), partition $PARTITION (daemon PIDs ${PIDS[*]})"
timing "start munge + slurm" $(($(date +%s) - t0))
SUMMARY+=("cluster: $(slurmctld -V), node $HOST, $NCPU CPUs, 1 fake GPU (gres.conf File=/dev/null)")

# --- helpers for the checks --------------------------------------------------------------------
# submissions LOG: "<snakemake jobid> <slurm jobid> <rule> <slurm log>" per sbatch submission,
# from the job headers ("rule X:" ... "jobid: N") and the plugin's "Job N has been submitted with
# SLURM jobid M (log: P)." lines.
submissions() {
    awk '
        /^(local)?(rule|checkpoint) [A-Za-z0-9_]+:$/ { rule = $2; sub(":", "", rule); next }
        /^    jobid: [0-9]+$/ { rule_of[$2] = rule; next }
        /has been submitted with SLURM jobid/ {
            match($0, /Job [0-9]+ has/); sj = substr($0, RSTART + 4, RLENGTH - 8)
            match($0, /SLURM jobid [0-9]+/); id = substr($0, RSTART + 12, RLENGTH - 12)
            match($0, /\(log: .*\)\.$/); lg = substr($0, RSTART + 6, RLENGTH - 8)
            print sj, id, (sj in rule_of ? rule_of[sj] : "?"), lg
        }' "$1"
}
# local_jobs LOG: the rule of every job run on the login node ("localrule X:")
local_jobs() { sed -n 's/^local\(rule\|checkpoint\) \([A-Za-z0-9_]*\):$/\2/p' "$1"; }
# planned_total DRYRUN_LOG: the "total" row of Snakemake's job stats
planned_total() { awk '/^total +[0-9]+$/ { print $2; exit }' "$1"; }
# planned_counts DRYRUN_LOG: "rule count" rows of the job stats
planned_counts() { awk '/^Job stats:/ { on = 1; next } on && /^total/ { exit } on && NF == 2 && $2 ~ /^[0-9]+$/ { print $1, $2 }' "$1"; }
in_list() { [[ " $2 " == *" $1 "* ]]; }

# check_jobs SUBMISSIONS_FILE "GPU RULES": each Slurm job COMPLETED with exit code 0, and asked for
# a GPU if and only if its rule is one of the GPU rules
check_jobs() {
    local gpu_rules=$2 id rule lg info jstate code tres gpu bad=0
    while read -r _ id rule lg; do
        info=$(scontrol -o show job "$id" 2>/dev/null || true)
        if [[ -z $info ]]; then
            # gone from slurmctld (MinJobAge passed): fall back to its log
            if grep -q "_job_complete: JobId=$id WEXITSTATUS 0" "$SCRATCH/log/slurmctld.log"; then
                jstate=COMPLETED code=0:0 tres="?"
            else
                echo "    job $id ($rule): unknown to slurmctld" >&2
                bad=1
                continue
            fi
        else
            jstate=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$info")
            code=$(sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p' <<<"$info")
            # what the job asked Slurm for: TRES (cpu, mem) plus TresPerJob/TresPerNode (gres:gpu:N)
            tres=$(grep -oE '(TimeLimit|TRES|TresPerJob|TresPerNode|TresPerTask)=[^ ]+' <<<"$info" | tr '\n' ' ')
        fi
        if [[ $tres == *gpu* ]]; then gpu=yes; else gpu=no; fi
        printf '    slurm job %-4s %-20s %-10s exit %-4s gpu %-3s %s\n' "$id" "$rule" "$jstate" "$code" "$gpu" "$tres"
        if [[ $jstate != COMPLETED || $code != 0:0 ]]; then
            echo "    -> job $id ($rule) did not complete successfully; its Slurm log: $lg" >&2
            bad=1
        fi
        if [[ $tres != "?" ]]; then
            if in_list "$rule" "$gpu_rules" && [[ $gpu != yes ]]; then
                echo "    -> GPU rule $rule ran without a GPU ($tres)" >&2
                bad=1
            elif ! in_list "$rule" "$gpu_rules" && [[ $gpu == yes ]]; then
                echo "    -> CPU rule $rule was given a GPU ($tres)" >&2
                bad=1
            fi
        fi
    done <"$1"
    return $bad
}

SM_CLUSTER=("$SNAKEMAKE" --profile profiles/slurm --profile profiles/slurm-ci)

# --- 3. the demo through Slurm -----------------------------------------------------------------
if in_list demo "$STEPS"; then
    t0=$(date +%s)
    rm -rf "$DEMO_DIR"
    mkdir -p "$DEMO_DIR"
    # Every output of the demo goes to the scratch folder: fresh each run (so every job runs and is
    # submitted), and neither the repository's results/ nor its resources/ is touched. The demo
    # archive's path is the dataset URL itself, so it moves too.
    cat >"$DEMO_DIR/ci-overlay.yaml" <<EOF
paths:
  results: $DEMO_DIR/results/demo
  resources: $DEMO_DIR/resources
  logs: $DEMO_DIR/logs/demo
  benchmarks: $DEMO_DIR/benchmarks/demo
dataset:
  url: $DEMO_DIR/resources/demo/imagenette-demo.tgz
EOF
    if [[ $FULL_DEMO != 1 ]]; then
        # Same jobs, fewer epochs: the 14 GPU jobs run one after another on the single fake GPU,
        # and the test is about the plumbing, not the accuracy (CNNSTUDY_SLURM_FULL_DEMO=1: as is).
        cat >>"$DEMO_DIR/ci-overlay.yaml" <<EOF
training:
  epochs: 2
  gradient_epochs: [1, 2]
transfer:
  training:
    epochs: 2
conv_stub:
  timing_repeats: 1
EOF
    fi
    # The user's command (profiles/default, which Snakemake adds by itself, included) plus: the
    # demo's config files, the redirection above, Slurm logs in the scratch folder, and --nolock
    # (the outputs are private to this run; a run killed by the timeout would leave a stale lock in
    # the repository's .snakemake/ that fails the next run).
    demo_args=("${SM_CLUSTER[@]}" --configfiles config.yaml profiles/demo/demo-config.yaml "$DEMO_DIR/ci-overlay.yaml"
        --slurm-logdir "$DEMO_DIR/slurm_logs" --nolock)
    log "demo, planned: ${demo_args[*]} -n"
    if ! timeout -s KILL 300 "${demo_args[@]}" -n >"$DEMO_DIR/dryrun.log" 2>&1; then
        tail -n 30 "$DEMO_DIR/dryrun.log" >&2
        fail "the demo cannot be planned with the SLURM profiles (log: $DEMO_DIR/dryrun.log)"
    fi
    total=$(planned_total "$DEMO_DIR/dryrun.log")
    [[ -n $total ]] || fail "no job stats in the dry run (log: $DEMO_DIR/dryrun.log)"
    log "planned $total jobs: $(planned_counts "$DEMO_DIR/dryrun.log" | tr '\n' ',' | sed 's/,$//; s/,/, /g')"

    log "demo, run (timeout ${DEMO_TIMEOUT}s; log: $DEMO_DIR/snakemake.log)"
    t1=$(date +%s)
    rc=0
    timeout -s KILL "$DEMO_TIMEOUT" "${demo_args[@]}" >"$DEMO_DIR/snakemake.log" 2>&1 || rc=$?
    timing "demo through Slurm" $(($(date +%s) - t1))
    if [[ $rc -ne 0 ]]; then
        tail -n 40 "$DEMO_DIR/snakemake.log" >&2
        [[ $rc -eq 137 ]] && fail "the demo did not finish within ${DEMO_TIMEOUT}s (killed)"
        fail "the demo failed through Slurm (exit $rc; log: $DEMO_DIR/snakemake.log)"
    fi

    submissions "$DEMO_DIR/snakemake.log" >"$DEMO_DIR/submissions.txt"
    local_jobs "$DEMO_DIR/snakemake.log" >"$DEMO_DIR/local_jobs.txt"
    n_sub=$(wc -l <"$DEMO_DIR/submissions.txt")
    n_local=$(wc -l <"$DEMO_DIR/local_jobs.txt")
    n_nonlocal_headers=$(grep -cE '^(rule|checkpoint) [A-Za-z0-9_]+:$' "$DEMO_DIR/snakemake.log" || true)
    log "demo: $total planned = $n_local local + $n_sub submitted with sbatch"
    while read -r r; do
        in_list "$r" "$EXPECTED_LOCAL_RULES" || fail "rule $r ran on the login node but is not one of the local rules ($EXPECTED_LOCAL_RULES)"
    done < <(sort -u "$DEMO_DIR/local_jobs.txt")
    ((n_sub > 0)) || fail "no job was submitted to Slurm"
    ((n_sub == n_nonlocal_headers)) || fail "$n_nonlocal_headers non-local jobs started but $n_sub submitted with sbatch"
    ((n_sub + n_local == total)) || fail "planned $total jobs, but $n_sub were submitted and $n_local ran locally"
    # rule by rule: planned (dry run) = submitted + run locally
    mismatch=$(awk 'FILENAME == ARGV[1] { plan[$1] = $2; next }
                    FILENAME == ARGV[2] { done[$3]++; next }
                    { done[$1]++ }
                    END { for (r in plan) if (plan[r] != done[r] + 0) printf "%s planned %d, ran %d; ", r, plan[r], done[r]
                          for (r in done) if (!(r in plan)) printf "%s ran %d, not planned; ", r, done[r] }' \
        <(planned_counts "$DEMO_DIR/dryrun.log") "$DEMO_DIR/submissions.txt" "$DEMO_DIR/local_jobs.txt")
    [[ -z $mismatch ]] || fail "jobs per rule differ from the plan: $mismatch"
    grep -qE '\b([0-9]+) of \1 steps \(100%\) done' "$DEMO_DIR/snakemake.log" || fail "Snakemake did not report all steps done"
    awk '$3 == "?"' "$DEMO_DIR/submissions.txt" | grep -q . && fail "could not tell the rule of some submitted jobs"
    echo "  the demo's Slurm jobs (scontrol show job):"
    check_jobs "$DEMO_DIR/submissions.txt" "$EXPECTED_GPU_RULES" || fail "some demo jobs did not complete, or got the wrong GPU request (see above)"
    # every job's Slurm log is there (profiles/slurm-ci keeps the logs of successful jobs)
    while read -r _ id rule lg; do
        [[ -s $lg ]] || fail "Slurm log of job $id ($rule) missing: $lg"
    done <"$DEMO_DIR/submissions.txt"
    gpu_jobs=$(awk -v g=" $EXPECTED_GPU_RULES " 'index(g, " " $3 " ")' "$DEMO_DIR/submissions.txt" | wc -l)
    per_rule=$(awk '{ print $3 }' "$DEMO_DIR/submissions.txt" | sort | uniq -c | awk '{ printf "%s%s=%d", sep, $2, $1; sep = " " }')
    SUMMARY+=("demo: $total jobs planned; $n_sub submitted with sbatch, all COMPLETED exit 0 ($per_rule)")
    SUMMARY+=("demo: $n_local local jobs ($(sort "$DEMO_DIR/local_jobs.txt" | uniq -c | awk '{ printf "%s%s=%d", sep, $2, $1; sep = " " }'))")
    SUMMARY+=("demo: $gpu_jobs GPU jobs ($EXPECTED_GPU_RULES) got gres/gpu=1, no other job did; Slurm job ids $(awk '{ print $2 }' "$DEMO_DIR/submissions.txt" | sort -n | sed -n '1p;$p' | paste -sd- -)")
    timing "demo total (plan, run, checks)" $(($(date +%s) - t0))
fi

# --- 4. failure and rerun ----------------------------------------------------------------------
if in_list failure "$STEPS"; then
    t0=$(date +%s)
    rm -rf "$FAIL_DIR"
    mkdir -p "$FAIL_DIR"
    # A -> B -> C; B fails the first time (no flag file yet); C needs a GPU and records what it got.
    cat >"$FAIL_DIR/Snakefile" <<'EOF'
# Throwaway workflow of tests/cluster/run_slurm_demo.sh: A -> B -> C, B fails on its first run.
rule all:
    input: "c.txt"

rule a:
    output: "a.txt"
    log: "logs/a.log"
    shell: 'echo "CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-unset}}" > {output} 2> {log}'

rule b:
    input: "a.txt"
    output: "b.txt"
    log: "logs/b.log"
    shell:
        """
        if [ ! -e b-failed-once.flag ]; then
            touch b-failed-once.flag
            echo "rule b fails on purpose (first run)" | tee {log} >&2
            exit 3
        fi
        cp {input} {output} 2> {log}
        """

rule c:
    input: "b.txt"
    output: "c.txt"
    log: "logs/c.log"
    resources: gpu=1
    shell: 'echo "CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-unset}}" > {output} 2> {log}'
EOF
    # its own config file replaces the demo's config files that profiles/slurm-ci names
    echo "failure_test: true" >"$FAIL_DIR/config.yaml"
    # run from inside the throwaway folder (the profiles by absolute path)
    fail_args=("$SNAKEMAKE" --profile "$REPO/profiles/slurm" --profile "$REPO/profiles/slurm-ci"
        --configfiles "$FAIL_DIR/config.yaml" --slurm-logdir "$FAIL_DIR/slurm_logs")
    unset CUDA_VISIBLE_DEVICES

    log "failure, first run (B must fail): ${fail_args[*]}"
    rc=0
    (cd "$FAIL_DIR" && timeout -s KILL "$FAIL_TIMEOUT" "${fail_args[@]}") >"$FAIL_DIR/run1.log" 2>&1 || rc=$?
    [[ $rc -eq 137 ]] && fail "first failure-test run killed after ${FAIL_TIMEOUT}s (log: $FAIL_DIR/run1.log)"
    ((rc != 0)) || fail "the first run succeeded although rule b fails (log: $FAIL_DIR/run1.log)"
    submissions "$FAIL_DIR/run1.log" >"$FAIL_DIR/submissions1.txt"
    b_line=$(awk '$3 == "b"' "$FAIL_DIR/submissions1.txt")
    [[ -n $b_line ]] || fail "rule b was not submitted in the first run (log: $FAIL_DIR/run1.log)"
    read -r _ b_id _ b_log <<<"$b_line"
    grep -qF "Error in rule b" "$FAIL_DIR/run1.log" || fail "no 'Error in rule b' in the first run's output"
    # the error report must name B's Slurm log, so a user can open it
    grep -A 20 "Error in rule b" "$FAIL_DIR/run1.log" | grep -qF "$b_log" \
        || fail "the error report of rule b does not name its Slurm log $b_log"
    if ! { [[ -s $b_log ]] && grep -qF "fails on purpose" "$b_log"; }; then
        fail "B's Slurm log $b_log is missing or lacks B's error output"
    fi
    b_state=$(scontrol -o show job "$b_id" | sed -n 's/.*JobState=\([A-Z_]*\).* ExitCode=\([0-9:]*\).*/\1 exit \2/p')
    [[ $b_state == FAILED* ]] || fail "Slurm job $b_id of rule b is not FAILED: $b_state"
    rules1=$(awk '{ print $3 }' "$FAIL_DIR/submissions1.txt" | sort | tr '\n' ' ')
    [[ $rules1 == "a b " ]] || fail "first run submitted rules '$rules1', expected 'a b'"
    log "first run: exit $rc; submitted: $rules1; B = Slurm job $b_id ($b_state), log named: $b_log"

    log "failure, rerun (only B and C may be submitted)"
    rc=0
    (cd "$FAIL_DIR" && timeout -s KILL "$FAIL_TIMEOUT" "${fail_args[@]}") >"$FAIL_DIR/run2.log" 2>&1 || rc=$?
    ((rc == 0)) || { tail -n 30 "$FAIL_DIR/run2.log" >&2; fail "the rerun failed (exit $rc; log: $FAIL_DIR/run2.log)"; }
    submissions "$FAIL_DIR/run2.log" >"$FAIL_DIR/submissions2.txt"
    rules2=$(awk '{ print $3 }' "$FAIL_DIR/submissions2.txt" | sort | tr '\n' ' ')
    [[ $rules2 == "b c " ]] || fail "the rerun submitted rules '$rules2', expected exactly 'b c'"
    echo "  the failure test's Slurm jobs (first run, then rerun; b's first job is the one that failed):"
    check_jobs <(grep -v " b " "$FAIL_DIR/submissions1.txt"; cat "$FAIL_DIR/submissions2.txt") c \
        || fail "failure-test jobs did not complete as expected"
    grep -qx "CUDA_VISIBLE_DEVICES=unset" "$FAIL_DIR/a.txt" || fail "CPU rule a saw a GPU: $(cat "$FAIL_DIR/a.txt")"
    grep -qE "^CUDA_VISIBLE_DEVICES=[0-9]" "$FAIL_DIR/c.txt" || fail "GPU rule c saw no GPU: $(cat "$FAIL_DIR/c.txt")"
    log "rerun: exit 0; submitted: $rules2; a.txt: $(cat "$FAIL_DIR/a.txt"); c.txt: $(cat "$FAIL_DIR/c.txt")"
    SUMMARY+=("failure: run 1 exit non-zero, submitted a b; b = Slurm job $b_id FAILED, its Slurm log named in the error: $b_log")
    SUMMARY+=("failure: rerun exit 0, submitted only b c; CPU job saw $(cat "$FAIL_DIR/a.txt"), GPU job saw $(cat "$FAIL_DIR/c.txt")")
    timing "failure + rerun" $(($(date +%s) - t0))
fi

SUMMARY+=("all checks passed")
