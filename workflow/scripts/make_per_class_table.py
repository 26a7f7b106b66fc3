from cnnstudy.analysis.tables import per_class_table, write_per_class
from cnnstudy.base.jobs import start_job

start_job(snakemake)
frame = per_class_table(snakemake.input.metrics, snakemake.params.models)
write_per_class(
    frame, snakemake.output.csv, snakemake.output.markdown, snakemake.output.html, snakemake.params.study
)
