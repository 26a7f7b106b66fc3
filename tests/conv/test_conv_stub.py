"""The from-scratch convolution: agreement with F.conv2d, its interface, the grid and the report."""

import csv
import logging
import random
import re
import runpy
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from cnnstudy.conv import stub as conv_stub
from cnnstudy.conv.checks import ConvCase, check_cases, run_case, run_cases, verify, write_report
from cnnstudy.conv.stub import MyConvStub, MyFilterStub, blur_kernel, conv2d_from_scratch
from helpers import REPO

SCRIPT = REPO / "workflow" / "scripts" / "verify_conv_stub.py"


@pytest.fixture(scope="module")
def grid_rows():
    return run_cases(check_cases(), atol=1e-3, repeats=1)


def test_full_grid_passes(grid_rows):
    verify(grid_rows)
    assert len(grid_rows) == len(check_cases())
    assert max(row["max_abs_error"] for row in grid_rows) < 1e-3


def test_grid_covers_the_assignment():
    cases = check_cases()
    convs = [case for case in cases if case.kind == "conv"]
    assert len({case.name for case in cases}) == len(cases), "case names must be unique"
    assert all(case.input_shape[0] == 4 and case.input_shape[2:] == (64, 64) for case in cases)
    assert {case.kernel for case in convs} >= {(k, k) for k in range(1, 8)}
    assert {case.kernel for case in convs} >= {(k, k + 2) for k in range(1, 6)} | {
        (k + 2, k) for k in range(1, 6)
    }
    assert {case.stride for case in convs} >= {1, 2, 3}
    assert {case.dilation for case in convs} >= {1, 2, 3}
    grouped = {case.groups for case in convs if (case.in_channels, case.out_channels) == (128, 256)}
    assert grouped >= {4, 8, 16, 32, 64}
    assert {case.bias for case in convs} == {True, False}
    assert any(case.in_channels < case.out_channels for case in convs)
    assert any(case.in_channels > case.out_channels for case in convs)
    assert any(case.in_channels == case.out_channels for case in convs)
    assert sorted(case.filter_size for case in cases if case.kind == "filter") == list(range(1, 7))
    assert check_cases(batch_size=2, image_size=16)[0].input_shape == (2, 32, 16, 16)


def _random_configuration(seed):
    draw = random.Random(seed)
    groups = draw.choice([1, 1, 1, 2, 3, 4])
    kernel = (draw.randint(1, 5), draw.randint(1, 5))
    stride = (draw.randint(1, 3), draw.randint(1, 3))
    dilation = (draw.randint(1, 3), draw.randint(1, 3))
    padding = (draw.randint(0, 3), draw.randint(0, 3))
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    shape = (
        draw.randint(1, 3),
        groups * draw.randint(1, 4),
        max(1, span[0] - 2 * padding[0]) + draw.randint(0, 12),
        max(1, span[1] - 2 * padding[1]) + draw.randint(0, 12),
    )
    out_channels = groups * draw.randint(1, 4)
    return shape, out_channels, kernel, stride, dilation, padding, groups, draw.random() < 0.5


@pytest.mark.parametrize("seed", range(50))
def test_random_configurations_match_conv2d(seed):
    shape, out_channels, kernel, stride, dilation, padding, groups, biased = _random_configuration(seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator)
    weight = torch.randn(out_channels, shape[1] // groups, *kernel, generator=generator)
    bias = torch.randn(out_channels, generator=generator) if biased else None
    expected = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    methods = ["auto", "im2col"] + (["shift"] if stride == (1, 1) else [])
    for method in methods:
        out = conv2d_from_scratch(x, weight, bias, stride, dilation, groups, padding, method=method)
        assert out.shape == expected.shape, method
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-4, msg=f"method {method}")


