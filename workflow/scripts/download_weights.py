from pathlib import Path

from cnnstudy.base.jobs import start_job
from cnnstudy.train.weights import fetch_weights

start_job(snakemake)
cached = fetch_weights(snakemake.params.url, Path(snakemake.output[0]).parent, snakemake.params.sha256)
assert cached == Path(snakemake.output[0]), f"weights landed at {cached}, not {snakemake.output[0]}"
