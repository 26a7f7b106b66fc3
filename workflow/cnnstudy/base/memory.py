"""How much memory a job may use, and how many images fit in one inference chunk.

At 160 px the study's CNN has a conv1 activation of about 13 MB per image, so evaluating a
512-image batch in one go needs ~7 GB. Evaluation and the dead-unit probe therefore split their
batches so that the activations of one chunk take at most ``MEMORY_SHARE`` of the memory this job
may still allocate. That memory is bounded by the job's cgroup or scheduler limit, which on a shared
node is usually far below the node's RAM: sizing by ``MemAvailable`` alone gets jobs OOM-killed.

Everything that reads the system takes its roots (``/proc``, ``/sys/fs/cgroup``, the environment) as
arguments, so tests can point it at fake trees. torch is imported only inside the functions that need
it, so the limit can be read (and logged by Snakemake rules) without paying for that import.
"""

import logging
import math
import os
import posixpath
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MEMORY_SHARE = 0.25
"""The stated bound: one inference chunk's activations are estimated to take at most this share of
the available memory. The rest covers the model's weights' copies, the chunk outputs collected so far,
allocator fragmentation and whatever the estimate misses."""

FALLBACK_BYTES = 4 * 2**30
"""Used only when nothing at all can be read: small enough to be safe on any machine that can run the
study, large enough that evaluation does not crawl."""

# cgroup v1 writes "no limit" as the largest page-aligned signed 64-bit value (9223372036854771712);
# anything from 2**60 up is treated as unlimited rather than matched exactly, as kernels differ.
_V1_UNLIMITED = 2**60
_MIB = 2**20


@dataclass(frozen=True)
class MemoryLimit:
    """The memory a job may still allocate, and where that number came from (for the log)."""

    bytes: int
    source: str  # "cgroup v2 limit", "cgroup v1 limit", "SLURM_MEM_PER_NODE", "MemAvailable", ...
    detail: str = ""  # the file or variables read, e.g. "/sys/fs/cgroup/job/memory.max"

    def __str__(self):
        where = f": {self.detail}" if self.detail else ""
        return f"{self.bytes / 2**30:.2f} GiB ({self.source}{where})"


# --- small readers; each returns None when its file is missing or unreadable --------------------------


def _read_text(path):
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(path):
    """An integer file such as ``memory.current``; ``"max"`` and garbage read as None."""
    text = _read_text(path)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _read_kib_field(path, field):
    """A ``Name:   1234 kB`` field of /proc/meminfo or /proc/self/status, in bytes."""
    text = _read_text(path)
    for line in (text or "").splitlines():
        name, _, value = line.partition(":")
        if name.strip() == field:
            parts = value.split()
            try:
                return int(parts[0]) * 1024 if parts else None
            except ValueError:
                return None
    return None


