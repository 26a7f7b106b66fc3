from cnnstudy.jobs import start_job
from cnnstudy.plots import plot_confusion

start_job(snakemake)
plot_confusion(snakemake.input.confusions, snakemake.input.metrics, snakemake.output[0])
