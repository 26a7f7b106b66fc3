# shellcheck shell=bash
# Part of tests/cluster/run_slurm_demo.sh (sourced: sets its globals, defines functions, runs
# nothing): logging, timings, the summary, skip/fail, and the helpers that read Snakemake's output
# and ask Slurm about jobs.
# Uses the entry point's globals: T_START, REQUIRED, SCRATCH, SLURM_LOG_DIR.

TIMINGS=() # "what  seconds" rows of the summary
SUMMARY=() # result lines of the summary
SKIPPED="" # the reason, once the test decided it cannot run here

# log MESSAGE: a line with the clock and the seconds since the start, to follow a slow CI run
log() { printf '[%s +%4ds] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - T_START))" "$*"; }

# since T0: seconds elapsed since T0 (from `date +%s`), for the timings
since() { echo $(($(date +%s) - $1)); }

# timing WHAT SECONDS: a row of the summary's timings, so CI shows where its minutes went
timing() { TIMINGS+=("$(printf '%-36s %5ds' "$1" "$2")"); }

# fail REASON: a check failed; the reason is printed last and again in the summary (exit 1)
fail() {
    log "FAILED: $*"
    SUMMARY+=("FAILED: $*")
    exit 1
}

# skip REASON: this machine cannot run the test. Not an error for a person (exit 0), but CI sets
# CNNSTUDY_SLURM_REQUIRED=1 so that a test that silently stopped running fails the build (exit 1).
skip() {
    echo "SKIPPED: $*"
    SKIPPED=$*
    if [[ $REQUIRED == 1 ]]; then
        echo "CNNSTUDY_SLURM_REQUIRED=1: a skipped SLURM test is a failure (exit 1)." >&2
        SUMMARY+=("SKIPPED: $* (CNNSTUDY_SLURM_REQUIRED=1: counted as a failure)")
        exit 1
    fi
    SUMMARY+=("SKIPPED: $*")
    exit 0
}

# print_summary EXIT_STATUS: what was checked, where the time went, and the verdict, in one block
print_summary() {
    local rc=$1 line
    echo
    echo "==================== SLURM test summary ===================="
    for line in "${SUMMARY[@]}"; do echo "  $line"; done
    echo "  timings:"
    for line in "${TIMINGS[@]}"; do echo "    $line"; done
    echo "    $(printf '%-36s %5ds' total "$(since "$T_START")")"
    echo "  scratch folder (logs, outputs): $SCRATCH"
    if [[ $rc -eq 0 && -n $SKIPPED ]]; then
        echo "  RESULT: SKIPPED (exit 0; CNNSTUDY_SLURM_REQUIRED=1 makes a skip fail)"
    elif [[ $rc -eq 0 ]]; then
        echo "  RESULT: PASSED"
    else
        echo "  RESULT: FAILED (exit $rc)"
    fi
    echo "============================================================"
}

# in_list WORD "LIST": whether WORD is one of the space-separated LIST, for rule-name checks
in_list() { [[ " $2 " == *" $1 "* ]]; }

# --- reading Snakemake's output ----------------------------------------------------------------

# submissions LOG: "<snakemake jobid> <slurm jobid> <rule> <slurm log>" per sbatch submission, from
# the job headers ("rule X:" ... "jobid: N") and the plugin's "Job N has been submitted with SLURM
# jobid M (log: P)." lines: the only record of which rule each Slurm job ran
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

# local_jobs LOG: the rule of every job run on the login node ("localrule X:"), to check that only
# the local rules did
local_jobs() { sed -n 's/^local\(rule\|checkpoint\) \([A-Za-z0-9_]*\):$/\2/p' "$1"; }

# nonlocal_headers LOG: how many non-local jobs Snakemake started, each of which must be an sbatch
nonlocal_headers() { grep -cE '^(rule|checkpoint) [A-Za-z0-9_]+:$' "$1" || true; }

# planned_total DRYRUN_LOG: the "total" row of Snakemake's job stats
planned_total() { awk '/^total +[0-9]+$/ { print $2; exit }' "$1"; }

# planned_counts DRYRUN_LOG: "rule count" rows of the job stats, the plan to compare the run with
planned_counts() {
    awk '/^Job stats:/ { on = 1; next } on && /^total/ { exit }
         on && NF == 2 && $2 ~ /^[0-9]+$/ { print $1, $2 }' "$1"
}

# planned_count DRYRUN_LOG RULE: how many jobs of RULE the plan has (0 if none)
planned_count() { planned_counts "$1" | awk -v r="$2" '$1 == r { n = $2 } END { print n + 0 }'; }

# plan_mismatch DRYRUN_LOG SUBMISSIONS LOCAL_JOBS: per rule, where planned differs from submitted +
# run locally (empty when they agree), so a job that ran twice or not at all cannot hide in a total
plan_mismatch() {
    awk 'FILENAME == ARGV[1] { plan[$1] = $2; next }
         FILENAME == ARGV[2] { done[$3]++; next }
         { done[$1]++ }
         END { for (r in plan) if (plan[r] != done[r] + 0) printf "%s planned %d, ran %d; ", r, plan[r], done[r]
               for (r in done) if (!(r in plan)) printf "%s ran %d, not planned; ", r, done[r] }' \
        <(planned_counts "$1") "$2" "$3"
}

# count_by < NAMES: "name=n name=n" from one name per line, for one-line summaries
count_by() { sort | uniq -c | awk '{ printf "%s%s=%d", sep, $2, $1; sep = " " }'; }

# --- asking Slurm ------------------------------------------------------------------------------

# check_jobs SUBMISSIONS_FILE "GPU RULES": each Slurm job COMPLETED with exit code 0, and asked for
# a GPU if and only if its rule is one of the GPU rules: the contract the SLURM profile must keep
check_jobs() {
    local gpu_rules=$2 id rule lg info jstate code tres gpu bad=0
    while read -r _ id rule lg; do
        info=$(scontrol -o show job "$id" 2>/dev/null || true)
        if [[ -z $info ]]; then
            # gone from slurmctld (MinJobAge passed): fall back to its log
            if grep -q "_job_complete: JobId=$id WEXITSTATUS 0" "$SLURM_LOG_DIR/slurmctld.log"; then
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
        printf '    slurm job %-4s %-22s %-10s exit %-4s gpu %-3s %s\n' "$id" "$rule" "$jstate" "$code" "$gpu" "$tres"
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
