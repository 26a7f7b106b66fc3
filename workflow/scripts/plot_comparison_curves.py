from cnnstudy.jobs import start_job
from cnnstudy.plots import plot_comparison_curves

start_job(snakemake)
plot_comparison_curves(
    dict(zip(snakemake.params.models, snakemake.input.histories, strict=True)), snakemake.output[0]
)
