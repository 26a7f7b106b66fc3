from cnnstudy.base.jobs import start_job
from cnnstudy.figures.landing import write_config

start_job(snakemake)
# the merged config straight from Snakemake, not through params (params are shown in the report's ⓘ panel)
write_config(
    snakemake.config,
    snakemake.output.yaml,
    snakemake.output.html,
    sources=snakemake.input.configfiles,
)
