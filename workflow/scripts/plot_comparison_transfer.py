from cnnstudy.jobs import start_job
from cnnstudy.plots import plot_comparison_transfer

start_job(snakemake)
models = snakemake.params.models
plot_comparison_transfer(
    dict(zip(models, snakemake.input.histories, strict=True)),
    dict(zip(models, snakemake.input.confusions, strict=True)),
    dict(zip(models, snakemake.input.metrics, strict=True)),
    snakemake.output[0],
)
