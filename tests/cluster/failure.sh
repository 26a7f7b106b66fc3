# shellcheck shell=bash
# Part of tests/cluster/run_slurm_demo.sh (sourced: sets its globals, defines functions, runs
# nothing): what a user sees when a job fails on the cluster, with a throwaway A -> B -> C workflow
# whose B fails on its first run and whose C asks for a GPU. The first run must fail and name B's
# Slurm log; the rerun must submit only B and C; A (CPU) must see no GPU and C must see one.
# Uses the entry point's globals: REPO, SCRATCH, FAIL_TIMEOUT, SNAKEMAKE.

FAIL_DIR=$SCRATCH/failure
FAIL_ARGS=() # the snakemake command line, set by run_failure_test

# write_failure_workflow: the throwaway workflow and its config, in $FAIL_DIR
write_failure_workflow() {
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
}

# failure_snakemake LOG: one run of the throwaway workflow from its folder (the profiles by absolute
# path), killed after FAIL_TIMEOUT seconds; returns its exit status
failure_snakemake() {
    (cd "$FAIL_DIR" && timeout -s KILL "$FAIL_TIMEOUT" "${FAIL_ARGS[@]}") >"$1" 2>&1
}

# failure_first_run: B fails; the run must stop with an error that names B's Slurm log, which must
# hold B's message, so a user can find out why
failure_first_run() {
    local rc=0 b_line b_id b_log b_state rules1 out=$FAIL_DIR/run1.log
    log "failure, first run (B must fail): ${FAIL_ARGS[*]}"
    failure_snakemake "$out" || rc=$?
    [[ $rc -eq 137 ]] && fail "first failure-test run killed after ${FAIL_TIMEOUT}s (log: $out)"
    ((rc != 0)) || fail "the first run succeeded although rule b fails (log: $out)"
    submissions "$out" >"$FAIL_DIR/submissions1.txt"
    b_line=$(awk '$3 == "b"' "$FAIL_DIR/submissions1.txt")
    [[ -n $b_line ]] || fail "rule b was not submitted in the first run (log: $out)"
    read -r _ b_id _ b_log <<<"$b_line"
    grep -qF "Error in rule b" "$out" || fail "no 'Error in rule b' in the first run's output"
    grep -A 20 "Error in rule b" "$out" | grep -qF "$b_log" \
        || fail "the error report of rule b does not name its Slurm log $b_log"
    if ! { [[ -s $b_log ]] && grep -qF "fails on purpose" "$b_log"; }; then
        fail "B's Slurm log $b_log is missing or lacks B's error output"
    fi
    b_state=$(scontrol -o show job "$b_id" | sed -n 's/.*JobState=\([A-Z_]*\).* ExitCode=\([0-9:]*\).*/\1 exit \2/p')
    [[ $b_state == FAILED* ]] || fail "Slurm job $b_id of rule b is not FAILED: $b_state"
    rules1=$(awk '{ print $3 }' "$FAIL_DIR/submissions1.txt" | sort | tr '\n' ' ')
    [[ $rules1 == "a b " ]] || fail "first run submitted rules '$rules1', expected 'a b'"
    log "first run: exit $rc; submitted: $rules1; B = Slurm job $b_id ($b_state), log named: $b_log"
    SUMMARY+=("failure: run 1 exit non-zero, submitted a b; b = Slurm job $b_id FAILED, its Slurm log named in the error: $b_log")
}

# failure_rerun: the same command again must redo only the failed job and what depends on it, and
# Slurm must hand the GPU to the GPU rule only
failure_rerun() {
    local rc=0 rules2 out=$FAIL_DIR/run2.log
    log "failure, rerun (only B and C may be submitted)"
    failure_snakemake "$out" || rc=$?
    ((rc == 0)) || {
        tail -n 30 "$out" >&2
        fail "the rerun failed (exit $rc; log: $out)"
    }
    submissions "$out" >"$FAIL_DIR/submissions2.txt"
    rules2=$(awk '{ print $3 }' "$FAIL_DIR/submissions2.txt" | sort | tr '\n' ' ')
    [[ $rules2 == "b c " ]] || fail "the rerun submitted rules '$rules2', expected exactly 'b c'"
    echo "  the failure test's Slurm jobs (first run, then rerun; b's first job is the one that failed):"
    check_jobs <(
        grep -v " b " "$FAIL_DIR/submissions1.txt" || true
        cat "$FAIL_DIR/submissions2.txt"
    ) c \
        || fail "failure-test jobs did not complete as expected"
    grep -qx "CUDA_VISIBLE_DEVICES=unset" "$FAIL_DIR/a.txt" || fail "CPU rule a saw a GPU: $(cat "$FAIL_DIR/a.txt")"
    grep -qE "^CUDA_VISIBLE_DEVICES=[0-9]" "$FAIL_DIR/c.txt" || fail "GPU rule c saw no GPU: $(cat "$FAIL_DIR/c.txt")"
    log "rerun: exit 0; submitted: $rules2; a.txt: $(cat "$FAIL_DIR/a.txt"); c.txt: $(cat "$FAIL_DIR/c.txt")"
    SUMMARY+=("failure: rerun exit 0, submitted only b c; CPU job saw $(cat "$FAIL_DIR/a.txt"), GPU job saw $(cat "$FAIL_DIR/c.txt")")
}

# run_failure_test: both runs from a fresh folder
run_failure_test() {
    local t0
    t0=$(date +%s)
    rm -rf "$FAIL_DIR"
    mkdir -p "$FAIL_DIR"
    write_failure_workflow
    FAIL_ARGS=("$SNAKEMAKE" --profile "$REPO/profiles/slurm" --profile "$REPO/profiles/slurm-ci"
        --configfiles "$FAIL_DIR/config.yaml" --slurm-logdir "$FAIL_DIR/slurm_logs")
    # a GPU the caller's shell pins must not leak into the jobs' view of what Slurm gave them
    unset CUDA_VISIBLE_DEVICES
    failure_first_run
    failure_rerun
    timing "failure + rerun" "$(since "$t0")"
}
