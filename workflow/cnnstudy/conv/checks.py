"""The assignment's check grid: every case of the from-scratch convolution against ``F.conv2d``.

Each case is run and timed against PyTorch's own convolution with the same weights; the rows make
the report (``report.md``, ``report.csv``) that ``verify_conv_stub`` writes.
"""

import contextlib
import csv
import dataclasses
import logging
import math
import platform
import statistics
import time
import zlib
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from ..base.files import atomic_path, write_text
from ..base.rendering import html_page, markdown_table
from .stub import MyConvStub, MyFilterStub, blur_kernel, positive_int

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ConvCase:
    """One configuration of the check grid; inputs are batch_size × in_channels × image_size²."""

    name: str
    kind: str  # "conv": MyConvStub; "filter": MyFilterStub with a blur_kernel(filter_size)
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    bias: bool = True
    padding: int = 0
    filter_size: int | None = None
    batch_size: int = 4
    image_size: int = 64

    @property
    def input_shape(self):
        return (self.batch_size, self.in_channels, self.image_size, self.image_size)


def check_cases(batch_size=4, image_size=64):
    """The assignment's grid of configurations, each on batch_size × C × image_size × image_size.

    Channel counts keep every output a sum of at most 1,568 products of standard normals (7×7×32),
    whose float32 summation-order error measured at most 2e-4 against F.conv2d on a CPU, five times
    under an atol of 1e-3; the groups cases are fixed at 128 → 256 channels by the assignment.
    """
    positive_int(batch_size, "batch_size")
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(
            f"image_size must be an int of at least 8 (the largest kernel spans 7), got {image_size}"
        )

    def conv(name, cin, cout, kernel, **options):
        return ConvCase(
            name, "conv", cin, cout, kernel, batch_size=batch_size, image_size=image_size, **options
        )

    cases = [conv(f"square {k}×{k}", 32, 32, (k, k)) for k in range(1, 8)]
    cases += [conv(f"horizontal {k}×{k + 2}", 32, 32, (k, k + 2)) for k in range(1, 6)]
    cases += [conv(f"vertical {k + 2}×{k}", 32, 32, (k + 2, k)) for k in range(1, 6)]
    cases += [
        conv("channels increasing 3→64", 3, 64, (3, 3)),
        conv("channels increasing 16→128", 16, 128, (3, 3)),
        conv("channels decreasing 128→16", 128, 16, (3, 3)),
        conv("channels equal 64→64", 64, 64, (3, 3)),
    ]
    cases += [conv(f"stride {s}", 32, 32, (3, 3), stride=s) for s in (1, 2, 3)]
    cases += [conv(f"dilation {d}", 32, 32, (3, 3), dilation=d) for d in (1, 2, 3)]
    cases += [conv(f"groups {g} (128→256)", 128, 256, (3, 3), groups=g) for g in (4, 8, 16, 32, 64)]
    cases += [
        conv("bias", 32, 32, (3, 3), bias=True),
        conv("zero bias (bias=False)", 32, 32, (3, 3), bias=False),
        conv("padding 1, 3×3", 32, 32, (3, 3), padding=1),
        conv("padding 3, 7×7, stride 2", 16, 16, (7, 7), stride=2, padding=3),
    ]
    cases += [
        ConvCase(
            f"blur filter {size}×{size}",
            "filter",
            16,
            16,
            (size, size),
            bias=False,
            filter_size=size,
            batch_size=batch_size,
            image_size=image_size,
        )
        for size in range(1, 7)
    ]
    return cases


def build_module(case):
    """The module under test for ``case``: weights come from the global RNG (see ``run_case``)."""
    if case.kind == "conv":
        return MyConvStub(
            case.kernel,
            case.groups,
            case.in_channels,
            case.out_channels,
            case.bias,
            case.stride,
            case.dilation,
            case.padding,
        )
    if case.kind == "filter":
        return MyFilterStub(blur_kernel(case.filter_size), case.in_channels, case.padding)
    raise ValueError(f"unknown case kind {case.kind!r}")


def reference_forward(module, x):
    """``F.conv2d`` with the module's own weights: what ``module(x)`` must reproduce."""
    if isinstance(module, MyFilterStub):
        return F.conv2d(x, module.weight, None, 1, module.padding, 1, module.input_channels)
    return F.conv2d(
        x, module.weight, module.bias, module.stride, module.padding, module.dilation, module.groups
    )