@pytest.mark.parametrize("method", ["im2col", "shift"])
def test_gradients_match_conv2d(method):
    generator = torch.Generator().manual_seed(0)
    options = dict(dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 6, 9, 8, generator=generator, **options)
    weight = torch.randn(4, 3, 3, 2, generator=generator, **options)
    bias = torch.randn(4, generator=generator, **options)
    ours = conv2d_from_scratch(x, weight, bias, 1, (2, 1), 2, 1, method=method)
    theirs = F.conv2d(x, weight, bias, 1, 1, (2, 1), 2)
    upstream = torch.randn(theirs.shape, generator=generator, dtype=torch.float64)
    ours_grads = torch.autograd.grad(ours, (x, weight, bias), upstream)
    theirs_grads = torch.autograd.grad(theirs, (x, weight, bias), upstream)
    for mine, reference in zip(ours_grads, theirs_grads, strict=True):
        torch.testing.assert_close(mine, reference)


def test_memory_format_dtype_and_views_follow_the_input():
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(8, 2, 3, 3, generator=generator)
    x = torch.randn(2, 4, 12, 12, generator=generator).contiguous(memory_format=torch.channels_last)
    out = conv2d_from_scratch(x, weight, groups=2, padding=1)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, F.conv2d(x, weight, groups=2, padding=1), rtol=0, atol=1e-4)

    sliced = torch.randn(3, 4, 20, 20, generator=generator)[1:, :, 2:18:2, 1:]  # a strided view
    torch.testing.assert_close(
        conv2d_from_scratch(sliced, weight, groups=2), F.conv2d(sliced, weight, groups=2), rtol=0, atol=1e-4
    )
    doubles = x.double()
    assert conv2d_from_scratch(doubles, weight.double(), groups=2).dtype == torch.float64
    assert conv2d_from_scratch(x[:0], weight, groups=2).shape == (0, 8, 10, 10)


def test_my_conv_stub_interface():
    torch.manual_seed(0)
    conv = MyConvStub(3, 2, 64, 128, True, 2, 1)
    assert conv.weight.shape == (128, 32, 3, 3) and isinstance(conv.weight, torch.nn.Parameter)
    weights = conv.weight.detach()
    assert abs(weights.mean().item()) < 0.03 and abs(weights.std().item() - 1) < 0.03  # standard normal
    assert weights.abs().max() > 3  # not a small uniform default initialisation
    assert isinstance(conv.bias, torch.nn.Parameter) and torch.equal(conv.bias, torch.ones(128))
    assert (conv.groups, conv.stride, conv.dilation, conv.padding) == (2, (2, 2), (1, 1), (0, 0))
    assert conv(torch.randn(1, 64, 9, 9)).shape == (1, 128, 4, 4)

    plain = MyConvStub((1, 3), 1, 4, 6, False, (1, 2), (2, 1), padding=(0, 1))
    assert plain.bias is None and plain.weight.shape == (6, 4, 1, 3)
    assert plain.kernel_size == (1, 3) and plain.stride == (1, 2) and plain.dilation == (2, 1)
    assert [name for name, _ in plain.named_parameters()] == ["weight"]
    x = torch.randn(2, 4, 7, 9)
    torch.testing.assert_close(
        plain(x), F.conv2d(x, plain.weight, None, (1, 2), (0, 1), (2, 1)), rtol=0, atol=1e-4
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((3, 3, 64, 128, True, 1, 1), "divisible by num_groups"),
        ((3, 4, 64, 126, True, 1, 1), "divisible by num_groups"),
        ((0, 1, 4, 4, True, 1, 1), "kernel_size"),
        (((3, 0), 1, 4, 4, True, 1, 1), "kernel_size"),
        ((3, 0, 4, 4, True, 1, 1), "num_groups"),
        ((3, 1, 0, 4, True, 1, 1), "input_channels"),
        ((3, 1, 4, -1, True, 1, 1), "output_channels"),
        ((3, 1, 4, 4, True, 0, 1), "stride"),
        ((3, 1, 4, 4, True, 1, 0), "dilation"),
        ((3, 1, 4, 4, True, 1, 1, -1), "padding"),
        ((3, 1, 4, 4, "yes", 1, 1), "bias"),
        ((3.0, 1, 4, 4, True, 1, 1), "kernel_size"),
    ],
)
def test_my_conv_stub_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        MyConvStub(*arguments)


