from cnnstudy.jobs import start_job
from cnnstudy.plots import plot_comparison_accuracy

start_job(snakemake)
plot_comparison_accuracy(
    dict(zip(snakemake.params.models, snakemake.input.metrics, strict=True)),
    snakemake.params.reported,
    snakemake.params.target,
    snakemake.output[0],
)
