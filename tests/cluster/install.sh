# shellcheck shell=bash
# Part of tests/cluster/run_slurm_demo.sh (sourced: sets its globals, defines functions, runs
# nothing): Debian's Slurm and munge.
# Uses the entry point's globals: SCRATCH.

SLURM_PACKAGES="slurmctld slurmd slurm-client munge"

# install_packages: the test needs real Slurm daemons; install them unless every command is there.
# A machine that cannot install them skips the test (see skip in lib.sh).
install_packages() {
    local t0 cmd need_install=0 own_policy=0 ok=0
    t0=$(date +%s)
    for cmd in slurmctld slurmd sbatch squeue scontrol sinfo munged mungekey; do
        command -v "$cmd" >/dev/null 2>&1 || need_install=1
    done
    if [[ $need_install -eq 0 ]]; then
        log "Slurm and munge already installed: $(slurmctld -V 2>/dev/null || echo '?')"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 \
        || skip "Slurm is not installed and there is no apt-get to install it (Debian/Ubuntu only)."
    log "installing $SLURM_PACKAGES (apt-get, quiet; log: $SCRATCH/apt.log)"
    # Keep the packages' init scripts from starting system daemons with the default config.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
    fi
    apt_install && ok=1
    if [[ $ok -eq 0 ]]; then # stale package lists: update once, then try again
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$SCRATCH/apt.log" 2>&1 && apt_install && ok=1
    fi
    if [[ $own_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
    if [[ $ok -eq 0 ]]; then
        tail -n 5 "$SCRATCH/apt.log" >&2 || true
        skip "could not install the Debian packages $SLURM_PACKAGES (see $SCRATCH/apt.log)."
    fi
    timing "install packages" "$(since "$t0")"
}

# apt_install: one quiet, non-interactive attempt (no recommends: ~12 s instead of minutes)
apt_install() {
    # shellcheck disable=SC2086 # the package list is meant to split
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        $SLURM_PACKAGES >>"$SCRATCH/apt.log" 2>&1
}
