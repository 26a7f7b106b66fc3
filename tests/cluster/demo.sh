# shellcheck shell=bash
# Part of tests/cluster/run_slurm_demo.sh (sourced: sets its globals, defines functions, runs
# nothing): the offline demo through Slurm, its checks, and its HTML report.
#
# The run is the demo shrunk to one model of each kind (CI has 25 minutes on 2 cores for everything):
# the `baseline` CNN and the `bn_frozen` ResNet-18, no sweep, 2 epochs, `device: auto` so that the
# GPU rules ask Slurm for a GPU (there is no CUDA here: they fall back to the CPU). That still runs
# every stage: the data, verify_conv_stub, train_cnn, finetune_resnet18 and evaluate (GPU), the
# per-model plots, the tables, check_claims, write_config, describe_run and `all`
# (plot_comparison_transfer needs the `combined` variant and is not planned).
# CNNSTUDY_SLURM_FULL_DEMO=1 runs the whole demo instead (its 6 variants, 2 modes, the sweep and its
# own epochs; 61 jobs, several times longer), also with `device: auto`.
#
# Snakemake runs in the scratch folder $DEMO_DIR, with the repository's Snakefile and profiles by
# absolute path, so every output (the config's relative paths), .snakemake/ and the Slurm logs land
# there: every job runs and is submitted each time, and the repository is not touched. It is also
# what makes the shrinking possible: run from the repository, the Snakefile's own
# `configfile: "config.yaml"` merges the study's five variants back in after the command line's
# config files (and the jobs on the nodes, which get no --replace-workflow-config, would do the same).
# Uses the entry point's globals: REPO, SCRATCH, FULL_DEMO, DEMO_TIMEOUT, SNAKEMAKE, SM_PYTHON,
# EXPECTED_LOCAL_RULES, EXPECTED_GPU_RULES.

DEMO_DIR=$SCRATCH/demo
DEMO_CONFIGFILES=() # set by write_demo_config
DEMO_ARGS=()        # the snakemake command line, set by run_demo
DEMO_TOTAL=0        # jobs planned by the dry run
# Every kind of job the shrunk run must still contain: a config change that drops one fails the test.
DEMO_REQUIRED_RULES="all make_demo_archive download_dataset prepare_dataset verify_conv_stub
    train_cnn finetune_resnet18 evaluate plot_confusion plot_curves plot_gradients plot_dead_units
    plot_comparison_accuracy plot_comparison_curves make_table make_per_class_table check_claims
    write_config describe_run"
DEMO_REPORT_MIN_BYTES=100000 # the report embeds every figure and table; an empty shell is far smaller

# write_demo_config: this run's config files, in $DEMO_DIR, so a person can rerun exactly them
write_demo_config() {
    if [[ $FULL_DEMO == 1 ]]; then
        cat >"$DEMO_DIR/ci-overlay.yaml" <<EOF
# tests/cluster/run_slurm_demo.sh, CNNSTUDY_SLURM_FULL_DEMO=1: the whole demo, its own epochs.
device: auto # the GPU rules ask for a GPU unless configured for the CPU; no CUDA here, so the CPU
EOF
        DEMO_CONFIGFILES=("$REPO/config.yaml" "$REPO/profiles/demo/demo-config.yaml" "$DEMO_DIR/ci-overlay.yaml")
        return 0
    fi
    # A later config file cannot remove what an earlier one set (snakemake.utils.update_config
    # merges mappings, and an empty mapping leaves a null as it is), so the removals are made on a
    # copy of the demo's config: its sweep dropped, its variants null so that the overlay's
    # variants replace config.yaml's five instead of adding to them.
    if ! "$SM_PYTHON" - "$REPO/profiles/demo/demo-config.yaml" >"$DEMO_DIR/demo-config.yaml" <<'EOF'; then
import sys

import yaml

with open(sys.argv[1]) as f:
    demo = yaml.safe_load(f)
demo.pop("sweeps", None)
demo.setdefault("cnn", {})["variants"] = None
print(f"# {sys.argv[1]} without its sweep and variants (tests/cluster/demo.sh)")
yaml.safe_dump(demo, sys.stdout, sort_keys=False)
EOF
        fail "could not write the shrunk copy of profiles/demo/demo-config.yaml with $SM_PYTHON"
    fi
    cat >"$DEMO_DIR/ci-overlay.yaml" <<EOF
# tests/cluster/run_slurm_demo.sh: the demo shrunk to one model of each kind, 2 epochs each.
device: auto # the GPU rules ask for a GPU unless configured for the CPU; no CUDA here, so the CPU
cnn:
  variants:
    baseline: {}
transfer:
  modes: [bn_frozen]
  training:
    epochs: 2
training:
  epochs: 2
  gradient_epochs: [1, 2]
conv_stub:
  timing_repeats: 1
EOF
    DEMO_CONFIGFILES=("$REPO/config.yaml" "$DEMO_DIR/demo-config.yaml" "$DEMO_DIR/ci-overlay.yaml")
}

