#!/usr/bin/env bash
# The real SLURM test: the offline demo, shrunk to one model of each kind, through a single-node
# Slurm cluster on this machine, plus a failure-and-rerun test.
#
#   tests/cluster/run_slurm_demo.sh          (as root; `make test-cluster`)
#
# It runs these parts, one file each beside this one:
#   lib.sh      logging, timings, the summary, skip/fail; reading Snakemake's logs; asking Slurm
#   install.sh  1. installs Debian's slurmctld slurmd slurm-client munge (skipped when there)
#   cluster.sh  2. starts munged, slurmctld and slurmd from a scratch folder (one node, one fake GPU:
#                  gres.conf File=/dev/null; the config in /etc/slurm/slurm.conf, where srun inside
#                  jobs finds it); stops them by PID on any exit
#   demo.sh     3. runs the demo with `--profile profiles/slurm --profile profiles/slurm-ci`, shrunk
#                  to the baseline CNN and the bn_frozen ResNet-18, no sweep, 2 epochs, device: auto
#                  (23 jobs: 20 submitted, 4 of them with a GPU; 3 local), from the scratch folder;
#                  checks that every non-local job was submitted with sbatch and COMPLETED with exit
#                  code 0, that only the local rules ran locally, that the GPU rules and only they
#                  were given a GPU, and that the run matches the dry run rule by rule; then builds
#                  the HTML report with `snakemake --report` and checks its size
#   failure.sh  4. a throwaway A -> B -> C workflow whose B fails once: the run fails naming B's
#                  Slurm log, and the rerun submits only B and C
# and ends with a summary of the checks and the time each part took (RESULT: PASSED on success).
#
# Exit status:
#   0  every check passed; or the test was skipped (prints "SKIPPED: ..."): not root, or Slurm
#      not installed and not installable (no apt-get, or apt-get failed)
#   1  a check failed (the reason is printed last and in the summary); or a skip while
#      CNNSTUDY_SLURM_REQUIRED=1
#   130, 143  interrupted (INT, TERM); the cluster is stopped either way
# Idempotent: every run starts a fresh cluster and fresh outputs under the scratch folder.
#
# Environment:
#   CNNSTUDY_SLURM_REQUIRED=1  a skip fails (exit 1) instead of passing: CI sets it, so a test that
#                            stopped running cannot go unnoticed
#   CNNSTUDY_SLURM_DIR       scratch folder (default ${TMPDIR:-/tmp}/cnnstudy-slurm; wiped per run)
#   SNAKEMAKE                snakemake to use (default .venv/bin/snakemake, else the one on PATH)
#   CNNSTUDY_SLURM_STEPS     which parts to run: "demo failure" (default), or one of them
#   CNNSTUDY_SLURM_DEMO_TIMEOUT, CNNSTUDY_SLURM_FAIL_TIMEOUT   seconds (default 480, or 1500 with
#                            CNNSTUDY_SLURM_FULL_DEMO=1, and 240); the Snakemake runs are killed
#                            (SIGKILL) after that
#   CNNSTUDY_SLURM_KEEP=1    leave the cluster running at the end (stop it by the PIDs printed)
#   CNNSTUDY_SLURM_FULL_DEMO=1  the whole demo instead of the shrunk one: its 6 variants, 2 ResNet
#                            modes, the sweep and its own epochs, device: auto (61 jobs, several
#                            times longer); the same checks

set -euo pipefail

T_START=$(date +%s)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
cd "$REPO"