@contextlib.contextmanager
def full_float32():
    """Compute float32 convolutions and matmuls in full float32 inside the block.

    On CUDA, cuDNN rounds F.conv2d's float32 inputs to TF32 (a 10-bit mantissa) by default, which on
    sums of ~1,000 standard-normal products means errors around 1e-2: the reference, not ours, would
    break the 1e-3 tolerance. The matmul setting keeps a global "high" precision from doing the same
    to our side.
    """
    cudnn = torch.backends.cudnn
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with cudnn.flags(
            enabled=cudnn.enabled,
            benchmark=cudnn.benchmark,
            benchmark_limit=cudnn.benchmark_limit,
            deterministic=cudnn.deterministic,
            allow_tf32=False,
        ):
            yield
    finally:
        torch.set_float32_matmul_precision(precision)


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _shape(shape):
    return "x".join(str(v) for v in shape)


def run_case(case, atol=1e-3, repeats=5, seed=0, device="cpu"):
    """Compare ``case``'s module with ``F.conv2d`` and time both; returns one report row (a dict).

    Inputs and weights come from ``seed`` and the case's name, so a case reproduces on its own,
    whatever else runs. Times are medians of ``repeats`` forward passes, ours and PyTorch's in
    turn, after the forward that measured the error served as a warm-up; the ratio is the median of
    the paired passes' ratios, with its interquartile range, because single timings of millisecond
    kernels swing with caches and thread scheduling.
    """
    device = torch.device(device)
    repeats = positive_int(repeats, "repeats")
    case_seed = (seed * 1_000_003 + zlib.crc32(case.name.encode())) % 2**63
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(case_seed)
        module = build_module(case)
    x = torch.randn(case.input_shape, generator=torch.Generator().manual_seed(case_seed)).to(device)
    module = module.to(device)

    with torch.no_grad(), full_float32():
        ours = module(x)
        reference = reference_forward(module, x)
        if ours.shape != reference.shape:
            error = math.inf
        else:
            error = (ours - reference).abs().max().item()  # nan if ours has a nan
        passed = bool(error <= atol)  # False for nan and inf

        ours_s, torch_s = [], []
        for _ in range(repeats):
            for forward, times in (
                (lambda: module(x), ours_s),
                (lambda: reference_forward(module, x), torch_s),
            ):
                _synchronize(device)
                start = time.perf_counter()
                forward()
                _synchronize(device)
                times.append(time.perf_counter() - start)

    ours_ms = statistics.median(ours_s) * 1e3
    torch_ms = statistics.median(torch_s) * 1e3
    ratios = [ours / theirs if theirs > 0 else math.inf for ours, theirs in zip(ours_s, torch_s, strict=True)]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {
        "case": case.name,
        "kind": case.kind,
        "input_shape": _shape(x.shape),
        "weight_shape": _shape(module.weight.shape),
        "output_shape": _shape(ours.shape),
        "max_abs_error": error,
        "atol": atol,
        "passed": passed,
        "ours_ms": ours_ms,
        "torch_ms": torch_ms,
        "time_ratio": statistics.median(ratios),
        "time_ratio_q1": quartiles[0],
        "time_ratio_q3": quartiles[2],
        "repeats": repeats,
        "device": str(device),
    }


def run_cases(cases, atol=1e-3, repeats=5, seed=0, device="cpu", progress=None):
    """``run_case`` for every case; ``progress(row)`` is called after each one."""
    rows = []
    for case in cases:
        rows.append(run_case(case, atol=atol, repeats=repeats, seed=seed, device=device))
        if progress is not None:
            progress(rows[-1])
    return rows


def format_row(row):
    """One line per case, for logs."""
    verdict = "pass" if row["passed"] else "FAIL"
    return (
        f"{verdict} {row['case']}: max abs error {row['max_abs_error']:.2e}, ours {row['ours_ms']:.2f} ms, "
        f"torch {row['torch_ms']:.2f} ms ({row['time_ratio']:.2f}×)"
    )


def summary_line(rows):
    passed = sum(row["passed"] for row in rows)
    atols = sorted({row["atol"] for row in rows})
    devices = sorted({row["device"] for row in rows})
    threads = f" ({torch.get_num_threads()} threads)" if "cpu" in devices else ""
    return (
        f"**{passed} of {len(rows)} cases pass**; atol {', '.join(f'{a:g}' for a in atols)} against "
        f"`torch.nn.functional.conv2d`; torch {torch.__version__}, {', '.join(devices)}{threads}, "
        f"{platform.processor() or platform.machine()}"
    )


