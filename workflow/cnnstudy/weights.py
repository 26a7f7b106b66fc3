"""ResNet-18's ImageNet weights in a torch.hub cache inside the project."""

import logging
from pathlib import Path

import torch

from .download import as_url, url_file_name

log = logging.getLogger(__name__)


class WeightsError(RuntimeError):
    pass


def fetch_weights(source, checkpoints_dir):
    """Put the weights at ``checkpoints_dir/<file name of source>`` and check they load.

    torch.hub does the work: a file already in the cache is used without any download; a new one is
    checked against the sha256 prefix in its name (``resnet18-f37072fd.pth``) before it is moved into
    the cache, so a wrong or truncated download leaves nothing behind.
    """
    url = as_url(source)
    cached = Path(checkpoints_dir) / url_file_name(url)
    if cached.exists():
        log.info("weights already cached at %s (no download)", cached)
    try:
        state = torch.hub.load_state_dict_from_url(
            url, model_dir=str(checkpoints_dir), map_location="cpu", check_hash=True, weights_only=True
        )
    except Exception as error:
        raise WeightsError(
            f"could not fetch ResNet-18 weights from {url}: {error}. The file name must keep torch.hub's "
            "'<name>-<sha256 prefix>.pth' form (resnet18-f37072fd.pth) so its hash can be checked."
        ) from error
    log.info("weights at %s: %d tensors", cached, len(state))
    return cached
