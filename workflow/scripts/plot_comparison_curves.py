from cnnstudy.base.jobs import start_job
from cnnstudy.figures.comparison import plot_comparison_curves

start_job(snakemake)
plot_comparison_curves(
    snakemake.input.histories, snakemake.input.summaries, snakemake.params.models, snakemake.output[0]
)
