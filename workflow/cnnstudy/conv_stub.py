"""A 2-D convolution built from tensor primitives, and the checks that compare it with PyTorch's.

No convolution kernel of PyTorch's (``F.conv2d``, ``F.unfold``, ``nn.Conv2d``) runs in the forward
path: the input is zero-padded into a group-major, channels-last layout (groups, N, H, W, C/groups)
and the convolution becomes matrix products, one batch entry per group.

Two strategies, both vectorised, give the same result up to float32 summation order:

* ``im2col``: ``torch.as_strided`` views every receptive field as one row of a
  (N·Ho·Wo, kh·kw·C/groups) matrix, and one batched matmul multiplies it with the weight. Handles
  every stride and dilation.
* ``shift`` (stride 1 only): in the flattened layout, the input rows that one kernel tap reads for
  all output positions form a contiguous block, offset by that tap's position. Each of the kh·kw
  taps is then one batched matmul on a view, accumulated in place. The im2col matrix is kh·kw
  copies of the input (70 MB for 4×128×64×64 with a 3×3 kernel), and on a CPU writing it costs as
  much as the matmul itself, so this path is about twice as fast there. Its price: it also computes
  the outputs that wrap around the right and bottom edges and discards them, and with few channels
  per group each tap is a thin matmul; ``auto`` takes it only while both costs are small.
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

import torch
import torch.nn.functional as F
from torch import nn

from .files import atomic_path

log = logging.getLogger(__name__)

METHODS = ("auto", "im2col", "shift")
# ``auto`` takes the shift path while the padded input has at most this many positions per output,
SHIFT_MAX_WASTE = 2.0
# and while the input channels per group are many, or not far fewer than the output channels. Every
# tap reads and rewrites the whole (positions × output channels) accumulator, so with few input but
# many output channels per group those passes cost more than im2col's copy of the input (measured on
# 2 cores: 3 → 64 channels, 7×7: shift 3.6 ms, im2col 2.3 ms; 128 → 256 in 64 groups: 31 vs 46 ms).
SHIFT_MIN_GROUP_CHANNELS = 16
SHIFT_MAX_WIDENING = 2


def _pair(value, name, minimum):
    """``value`` (an int or a pair of ints) as a tuple of two ints, each at least ``minimum``."""
    if isinstance(value, int) and not isinstance(value, bool):
        pair = (value, value)
    elif (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        pair = tuple(value)
    else:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return pair


def _positive_int(value, name):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _output_size(size, kernel, stride, dilation, padding):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _padded_group_major(x, padding, groups):
    """``x`` (N, C, H, W) as a contiguous (groups, N, H + 2·ph, W + 2·pw, C / groups) tensor.

    Each group's channels end up innermost and contiguous, so every matrix the matmuls read (one
    per group) has unit stride along its reduced dimension. With one group this is channels-last.
    """
    n, c, h, w = x.shape
    ph, pw = padding
    grouped = x.view(n, groups, c // groups, h, w).permute(1, 0, 3, 4, 2)
    if ph == 0 and pw == 0:
        return grouped.contiguous()  # free when x is channels_last and groups == 1
    # One copy into a zeroed buffer instead of F.pad followed by a layout change (two copies).
    padded = x.new_zeros((groups, n, h + 2 * ph, w + 2 * pw, c // groups))
    padded[:, :, ph : ph + h, pw : pw + w, :] = grouped
    return padded


def _conv_im2col(xg, weight, bias, stride, dilation, out_size):
    groups, n, _, _, group_channels = xg.shape
    out_channels, _, kh, kw = weight.shape
    group_out = out_channels // groups
    ho, wo = out_size
    sg, sn, sh, sw, sc = xg.stride()
    # (group, image, out row, out col, tap row, tap col, channel in group): a view, nothing copied yet.
    patches = xg.as_strided(
        (groups, n, ho, wo, kh, kw, group_channels),
        (sg, sn, stride[0] * sh, stride[1] * sw, dilation[0] * sh, dilation[1] * sw, sc),
    )
    columns = patches.reshape(groups, n * ho * wo, kh * kw * group_channels)
    matrices = (
        weight.view(groups, group_out, group_channels, kh, kw)
        .permute(0, 3, 4, 2, 1)
        .reshape(groups, kh * kw * group_channels, group_out)
    )
    if bias is None:
        out = torch.bmm(columns, matrices)
    else:
        out = torch.baddbmm(bias.view(groups, 1, group_out), columns, matrices)
    # (group, image·row·col, channel in group) seen as (image, group, channel in group, row, col).
    positions = n * ho * wo
    return out.as_strided(
        (n, groups, group_out, ho, wo),
        (ho * wo * group_out, positions * group_out, 1, wo * group_out, group_out),
    )


def _conv_shift(xg, weight, bias, dilation, out_size):
    groups, n, hp, wp, group_channels = xg.shape
    out_channels, _, kh, kw = weight.shape
    group_out = out_channels // groups
    ho, wo = out_size
    flat = xg.view(groups, n * hp * wp, group_channels)
    # (kh, kw, group, channel in group, out channel in group): one batch of matrices per tap.
    taps = weight.view(groups, group_out, group_channels, kh, kw).permute(3, 4, 0, 2, 1)
    # Output position p = image·hp·wp + row·wp + col reads flat[:, p + offset] for each tap. Only the
    # first ``length`` positions have every tap inside the tensor, and every valid output is among them.
    length = n * hp * wp - ((kh - 1) * dilation[0] * wp + (kw - 1) * dilation[1])
    # One channel in and out per group (depthwise, a filter): a broadcast multiply-add beats a
    # matmul whose inner dimension is 1.
    scalar_taps = group_channels == 1 and group_out == 1
    out = (
        torch.zeros((), dtype=xg.dtype, device=xg.device) if bias is None else bias.view(groups, 1, group_out)
    )
    for index in range(kh * kw):
        i, j = divmod(index, kw)
        offset = i * dilation[0] * wp + j * dilation[1]
        rows, tap = flat[:, offset : offset + length], taps[i, j]
        if index == 0:  # the first tap allocates the (groups, length, out channels) accumulator
            out = torch.addcmul(out, rows, tap) if scalar_taps else torch.baddbmm(out, rows, tap)
        elif scalar_taps:
            out.addcmul_(rows, tap)
        else:
            out.baddbmm_(rows, tap)  # in place: no fresh accumulator per tap
    # Keep the valid positions: a strided view onto the full-resolution result.
    return out.as_strided(
        (n, groups, group_out, ho, wo),
        (hp * wp * group_out, length * group_out, 1, wp * group_out, group_out),
    )


def conv2d_from_scratch(
    x, weight, bias=None, stride=(1, 1), dilation=(1, 1), groups=1, padding=(0, 0), method="auto"
):
    """Cross-correlate ``x`` (N, C, H, W) with ``weight`` (O, C // groups, kh, kw), like ``F.conv2d``.

    ``stride``, ``dilation`` and ``padding`` (zeros) accept an int or a pair. ``method`` picks the
    strategy (see the module docstring); ``auto`` chooses the faster one. The result has ``x``'s
    memory format, as ``F.conv2d``'s has.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a 4-D tensor (N, C, H, W), got {getattr(x, 'shape', type(x))}")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        shape = getattr(weight, "shape", type(weight))
        raise ValueError(f"weight must be a 4-D tensor (O, C // groups, kh, kw), got {shape}")
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    padding = _pair(padding, "padding", 0)
    groups = _positive_int(groups, "groups")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")

    n, c, h, w = x.shape
    out_channels, group_channels, kh, kw = weight.shape
    if min(weight.shape) < 1:
        raise ValueError(f"weight has an empty dimension: {tuple(weight.shape)}")
    if c % groups or out_channels % groups:
        raise ValueError(
            f"input channels ({c}) and output channels ({out_channels}) must both be divisible by "
            f"groups ({groups})"
        )
    if group_channels * groups != c:
        raise ValueError(
            f"weight expects {group_channels} channels per group × {groups} groups = "
            f"{group_channels * groups} input channels, x has {c}"
        )
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"bias must have shape ({out_channels},), got {tuple(bias.shape)}")
    out_size = (
        _output_size(h, kh, stride[0], dilation[0], padding[0]),
        _output_size(w, kw, stride[1], dilation[1], padding[1]),
    )
    if min(out_size) < 1:
        raise ValueError(
            f"input {h}×{w} with padding {padding} is smaller than the dilated kernel "
            f"{dilation[0] * (kh - 1) + 1}×{dilation[1] * (kw - 1) + 1}"
        )

    if n == 0:
        return x.new_zeros((0, out_channels, *out_size))
    if method == "shift" and stride != (1, 1):
        raise ValueError(f"method 'shift' needs stride 1, got {stride}")
    xg = _padded_group_major(x, padding, groups)
    waste = xg.shape[2] * xg.shape[3] / (out_size[0] * out_size[1])
    group_out = out_channels // groups
    shift_pays = (
        stride == (1, 1)
        and waste <= SHIFT_MAX_WASTE
        and (group_channels >= SHIFT_MIN_GROUP_CHANNELS or group_out <= SHIFT_MAX_WIDENING * group_channels)
    )
    if method == "shift" or (method == "auto" and shift_pays):
        out = _conv_shift(xg, weight, bias, dilation, out_size)
    else:
        out = _conv_im2col(xg, weight, bias, stride, dilation, out_size)

    # One copy gathers the (image, group, channel in group, row, col) view into F.conv2d's layout.
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    result = torch.empty(
        (n, out_channels, *out_size), dtype=out.dtype, device=out.device, memory_format=layout
    )
    result.view(out.shape).copy_(out)
    return result


