import json

import pandas as pd

from cnnstudy.jobs import start_job
from cnnstudy.tables import summary_table, write_summary

start_job(snakemake)
models, seeds = snakemake.params.models, snakemake.params.seeds


def per_model(paths, read):
    """Inputs come model by model, one file per seed: group them back."""
    return {
        model: [read(path) for path in paths[i * seeds : (i + 1) * seeds]] for i, model in enumerate(models)
    }


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


frame = summary_table(
    models,
    per_model(snakemake.input.metrics, read_json),
    per_model(snakemake.input.summaries, read_json),
    per_model(snakemake.input.histories, pd.read_csv),
    snakemake.params.reported,
    snakemake.params.target,
)
write_summary(
    frame, snakemake.output.csv, snakemake.output.markdown, snakemake.params.dataset, snakemake.params.target
)
