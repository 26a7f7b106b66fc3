from cnnstudy.jobs import start_job
from cnnstudy.plots import plot_curves

start_job(snakemake)
plot_curves(snakemake.input.histories, snakemake.input.summaries, snakemake.output[0])
