from cnnstudy.base.jobs import start_job
from cnnstudy.figures.inside import comparison_saliency_job

start_job(snakemake)
comparison_saliency_job(
    snakemake.input.maps, snakemake.input.test, snakemake.params.models, snakemake.output[0]
)
