from cnnstudy.base.jobs import start_job
from cnnstudy.figures.gradients import plot_gradients

start_job(snakemake)
plot_gradients(snakemake.input.gradients, snakemake.input.summary, snakemake.output[0])
