# The from-scratch convolution against F.conv2d on the assignment's grid, on the CPU: report.md, .html
# and .csv. A failed check fails the job; its report survives at <report.md>.failed.md.
import torch

from cnnstudy.base.jobs import start_job
from cnnstudy.conv.checks import check_grid

start_job(snakemake)
params = snakemake.params
check_grid(
    snakemake.output.markdown,
    snakemake.output.csv,
    html_path=snakemake.output.html,
    atol=params.atol,
    batch_size=params.batch_size,
    image_size=params.image_size,
    repeats=params.timing_repeats,
    device=torch.device("cpu"),
)
