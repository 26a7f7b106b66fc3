from cnnstudy.jobs import run_settings, start_job
from cnnstudy.layout import EVALUATION_OUTPUTS
from cnnstudy.scoring import evaluate_job

start_job(snakemake)
evaluate_job(
    snakemake.input.checkpoint,
    snakemake.input.test,
    outputs={key: getattr(snakemake.output, key) for key in EVALUATION_OUTPUTS},
    settings=run_settings(snakemake.config),
)
