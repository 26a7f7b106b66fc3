from cnnstudy.base.jobs import start_job
from cnnstudy.figures.per_model import plot_curves

start_job(snakemake)
plot_curves(snakemake.input.histories, snakemake.input.summaries, snakemake.output[0])
