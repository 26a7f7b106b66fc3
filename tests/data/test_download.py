import io
import tarfile
from pathlib import Path

import pytest
from torchvision.datasets.utils import calculate_md5

from cnnstudy.data.download import ArchiveError, archive_path, as_url, fetch_archive, unpack_dataset


def test_file_url_download_verifies_and_unpacks(demo_archive, tmp_path):
    md5 = calculate_md5(str(demo_archive))
    archive = fetch_archive(demo_archive.as_uri(), md5, tmp_path / "archives")
    assert archive.read_bytes() == demo_archive.read_bytes()
    dataset = unpack_dataset(archive, "imagenette-demo", tmp_path / "datasets" / "imagenette-demo")
    wnid_folders = sorted(p.name for p in (dataset / "train").iterdir())
    assert len(wnid_folders) == 10 and all(name.startswith("n0") for name in wnid_folders)
    assert len(list((dataset / "val").glob("*/*.JPEG"))) == 40
    assert [p.name for p in (tmp_path / "datasets").iterdir()] == ["imagenette-demo"]  # no scratch left


def test_local_path_is_read_as_file_url(demo_archive, tmp_path, monkeypatch):
    monkeypatch.chdir(demo_archive.parent)
    assert as_url(demo_archive.name) == demo_archive.resolve().as_uri()
    md5 = calculate_md5(str(demo_archive))
    archive = fetch_archive(demo_archive.name, md5, tmp_path)
    assert archive == tmp_path / md5 / demo_archive.name == archive_path(tmp_path, demo_archive.name, md5)


def test_second_run_with_archive_present_touches_no_network(demo_archive, tmp_path, monkeypatch):
    md5 = calculate_md5(str(demo_archive))
    fetch_archive(demo_archive.as_uri(), md5, tmp_path)

    def no_network(*args, **kwargs):
        raise AssertionError("the network was used although a verified archive was present")

    monkeypatch.setattr("cnnstudy.data.download.download_url_to_file", no_network)
    monkeypatch.setattr("urllib.request.urlopen", no_network)
    assert fetch_archive("https://example.invalid/" + demo_archive.name, md5, tmp_path).exists()


def test_wrong_md5_fails_and_leaves_nothing(demo_archive, tmp_path):
    with pytest.raises(ArchiveError, match="checksum mismatch.*expected md5 0{32}"):
        fetch_archive(demo_archive.as_uri(), "0" * 32, tmp_path / "archives")
    assert list((tmp_path / "archives").iterdir()) == []


def test_a_wrong_md5_leaves_the_archive_of_the_right_one_as_it_was(demo_archive, tmp_path):
    md5 = calculate_md5(str(demo_archive))
    kept = fetch_archive(demo_archive.as_uri(), md5, tmp_path / "archives")
    before = kept.stat()
    with pytest.raises(ArchiveError, match=f"checksum mismatch for {demo_archive.as_uri()}"):
        fetch_archive(demo_archive.as_uri(), "0" * 32, tmp_path / "archives")
    assert [path.name for path in (tmp_path / "archives").iterdir()] == [md5]
    assert kept.stat().st_mtime_ns == before.st_mtime_ns and kept.read_bytes() == demo_archive.read_bytes()


def test_an_archive_placed_by_hand_in_the_archive_folder_is_used_without_network(
    demo_archive, tmp_path, monkeypatch
):
    md5 = calculate_md5(str(demo_archive))
    (tmp_path / "archives").mkdir()
    placed = tmp_path / "archives" / "imagenette2-160.tgz"
    placed.write_bytes(demo_archive.read_bytes())
    monkeypatch.setattr(
        "cnnstudy.data.download.download_url_to_file", lambda *a, **k: pytest.fail("downloaded")
    )
    url = "https://example.invalid/imagenette2-160.tgz"
    archive = fetch_archive(url, md5, tmp_path / "archives")
    assert archive == tmp_path / "archives" / md5 / "imagenette2-160.tgz"
    assert archive.read_bytes() == demo_archive.read_bytes() and placed.exists()


def test_truncated_archive_fails_and_leaves_nothing(demo_archive, tmp_path):
    truncated = tmp_path / "source" / demo_archive.name
    truncated.parent.mkdir()
    truncated.write_bytes(demo_archive.read_bytes()[:5000])
    with pytest.raises(ArchiveError, match="checksum mismatch"):
        fetch_archive(truncated.as_uri(), calculate_md5(str(demo_archive)), tmp_path / "archives")
    assert list((tmp_path / "archives").iterdir()) == []
    # with the truncated file's own md5, the download passes but unpacking must fail cleanly
    archive = fetch_archive(truncated.as_uri(), calculate_md5(str(truncated)), tmp_path / "archives")
    with pytest.raises(ArchiveError, match="cannot unpack"):
        unpack_dataset(archive, "imagenette-demo", tmp_path / "datasets" / "imagenette-demo")
    assert list((tmp_path / "datasets").iterdir()) == []


def _archive_with(tmp_path, add_member):
    path = tmp_path / "evil.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for folder in ("imagenette-demo/train/n01440764", "imagenette-demo/val/n01440764"):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        add_member(tar)
    return path


def _file_member(name, payload=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    return info, io.BytesIO(payload)


@pytest.mark.parametrize(
    "member, message",
    [
        (
            lambda tar: tar.addfile(*_file_member("imagenette-demo/../../escaped.txt")),
            "outside the destination",
        ),
        (lambda tar: tar.addfile(*_file_member("/tmp/absolute.txt")), "absolute"),
        (lambda tar: tar.addfile(_symlink("imagenette-demo/link", "/etc")), "only files and folders"),
        (lambda tar: tar.addfile(_device("imagenette-demo/device")), "only files and folders"),
    ],
    ids=["escaping-path", "absolute-path", "symlink", "device"],
)
def test_unsafe_members_are_refused(tmp_path, member, message):
    archive = _archive_with(tmp_path, member)
    destination = tmp_path / "datasets" / "imagenette-demo"
    with pytest.raises(ArchiveError, match=message):
        unpack_dataset(archive, "imagenette-demo", destination)
    assert not destination.exists()
    assert list(destination.parent.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/absolute.txt").exists()


def _symlink(name, target):
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def _device(name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


def test_archive_without_the_named_folder_is_rejected(demo_archive, tmp_path):
    with pytest.raises(ArchiveError, match="no imagenette2-160/train or val folder"):
        unpack_dataset(demo_archive, "imagenette2-160", tmp_path / "imagenette2-160")
    assert not (tmp_path / "imagenette2-160").exists()


def test_unreachable_archive_names_the_url_and_the_ways_to_run_offline(tmp_path):
    from cnnstudy.data.download import DownloadError

    url = "http://127.0.0.1:9/imagenette2-160.tgz"  # nothing listens on the discard port: refused at once
    with pytest.raises(DownloadError) as raised:
        fetch_archive(url, "e793b78cc4c9e9a4ccc0c1155377a412", tmp_path / "archives")
    message = str(raised.value)
    assert url in message and "refused" in message.lower()
    assert f"into {tmp_path / 'archives'}/" in message and "file:// URL" in message
    assert not any((tmp_path / "archives").iterdir())
