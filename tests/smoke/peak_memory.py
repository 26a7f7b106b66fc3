"""The peak memory of every job of a run, from the last line each job writes to its log.

    python tests/smoke/peak_memory.py LOG_DIR

Each rule script logs ``peak memory (ru_maxrss): N MB`` as it exits (cnnstudy.base.jobs); training and
evaluation also keep it in summary.json and metrics.json. Prints one row per job, largest first.
"""

import re
import sys
from pathlib import Path

PEAK = re.compile(r"peak memory \(ru_maxrss\): (\d+) MB")


def main(log_dir):
    rows = []
    for log in sorted(Path(log_dir).rglob("*.log")):
        found = PEAK.findall(log.read_text(errors="replace"))
        if found:
            rows.append((int(found[-1]), log.relative_to(log_dir).with_suffix("").as_posix()))
    if not rows:
        print(f"no job log under {log_dir} records its peak memory")
        return 1
    print(f"{'job':60} {'peak memory (MB)':>17}")
    for peak, job in sorted(rows, reverse=True):
        print(f"{job:60} {peak:17,}")
    print(f"{len(rows)} jobs; largest peak {rows and max(rows)[0]:,} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
