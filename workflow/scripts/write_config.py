from cnnstudy.jobs import start_job
from cnnstudy.run_description import write_config

start_job(snakemake)
write_config(snakemake.params.config, snakemake.output.yaml, snakemake.output.html)
