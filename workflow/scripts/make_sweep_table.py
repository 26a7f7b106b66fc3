from cnnstudy.base.jobs import start_job
from cnnstudy.figures.sweeps import base_result, plot_sweep, sweep_table, write_sweep_table

start_job(snakemake)
sweep, grid = snakemake.wildcards.sweep, snakemake.params.grid
frame = sweep_table(snakemake.input.metrics, snakemake.input.summaries, grid)
base = base_result(snakemake.input.base_metrics, snakemake.input.base_summaries, grid)
outputs = snakemake.output
write_sweep_table(frame, sweep, grid, outputs.csv, outputs.markdown, outputs.html, base)
plot_sweep(frame, sweep, grid, outputs.figure, base=base)
