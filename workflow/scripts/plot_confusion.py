from cnnstudy.base.jobs import start_job
from cnnstudy.figures.per_model import plot_confusion

start_job(snakemake)
plot_confusion(snakemake.input.confusions, snakemake.input.metrics, snakemake.output[0])
