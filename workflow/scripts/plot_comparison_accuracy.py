from cnnstudy.base.jobs import start_job
from cnnstudy.figures.comparison import plot_comparison_accuracy

start_job(snakemake)
plot_comparison_accuracy(
    snakemake.input.metrics, snakemake.params.models, snakemake.params.study, snakemake.output[0]
)