def _read_stat_field(path, field):
    """One ``name value`` line of a cgroup ``memory.stat`` file."""
    for line in (_read_text(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == field:
            try:
                return int(parts[1])
            except ValueError:
                return None
    return None


def _own_cgroups(proc_root):
    """``(v2 path, v1 memory path)`` of this process, from ``/proc/self/cgroup``; None where absent."""
    v2 = v1 = None
    for line in (_read_text(Path(proc_root, "self", "cgroup")) or "").splitlines():
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v2, v1


def _cgroup_dirs(root, path):
    """The cgroup directory of ``path`` under ``root`` and all its ancestors, deepest first.

    Ancestors matter because a limit is often set on a parent (a SLURM job, a systemd slice) while the
    process sits in a child without one. In a container with a cgroup namespace the path reads "/" and
    the files lie directly under ``root``; without a namespace the host path may not exist inside the
    container, and walking up reaches ``root``, which is then the container's own cgroup.
    """
    parts = [part for part in posixpath.normpath("/" + path).split("/") if part]
    return [Path(root, *parts[:depth]) for depth in range(len(parts), -1, -1)]


def _room(limit, usage, inactive_file):
    """What is left under ``limit``. Inactive page cache counts as free: the kernel reclaims it before it
    OOM-kills (the same working-set rule the kubelet uses), and evaluation reads large tensor files whose
    cache would otherwise make the room look far smaller than it is."""
    return limit - max(0, usage - (inactive_file or 0))


# --- the candidate limits ---------------------------------------------------------------------------


def _cgroup_v2_limit(proc_root, cgroup_root):
    path, _ = _own_cgroups(proc_root)
    if path is None:
        return None
    best = None
    for directory in _cgroup_dirs(cgroup_root, path):
        # memory.high is a soft limit, but above it the kernel throttles and reclaims hard; treat it
        # as a limit too, since a chunk sized past it would make the job crawl.
        limits = [_read_int(directory / name) for name in ("memory.max", "memory.high")]
        limits = [value for value in limits if value is not None]
        current = _read_int(directory / "memory.current")
        if not limits or current is None:
            continue
        inactive = _read_stat_field(directory / "memory.stat", "inactive_file")
        room = _room(min(limits), current, inactive)
        if best is None or room < best.bytes:
            best = MemoryLimit(room, "cgroup v2 limit", str(directory))
    return best


def _cgroup_v1_limit(proc_root, cgroup_root):
    _, path = _own_cgroups(proc_root)
    if path is None:
        return None
    best = None
    for directory in _cgroup_dirs(Path(cgroup_root, "memory"), path):
        limit = _read_int(directory / "memory.limit_in_bytes")
        usage = _read_int(directory / "memory.usage_in_bytes")
        if limit is None or usage is None or limit >= _V1_UNLIMITED:
            continue
        inactive = _read_stat_field(directory / "memory.stat", "total_inactive_file")
        room = _room(limit, usage, inactive)
        if best is None or room < best.bytes:
            best = MemoryLimit(room, "cgroup v1 limit", str(directory))
    return best


def _env_int(environ, name):
    try:
        return int(environ[name])
    except (KeyError, ValueError):
        return None


def _slurm_limits(proc_root, environ):
    """SLURM's per-job memory, less what this process already holds.

    SLURM usually enforces its limit through a cgroup, which the cgroup readers see; the variables are
    the fallback where it does not (or where the cgroup is not visible), so this process's RSS stands in
    for the job's usage. ``--mem=0`` ("all of the node") sets 0, which says nothing and is skipped.
    """
    if not environ.get("SLURM_JOB_ID"):
        return []
    rss = _read_kib_field(Path(proc_root, "self", "status"), "VmRSS") or 0
    limits = []
    per_node = _env_int(environ, "SLURM_MEM_PER_NODE")
    if per_node:
        limits.append(MemoryLimit(per_node * _MIB - rss, "SLURM_MEM_PER_NODE", f"{per_node} MB"))
    per_cpu = _env_int(environ, "SLURM_MEM_PER_CPU")
    if per_cpu:
        cpus = _env_int(environ, "SLURM_CPUS_PER_TASK") or _env_int(environ, "SLURM_CPUS_ON_NODE") or 1
        detail = f"{per_cpu} MB × {cpus} CPUs"
        limits.append(MemoryLimit(per_cpu * cpus * _MIB - rss, "SLURM_MEM_PER_CPU", detail))
    return limits


def _mem_available(proc_root):
    path = Path(proc_root, "meminfo")
    available = _read_kib_field(path, "MemAvailable")
    return None if available is None else MemoryLimit(available, "MemAvailable", str(path))


def _device_type(device):
    """ "cpu" / "cuda" / ... of a torch.device, a string such as "cuda:1", or None (the CPU)."""
    if device is None:
        return "cpu"
    return getattr(device, "type", None) or str(device).split(":", 1)[0]


def _cuda_free(device):
    try:
        import torch

        free, _total = torch.cuda.mem_get_info(device)
    except Exception as error:  # no CUDA build, no driver, bad index: all mean "cannot tell"
        log.warning("cannot read free memory on %s (%s); sizing by host memory instead", device, error)
        return None
    return MemoryLimit(int(free), "CUDA free memory", str(device))


# --- public API -------------------------------------------------------------------------------------


def describe_memory_limit(device=None, *, proc_root="/proc", cgroup_root="/sys/fs/cgroup", environ=None):
    """The memory this job may still allocate on ``device``, as a :class:`MemoryLimit` naming its source.

    On a GPU that is the device's free memory. On the CPU it is the tightest of everything known (the
    node's ``MemAvailable``, cgroup v2 and v1 limits on this process's cgroup and its ancestors, SLURM's
    per-job memory), because any one of them can end the job. Never negative; 4 GiB, with a warning,
    when nothing can be read (not Linux, no /proc).
    """
    if _device_type(device) == "cuda":
        cuda = _cuda_free(device)
        if cuda is not None:
            return MemoryLimit(max(0, cuda.bytes), cuda.source, cuda.detail)
    environ = os.environ if environ is None else environ
    candidates = [
        _mem_available(proc_root),
        _cgroup_v2_limit(proc_root, cgroup_root),
        _cgroup_v1_limit(proc_root, cgroup_root),
        *_slurm_limits(proc_root, environ),
    ]
    candidates = [candidate for candidate in candidates if candidate is not None]
    if not candidates:
        log.warning(
            "cannot read the memory available to this job (%s/meminfo, cgroups, SLURM); assuming %.0f GiB",
            proc_root,
            FALLBACK_BYTES / 2**30,
        )
        return MemoryLimit(FALLBACK_BYTES, "fallback", "nothing readable")
    for candidate in candidates:
        log.debug("memory limit candidate: %s", candidate)
    tightest = min(candidates, key=lambda candidate: candidate.bytes)
    return MemoryLimit(max(0, tightest.bytes), tightest.source, tightest.detail)


def available_memory_bytes(device=None, *, proc_root="/proc", cgroup_root="/sys/fs/cgroup", environ=None):
    """The memory this job may still allocate on ``device``, in bytes (see :func:`describe_memory_limit`)."""
    return describe_memory_limit(device, proc_root=proc_root, cgroup_root=cgroup_root, environ=environ).bytes


def peak_rss_mb():
    """This process's peak resident set size in MB, for logs and benchmarks; NaN where unknown (Windows).

    ``ru_maxrss`` is in KiB on Linux but in bytes on macOS.
    """
    try:
        import resource
    except ImportError:
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MIB if sys.platform == "darwin" else peak / 1024


# --- the allocator ----------------------------------------------------------------------------------

LARGE_BLOCK_BYTES = 4 * _MIB
"""From this size up, glibc's malloc serves a block by its own ``mmap``, so freeing it returns it at once.

By default glibc raises that threshold each time the process frees a larger mmapped block, up to 32 MiB.
Then an inference chunk's tensors under 32 MiB (at 160 px in chunks of 10: the pooled maps, the probe's
masks, weight reorders) land on malloc's heaps, which keep them after they are freed (fragmented, trimmed
only at the top). Measured on the study's CNN at 160 px in chunks of 10 (``make bench``'s memory check,
2 CPU cores): one chunk peaks 250 MiB above the model, but 52 chunks in a row peaked 364 to 932 MiB
above it, with up to 450 MiB left on the heaps "free but kept" (``mallinfo2``); with the threshold fixed
here, 267 to 282 MiB in evaluation and 300 to 315 in the dead-unit probe, in ten runs. The price is page faults, as every large block is fresh memory: per chunk of 10
evaluated, 159 k minor faults instead of 133 k (about 7 % more CPU time); per training step of
ResNet-18 on 32 images at 160 px on the CPU, 240 k instead of 55 k (about 20 % more). The demo's tensors
are smaller than 4 MiB and do not change. 1 MiB would cost more (281 k faults per such step) and bound
nothing more at these sizes."""

_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
_allocator_threshold = None  # what limit_allocator_caching last set, so it runs once per threshold


def limit_allocator_caching(threshold=LARGE_BLOCK_BYTES):
    """Have glibc's malloc give blocks of ``threshold`` bytes and more back to the system when freed.

    Without this, memory freed by one inference chunk can stay with the process, and the chunked
    inference exceeds the bound it was sized for (see ``LARGE_BLOCK_BYTES``). Sets ``M_MMAP_THRESHOLD``
    (which also stops glibc raising it, and the trim threshold, by itself) and trims what the heaps hold
    now. Free space left on the heaps before this call can still be reused by a large block and then
    stays resident, so up to that much can come on top of the bound (``make bench`` ends with 16 to 30 MiB
    free on the heaps).
    Process-wide, once per threshold; changes where blocks come from, never a computed number.
    Returns whether it applied: False where the C library is not glibc (macOS, musl), whose allocators
    have no such threshold.
    """
    global _allocator_threshold
    if _allocator_threshold == threshold:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):
            return False
        applied = libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)) == 1
        if applied:
            libc.malloc_trim(0)
    except (OSError, AttributeError, ValueError):
        return False
    if applied:
        _allocator_threshold = threshold
        log.debug("malloc: blocks of %.0f MiB and more are mmapped and returned when freed", threshold / _MIB)
    return applied


