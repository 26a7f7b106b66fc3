from cnnstudy.base.jobs import run_settings, start_job
from cnnstudy.figures.inside import inspect_job

start_job(snakemake)
inspect_job(
    snakemake.input.checkpoint,
    snakemake.input.test,
    snakemake.input.predictions,
    outputs=dict(snakemake.output.items()),
    settings=run_settings(snakemake.config),
    weights=snakemake.input.weights,
    weights_sha256=snakemake.params.weights_sha256,
)
