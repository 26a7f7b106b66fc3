sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821 -- before any import can fail
# Checks the from-scratch convolution against F.conv2d on the assignment's grid and writes the report.
# Snakemake deletes a failed job's outputs, so when a case fails the report is also written to
# <markdown>.failed.md (not a declared output) before the job fails, and the error names that file.
import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from cnnstudy import conv_stub  # noqa: E402
from cnnstudy.devices import select_device  # noqa: E402

logging.basicConfig(
    stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
)
log = logging.getLogger("verify_conv_stub")

params = snakemake.params  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821
device = select_device(getattr(params, "device", "cpu"))  # the rule passes none: the grid is a CPU check
markdown = Path(snakemake.output.markdown)  # noqa: F821
failed_report = markdown.with_name(markdown.name + ".failed.md")

cases = conv_stub.check_cases(batch_size=params.batch_size, image_size=params.image_size)
log.info(
    "%d cases, atol %g, %d timed repeats, torch %s on %s (%d threads)",
    len(cases),
    params.atol,
    params.timing_repeats,
    torch.__version__,
    device,
    torch.get_num_threads(),
)
rows = conv_stub.run_cases(
    cases,
    atol=params.atol,
    repeats=params.timing_repeats,
    seed=getattr(params, "seed", 0),
    device=device,
    progress=lambda row: log.info(conv_stub.format_row(row)),
)
conv_stub.write_report(rows, markdown, snakemake.output.csv)  # noqa: F821
log.info(conv_stub.summary_line(rows).replace("**", ""))

try:
    conv_stub.verify(rows)
except AssertionError as error:
    conv_stub.write_report(rows, failed_report)
    raise RuntimeError(f"{error}. The report is kept at {failed_report}") from error
failed_report.unlink(missing_ok=True)  # left by an earlier failed run, it would contradict this one
