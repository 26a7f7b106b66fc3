"""After a failed run: each failed job and the one line that says why, repeated at the very end.

Snakemake prints a failure when it happens (with the job's log, as the profile asks), then lets the jobs
still running finish, so their work is kept; their output, and its own "message: None" lines, bury the
one line that matters. The Snakefile's ``onerror`` calls ``repeat_failures`` with Snakemake's log file,
and this module reads the failures back from it: the rule, its wildcards, its log files, and from those
logs the cause (a StudyError's "ERROR: …" line, a logged error, or a traceback's exception line).

Only the main Snakemake process reads this, after the run; no rule script imports it, so no result
depends on it (``codeversion`` never sees it).
"""

import os
import re
from pathlib import Path
from typing import NamedTuple

# Snakemake's console (and log file) blocks: a job as it starts, and a job that failed.
JOB_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
JOB_ERROR = re.compile(r"^Error in rule (\S+):$")
DETAIL = re.compile(r"^    (\w+): ?(.*)$")
LOG_HINT = " (check log file(s) for error details)"
# How the job's process ended, as Snakemake reports it when the job's log says nothing.
EXIT = re.compile(r"(returned non-zero exit status -?\d+|died with <Signals\.\w+: \d+>)")

# Lines of a job's log that say why it failed, the last one counting:
CAUSES = (
    re.compile(r"^ERROR: "),  # a StudyError (base.jobs logs it so, without a traceback)
    re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?:ERROR|CRITICAL) "),  # a logged error
    re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)\b"),  # a traceback's last line
)
# Repeated on the console, so a cause is cut to what a terminal shows in a few lines; the log has it all.
LONGEST_CAUSE = 600


class Failure(NamedTuple):
    rule: str
    wildcards: str  # "model=baseline, seed_suffix=" as Snakemake printed them; "" for none
    logs: list  # the job's log files, as the rule names them
    exit: str  # how Snakemake saw the process end ("returned non-zero exit status 1"); "" if not said


def _log_paths(snakemake_log):
    """``onerror``'s ``log``: a path in Snakemake 8, a list of paths in 9 (empty without a log file)."""
    if not snakemake_log:
        return []
    if isinstance(snakemake_log, str | os.PathLike):
        return [Path(snakemake_log)]
    return [Path(path) for path in snakemake_log]


def _details(lines, start):
    """The indented ``key: value`` lines of the block that opens at ``start``."""
    details = {}
    for line in lines[start + 1 :]:
        match = DETAIL.match(line)
        if not match:
            break
        details.setdefault(match.group(1), match.group(2))
    return details


def failed_jobs(snakemake_log_text):
    """Every job that failed in this Snakemake log, in the order they failed (each once)."""
    lines = snakemake_log_text.splitlines()
    wildcards, failures, exit_status = {}, {}, ""
    for index, line in enumerate(lines):
        if JOB_START.match(line):
            details = _details(lines, index)
            wildcards[details.get("jobid")] = details.get("wildcards", "")
        elif ended := EXIT.search(line):
            exit_status = ended.group(1)  # Snakemake prints it just before the job's error block
        elif failed := JOB_ERROR.match(line):
            details = _details(lines, index)
            jobid = details.get("jobid")
            logs = details.get("log", "").removesuffix(LOG_HINT)
            failures.pop(jobid, None)  # a job retried (--retries) and failed again: its last failure
            failures[jobid] = Failure(
                failed.group(1),
                wildcards.get(jobid, ""),
                [path for path in logs.split(", ") if path],
                exit_status,
            )
            exit_status = ""
    return list(failures.values())


def cause(job_log):
    """The last line of ``job_log`` that says why the job failed, or None (no such line, no log)."""
    try:
        lines = Path(job_log).read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if any(pattern.match(line) for pattern in CAUSES):
            line = line.strip()
            return line if len(line) <= LONGEST_CAUSE else line[: LONGEST_CAUSE - 1] + "…"
    return None


def _why(failure, workdir):
    """The job's cause from the first of its logs that states one; else what is known instead."""
    for log in failure.logs:
        if found := cause(Path(workdir, log)):
            return found
    if not failure.logs:
        return "the rule has no log: its error is on the console above"
    ended = f" (the job's process {failure.exit})" if failure.exit else ""
    return f"no error line in its log{ended}; the console above may show more"


def failure_summary(snakemake_log, workdir="."):
    """The text that ends a failed run's console: each failed job, its log files and the line that says
    why. Empty when Snakemake's log names no failed job (a failure before any job started says so
    itself). Relative job log paths are read from ``workdir``, Snakemake's working directory."""
    failures = []
    for path in _log_paths(snakemake_log):
        try:
            failures += failed_jobs(path.read_text(errors="replace"))
        except OSError:
            continue
    if not failures:
        return ""
    jobs = "1 job" if len(failures) == 1 else f"{len(failures)} jobs"
    lines = [f"The run stopped: {jobs} failed (repeated here from above)."]
    for failure in failures:
        which = f" ({failure.wildcards})" if failure.wildcards else ""
        lines.append(f"  rule {failure.rule}{which}, log: {', '.join(failure.logs) or 'none'}")
        lines.append(f"    {_why(failure, workdir)}")
    lines.append(
        "Fix the cause and run the same command again: finished jobs are kept, and training continues "
        "from its last finished epoch."
    )
    return "\n".join(lines)


def repeat_failures(snakemake_log, workdir="."):
    """``onerror``: write the failure summary as Snakemake's last error, after the jobs that were still
    running have ended, so the cause is the last thing on the console (and in Snakemake's log)."""
    summary = failure_summary(snakemake_log, workdir)
    if summary:
        from snakemake.logging import logger  # only here: the package imports without Snakemake

        logger.error(summary)
    return summary
