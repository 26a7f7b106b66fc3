from cnnstudy.base.jobs import run_settings, start_job
from cnnstudy.base.layout import TRAINING_OUTPUTS
from cnnstudy.train.loop import train_job

start_job(snakemake)
train_job(
    snakemake.params.hyperparameters,
    snakemake.input.train,
    snakemake.input.val,
    outputs={key: getattr(snakemake.output, key) for key in TRAINING_OUTPUTS},
    resume_dir=snakemake.params.resume_dir,
    code_version=snakemake.params.code,
    settings=run_settings(snakemake.config),
    weights=getattr(snakemake.input, "weights", []),
    weights_sha256=getattr(snakemake.params, "weights_sha256", None),
)