# --- working memory per image -----------------------------------------------------------------------

ACTIVATION_FACTOR = 2
"""Working memory of one image ≈ this × the activations live at once in one pass (see below)."""


def _tensors(value):
    """Every tensor in a module's inputs or output (tensors, or tuples / lists / dicts of them)."""
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


class _LiveActivations:
    """The activations alive at every leaf module's start and end, counted once per storage.

    Inputs and outputs of leaf modules are held by weak references: one that the forward pass has let
    go of no longer counts, as the allocator has it back. ``saved`` adds tensors autograd keeps for the
    backward pass, which no Python name may hold. Parameters and buffers are left out: they are allocated
    before the available memory is read.
    """

    def __init__(self, model):
        self.excluded = {tensor.untyped_storage().data_ptr() for tensor in model.parameters()}
        self.excluded |= {tensor.untyped_storage().data_ptr() for tensor in model.buffers()}
        self.live = {}  # storage address -> (bytes, weak references to the tensors using it)
        self.saved = {}  # storage address -> bytes, kept until the pass ends
        self.peak = 0
        self.largest = 0

    def add(self, value):
        import weakref

        for tensor in _tensors(value):
            storage = tensor.untyped_storage()
            key = storage.data_ptr()
            if key in self.excluded or storage.nbytes() == 0:
                continue
            self.largest = max(self.largest, tensor.numel() * tensor.element_size())
            nbytes, refs = self.live.get(key, (storage.nbytes(), []))
            refs = [ref for ref in refs if ref() is not None]
            if not refs:  # a new tensor, or a freed block given to another one
                nbytes = storage.nbytes()
            self.live[key] = (nbytes, [*refs, weakref.ref(tensor)])
        self.measure()

    def save(self, tensor):
        """The pack hook of ``saved_tensors_hooks``: note what autograd keeps, and keep its storage alive
        as autograd would (detached: an output holding its own graph would never be freed)."""
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.excluded:
            self.saved[storage.data_ptr()] = storage.nbytes()
        return tensor.detach()

    def measure(self):
        self.live = {
            key: (nbytes, alive)
            for key, (nbytes, refs) in self.live.items()
            if (alive := [ref for ref in refs if ref() is not None])
        }
        total = {key: nbytes for key, (nbytes, _refs) in self.live.items()} | self.saved
        self.peak = max(self.peak, sum(total.values()))


