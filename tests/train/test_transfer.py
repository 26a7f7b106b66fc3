import hashlib

import pytest
import torch
from torch import nn

from cnnstudy.train.models import TransferResNet18, build_model
from cnnstudy.train.weights import WeightsError, fetch_weights
from helpers.training import run_training, tiny_hyperparameters


def backbone_state(model):
    return {k: v.clone() for k, v in model.net.state_dict().items() if not k.startswith("fc.")}


@pytest.mark.parametrize("mode", ["bn_frozen", "bn_unfrozen"])
def test_backbone_changes_only_as_the_mode_allows(prepared, tmp_path, mode):
    hp = tiny_hyperparameters(f"resnet18_{mode}")
    initial = build_model(hp, 10)  # the same seed gives run_training's starting weights
    start = backbone_state(initial)
    model, _, _ = run_training(prepared, tmp_path, hp)
    end = backbone_state(model)
    assert not torch.equal(initial.net.fc.weight, model.net.fc.weight), "the head must learn in every mode"

    batchnorm_keys = {
        f"{name}.{tensor}"
        for name, module in initial.net.named_modules()
        if isinstance(module, nn.BatchNorm2d)
        for tensor in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    }
    other_keys = start.keys() - batchnorm_keys
    assert other_keys and all(torch.equal(start[k], end[k]) for k in other_keys), (
        "convolutions must stay frozen"
    )
    if mode == "bn_frozen":
        assert all(torch.equal(start[k], end[k]) for k in batchnorm_keys), "BatchNorm must not change at all"
    else:
        for suffix in ("weight", "bias", "running_mean", "running_var"):
            keys = [k for k in batchnorm_keys if k.endswith(suffix)]
            assert all(not torch.equal(start[k], end[k]) for k in keys), (
                f"every BatchNorm {suffix} must change"
            )


def test_frozen_batchnorm_stays_in_eval_mode_while_training():
    model = TransferResNet18("bn_frozen", 10).train()
    modes = [m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert modes and not any(modes)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["net.fc.weight", "net.fc.bias"]
    unfrozen = TransferResNet18("bn_unfrozen", 10).train()
    assert all(m.training for m in unfrozen.modules() if isinstance(m, nn.BatchNorm2d))
    trainable = [n for n, p in unfrozen.named_parameters() if p.requires_grad]
    assert (
        "net.conv1.weight" not in trainable and "net.bn1.weight" in trainable and "net.fc.bias" in trainable
    )
    full = TransferResNet18("full", 10)
    assert all(p.requires_grad for p in full.parameters())


def state_dict_file(folder, corrupt_name=False):
    """A ResNet-18 state dict saved under torch.hub's '<name>-<sha256 prefix>.pth' naming."""
    from torchvision.models import resnet18

    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / "staging.pth"
    torch.save(resnet18().state_dict(), staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    prefix = "00000000" if corrupt_name else digest[:8]
    return staging.rename(folder / f"resnet18-{prefix}.pth")


def test_weights_from_a_file_url_land_in_the_cache_and_load(tmp_path):
    source = state_dict_file(tmp_path / "mirror")
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cached = fetch_weights(source.as_uri(), cache)
    assert cached == cache / source.name and cached.read_bytes() == source.read_bytes()
    model = TransferResNet18("bn_frozen", 10, torch.load(cached, weights_only=True))
    assert torch.equal(model.net.conv1.weight, torch.load(source, weights_only=True)["conv1.weight"])


def test_weights_already_cached_are_used_without_download(tmp_path, monkeypatch):
    source = state_dict_file(tmp_path / "mirror")
    cache = tmp_path / "cache"
    fetch_weights(source.as_uri(), cache)

    def no_network(*args, **kwargs):
        raise AssertionError("downloaded although the weights were cached")

    monkeypatch.setattr("torch.hub.download_url_to_file", no_network)
    assert fetch_weights(f"https://example.invalid/{source.name}", cache) == cache / source.name


def test_wrong_hash_prefix_fails_and_caches_nothing(tmp_path):
    source = state_dict_file(tmp_path / "mirror", corrupt_name=True)
    with pytest.raises(WeightsError, match="invalid hash value"):
        fetch_weights(source.as_uri(), tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())


def test_truncated_weights_fail_and_cache_nothing(tmp_path):
    good = state_dict_file(tmp_path / "good")
    truncated = tmp_path / "mirror" / good.name
    truncated.parent.mkdir()
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match="invalid hash value"):
        fetch_weights(truncated.as_uri(), tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())


def test_weights_placed_in_the_cache_by_hand_are_verified_before_use(tmp_path):
    from cnnstudy.train.weights import load_weights

    good = state_dict_file(tmp_path / "mirror")
    cache = tmp_path / "cache"
    cache.mkdir()
    placed = cache / good.name
    placed.write_bytes(b"random bytes under the right name")
    with pytest.raises(WeightsError, match=f"invalid hash value for {placed}"):
        fetch_weights(f"https://example.invalid/{good.name}", cache)
    with pytest.raises(WeightsError, match="invalid hash value"):
        load_weights(placed)
    placed.write_bytes(good.read_bytes())
    assert "conv1.weight" in load_weights(placed)


def test_weights_without_a_checkable_hash_are_refused_unless_their_sha256_is_configured(tmp_path):
    from cnnstudy.train.weights import load_weights

    good = state_dict_file(tmp_path / "mirror")
    unnamed = good.rename(good.with_name("resnet18.pth"))
    with pytest.raises(WeightsError, match="cannot verify the weights resnet18.pth.*transfer.weights_sha256"):
        fetch_weights(unnamed.as_uri(), tmp_path / "cache")
    with pytest.raises(WeightsError, match="cannot verify"):
        load_weights(unnamed)
    digest = hashlib.sha256(unnamed.read_bytes()).hexdigest()
    cached = fetch_weights(unnamed.as_uri(), tmp_path / "cache", sha256=digest)
    assert "conv1.weight" in load_weights(cached, digest)
    with pytest.raises(WeightsError, match="does not match transfer.weights_sha256"):
        load_weights(cached, "0" * 64)


def test_unreachable_weights_say_how_to_work_offline(tmp_path):
    from cnnstudy.data.download import DownloadError

    with pytest.raises(
        DownloadError,
        match=r"cannot download http://127.0.0.1:9/resnet18-f37072fd.pth.*copy resnet18-f37072fd.pth into",
    ):
        fetch_weights("http://127.0.0.1:9/resnet18-f37072fd.pth", tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())
