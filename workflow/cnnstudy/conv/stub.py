"""A 2-D convolution built from tensor primitives (its checks against PyTorch's: ``conv_checks``).

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

import math

import torch
from torch import nn

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


def positive_int(value, name):
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
    groups = positive_int(groups, "groups")
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
        self.groups = positive_int(num_groups, "num_groups")
        self.input_channels = positive_int(input_channels, "input_channels")
        self.output_channels = positive_int(output_channels, "output_channels")
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
        self.input_channels = positive_int(input_channels, "input_channels")
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
    size = positive_int(size, "size")
    if kind == "gaussian":
        row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float64)
    elif kind == "box":
        row = torch.ones(size, dtype=torch.float64)
    else:
        raise ValueError(f"kind must be 'gaussian' or 'box', got {kind!r}")
    kernel = torch.outer(row, row)
    return (kernel / kernel.sum()).to(torch.float32)