MARKDOWN_COLUMNS = (
    ("case", "case", str),
    ("kind", "kind", str),
    ("input_shape", "input", str),
    ("weight_shape", "weight", str),
    ("output_shape", "output", str),
    ("max_abs_error", "max abs error", lambda v: f"{v:.2e}"),
    ("passed", "passed", lambda v: "yes" if v else "**FAIL**"),
    ("ours_ms", "ours (ms)", lambda v: f"{v:.2f}"),
    ("torch_ms", "torch (ms)", lambda v: f"{v:.2f}"),
    ("time_ratio", "ours / torch [IQR]", None),
)
TITLE = "From-scratch convolution vs PyTorch"


def _ratio_cell(row):
    return f"{row['time_ratio']:.2f} [{row['time_ratio_q1']:.2f}–{row['time_ratio_q3']:.2f}]"


def report_table(rows):
    """The report's table: one row per case, cells formatted."""
    return pd.DataFrame(
        {
            title: [_ratio_cell(row) if fmt is None else fmt(row[key]) for row in rows]
            for key, title, fmt in MARKDOWN_COLUMNS
        }
    )


def report_notes(rows):
    repeats = sorted({row["repeats"] for row in rows})
    return [
        f"Times are indicative: medians of {', '.join(map(str, repeats))} forward passes after a warm-up, ours "
        "and PyTorch's in turn; *ours / torch* is the median of the paired ratios with its interquartile "
        "range in brackets (millisecond kernels swing with caches and thread scheduling).",
        "Shapes are N×C×H×W (input, output) and O×C/groups×kh×kw (weight).",
    ]


def markdown_report(rows):
    sections = [f"# {TITLE}", summary_line(rows), markdown_table(report_table(rows)), *report_notes(rows)]
    return "\n\n".join(sections) + "\n"


def write_report(rows, markdown_path, csv_path=None, html_path=None):
    """Write the markdown report and (unless None) the csv and the HTML page, each atomically."""
    if not rows:
        raise ValueError("no rows to report")
    with atomic_path(markdown_path) as temporary:
        Path(temporary).write_text(markdown_report(rows), encoding="utf-8")
    if html_path is not None:
        write_text(html_path, html_page(report_table(rows), TITLE, summary_line(rows), report_notes(rows)))
    if csv_path is not None:
        with atomic_path(csv_path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def verify(rows):
    """Raise an AssertionError naming every failed case; silent when all passed."""
    failed = [row for row in rows if not row["passed"]]
    if failed:
        details = "; ".join(f"{row['case']} (max abs error {row['max_abs_error']:.3g})" for row in failed)
        raise AssertionError(f"{len(failed)} of {len(rows)} convolution checks failed: {details}")


def failed_report_path(markdown_path):
    """Where ``check_grid`` keeps the report of a failed check: ``<markdown>.failed.md`` beside it."""
    markdown_path = Path(markdown_path)
    return markdown_path.with_name(markdown_path.name + ".failed.md")


def check_grid(
    markdown_path,
    csv_path,
    html_path=None,
    atol=1e-3,
    batch_size=4,
    image_size=64,
    repeats=5,
    seed=0,
    device="cpu",
):
    """Run the whole grid, log one line per case, write the report, raise if any case failed.

    Snakemake deletes a failed job's outputs, so on failure the report is also kept at
    ``failed_report_path(markdown_path)`` (not a declared output) and the error names that file.
    """
    cases = check_cases(batch_size=batch_size, image_size=image_size)
    log.info(
        "%d cases, atol %g, %d timed repeats, torch %s on %s",
        len(cases),
        atol,
        repeats,
        torch.__version__,
        device,
    )
    rows = run_cases(cases, atol, repeats, seed, device, progress=lambda row: log.info(format_row(row)))
    write_report(rows, markdown_path, csv_path, html_path)
    log.info(summary_line(rows).replace("**", ""))
    failed_report = failed_report_path(markdown_path)
    try:
        verify(rows)
    except AssertionError as error:
        write_report(rows, failed_report)
        raise RuntimeError(f"{error}. The report is kept at {failed_report}") from error
    failed_report.unlink(missing_ok=True)  # left by an earlier failed run, it would contradict this one
    return rows
