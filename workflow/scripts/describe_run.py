from cnnstudy.jobs import start_job
from cnnstudy.run_description import write_landing_page

start_job(snakemake)
write_landing_page(
    snakemake.input.summaries,
    snakemake.input.metrics,
    snakemake.input.conv_stub,
    snakemake.params.models,
    snakemake.params.study,
    snakemake.output[0],
)