def test_bad_inputs_are_rejected():
    conv = MyConvStub(3, 1, 4, 4, True, 1, 1)
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        conv(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        conv(torch.randn(4, 8, 8))
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        conv(torch.randn(1, 4, 2, 8))
    weight = torch.randn(4, 2, 3, 3)
    with pytest.raises(ValueError, match="input channels"):
        conv2d_from_scratch(torch.randn(1, 6, 8, 8), weight, groups=2)
    with pytest.raises(ValueError, match="bias"):
        conv2d_from_scratch(torch.randn(1, 4, 8, 8), weight, torch.ones(3), groups=2)
    with pytest.raises(ValueError, match="stride 1"):
        conv2d_from_scratch(torch.randn(1, 4, 8, 8), weight, stride=2, groups=2, method="shift")
    with pytest.raises(ValueError, match="method"):
        conv2d_from_scratch(torch.randn(1, 4, 8, 8), weight, groups=2, method="fft")
    with pytest.raises(ValueError, match="filter"):
        MyFilterStub(torch.ones(3), 3)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        MyFilterStub(torch.ones(3, 3), 3)(torch.randn(1, 4, 8, 8))


class _OpLog(TorchDispatchMode):
    """Records every ATen operator that runs underneath Python."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))


def test_forward_uses_no_pytorch_convolution(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a PyTorch convolution was called")

    for name in ("conv2d", "conv1d", "conv3d", "conv_transpose2d", "unfold", "fold"):
        monkeypatch.setattr(F, name, forbidden)
    for name in ("conv2d", "convolution", "_convolution"):
        monkeypatch.setattr(torch, name, forbidden)
    monkeypatch.setattr(torch.nn.Conv2d, "forward", forbidden)

    torch.manual_seed(0)
    modules = [
        MyConvStub(3, 1, 8, 8, True, 1, 1, padding=1),  # the shift path
        MyConvStub((3, 2), 2, 8, 4, False, 2, (2, 1)),  # the im2col path
        MyFilterStub(blur_kernel(3), 8, padding=1),
    ]
    x = torch.randn(2, 8, 12, 12, requires_grad=True)
    with _OpLog() as ops:
        for module in modules:
            module(x).sum().backward()
    assert ops.names, "the dispatch log saw nothing"
    suspicious = {name for name in ops.names if "conv" in name or "im2col" in name or "col2im" in name}
    assert not suspicious, f"convolution kernels ran: {sorted(suspicious)}"


def test_filter_stub_is_a_depthwise_blur():
    x = torch.randn(2, 3, 10, 11, generator=torch.Generator().manual_seed(0))
    for size in range(1, 7):
        blur = MyFilterStub(blur_kernel(size), 3, padding=size // 2)
        expected = F.conv2d(x, blur_kernel(size).expand(3, 1, size, size), padding=size // 2, groups=3)
        torch.testing.assert_close(blur(x), expected, rtol=0, atol=1e-5)
    ones = torch.ones(1, 3, 8, 8)
    torch.testing.assert_close(MyFilterStub(blur_kernel(4, "box"), 3)(ones), torch.ones(1, 3, 5, 5))
    assert [name for name, _ in MyFilterStub(blur_kernel(3), 3).named_parameters()] == []


def test_blur_kernels_are_normalised_and_symmetric():
    for size in range(1, 7):
        for kind in ("gaussian", "box"):
            kernel = blur_kernel(size, kind)
            assert kernel.shape == (size, size) and kernel.dtype == torch.float32
            torch.testing.assert_close(kernel.sum(), torch.tensor(1.0))
            assert torch.equal(kernel, kernel.T) and torch.equal(kernel, kernel.flip(0))
    assert blur_kernel(3)[1, 1] == blur_kernel(3).max() > blur_kernel(3)[0, 0]
    with pytest.raises(ValueError):
        blur_kernel(0)
    with pytest.raises(ValueError):
        blur_kernel(3, "median")


def test_run_case_is_reproducible():
    case = ConvCase("small", "conv", 4, 6, (3, 3), groups=2, batch_size=2, image_size=16)
    first, again = run_case(case, repeats=1, seed=3), run_case(case, repeats=1, seed=3)
    assert first["max_abs_error"] == again["max_abs_error"]
    assert first["output_shape"] == "2x6x14x14" and first["weight_shape"] == "6x2x3x3"
    assert first["passed"] and first["ours_ms"] > 0 and first["torch_ms"] > 0


def _break_convolution(monkeypatch):
    real = conv_stub.conv2d_from_scratch

    def off_by_a_little(*args, **kwargs):
        return real(*args, **kwargs) + 0.01

    monkeypatch.setattr(conv_stub, "conv2d_from_scratch", off_by_a_little)


def test_report_lists_every_case(tmp_path, grid_rows):
    write_report(grid_rows, tmp_path / "report.md", tmp_path / "report.csv", tmp_path / "report.html")
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert markdown.startswith("# ")
    assert f"**{len(grid_rows)} of {len(grid_rows)} cases pass**" in markdown
    assert torch.__version__ in markdown
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(table) == len(grid_rows) + 1  # header + one row per case
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    for row in grid_rows:
        assert re.search(rf"\| {re.escape(row['case'])} +\|", markdown)
        assert f"<td>{row['case']}</td>" in page
        assert row["time_ratio_q1"] <= row["time_ratio"] <= row["time_ratio_q3"]
    assert "interquartile range" in markdown and "indicative" in page
    with open(tmp_path / "report.csv", newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    assert [record["case"] for record in records] == [row["case"] for row in grid_rows]
    assert {"max_abs_error", "passed", "ours_ms", "torch_ms", "time_ratio"} <= set(records[0])
    assert not list(tmp_path.glob(".*.part")), "atomic writes leave no temporary files"


def test_a_wrong_convolution_is_reported_and_fails_verify(tmp_path, monkeypatch):
    cases = check_cases(batch_size=1, image_size=16)[:3]
    _break_convolution(monkeypatch)
    rows = run_cases(cases, repeats=1)
    assert not any(row["passed"] for row in rows)
    write_report(rows, tmp_path / "report.md", tmp_path / "report.csv")
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "**0 of 3 cases pass**" in markdown and markdown.count("**FAIL**") == 3
    with pytest.raises(AssertionError, match=cases[0].name):
        verify(rows)


def _run_script(tmp_path, monkeypatch):
    fake = SimpleNamespace(
        log=[str(tmp_path / "verify.log")],
        params=SimpleNamespace(atol=1e-3, batch_size=1, image_size=16, timing_repeats=1),
        threads=torch.get_num_threads(),
        output=SimpleNamespace(
            markdown=str(tmp_path / "report.md"),
            csv=str(tmp_path / "report.csv"),
            html=str(tmp_path / "report.html"),
        ),
    )
    stderr = sys.stderr
    monkeypatch.setattr(sys, "stderr", stderr)  # the script redirects it to its log
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # and logs uncaught errors its own way
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the script replaces them with its log file's
    try:
        runpy.run_path(str(SCRIPT), init_globals={"snakemake": fake, "sys": sys})
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        if sys.stderr is not stderr:
            sys.stderr.close()


def test_script_writes_the_report(tmp_path, monkeypatch):
    (tmp_path / "report.md.failed.md").write_text("stale")
    _run_script(tmp_path, monkeypatch)
    assert "cases pass**" in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert (tmp_path / "report.csv").exists()
    assert not (tmp_path / "report.md.failed.md").exists()
    assert "pass square 3×3" in (tmp_path / "verify.log").read_text(encoding="utf-8")


def test_script_keeps_a_failed_report_and_fails(tmp_path, monkeypatch):
    _break_convolution(monkeypatch)
    with pytest.raises(RuntimeError, match="report.md.failed.md"):
        _run_script(tmp_path, monkeypatch)
    assert "**FAIL**" in (tmp_path / "report.md.failed.md").read_text(encoding="utf-8")
