"""Fetch an Imagenette-layout archive, verify its md5 and unpack it safely and atomically.

The archive is kept under its md5 (``archive_path``) and the workflow unpacks it to a folder named by the
md5 too: a changed ``dataset.md5`` writes beside the old files and never replaces or deletes them.
"""

import contextlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.parse
from pathlib import Path

from torch.hub import download_url_to_file
from torchvision.datasets.utils import calculate_md5

from ..base.files import atomic_path
from ..base.jobs import StudyError

log = logging.getLogger(__name__)


class ArchiveError(StudyError):
    """The archive is not what the configuration promised: wrong checksum, unsafe or wrong layout."""


class DownloadError(StudyError):
    """The source could not be reached: the message says how to run without it."""


def download(url, destination, offline_ways):
    """``download_url_to_file`` with a message that names the URL, the cause and ``offline_ways``."""
    try:
        download_url_to_file(url, str(destination), progress=True)
    except (OSError, ValueError) as error:  # URLError, socket and HTTP errors are OSErrors
        reason = getattr(error, "reason", None) or error
        raise DownloadError(
            f"cannot download {url}: {reason}. This machine may have no network access. "
            f"To run without it: {offline_ways}"
        ) from error


def as_url(source):
    """A URL for ``source``; a plain local path becomes an absolute ``file://`` URL."""
    if urllib.parse.urlparse(source).scheme in ("http", "https", "ftp", "file"):
        return source
    return Path(source).resolve().as_uri()


def url_file_name(url):
    """The file name a URL ends in (the name the download is cached under)."""
    return Path(urllib.parse.urlparse(url).path).name


def verify_md5(path, md5, source=None):
    actual = calculate_md5(str(path))
    if actual != md5:
        raise ArchiveError(
            f"checksum mismatch for {source or path}: expected md5 {md5}, got {actual}. The file is "
            "incomplete or not the configured archive; check dataset.url and dataset.md5. Nothing was "
            "unpacked, and the data prepared from another md5 are kept as they were."
        )


def archive_path(archive_dir, source, md5):
    """Where the verified archive of ``source`` is kept: ``<archive_dir>/<md5>/<file name>``.

    One folder per md5, so a changed ``dataset.md5`` never overwrites (or deletes) the archive of another.
    """
    return Path(archive_dir) / md5 / url_file_name(as_url(source))


def _place_by_hand_copy(placed, target):
    """Put an archive placed by hand in the archive folder (its plain name, no md5 folder) at ``target``."""
    with atomic_path(target) as partial:
        try:
            partial.unlink()
            os.link(placed, partial)  # no second copy of a large archive
        except OSError:
            shutil.copyfile(placed, partial)
    log.info("using the verified archive placed at %s (no download), kept as %s", placed, target)
    return target


def fetch_archive(source, md5, archive_dir):
    """Return the path of a verified copy of the archive, ``archive_path(archive_dir, source, md5)``.

    A copy already there with the right md5 is used as it is, and so is one placed by hand directly in
    ``archive_dir`` (its plain file name): no network access at all. A failed download or a checksum
    mismatch leaves nothing behind, not even the md5's folder.
    """
    url = as_url(source)
    archive_dir = Path(archive_dir)
    target = archive_path(archive_dir, url, md5)
    if target.exists() and calculate_md5(str(target)) == md5:
        log.info("using the verified archive already at %s (no download)", target)
        return target
    placed = archive_dir / target.name
    offline_ways = (
        f"copy the archive ({target.name}, md5 {md5}) into {archive_dir}/, where a verified archive is "
        "used as it is; or set dataset.url to a mirror, a file:// URL or a local path."
    )
    try:
        if placed.is_file() and calculate_md5(str(placed)) == md5:
            return _place_by_hand_copy(placed, target)
        with atomic_path(target) as partial:
            log.info("downloading %s", url)
            # torch.hub's downloader, not torchvision's: the latter fails on file:// URLs (no length)
            download(url, partial, offline_ways)
            verify_md5(partial, md5, url)
    except BaseException:
        with contextlib.suppress(OSError):
            target.parent.rmdir()  # only when empty: another archive with this md5 stays
        raise
    log.info("downloaded and verified %s", target)
    return target


def _regular_members_only(member, destination):
    """tarfile's 'data' filter, and refuse links, devices and absolute names outright."""
    if not (member.isfile() or member.isdir()):
        raise ArchiveError(f"refusing archive member {member.name!r}: only files and folders may be unpacked")
    if member.name.startswith("/"):  # the data filter would quietly strip the slash
        raise ArchiveError(f"refusing archive member {member.name!r}: absolute paths are not allowed")
    try:
        return tarfile.data_filter(member, destination)
    except tarfile.FilterError as error:
        raise ArchiveError(f"refusing archive member {member.name!r}: {error}") from error


def unpack_dataset(archive, name, destination):
    """Unpack ``archive`` and move its ``name`` folder to ``destination`` only when all went well."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=destination.parent) as scratch:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(scratch, filter=_regular_members_only)
        except (tarfile.TarError, EOFError, OSError) as error:
            raise ArchiveError(f"cannot unpack {archive}: {error}") from error
        unpacked = Path(scratch) / name
        missing = [split for split in ("train", "val") if not (unpacked / split).is_dir()]
        if missing:
            raise ArchiveError(
                f"{archive} has no {name}/{' or '.join(missing)} folder; dataset.name must be the "
                "archive's top folder, holding train/<wnid>/ and val/<wnid>/"
            )
        if destination.exists():
            shutil.rmtree(destination)
        unpacked.rename(destination)
    log.info("unpacked %s to %s", archive, destination)
    return destination
