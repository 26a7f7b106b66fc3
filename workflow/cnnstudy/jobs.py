"""What every rule script does first: send stderr and logging to the rule's log file."""

import logging
import sys


def start_job(snakemake):
    """Log to ``snakemake.log[0]``, so a failing job's traceback is in its log, not lost."""
    sys.stderr = open(snakemake.log[0], "w", buffering=1)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,  # the log file replaces any handler set up before
    )
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(snakemake.threads)