def _one_pass(model, image_shape, device, differentiate):
    """The :class:`_LiveActivations` of one zero image (float32, channels_last like the real inputs)
    through ``model`` in eval mode: under ``no_grad``, or, with ``differentiate``, recording a graph from
    the input on. The model's training flags are restored afterwards, module by module, so per-module
    choices (e.g. frozen BatchNorm) survive; its parameters' ``requires_grad`` flags are not touched."""
    import torch

    tracker = _LiveActivations(model)
    leaves = [module for module in model.modules() if next(module.children(), None) is None]
    hooks = [leaf.register_forward_pre_hook(lambda _module, inputs: tracker.add(inputs)) for leaf in leaves]
    hooks += [
        leaf.register_forward_hook(lambda _module, _inputs, output: tracker.add(output)) for leaf in leaves
    ]
    training = {module: module.training for module in model.modules()}
    try:
        model.eval()
        image = torch.zeros(1, *image_shape, device=device)
        if image.dim() == 4:
            image = image.contiguous(memory_format=torch.channels_last)
        if differentiate:
            image.requires_grad_(True)
            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(tracker.save, lambda x: x):
                tracker.add(image)
                output = model(image)
        else:
            with torch.no_grad():
                tracker.add(image)
                output = model(image)
        tracker.add(output)
        del output
    finally:
        for hook in hooks:
            hook.remove()
        for module, flag in training.items():
            module.training = flag
    return tracker


def activation_bytes_per_image(model, image_shape, device):
    """Working memory one image needs in an inference forward pass, estimated from one real pass.

    One zero image goes through ``model`` in eval mode under ``no_grad``; hooks before and after every
    leaf module find the largest set of activations alive at once (a layer's input and output, and any
    tensor still held, such as a residual branch's input). The estimate is ``ACTIVATION_FACTOR`` (2) ×
    that set. The factor covers what hooks cannot see: the dead-unit probe's mask of each ReLU output
    (1 byte an element), backend scratch space and layout reorders inside a layer, and the uint8 → float
    conversion of the input. Measured on a CPU, chunks of 10 of the study's CNN at 160 px: the set is
    25.3 MiB an image, and a chunk peaked at 26 MiB an image in evaluation, 28 to 29 in the dead-unit
    probe, alike with 1, 2, 4, 8 or 16 threads (per-thread scratch space is a few MiB); ResNet-18 at
    160 px: 3.4 MiB, peaks of 3.4 to 4.0. This holds only with freed blocks going back to the system,
    which ``inference_chunk_size`` sees to (``limit_allocator_caching``). Parameters are not counted:
    they are already allocated when the available memory is read.
    """
    return ACTIVATION_FACTOR * _one_pass(model, image_shape, device, differentiate=False).peak


