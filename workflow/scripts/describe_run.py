from cnnstudy.base.jobs import start_job
from cnnstudy.figures.landing import write_landing_page

start_job(snakemake)
write_landing_page(
    snakemake.input.summaries,
    snakemake.input.metrics,
    snakemake.input.conv_stub,
    snakemake.params.models,
    snakemake.params.study,
    snakemake.output[0],
)
