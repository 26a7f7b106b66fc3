from cnnstudy.jobs import start_job
from cnnstudy.plots import plot_dead_units

start_job(snakemake)
plot_dead_units(
    dict(zip(snakemake.params.models, snakemake.input.histories, strict=True)), snakemake.output[0]
)