SCRATCH=${CNNSTUDY_SLURM_DIR:-${TMPDIR:-/tmp}/cnnstudy-slurm}
STEPS=${CNNSTUDY_SLURM_STEPS:-demo failure}
FULL_DEMO=${CNNSTUDY_SLURM_FULL_DEMO:-0}
if [[ $FULL_DEMO == 1 ]]; then DEMO_TIMEOUT=1500; else DEMO_TIMEOUT=480; fi # ~2x the measured run
DEMO_TIMEOUT=${CNNSTUDY_SLURM_DEMO_TIMEOUT:-$DEMO_TIMEOUT}
FAIL_TIMEOUT=${CNNSTUDY_SLURM_FAIL_TIMEOUT:-240}
KEEP=${CNNSTUDY_SLURM_KEEP:-0}
REQUIRED=${CNNSTUDY_SLURM_REQUIRED:-0}
PARTITION=debug # must match slurm_partition in profiles/slurm-ci/config.yaml
SLURM_CONF_PATH=/etc/slurm/slurm.conf
MARKER="# cnnstudy single-node test cluster (tests/cluster/run_slurm_demo.sh)"

# The workflow's contract: rules run on the login node, and rules that need a GPU (when not
# configured for the CPU). Every other rule must be submitted to Slurm without a GPU.
EXPECTED_LOCAL_RULES="all make_demo_archive download_dataset download_weights"
EXPECTED_GPU_RULES="train_cnn finetune_resnet18 evaluate train_sweep_point evaluate_sweep_point inspect_model"

# shellcheck source=tests/cluster/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/cluster/install.sh
source "$HERE/install.sh"
# shellcheck source=tests/cluster/cluster.sh
source "$HERE/cluster.sh"
# shellcheck source=tests/cluster/demo.sh
source "$HERE/demo.sh"
# shellcheck source=tests/cluster/failure.sh
source "$HERE/failure.sh"

# on_exit: whatever happened, stop what this test started, then say what it found
on_exit() {
    local rc=$?
    set +e
    stop_cluster
    print_summary "$rc"
    exit "$rc"
}

# check_preconditions: root (packages, daemons, /etc/slurm), a snakemake with the SLURM executor
# plugin, and known step names, before anything is installed or started
check_preconditions() {
    local step
    [[ $(id -u) -eq 0 ]] || skip "the SLURM test installs packages and starts Slurm daemons; run it as root."
    for step in $STEPS; do
        in_list "$step" "demo failure" || fail "CNNSTUDY_SLURM_STEPS: unknown step '$step' (known: demo failure)"
    done
    if [[ -z ${SNAKEMAKE:-} ]]; then
        if [[ -x $REPO/.venv/bin/snakemake ]]; then
            SNAKEMAKE=$REPO/.venv/bin/snakemake
        else
            SNAKEMAKE=$(command -v snakemake || true)
        fi
    fi
    [[ -n $SNAKEMAKE ]] || fail "no snakemake found (create .venv: pip install -r requirements-cluster.txt, or set SNAKEMAKE)"
    if [[ $SNAKEMAKE == */* ]]; then # absolute: both runs start in the scratch folder
        SNAKEMAKE="$(cd "$(dirname "$SNAKEMAKE")" && pwd)/$(basename "$SNAKEMAKE")"
    fi
    # snakemake's own interpreter: it has the plugin (or not) and PyYAML (demo.sh writes YAML with it)
    SM_PYTHON=$(dirname "$SNAKEMAKE")/python
    [[ -x $SM_PYTHON ]] || SM_PYTHON=$(head -n 1 "$(command -v "$SNAKEMAKE")" | sed -n 's/^#! *\([^ ]*\).*/\1/p')
    if [[ -x $SM_PYTHON ]]; then
        "$SM_PYTHON" -c "import snakemake_executor_plugin_slurm" 2>/dev/null \
            || fail "$SNAKEMAKE has no SLURM executor plugin: pip install -r requirements-cluster.txt"
    else
        SM_PYTHON=python3 # a wrapper we cannot see into: the runs will tell
    fi
}

trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

check_preconditions
mkdir -p "$SCRATCH"
install_packages
start_cluster
if in_list demo "$STEPS"; then run_demo; fi
if in_list failure "$STEPS"; then run_failure_test; fi
SUMMARY+=("all checks passed")