class MyConvStub(nn.Module):
    """A convolution layer with the assignment's interface, computed by ``conv2d_from_scratch``.

    The weight is drawn from a standard normal, the bias (when ``bias`` is true) is all ones.
    """

    def __init__(
        self, kernel_size, num_groups, input_channels, output_channels, bias, stride, dilation, padding=0
    ):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.groups = _positive_int(num_groups, "num_groups")
        self.input_channels = _positive_int(input_channels, "input_channels")
        self.output_channels = _positive_int(output_channels, "output_channels")
        if input_channels % num_groups or output_channels % num_groups:
            raise ValueError(
                f"input_channels ({input_channels}) and output_channels ({output_channels}) must both "
                f"be divisible by num_groups ({num_groups})"
            )
        if not isinstance(bias, bool):
            raise ValueError(f"bias must be True or False, got {bias!r}")
        self.stride = _pair(stride, "stride", 1)
        self.dilation = _pair(dilation, "dilation", 1)
        self.padding = _pair(padding, "padding", 0)
        kh, kw = self.kernel_size
        self.weight = nn.Parameter(torch.randn(output_channels, input_channels // num_groups, kh, kw))
        if bias:
            self.bias = nn.Parameter(torch.ones(output_channels))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.input_channels:
            raise ValueError(
                f"expected input of shape (N, {self.input_channels}, H, W), got {tuple(x.shape)}"
            )
        return conv2d_from_scratch(
            x, self.weight, self.bias, self.stride, self.dilation, self.groups, self.padding
        )

    def extra_repr(self):
        return (
            f"{self.input_channels}, {self.output_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, dilation={self.dilation}, padding={self.padding}, "
            f"groups={self.groups}, bias={self.bias is not None}"
        )


class MyFilterStub(nn.Module):
    """Apply one fixed 2-D filter (kh, kw) to every channel of the input separately (depthwise)."""

    def __init__(self, filter, input_channels, padding=0):
        super().__init__()
        filter = torch.as_tensor(filter)
        if not filter.is_floating_point():
            filter = filter.to(torch.get_default_dtype())
        if filter.dim() != 2 or min(filter.shape) < 1:
            raise ValueError(
                f"filter must be a non-empty 2-D tensor (kh, kw), got shape {tuple(filter.shape)}"
            )
        self.input_channels = _positive_int(input_channels, "input_channels")
        self.padding = _pair(padding, "padding", 0)
        self.register_buffer("filter", filter.detach().clone())

    @property
    def weight(self):
        """The filter as ``F.conv2d`` would take it: (C, 1, kh, kw), with groups = C."""
        return self.filter.expand(self.input_channels, 1, *self.filter.shape)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.input_channels:
            raise ValueError(
                f"expected input of shape (N, {self.input_channels}, H, W), got {tuple(x.shape)}"
            )
        n, c, h, w = x.shape
        # Every channel gets the same filter, so channels are just more single-channel images.
        out = conv2d_from_scratch(x.reshape(n * c, 1, h, w), self.filter[None, None], padding=self.padding)
        return out.view(n, c, *out.shape[2:])

    def extra_repr(self):
        return f"{self.input_channels}, filter={tuple(self.filter.shape)}, padding={self.padding}"


def blur_kernel(size, kind="gaussian"):
    """A normalised (size, size) blur filter, float32.

    ``gaussian``: the outer product of binomial coefficients, the discrete Gaussian that exists for
    every size, even ones included. ``box``: the mean over the window.
    """
    size = _positive_int(size, "size")
    if kind == "gaussian":
        row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float64)
    elif kind == "box":
        row = torch.ones(size, dtype=torch.float64)
    else:
        raise ValueError(f"kind must be 'gaussian' or 'box', got {kind!r}")
    kernel = torch.outer(row, row)
    return (kernel / kernel.sum()).to(torch.float32)


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
    _positive_int(batch_size, "batch_size")
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
    turn, after the forward that measured the error served as a warm-up.
    """
    device = torch.device(device)
    repeats = _positive_int(repeats, "repeats")
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
        "time_ratio": ours_ms / torch_ms if torch_ms > 0 else math.inf,
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
    ("time_ratio", "ours / torch", lambda v: f"{v:.2f}"),
)


def markdown_report(rows):
    repeats = sorted({row["repeats"] for row in rows})
    lines = [
        "# From-scratch convolution vs PyTorch",
        "",
        summary_line(rows),
        "",
        f"Times: median of {', '.join(map(str, repeats))} forward passes after a warm-up; shapes are "
        "N×C×H×W (input, output) and O×C/groups×kh×kw (weight).",
        "",
        "| " + " | ".join(title for _, title, _ in MARKDOWN_COLUMNS) + " |",
        "|" + "|".join("---" for _ in MARKDOWN_COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row[key]) for key, _, fmt in MARKDOWN_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_report(rows, markdown_path, csv_path=None):
    """Write the markdown report and (unless ``csv_path`` is None) the csv, each atomically."""
    if not rows:
        raise ValueError("no rows to report")
    with atomic_path(markdown_path) as temporary:
        Path(temporary).write_text(markdown_report(rows), encoding="utf-8")
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
    markdown_path, csv_path, atol=1e-3, batch_size=4, image_size=64, repeats=5, seed=0, device="cpu"
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
    write_report(rows, markdown_path, csv_path)
    log.info(summary_line(rows).replace("**", ""))
    failed_report = failed_report_path(markdown_path)
    try:
        verify(rows)
    except AssertionError as error:
        write_report(rows, failed_report)
        raise RuntimeError(f"{error}. The report is kept at {failed_report}") from error
    failed_report.unlink(missing_ok=True)  # left by an earlier failed run, it would contradict this one
    return rows
