from cnnstudy.jobs import start_job
from cnnstudy.tables import per_class_table, write_per_class

start_job(snakemake)
frame = per_class_table(snakemake.input.metrics, snakemake.params.models)
write_per_class(frame, snakemake.output.csv, snakemake.output.markdown, snakemake.output.html)
