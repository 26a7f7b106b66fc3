"""What every rule script does first: log to the rule's log file, and read how the job should run."""

import atexit
import logging
import sys
import traceback

RUN_SETTING_KEYS = ("eval_batch_size", "compile")  # under `training`; with `device`, they change no result


class StudyError(Exception):
    """A problem the user can fix, with a message that says how: logged without a traceback."""


def _log_uncaught(kind, error, trace):
    if isinstance(error, StudyError):
        print(f"ERROR: {error}", file=sys.stderr)
    else:
        traceback.print_exception(kind, error, trace, file=sys.stderr)


def _log_peak_memory():
    """Every job's log ends with its own peak memory: Snakemake's sampled max_rss misses short peaks."""
    from .memory import peak_rss_mb

    logging.getLogger(__name__).info("peak memory (ru_maxrss): %.0f MB", peak_rss_mb())


def start_job(snakemake):
    """Log to ``snakemake.log[0]``, so a failing job's message is in its log (Snakemake shows failed logs)."""
    sys.stderr = open(snakemake.log[0], "w", buffering=1)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,  # the log file replaces any handler set up before
    )
    sys.excepthook = _log_uncaught
    atexit.register(_log_peak_memory)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(snakemake.threads)


def run_settings(config):
    """How a job runs, never what it computes: read from the config, not from rule params, so that
    changing these settings reruns no job (Snakemake reruns a job when one of its params changes).
    ``tensorboard``: the folder of the live training curves, or None when they are off.
    ``gpu_wait_minutes``: how long a job waits for a GPU that other jobs hold (0: no limit)."""
    tensorboard = f"{config['paths']['results']}/tensorboard" if config["tensorboard"] else None
    return {
        "device": config["device"],
        "tensorboard": tensorboard,
        "gpu_wait_minutes": config["gpu_wait_minutes"],
        **{key: config["training"][key] for key in RUN_SETTING_KEYS},
    }


def data_needs(config):
    """The most images any configured model takes at once from each split, keyed by the config key to
    change: prepare_dataset checks them before decoding anything."""
    batch_sizes = [config["training"]["batch_size"], config["transfer"]["training"].get("batch_size", 0)]
    batch_sizes += [variant.get("batch_size", 0) for variant in config["cnn"]["variants"].values()]
    batch_sizes += [
        value for sweep in config["sweeps"].values() for value in sweep["grid"].get("batch_size", [])
    ]
    probe_sizes = [config["cnn"]["probe_size"]]
    probe_sizes += [variant.get("probe_size", 0) for variant in config["cnn"]["variants"].values()]
    probe_sizes += [
        value for sweep in config["sweeps"].values() for value in sweep["grid"].get("probe_size", [])
    ]
    return {"training.batch_size": max(batch_sizes), "cnn.probe_size": max(probe_sizes)}