def saliency_bytes_per_image(model, image_shape, device):
    """Working memory one image needs in a Grad-CAM pass: a forward pass with autograd recording from the
    explained activation on, then ``torch.autograd.grad`` of class scores with respect to it.

    Estimated for the worst case, the explained activation being the model's first: one zero image
    whose input requires a gradient goes through ``model`` in eval mode, counting the activations alive
    at once together with everything autograd saves for the backward pass (a ReLU's output, a max-pool's
    input and int64 indices, each conv's and linear layer's input), parameters aside. Backward then adds
    at most two activation-sized gradients while it frees saved tensors, and the map (gradient-weighted
    activation) one more: so the estimate is ``ACTIVATION_FACTOR`` × (that peak + 2 × the largest
    activation). Whether the parameters require gradients does not change it: no backward pass is run.
    On the study's CNN at 160 px: 129 MiB an image, 2.5 × the inference estimate; measured in chunks of
    10 on a CPU, Grad-CAM of the first block peaked at 64 MiB an image (74 with batch norm), of relu3 (the
    block explained at 160 px) at 26, no more than the forward pass without gradients before it.
    """
    tracker = _one_pass(model, image_shape, device, differentiate=True)
    return ACTIVATION_FACTOR * (tracker.peak + 2 * tracker.largest)


# --- chunk sizes ------------------------------------------------------------------------------------


def chunk_size(requested, bytes_per_image, available, share=MEMORY_SHARE):
    """``min(requested, floor(share × available / bytes_per_image))``, at least 1: one image always runs."""
    if requested < 1:
        raise ValueError(f"requested chunk size must be at least 1, got {requested}")
    if not 0 < share <= 1:
        raise ValueError(f"memory share must be in (0, 1], got {share}")
    if bytes_per_image <= 0:
        return requested
    return max(1, min(requested, math.floor(share * max(0, available) / bytes_per_image)))


def _sized_chunk(what, per_image, requested, device, share, available):
    if _device_type(device) == "cpu":
        limit_allocator_caching()
    if available is None:
        limit = describe_memory_limit(device)
    else:
        limit = MemoryLimit(int(available), "given by the caller")
    chunk = chunk_size(requested, per_image, limit.bytes, share)
    if chunk < requested:
        log.info(
            "%s in chunks of %d images (requested %d): ~%.1f MB per image, %.0f%% of %s available",
            what,
            chunk,
            requested,
            per_image / 1e6,
            100 * share,
            limit,
        )
    return chunk


def inference_chunk_size(model, image_shape, requested, device, share=MEMORY_SHARE, available=None):
    """How many images to put through ``model`` at once so one chunk stays within ``share`` of memory.

    ``available`` (bytes) defaults to :func:`describe_memory_limit` for ``device``; read it after the
    model is on the device, so its weights are already accounted for. On the CPU, also makes malloc give
    freed activations back (:func:`limit_allocator_caching`), without which the bound does not hold. Logs
    the choice when it is smaller than ``requested``.
    """
    per_image = activation_bytes_per_image(model, image_shape, device)
    return _sized_chunk("inference", per_image, requested, device, share, available)


def saliency_chunk_size(model, image_shape, requested, device, share=MEMORY_SHARE, available=None):
    """How many images to put through one Grad-CAM pass at once so it stays within ``share`` of memory.

    The pass: ``model`` in eval mode, parameters not requiring gradients, a forward pass with autograd
    recording from one intermediate activation on, and ``torch.autograd.grad`` of class scores with
    respect to that activation (the graph may be retained for a second set of classes). Sized by
    :func:`saliency_bytes_per_image`, which assumes the worst case (the first activation explained), so
    it holds for any layer. Otherwise as :func:`inference_chunk_size`: same arguments, same defaults.
    """
    per_image = saliency_bytes_per_image(model, image_shape, device)
    return _sized_chunk("Grad-CAM", per_image, requested, device, share, available)
