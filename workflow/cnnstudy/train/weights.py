"""ResNet-18's ImageNet weights in a torch.hub cache inside the project, always verified.

A weights file is trusted only when its sha256 matches: the configured ``transfer.weights_sha256``, or
the hash prefix torch.hub puts in the file name (``resnet18-f37072fd.pth``). That holds for a download
and for a file someone copied into the cache by hand, which torch.hub itself would load unchecked.
"""

import hashlib
import logging
from pathlib import Path

import torch

from ..base.files import atomic_path
from ..base.jobs import StudyError
from ..base.layout import HUB_HASH_IN_NAME
from ..data.download import as_url, download, url_file_name

log = logging.getLogger(__name__)


class WeightsError(StudyError):
    pass


def expected_hash(path, sha256=None):
    """(hash, where it comes from) that ``path`` must match; refuses a file nothing can verify."""
    if sha256:
        return sha256, "transfer.weights_sha256"
    match = HUB_HASH_IN_NAME.search(Path(path).name)
    if match:
        return match.group(1), f"the hash prefix in its name ({match.group(1)})"
    raise WeightsError(
        f"cannot verify the weights {Path(path).name}: its name has no torch.hub hash prefix "
        "(resnet18-f37072fd.pth) and transfer.weights_sha256 is not set. Keep such a name or set the "
        "file's sha256; unverified weights would be reported as pretrained."
    )


def verify_weights(path, sha256=None, name=None):
    """Raise a WeightsError naming ``path`` unless its sha256 matches what is expected of ``name``
    (default: the file's own name)."""
    expected, source = expected_hash(name or path, sha256)
    with open(path, "rb") as handle:
        actual = hashlib.file_digest(handle, "sha256").hexdigest()
    if not actual.startswith(expected):
        raise WeightsError(
            f"invalid hash value for {path}: sha256 {actual} does not match {source}. The file is "
            "incomplete or not the configured weights: delete it and rerun, or check transfer.weights_url."
        )


def fetch_weights(source, checkpoints_dir, sha256=None):
    """Put the weights at ``checkpoints_dir/<file name of source>``, verified.

    A file already in the cache is verified and used without any download; a download is verified
    before it is moved into the cache, so a wrong or truncated one leaves nothing behind.
    """
    url = as_url(source)
    cached = Path(checkpoints_dir) / url_file_name(url)
    expected_hash(cached, sha256)  # refuse an unverifiable file before downloading it
    if cached.exists():
        verify_weights(cached, sha256)
        log.info("weights already cached at %s (no download)", cached)
    else:
        offline_ways = (
            f"copy {cached.name} into {cached.parent}/ (torch.hub's cache: a file there is used without any "
            "download once its hash matches), or set transfer.weights_url to a mirror, a file:// URL or a "
            "local path."
        )
        with atomic_path(cached) as partial:
            download(url, partial, offline_ways)
            verify_weights(partial, sha256, name=cached.name)  # before it enters the cache
    log.info("weights at %s: verified", cached)
    return cached


def load_weights(path, sha256=None):
    """The state dict in ``path``, after checking its hash."""
    verify_weights(path, sha256)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsError(f"cannot load the weights {path}: {error}. Delete it and rerun.") from error