# demo_snakemake TIMEOUT LOG ARGS...: the demo's command, from the scratch folder, killed (SIGKILL:
# the plugin can ignore SIGTERM while it polls) after TIMEOUT seconds; returns its exit status
demo_snakemake() {
    local limit=$1 out=$2
    shift 2
    (cd "$DEMO_DIR" && timeout -s KILL "$limit" "${DEMO_ARGS[@]}" "$@") >"$out" 2>&1
}

# demo_plan: the dry run is the reference the run is checked against, rule by rule
demo_plan() {
    local t0 rule missing="" dry=$DEMO_DIR/dryrun.log
    t0=$(date +%s)
    log "demo, planned: (cd $DEMO_DIR && ${DEMO_ARGS[*]} -n)"
    if ! demo_snakemake 300 "$dry" -n; then
        tail -n 30 "$dry" >&2
        fail "the demo cannot be planned with the SLURM profiles (log: $dry)"
    fi
    DEMO_TOTAL=$(planned_total "$dry")
    [[ -n $DEMO_TOTAL ]] || fail "no job stats in the dry run (log: $dry)"
    log "planned $DEMO_TOTAL jobs: $(planned_counts "$dry" | tr '\n' ',' | sed 's/,$//; s/,/, /g')"
    for rule in $DEMO_REQUIRED_RULES; do
        (($(planned_count "$dry" "$rule") > 0)) || missing+=" $rule"
    done
    [[ -z $missing ]] || fail "the demo's plan lacks jobs of:$missing (log: $dry)"
    if [[ $FULL_DEMO != 1 ]]; then
        (($(planned_count "$dry" train_cnn) == 1 && $(planned_count "$dry" finetune_resnet18) == 1)) \
            || fail "the shrunk demo should train one CNN and one ResNet-18 (log: $dry)"
        ! grep -qE '^[a-z_]*sweep[a-z_]* +[0-9]+$' "$dry" || fail "the shrunk demo should have no sweep (log: $dry)"
    fi
    timing "demo: plan (dry run)" "$(since "$t0")"
}

# demo_run: the run itself; a failure or the timeout ends the test with Snakemake's last lines
demo_run() {
    local t0 rc=0 out=$DEMO_DIR/snakemake.log
    t0=$(date +%s)
    log "demo, run (timeout ${DEMO_TIMEOUT}s; log: $out)"
    demo_snakemake "$DEMO_TIMEOUT" "$out" || rc=$?
    timing "demo: run through Slurm" "$(since "$t0")"
    if [[ $rc -ne 0 ]]; then
        tail -n 40 "$out" >&2
        [[ $rc -eq 137 ]] && fail "the demo did not finish within ${DEMO_TIMEOUT}s (killed)"
        fail "the demo failed through Slurm (exit $rc; log: $out)"
    fi
}

