from cnnstudy.jobs import start_job
from cnnstudy.plots_compare import plot_comparison_accuracy

start_job(snakemake)
plot_comparison_accuracy(
    snakemake.input.metrics, snakemake.params.models, snakemake.params.study, snakemake.output[0]
)
