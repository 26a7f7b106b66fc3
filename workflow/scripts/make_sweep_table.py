from cnnstudy.base.jobs import start_job
from cnnstudy.figures.sweeps import plot_sweep, sweep_table, write_sweep_table

start_job(snakemake)
sweep = snakemake.wildcards.sweep
frame = sweep_table(snakemake.input.metrics, snakemake.input.summaries, snakemake.params.grid)
write_sweep_table(
    frame,
    sweep,
    snakemake.params.grid,
    snakemake.output.csv,
    snakemake.output.markdown,
    snakemake.output.html,
)
plot_sweep(frame, sweep, snakemake.params.grid, snakemake.output.figure)
