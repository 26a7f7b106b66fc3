from cnnstudy.base.jobs import start_job
from cnnstudy.figures.comparison import plot_comparison_transfer

start_job(snakemake)
plot_comparison_transfer(
    snakemake.input.histories,
    snakemake.input.summaries,
    snakemake.input.confusions,
    snakemake.input.metrics,
    snakemake.params.models,
    snakemake.output[0],
)
