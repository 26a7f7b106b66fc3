from cnnstudy.base.jobs import start_job
from cnnstudy.figures.comparison import plot_dead_units

start_job(snakemake)
plot_dead_units(
    snakemake.input.histories, snakemake.input.summaries, snakemake.params.models, snakemake.output[0]
)
