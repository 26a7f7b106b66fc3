from cnnstudy.analysis.tables import summary_table, write_summary
from cnnstudy.base.jobs import start_job

start_job(snakemake)
frame = summary_table(
    snakemake.input.metrics,
    snakemake.input.summaries,
    snakemake.input.histories,
    snakemake.params.models,
    snakemake.params.study,
)
write_summary(
    frame, snakemake.output.csv, snakemake.output.markdown, snakemake.output.html, snakemake.params.study
)
