from cnnstudy.analysis.scoring import evaluate_job
from cnnstudy.base.jobs import run_settings, start_job
from cnnstudy.base.layout import EVALUATION_OUTPUTS

start_job(snakemake)
evaluate_job(
    snakemake.input.checkpoint,
    snakemake.input.test,
    outputs={key: getattr(snakemake.output, key) for key in EVALUATION_OUTPUTS},
    settings=run_settings(snakemake.config),
)