# demo_check: what the SLURM profile promises: every non-local job went through sbatch and
# completed, only the local rules ran locally, the GPU rules and only they got a GPU, and the run
# did exactly what the plan said
demo_check() {
    local t0 r n_sub n_local n_started mismatch gpu_jobs
    local sub=$DEMO_DIR/submissions.txt loc=$DEMO_DIR/local_jobs.txt
    t0=$(date +%s)
    submissions "$DEMO_DIR/snakemake.log" >"$sub"
    local_jobs "$DEMO_DIR/snakemake.log" >"$loc"
    n_sub=$(wc -l <"$sub")
    n_local=$(wc -l <"$loc")
    log "demo: $DEMO_TOTAL planned = $n_local local + $n_sub submitted with sbatch"
    while read -r r; do
        in_list "$r" "$EXPECTED_LOCAL_RULES" || fail "rule $r ran on the login node but is not one of the local rules ($EXPECTED_LOCAL_RULES)"
    done < <(sort -u "$loc")
    ((n_sub > 0)) || fail "no job was submitted to Slurm"
    n_started=$(nonlocal_headers "$DEMO_DIR/snakemake.log")
    ((n_sub == n_started)) || fail "$n_started non-local jobs started but $n_sub submitted with sbatch"
    ((n_sub + n_local == DEMO_TOTAL)) || fail "planned $DEMO_TOTAL jobs, but $n_sub were submitted and $n_local ran locally"
    mismatch=$(plan_mismatch "$DEMO_DIR/dryrun.log" "$sub" "$loc")
    [[ -z $mismatch ]] || fail "jobs per rule differ from the plan: $mismatch"
    grep -qE '\b([0-9]+) of \1 steps \(100%\) done' "$DEMO_DIR/snakemake.log" || fail "Snakemake did not report all steps done"
    ! awk '$3 == "?"' "$sub" | grep -q . || fail "could not tell the rule of some submitted jobs"
    echo "  the demo's Slurm jobs (scontrol show job):"
    check_jobs "$sub" "$EXPECTED_GPU_RULES" || fail "some demo jobs did not complete, or got the wrong GPU request (see above)"
    # every job's Slurm log is there (profiles/slurm-ci keeps the logs of successful jobs)
    while read -r _ id rule lg; do
        [[ -s $lg ]] || fail "Slurm log of job $id ($rule) missing: $lg"
    done <"$sub"
    gpu_jobs=$(awk -v g=" $EXPECTED_GPU_RULES " 'index(g, " " $3 " ")' "$sub" | wc -l)
    SUMMARY+=("demo: $DEMO_TOTAL jobs planned; $n_sub submitted with sbatch, all COMPLETED exit 0 ($(awk '{ print $3 }' "$sub" | count_by))")
    SUMMARY+=("demo: $n_local local jobs ($(count_by <"$loc"))")
    SUMMARY+=("demo: $gpu_jobs GPU jobs got gres/gpu=1, no other job did; Slurm job ids $(awk '{ print $2 }' "$sub" | sort -n | sed -n '1p;$p' | paste -sd- -)")
    timing "demo: checks" "$(since "$t0")"
}

# demo_report: `snakemake --report` with the same profiles and config files must build the HTML
# report from what the cluster's jobs wrote (the report rules' outputs and .snakemake's records)
demo_report() {
    local t0 size out=$DEMO_DIR/report.log html=$DEMO_DIR/report.html
    t0=$(date +%s)
    log "demo, report: ${DEMO_ARGS[*]} --report $html"
    if ! demo_snakemake 300 "$out" --report "$html"; then
        tail -n 30 "$out" >&2
        fail "snakemake --report failed on the demo's outputs (log: $out)"
    fi
    [[ -f $html ]] || fail "snakemake --report wrote no $html (log: $out)"
    size=$(stat -c %s "$html")
    ((size > DEMO_REPORT_MIN_BYTES)) || fail "the report $html has only $size bytes (expected > $DEMO_REPORT_MIN_BYTES; log: $out)"
    SUMMARY+=("demo: snakemake --report wrote $html ($((size / 1024)) kB)")
    timing "demo: report" "$(since "$t0")"
}

# run_demo: the demo through Slurm from a fresh scratch folder, then its checks and report
run_demo() {
    local t0
    t0=$(date +%s)
    rm -rf "$DEMO_DIR"
    mkdir -p "$DEMO_DIR"
    write_demo_config
    # The user's command (profiles/default, which Snakemake adds by itself, included) plus this
    # run's config files and its Slurm logs in the scratch folder.
    DEMO_ARGS=("$SNAKEMAKE" --snakefile "$REPO/Snakefile"
        --profile "$REPO/profiles/slurm" --profile "$REPO/profiles/slurm-ci"
        --configfiles "${DEMO_CONFIGFILES[@]}" --slurm-logdir "$DEMO_DIR/slurm_logs")
    demo_plan
    demo_run
    demo_check
    demo_report
    timing "demo total" "$(since "$t0")"
}
